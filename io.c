// io.c: errors, reading files (pipes too) and lines, strict JSON, safetensors, config.json, atomic
// writes. Plumbing only; the algorithm lives in repo.c.
#define _POSIX_C_SOURCE 200809L // fileno, fsync, getline, strdup under -std=c11
#include "io.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef REPO_FUZZ
jmp_buf repo_die_jump;
char repo_die_msg[1024];
#endif

void one_line(char *s, size_t cap) {
    char out[4096];
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && k + 5 < sizeof out; p++) {
        if (*p >= 0x20 && *p != 0x7f) { out[k++] = (char)*p; continue; }
        k += (size_t)snprintf(out + k, sizeof out - k, *p == '\n' ? "\\n" : *p == '\t' ? "\\t" : *p == '\r' ? "\\r" : "\\x%02x", *p);
    }
    out[k] = 0;
    snprintf(s, cap, "%s", out);
}

void die(const char *fmt, ...) {
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    one_line(msg, sizeof msg); // names from files can hold newlines: the error stays one line
#ifdef REPO_FUZZ
    snprintf(repo_die_msg, sizeof repo_die_msg, "%s", msg);
    longjmp(repo_die_jump, 1);
#else
    fprintf(stderr, "repo: error: %s\n", msg);
    exit(1);
#endif
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory allocating %zu bytes", n);
    return p;
}

void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) die("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

// fopen for reading; NULL with the reason in err. A directory opens fine on Linux and then reads
// as an error (or, through fseek/ftell, as a file of 2^63 bytes), so it is refused here by name.
static FILE *open_for_reading(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno)); return NULL; }
    struct stat s;
    if (fstat(fileno(f), &s) == 0 && S_ISDIR(s.st_mode)) {
        fclose(f);
        snprintf(err, errlen, "%s: is a directory, not a file", path);
        return NULL;
    }
    return f;
}

FILE *open_input(const char *path) {
    char err[4200];
    FILE *f = open_for_reading(path, err, sizeof err);
    if (!f) die("%s", err);
    return f;
}

char *read_stream(FILE *f, const char *path, size_t hint, size_t *len, char *err, size_t errlen) {
    size_t cap = hint + 1 > 65536 ? hint + 1 : 65536, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) { snprintf(err, errlen, "%s: out of memory reading it (%zu bytes)", path, cap); return NULL; }
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break; // end of file or an error, told apart below
        int c = fgetc(f);       // a full buffer: grow only if there is more
        if (c == EOF) break;
        char *bigger = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
        if (!bigger) free(buf);
        buf = bigger;
        cap *= 2;
        if (buf) buf[n++] = (char)c;
    }
    if (ferror(f)) { free(buf); snprintf(err, errlen, "%s: read error: %s", path, strerror(errno)); return NULL; }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

// reads by chunks, so pipes work; a regular file's size only sizes the first chunk
char *read_file(const char *path, size_t *len, char *err, size_t errlen) {
    FILE *f = open_for_reading(path, err, errlen);
    if (!f) return NULL;
    struct stat s;
    size_t hint = fstat(fileno(f), &s) == 0 && S_ISREG(s.st_mode) && s.st_size > 0 ? (size_t)s.st_size : 0;
    char *buf = read_stream(f, path, hint, len, err, errlen);
    fclose(f);
    return buf;
}

char *read_whole_file(const char *path, size_t *len) {
    char err[4200];
    char *buf = read_file(path, len, err, sizeof err);
    if (!buf) die("%s", err);
    return buf;
}

int file_exists(const char *path) { struct stat s; return stat(path, &s) == 0 && S_ISREG(s.st_mode); }
int dir_exists(const char *path) { struct stat s; return stat(path, &s) == 0 && S_ISDIR(s.st_mode); }

void make_dir(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) die("%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) die("%s: cannot create directory: %s", buf, strerror(errno));
}

AtomicFile atomic_open(const char *path) {
    AtomicFile af;
    af.path = strdup(path);
    af.tmp_path = xmalloc(strlen(path) + 32);
    sprintf(af.tmp_path, "%s.tmp.%d", path, (int)getpid());
    af.f = fopen(af.tmp_path, "wb");
    if (!af.f) die("%s: cannot write: %s", path, strerror(errno));
    return af;
}

void atomic_close(AtomicFile *af) {
    // a full disk shows up at fflush/fclose, not at fwrite: check both before the rename
    int bad = ferror(af->f);
    bad |= fflush(af->f) != 0;
    bad |= fsync(fileno(af->f)) != 0 && errno != EINVAL;
    bad |= fclose(af->f) != 0;
    if (bad) { unlink(af->tmp_path); die("%s: write failed: %s", af->path, strerror(errno)); }
    if (rename(af->tmp_path, af->path) != 0) {
        unlink(af->tmp_path);
        die("%s: cannot rename into place: %s", af->path, strerror(errno));
    }
    free(af->path); free(af->tmp_path);
}

void copy_file_atomic(const char *src, const char *dst) {
    size_t n;
    char *buf = read_whole_file(src, &n);
    AtomicFile af = atomic_open(dst);
    fwrite(buf, 1, n, af.f);
    atomic_close(&af);
    free(buf);
}

// ----------------------------------------------------------------------------
// JSON: a strict check (RFC 8259, as serde_json and Python's json read it), then cJSON builds the tree

int utf8_valid(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        // the second byte's range depends on the lead: it rules out overlong forms, surrogates and > U+10FFFF
        int len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        unsigned lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80, hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
        if (!len || n - i < (size_t)len || s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (int k = 2; k < len; k++) if ((s[i + k] & 0xC0) != 0x80) return 0;
        i += (size_t)len;
    }
    return 1;
}

// number literals in document order, for readers that need an exact unsigned integer (safetensors)
typedef struct { uint64_t u; int is_uint; } JsonNum;   // is_uint: digits only, no sign, fits in 64 bits
typedef struct {
    const unsigned char *s; size_t n, i;
    int depth;
    char *err; size_t errlen;
    JsonNum *nums; size_t n_nums, cap_nums; int keep_nums;
} JsonScan;
enum { JSON_MAX_DEPTH = 128 }; // serde_json's recursion limit

static int json_fail(JsonScan *j, const char *what) {
    int nul = j->i < j->n && j->s[j->i] == 0 && !strstr(what, "NUL"); // say so: a NUL byte is easy to miss
    snprintf(j->err, j->errlen, "invalid JSON at byte %zu: %s%s%s", j->i, nul ? "NUL byte (" : "", what, nul ? ")" : "");
    return 0;
}

static void json_blanks(JsonScan *j) {
    while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' || j->s[j->i] == '\r')) j->i++;
}

static int json_hex4(JsonScan *j, size_t at, unsigned *u) {
    if (j->n - at < 4) return 0;
    *u = 0;
    for (int k = 0; k < 4; k++) {
        unsigned c = j->s[at + k];
        unsigned d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 16;
        if (d == 16) return 0;
        *u = *u << 4 | d;
    }
    return 1;
}

static int json_string(JsonScan *j) {
    j->i++; // the opening quote
    for (;;) {
        if (j->i >= j->n) return json_fail(j, "unterminated string");
        unsigned c = j->s[j->i];
        if (c == '"') { j->i++; return 1; }
        if (c < 0x20) return json_fail(j, c ? "control character inside a string" : "NUL byte inside a string");
        if (c >= 0x80) {
            size_t k = 1;
            while (k < 4 && j->i + k < j->n && (j->s[j->i + k] & 0xC0) == 0x80) k++;
            if (!utf8_valid((const char *)j->s + j->i, k)) return json_fail(j, "invalid UTF-8");
            j->i += k;
            continue;
        }
        if (c != '\\') { j->i++; continue; }
        if (j->i + 1 >= j->n) return json_fail(j, "unterminated string");
        unsigned e = j->s[j->i + 1], u, lo;
        if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') { j->i += 2; continue; }
        if (e != 'u' || !json_hex4(j, j->i + 2, &u)) return json_fail(j, "invalid escape");
        if (u == 0) return json_fail(j, "\\u0000 (a NUL character) is not supported");
        if (u >= 0xDC00 && u <= 0xDFFF) return json_fail(j, "unpaired surrogate escape");
        if (u >= 0xD800 && u <= 0xDBFF) { // needs its low half right after
            if (j->i + 7 >= j->n || j->s[j->i + 6] != '\\' || j->s[j->i + 7] != 'u' || !json_hex4(j, j->i + 8, &lo) ||
                lo < 0xDC00 || lo > 0xDFFF)
                return json_fail(j, "unpaired surrogate escape");
            j->i += 6;
        }
        j->i += 6;
    }
}

static int is_digit(unsigned c) { return c >= '0' && c <= '9'; }

static int json_number(JsonScan *j) {
    JsonNum num = {0, 1};
    if (j->s[j->i] == '-') { num.is_uint = 0; j->i++; }
    if (j->i >= j->n || !is_digit(j->s[j->i])) return json_fail(j, "invalid number");
    if (j->s[j->i] == '0') {
        j->i++;
        if (j->i < j->n && is_digit(j->s[j->i])) return json_fail(j, "number with a leading zero");
    }
    for (; j->i < j->n && is_digit(j->s[j->i]); j->i++) {
        unsigned d = j->s[j->i] - '0';
        if (num.u > (UINT64_MAX - d) / 10) num.is_uint = 0;
        num.u = num.u * 10 + d;
    }
    if (j->i < j->n && j->s[j->i] == '.') {
        num.is_uint = 0;
        if (++j->i >= j->n || !is_digit(j->s[j->i])) return json_fail(j, "invalid number");
        while (j->i < j->n && is_digit(j->s[j->i])) j->i++;
    }
    if (j->i < j->n && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
        num.is_uint = 0;
        if (++j->i < j->n && (j->s[j->i] == '+' || j->s[j->i] == '-')) j->i++;
        if (j->i >= j->n || !is_digit(j->s[j->i])) return json_fail(j, "invalid number");
        while (j->i < j->n && is_digit(j->s[j->i])) j->i++;
    }
    if (!j->keep_nums) return 1;
    if (j->n_nums == j->cap_nums) {
        j->cap_nums = j->cap_nums * 2 + 64;
        j->nums = realloc(j->nums, j->cap_nums * sizeof(JsonNum));
        if (!j->nums) die("out of memory reading JSON");
    }
    j->nums[j->n_nums++] = num;
    return 1;
}

static int json_value(JsonScan *j) {
    json_blanks(j);
    if (j->i >= j->n) return json_fail(j, "unexpected end");
    unsigned c = j->s[j->i];
    if (c == '{' || c == '[') {
        unsigned close = c == '{' ? '}' : ']';
        if (++j->depth > JSON_MAX_DEPTH) return json_fail(j, "nested more than 128 deep");
        j->i++;
        json_blanks(j);
        if (j->i < j->n && j->s[j->i] == close) { j->i++; j->depth--; return 1; }
        for (;;) {
            if (c == '{') {
                json_blanks(j);
                if (j->i >= j->n || j->s[j->i] != '"') return json_fail(j, "expected a string key");
                if (!json_string(j)) return 0;
                json_blanks(j);
                if (j->i >= j->n || j->s[j->i] != ':') return json_fail(j, "expected ':'");
                j->i++;
            }
            if (!json_value(j)) return 0;
            json_blanks(j);
            if (j->i < j->n && j->s[j->i] == ',') { j->i++; continue; }
            if (j->i < j->n && j->s[j->i] == close) { j->i++; j->depth--; return 1; }
            return json_fail(j, c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    if (c == '"') return json_string(j);
    if (c == '-' || is_digit(c)) return json_number(j);
    static const char *const words[3] = {"true", "false", "null"};
    for (int w = 0; w < 3; w++) {
        size_t k = strlen(words[w]);
        if (j->n - j->i >= k && !memcmp(j->s + j->i, words[w], k)) { j->i += k; return 1; }
    }
    return json_fail(j, c == 0 ? "NUL byte" : "unexpected character");
}

// the whole text must be one value; nums (if given) receives the number literals in document order
static int json_scan(const char *text, size_t len, char *err, size_t errlen, JsonNum **nums, size_t *n_nums) {
    JsonScan j = {(const unsigned char *)text, len, 0, 0, err, errlen, NULL, 0, 0, nums != NULL};
    int ok = json_value(&j);
    if (ok) {
        json_blanks(&j);
        if (j.i < j.n) ok = json_fail(&j, j.s[j.i] ? "trailing data after the JSON value" : "NUL byte after the JSON value");
    }
    if (nums && ok) { *nums = j.nums; *n_nums = j.n_nums; }
    else free(j.nums);
    return ok;
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

void json_keep_last(cJSON *node) {
    size_t n = 0;
    for (cJSON *c = node->child; c; c = c->next) { json_keep_last(c); n++; }
    if (!cJSON_IsObject(node) || n < 2) return;
    if (n <= 8) { // small objects: pairwise
        for (cJSON *a = node->child, *next; a; a = next) {
            next = a->next;
            for (cJSON *b = a->next; b; b = b->next)
                if (!strcmp(a->string, b->string)) { cJSON_Delete(cJSON_DetachItemViaPointer(node, a)); break; }
        }
        return;
    }
    // big ones (a vocabulary): a hash table from key to the latest member with it, in document order
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    cJSON **slot = xcalloc(cap, sizeof *slot);
    for (cJSON *c = node->child, *next; c; c = next) {
        next = c->next;
        size_t i = fnv1a(c->string) & (cap - 1);
        while (slot[i] && strcmp(slot[i]->string, c->string)) i = (i + 1) & (cap - 1);
        if (slot[i]) cJSON_Delete(cJSON_DetachItemViaPointer(node, slot[i])); // an earlier copy
        slot[i] = c;
    }
    free(slot);
}

int json_valid(const char *text, size_t len, char *err, size_t errlen) { return json_scan(text, len, err, errlen, NULL, NULL); }

cJSON *json_parse_raw(const char *text, size_t len, char *err, size_t errlen) {
    if (!json_scan(text, len, err, errlen, NULL, NULL)) return NULL;
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) snprintf(err, errlen, "invalid JSON: cJSON cannot read it (a number longer than 63 characters?)");
    return root;
}

cJSON *json_parse(const char *text, size_t len, char *err, size_t errlen) {
    cJSON *root = json_parse_raw(text, len, err, errlen);
    if (root) json_keep_last(root);
    return root;
}

// ----------------------------------------------------------------------------
// safetensors

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) bits = sign;
        else { // subnormal: renormalize
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) { mant <<= 1; exp--; }
            bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000 | (mant << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    float f; memcpy(&f, &bits, 4); return f;
}

float bf16_to_f32(uint16_t h) { uint32_t bits = (uint32_t)h << 16; float f; memcpy(&f, &bits, 4); return f; }

// the dtypes safetensors 0.4 knows, with their sizes in bytes
static const struct { const char *name; int bytes; int dtype; } st_dtypes[] = {
    {"F32", 4, ST_F32}, {"F16", 2, ST_F16}, {"BF16", 2, ST_BF16}, {"F64", 8, ST_OTHER}, {"BOOL", 1, ST_OTHER},
    {"U8", 1, ST_OTHER}, {"I8", 1, ST_OTHER}, {"F8_E5M2", 1, ST_OTHER}, {"F8_E4M3", 1, ST_OTHER}, {"I16", 2, ST_OTHER},
    {"U16", 2, ST_OTHER}, {"I32", 4, ST_OTHER}, {"U32", 4, ST_OTHER}, {"I64", 8, ST_OTHER}, {"U64", 8, ST_OTHER},
};
enum { ST_MAX_HEADER = 100000000 }; // safetensors' MAX_HEADER_SIZE

// number literals inside a subtree: how far the document-order cursor over JsonNum moves past it
static size_t count_numbers(const cJSON *node) {
    size_t n = cJSON_IsNumber(node);
    for (const cJSON *c = node->child; c; c = c->next) n += count_numbers(c);
    return n;
}

// an array of exact unsigned integers (shape, data_offsets): 1 if it is one. The cursor *k walks
// nums in document order; *first gets the index of the array's first number.
static int read_uints(const cJSON *arr, const JsonNum *nums, size_t *k, size_t *first) {
    int ok = cJSON_IsArray(arr);
    *first = *k;
    for (const cJSON *c = ok ? arr->child : NULL; c; c = c->next) {
        if (!cJSON_IsNumber(c)) { ok = 0; *k += count_numbers(c); }
        else if (!nums[(*k)++].is_uint) ok = 0;
    }
    if (!ok && !cJSON_IsArray(arr)) *k += count_numbers(arr);
    return ok;
}

typedef struct { StTensor t; uint64_t begin, end; size_t order; } StEntry;
static int cmp_entry_name(const void *a, const void *b) {
    const StEntry *x = a, *y = b;
    int c = strcmp(x->t.name, y->t.name);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}
static int cmp_entry_offsets(const void *a, const void *b) {
    const StEntry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

// one header entry {"dtype", "shape", "data_offsets", anything else ignored}; fields given twice are
// refused, as serde refuses a repeated struct field
static void st_entry(const char *path, const cJSON *e, const JsonNum *nums, size_t *k, StEntry *out) {
    const char *name = e->string;
    if (!cJSON_IsObject(e)) die("%s: tensor %s: header entry is not a {dtype, shape, data_offsets} object", path, name);
    const cJSON *dt = NULL, *shape = NULL, *offs = NULL;
    size_t shape_at = 0, offs_at = 0;
    for (const cJSON *f = e->child; f; f = f->next) {
        const cJSON **slot = !strcmp(f->string, "dtype") ? &dt : !strcmp(f->string, "shape") ? &shape
                           : !strcmp(f->string, "data_offsets") ? &offs : NULL;
        if (slot && *slot) die("%s: tensor %s: \"%s\" is given twice", path, name, f->string);
        if (slot) *slot = f;
        if (slot == &shape && !read_uints(f, nums, k, &shape_at))
            die("%s: tensor %s: shape must be a list of unsigned integers", path, name);
        else if (slot == &offs && (!read_uints(f, nums, k, &offs_at) || cJSON_GetArraySize(f) != 2))
            die("%s: tensor %s: data_offsets must be [begin, end], two unsigned integers", path, name);
        else if (slot != &shape && slot != &offs) *k += count_numbers(f);
    }
    if (!dt || !shape || !offs) die("%s: tensor %s: header entry needs dtype, shape and data_offsets", path, name);
    if (!cJSON_IsString(dt)) die("%s: tensor %s: dtype must be a string", path, name);
    int d = 0, n_types = sizeof st_dtypes / sizeof st_dtypes[0];
    while (d < n_types && strcmp(st_dtypes[d].name, dt->valuestring)) d++;
    if (d == n_types) die("%s: tensor %s: unknown dtype \"%.20s\"", path, name, dt->valuestring);
    StTensor *t = &out->t;
    t->name = strdup(name);
    t->dtype = st_dtypes[d].dtype;
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", st_dtypes[d].name);
    t->ndim = cJSON_GetArraySize(shape);
    t->shape = xmalloc((size_t)t->ndim * sizeof(int64_t));
    // numel * dtype size in 64 bits, refusing overflow (safetensors' ValidationOverflow)
    uint64_t nbytes = (uint64_t)st_dtypes[d].bytes;
    int overflow = 0;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t dim = nums[shape_at + (size_t)i].u;
        if (dim && nbytes > UINT64_MAX / dim) overflow = 1;
        nbytes *= dim;
        t->shape[i] = dim > INT64_MAX ? INT64_MAX : (int64_t)dim; // only with another dim 0: holds no data
    }
    if (overflow) die("%s: tensor %s: the byte size of its shape overflows 64 bits", path, name);
    out->begin = nums[offs_at].u;
    out->end = nums[offs_at + 1].u;
    if (out->end < out->begin)
        die("%s: tensor %s: data_offsets [%llu, %llu] end before they begin", path, name,
            (unsigned long long)out->begin, (unsigned long long)out->end);
    if (out->end - out->begin != nbytes)
        die("%s: tensor %s: %s shape holds %llu bytes but data_offsets span %llu", path, name, t->dtype_name,
            (unsigned long long)nbytes, (unsigned long long)(out->end - out->begin));
}

void st_open(SafeTensors *st, const char *path) {
    memset(st, 0, sizeof *st);
    st->path = strdup(path);
    st->bytes = (unsigned char *)read_whole_file(path, &st->size);
    if (st->size < 8) die("%s: file is %zu bytes, too short for a safetensors header", path, st->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | st->bytes[i];
    if (hlen > ST_MAX_HEADER) die("%s: header length %llu is over safetensors' limit of %d bytes", path, (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen > st->size - 8) die("%s: header length %llu is longer than the file (%zu bytes)", path, (unsigned long long)hlen, st->size);
    st->data_start = 8 + hlen;
    size_t data_size = st->size - st->data_start;
    const char *header = (const char *)st->bytes + 8;
    char err[256];
    JsonNum *nums = NULL;
    size_t n_nums = 0, k = 0;
    if (!json_scan(header, hlen, err, sizeof err, &nums, &n_nums)) die("%s: header is not a JSON object: %s", path, err);
    cJSON *root = cJSON_ParseWithLength(header, hlen);
    if (!root) die("%s: header: cJSON cannot read it", path);
    if (!cJSON_IsObject(root)) die("%s: header is not a JSON object", path);
    StEntry *entries = xcalloc((size_t)cJSON_GetArraySize(root) + 1, sizeof(StEntry));
    size_t n = 0;
    int seen_metadata = 0;
    for (cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__")) { entries[n].order = n; st_entry(path, e, nums, &k, &entries[n]); n++; continue; }
        if (seen_metadata++) die("%s: header: __metadata__ is given twice", path);
        if (cJSON_IsNull(e)) continue;
        if (!cJSON_IsObject(e)) die("%s: header: __metadata__ must be an object of strings", path);
        for (cJSON *m = e->child; m; m = m->next)
            if (!cJSON_IsString(m)) die("%s: header: __metadata__[\"%s\"] is not a string", path, m->string);
    }
    cJSON_Delete(root);
    free(nums);
    // a name given twice: the last entry counts, as in safetensors (serde's map)
    qsort(entries, n, sizeof *entries, cmp_entry_name);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && !strcmp(entries[i].t.name, entries[i + 1].t.name)) { free(entries[i].t.name); free(entries[i].t.shape); continue; }
        entries[kept++] = entries[i];
    }
    // the tensors tile the data section: sorted by offsets, each starts where the previous ended
    qsort(entries, kept, sizeof *entries, cmp_entry_offsets);
    uint64_t at = 0;
    for (size_t i = 0; i < kept; i++) {
        if (entries[i].end > data_size)
            die("%s: tensor %s: data_offsets [%llu, %llu] lie outside the data section (%zu bytes)", path, entries[i].t.name,
                (unsigned long long)entries[i].begin, (unsigned long long)entries[i].end, data_size);
        if (entries[i].begin != at)
            die("%s: tensor %s: data_offsets [%llu, %llu] %s the previous tensor's end at %llu (tensors must tile the data section)",
                path, entries[i].t.name, (unsigned long long)entries[i].begin, (unsigned long long)entries[i].end,
                entries[i].begin < at ? "overlap" : "leave a gap after", (unsigned long long)at);
        at = entries[i].end;
    }
    if (at != data_size)
        die("%s: the tensors cover %llu bytes but the data section holds %zu: trailing bytes", path, (unsigned long long)at, data_size);
    st->tensors = xcalloc(kept + 1, sizeof(StTensor));
    for (size_t i = 0; i < kept; i++) {
        st->tensors[i] = entries[i].t;
        st->tensors[i].begin = (size_t)entries[i].begin;
        st->tensors[i].end = (size_t)entries[i].end;
    }
    st->n_tensors = (int)kept;
    free(entries);
}

void st_close(SafeTensors *st) {
    for (int i = 0; i < st->n_tensors; i++) { free(st->tensors[i].name); free(st->tensors[i].shape); }
    free(st->tensors); free(st->bytes); free(st->path);
    memset(st, 0, sizeof *st);
}

StTensor *st_find(SafeTensors *st, const char *name) {
    for (int i = 0; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

// bounded by the file size (st_open checked the byte span), unless a dimension is 0
int64_t st_numel(const StTensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) if (t->shape[d] == 0) return 0;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

// NaN and infinity have every exponent bit set
static int nonfinite_bits(uint32_t bits) { return (bits & 0x7f800000u) == 0x7f800000u; }
static uint32_t float_bits(float x) { uint32_t b; memcpy(&b, &x, 4); return b; }

void st_read_f32(SafeTensors *st, const StTensor *t, float *dst) {
    const unsigned char *src = st->bytes + st->data_start + t->begin;
    int64_t n = st_numel(t);
    uint32_t any_bad = 0; // converting and checking in one pass: a flag, the position only when needed
    switch (t->dtype) {
    case ST_F32:
        for (int64_t i = 0; i < n; i++) {
            uint32_t b = (uint32_t)src[4*i] | (uint32_t)src[4*i+1] << 8 | (uint32_t)src[4*i+2] << 16 | (uint32_t)src[4*i+3] << 24;
            memcpy(&dst[i], &b, 4);
            any_bad |= nonfinite_bits(b);
        }
        break;
    case ST_F16:
        for (int64_t i = 0; i < n; i++) { dst[i] = f16_to_f32((uint16_t)(src[2*i] | src[2*i+1] << 8)); any_bad |= nonfinite_bits(float_bits(dst[i])); }
        break;
    case ST_BF16:
        for (int64_t i = 0; i < n; i++) { dst[i] = bf16_to_f32((uint16_t)(src[2*i] | src[2*i+1] << 8)); any_bad |= nonfinite_bits(float_bits(dst[i])); }
        break;
    default: die("%s: tensor %s: unsupported dtype %s (F32, F16 and BF16 are supported)", st->path, t->name, t->dtype_name);
    }
    if (!any_bad) return;
    int64_t i = 0;
    while (!nonfinite_bits(float_bits(dst[i]))) i++;
    die("%s: tensor %s: element %lld is %s", st->path, t->name, (long long)i, float_bits(dst[i]) & 0x7fffff ? "NaN" : "infinite");
}

typedef struct { const char *name; int file; } NameInFile;
static int cmp_name_in_file(const void *a, const void *b) {
    const NameInFile *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : x->file - y->file;
}

// a model directory's tensors: one file, or the shards of model.safetensors.index.json
void ts_open(TensorSource *ts, const char *model_dir) {
    memset(ts, 0, sizeof *ts);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", model_dir);
    if (access(path, F_OK) == 0) { // st_open says what is wrong when it is not a readable file
        ts->files = xcalloc(1, sizeof(SafeTensors));
        ts->n_files = 1;
        ts->desc = strdup(path);
        st_open(&ts->files[0], path);
        return;
    }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", model_dir);
    if (access(path, F_OK) != 0) die("%s: neither model.safetensors nor model.safetensors.index.json is there", model_dir);
    ts->desc = strdup(path);
    size_t n;
    char *text = read_whole_file(path, &n), err[256];
    cJSON *root = json_parse(text, n, err, sizeof err);
    free(text);
    if (!root) die("%s: %s", path, err);
    cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) die("%s: needs a \"weight_map\" object", path);
    int n_names = cJSON_GetArraySize(map);
    if (n_names == 0) die("%s: weight_map is empty", path);
    ts->files = xcalloc(n_names, sizeof(SafeTensors));
    for (cJSON *e = map->child; e; e = e->next) {
        if (!cJSON_IsString(e)) die("%s: weight_map[\"%s\"] must be a file name", path, e->string);
        const char *shard = e->valuestring;
        if (!*shard || strchr(shard, '/')) die("%s: weight_map[\"%s\"]: \"%s\" is not a file name in %s", path, e->string, shard, model_dir);
        char spath[4096];
        snprintf(spath, sizeof spath, "%s/%s", model_dir, shard);
        int f = 0;
        while (f < ts->n_files && strcmp(ts->files[f].path, spath)) f++;
        if (f == ts->n_files) {
            if (access(spath, F_OK) != 0) die("%s: shard %s (holding %s) is missing", path, spath, e->string);
            st_open(&ts->files[ts->n_files++], spath);
        }
        if (!st_find(&ts->files[f], e->string))
            die("%s: tensor %s is not in %s, where weight_map puts it", path, e->string, spath);
    }
    // one copy of each tensor: transformers would load every shard and keep the last one's copy
    size_t total = 0, k = 0;
    for (int f = 0; f < ts->n_files; f++) total += (size_t)ts->files[f].n_tensors;
    NameInFile *all = xmalloc((total + 1) * sizeof *all);
    for (int f = 0; f < ts->n_files; f++)
        for (int i = 0; i < ts->files[f].n_tensors; i++) all[k++] = (NameInFile){ts->files[f].tensors[i].name, f};
    qsort(all, total, sizeof *all, cmp_name_in_file);
    for (size_t i = 0; i + 1 < total; i++)
        if (!strcmp(all[i].name, all[i + 1].name)) {
            cJSON *home = cJSON_GetObjectItemCaseSensitive(map, all[i].name);
            die("%s: tensor %s is in two shards, %s and %s (weight_map says %s)", path, all[i].name,
                ts->files[all[i].file].path, ts->files[all[i + 1].file].path,
                cJSON_IsString(home) ? home->valuestring : "neither");
        }
    free(all);
    cJSON_Delete(root);
}

void ts_close(TensorSource *ts) {
    for (int i = 0; i < ts->n_files; i++) st_close(&ts->files[i]);
    free(ts->files); free(ts->desc);
    memset(ts, 0, sizeof *ts);
}

StTensor *ts_find(TensorSource *ts, const char *name, SafeTensors **file) {
    for (int i = 0; i < ts->n_files; i++) {
        StTensor *t = st_find(&ts->files[i], name);
        if (t) { if (file) *file = &ts->files[i]; return t; }
    }
    return NULL;
}

void st_write(const char *path, const StOut *ts, int n) {
    // header: {"__metadata__":{"format":"pt"},"name":{"dtype":"F32","shape":[...],"data_offsets":[b,e]},...}
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(root, ts[i].name);
        cJSON_AddStringToObject(e, "dtype", "F32");
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        size_t numel = 1;
        for (int d = 0; d < ts[i].ndim; d++) { cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)ts[i].shape[d])); numel *= ts[i].shape[d]; }
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
        offset += numel * 4;
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
    }
    char *header = cJSON_PrintUnformatted(root);
    size_t hlen = strlen(header), padded = (hlen + 7) / 8 * 8; // keep tensor data 8-byte aligned
    AtomicFile af = atomic_open(path);
    unsigned char lenbytes[8];
    for (int i = 0; i < 8; i++) lenbytes[i] = (unsigned char)(padded >> (8 * i));
    fwrite(lenbytes, 1, 8, af.f);
    fwrite(header, 1, hlen, af.f);
    for (size_t i = hlen; i < padded; i++) fputc(' ', af.f);
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < ts[i].ndim; d++) numel *= ts[i].shape[d];
        fwrite(ts[i].data, 4, numel, af.f);
    }
    atomic_close(&af);
    free(header);
    cJSON_Delete(root);
}

// ----------------------------------------------------------------------------
// preference pairs

#ifdef REPO_FUZZ
// readers that die() jumped out of, closed by the harness (repo_fuzz_close_readers)
static LineReader *open_readers[16];
void repo_fuzz_close_readers(void) {
    for (int i = 0; i < 16; i++) if (open_readers[i]) { fclose(open_readers[i]->f); open_readers[i] = NULL; }
}
#endif

void lines_open(LineReader *r, const char *path) {
    memset(r, 0, sizeof *r);
    r->path = path;
    r->f = open_input(path);
#ifdef REPO_FUZZ
    for (int i = 0; i < 16; i++) if (!open_readers[i]) { open_readers[i] = r; break; }
#endif
}

int lines_next(LineReader *r) {
    ssize_t got = getline(&r->text, &r->cap, r->f);
    if (got < 0) {
        if (ferror(r->f)) die("%s: read error after line %d: %s", r->path, r->line, strerror(errno));
        r->len = r->raw_len = 0;
        return 0;
    }
    r->line++;
    r->raw_len = (size_t)got;
    r->len = got && r->text[got - 1] == '\n' ? (size_t)got - 1 : (size_t)got;
    return 1;
}

char *lines_slurp(LineReader *r, size_t *len) {
    char err[4200];
    size_t rest_len;
    char *rest = read_stream(r->f, r->path, 0, &rest_len, err, sizeof err);
    if (!rest) die("%s", err);
    char *all = xmalloc(r->raw_len + rest_len + 1);
    memcpy(all, r->text, r->raw_len);
    memcpy(all + r->raw_len, rest, rest_len + 1);
    *len = r->raw_len + rest_len;
    free(rest);
    return all;
}

void lines_close(LineReader *r) {
#ifdef REPO_FUZZ
    for (int i = 0; i < 16; i++) if (open_readers[i] == r) open_readers[i] = NULL;
#endif
    fclose(r->f);
    free(r->text);
    memset(r, 0, sizeof *r);
}

int line_is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

cJSON *jsonl_parse(const char *text, size_t len, char *err, size_t errlen) {
    char why[200];
    cJSON *obj = json_parse(text, len, why, sizeof why);
    if (!obj) {
        snprintf(err, errlen, "not a JSON object: %s%s", why,
                 strstr(why, "trailing data") ? " (JSON Lines holds one value per line)" : "");
        return NULL;
    }
    if (!cJSON_IsObject(obj)) {
        snprintf(err, errlen, "not a JSON object but %s", cJSON_IsArray(obj) ? "a list" : cJSON_IsString(obj) ? "a string" : "a single value");
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

void jsonl_each(const char *path, void (*fn)(void *obj, int line, void *ctx), void *ctx) {
    LineReader r;
    lines_open(&r, path);
    char err[300];
    while (lines_next(&r)) {
        if (line_is_blank(r.text, r.len)) continue; // skipped but counted, so errors name the editor's line
        cJSON *obj = jsonl_parse(r.text, r.len, err, sizeof err);
        if (!obj) die("%s:%d: %s", path, r.line, err);
        fn(obj, r.line, ctx);
        cJSON_Delete(obj);
    }
    lines_close(&r);
}

void prompts_free(PromptSet *ps) { free(ps->prompts); free(ps->lens); free(ps->ids); memset(ps, 0, sizeof *ps); }

void pairs_free(PairSet *ps) { free(ps->pairs); free(ps->ids); memset(ps, 0, sizeof *ps); }

int pairs_truncate(PairSet *ps, int max_len, int max_prompt_len) {
    int n_cut = 0;
    for (int i = 0; i < ps->n_pairs; i++) {
        Pair *p = &ps->pairs[i];
        int longest = p->n_chosen > p->n_rejected ? p->n_chosen : p->n_rejected;
        if ((int64_t)p->n_prompt + longest <= max_len) continue; // 64 bits: lengths may each be near 2^31
        n_cut++;
        if (p->n_prompt > max_prompt_len) { // keep the prompt's end: the question sits next to the answer
            p->prompt += p->n_prompt - max_prompt_len;
            p->n_prompt = max_prompt_len;
        }
        int room = max_len - p->n_prompt;
        if (p->n_chosen > room) p->n_chosen = room;
        if (p->n_rejected > room) p->n_rejected = room;
    }
    return n_cut;
}

// ----------------------------------------------------------------------------
// config.json

struct JsonConfig { char *path; cJSON *root; };

JsonConfig *config_load(const char *path) {
    size_t n;
    char *text = read_whole_file(path, &n), err[256];
    JsonConfig *cfg = xmalloc(sizeof *cfg);
    cfg->path = strdup(path);
    cfg->root = json_parse(text, n, err, sizeof err);
    free(text);
    if (!cfg->root) die("%s: %s", path, err);
    if (!cJSON_IsObject(cfg->root)) die("%s: not a JSON object", path);
    return cfg;
}

void config_free(JsonConfig *cfg) { cJSON_Delete(cfg->root); free(cfg->path); free(cfg); }

static cJSON *config_item(JsonConfig *cfg, const char *key, int required) {
    cJSON *it = cJSON_GetObjectItemCaseSensitive(cfg->root, key);
    if (cJSON_IsNull(it)) it = NULL;
    if (!it && required) die("%s: missing \"%s\"", cfg->path, key);
    return it;
}

int config_has(JsonConfig *cfg, const char *key) { return config_item(cfg, key, 0) != NULL; }

// a whole number that fits in int32 (sizes, ids): 1.5 and 4294967298 are refused, not rounded or wrapped
static long int32_value(JsonConfig *cfg, const char *key, const cJSON *it, const char *what) {
    double v = cJSON_IsNumber(it) ? it->valuedouble : 0.5;
    if (!(v >= -2147483648.0 && v <= 2147483647.0) || v != (double)(long)v) {
        if (cJSON_IsNumber(it)) die("%s: \"%s\" is %.17g, not %s that fits in 32 bits", cfg->path, key, it->valuedouble, what);
        die("%s: \"%s\" must be %s", cfg->path, key, what);
    }
    return (long)v;
}

long config_int(JsonConfig *cfg, const char *key, int required, long def) {
    cJSON *it = config_item(cfg, key, required);
    return it ? int32_value(cfg, key, it, "an integer") : def;
}

double config_num(JsonConfig *cfg, const char *key, int required, double def) {
    cJSON *it = config_item(cfg, key, required);
    if (!it) return def;
    if (!cJSON_IsNumber(it)) die("%s: \"%s\" must be a number", cfg->path, key);
    uint64_t bits;
    memcpy(&bits, &it->valuedouble, 8);
    if ((bits >> 52 & 0x7ff) == 0x7ff) die("%s: \"%s\" must be a finite number", cfg->path, key); // 1e999 reads as inf
    return it->valuedouble;
}

const char *config_str(JsonConfig *cfg, const char *key, int required, const char *def) {
    cJSON *it = config_item(cfg, key, required);
    if (!it) return def;
    if (!cJSON_IsString(it)) die("%s: \"%s\" must be a string", cfg->path, key);
    return it->valuestring;
}

int config_bool(JsonConfig *cfg, const char *key, int required, int def) {
    cJSON *it = config_item(cfg, key, required);
    if (!it) return def;
    if (!cJSON_IsBool(it)) die("%s: \"%s\" must be true or false", cfg->path, key);
    return cJSON_IsTrue(it);
}

const char *config_sub_str(JsonConfig *cfg, const char *obj, const char *key) {
    cJSON *o = config_item(cfg, obj, 0);
    cJSON *it = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

long config_first_int(JsonConfig *cfg, const char *key, long def) {
    cJSON *it = config_item(cfg, key, 0);
    if (cJSON_IsArray(it)) it = cJSON_GetArrayItem(it, 0);
    return it ? int32_value(cfg, key, it, "an integer or a list of integers") : def;
}
