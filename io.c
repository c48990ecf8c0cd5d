// io.c: safetensors, preference-pair files, atomic writes, errors.
// Plumbing only; the algorithm lives in repo.c.
#include "io.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "repo: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
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

char *read_whole_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) die("%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) die("%s: cannot seek", path);
    long size = ftell(f);
    if (size < 0) die("%s: cannot tell size", path);
    rewind(f);
    char *buf = xmalloc((size_t)size + 1);
    if (size > 0 && fread(buf, 1, (size_t)size, f) != (size_t)size) die("%s: short read", path);
    fclose(f);
    buf[size] = 0;
    if (len) *len = (size_t)size;
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

static int dtype_size(int dtype) { return dtype == ST_F32 ? 4 : 2; }

void st_open(SafeTensors *st, const char *path) {
    memset(st, 0, sizeof *st);
    st->path = strdup(path);
    st->bytes = (unsigned char *)read_whole_file(path, &st->size);
    if (st->size < 8) die("%s: file is %zu bytes, too short for a safetensors header", path, st->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | st->bytes[i];
    if (hlen > st->size - 8) die("%s: header length %llu is longer than the file (%zu bytes)", path, (unsigned long long)hlen, st->size);
    st->data_start = 8 + hlen;
    size_t data_size = st->size - st->data_start;
    cJSON *root = cJSON_ParseWithLength((const char *)st->bytes + 8, hlen);
    if (!root || !cJSON_IsObject(root)) die("%s: header is not a JSON object", path);
    int n = cJSON_GetArraySize(root);
    st->tensors = xcalloc(n, sizeof(StTensor));
    for (cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        StTensor *t = &st->tensors[st->n_tensors++];
        t->name = strdup(e->string);
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
            die("%s: tensor %s: header entry needs dtype, shape and data_offsets", path, t->name);
        snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dt->valuestring);
        t->dtype = !strcmp(dt->valuestring, "F32") ? ST_F32 : !strcmp(dt->valuestring, "F16") ? ST_F16
                 : !strcmp(dt->valuestring, "BF16") ? ST_BF16 : ST_OTHER;
        t->ndim = cJSON_GetArraySize(shape);
        if (t->ndim > 8) die("%s: tensor %s: %d dimensions (at most 8)", path, t->name, t->ndim);
        int64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            cJSON *s = cJSON_GetArrayItem(shape, d);
            if (!cJSON_IsNumber(s) || s->valuedouble < 0) die("%s: tensor %s: bad shape", path, t->name);
            t->shape[d] = (int64_t)s->valuedouble;
            numel *= t->shape[d];
        }
        double b = cJSON_GetArrayItem(offs, 0)->valuedouble, en = cJSON_GetArrayItem(offs, 1)->valuedouble;
        if (b < 0 || en < b || en > (double)data_size)
            die("%s: tensor %s: data_offsets [%.0f, %.0f] lie outside the data section (%zu bytes)", path, t->name, b, en, data_size);
        t->begin = (size_t)b; t->end = (size_t)en;
        if (t->dtype != ST_OTHER && (size_t)numel * dtype_size(t->dtype) != t->end - t->begin)
            die("%s: tensor %s: %s shape holds %lld bytes but data_offsets span %zu", path, t->name,
                t->dtype_name, (long long)(numel * dtype_size(t->dtype)), t->end - t->begin);
    }
    cJSON_Delete(root);
}

void st_close(SafeTensors *st) {
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors); free(st->bytes); free(st->path);
    memset(st, 0, sizeof *st);
}

StTensor *st_find(SafeTensors *st, const char *name) {
    for (int i = 0; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

int64_t st_numel(const StTensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

void st_read_f32(SafeTensors *st, const StTensor *t, float *dst) {
    const unsigned char *src = st->bytes + st->data_start + t->begin;
    int64_t n = st_numel(t);
    switch (t->dtype) {
    case ST_F32: memcpy(dst, src, n * 4); break;
    case ST_F16: for (int64_t i = 0; i < n; i++) dst[i] = f16_to_f32((uint16_t)(src[2*i] | src[2*i+1] << 8)); break;
    case ST_BF16: for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32((uint16_t)(src[2*i] | src[2*i+1] << 8)); break;
    default: die("%s: tensor %s: unsupported dtype %s (F32, F16 and BF16 are supported)", st->path, t->name, t->dtype_name);
    }
}

// a model directory's tensors: one file, or the shards of model.safetensors.index.json
void ts_open(TensorSource *ts, const char *model_dir) {
    memset(ts, 0, sizeof *ts);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", model_dir);
    if (file_exists(path)) {
        ts->files = xcalloc(1, sizeof(SafeTensors));
        ts->n_files = 1;
        ts->desc = strdup(path);
        st_open(&ts->files[0], path);
        return;
    }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", model_dir);
    if (!file_exists(path)) die("%s: neither model.safetensors nor model.safetensors.index.json is there", model_dir);
    ts->desc = strdup(path);
    size_t n;
    char *text = read_whole_file(path, &n);
    cJSON *root = cJSON_ParseWithLength(text, n);
    free(text);
    cJSON *map = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
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
            if (!file_exists(spath)) die("%s: shard %s (holding %s) is missing", path, spath, e->string);
            st_open(&ts->files[ts->n_files++], spath);
        }
        if (!st_find(&ts->files[f], e->string))
            die("%s: tensor %s is not in %s, where weight_map puts it", path, e->string, spath);
    }
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

void jsonl_each(const char *path, void (*fn)(void *obj, int line, void *ctx), void *ctx) {
    size_t len;
    char *text = read_whole_file(path, &len);
    int line = 0;
    for (char *p = text; p < text + len;) {
        char *end = memchr(p, '\n', (size_t)(text + len - p));
        if (!end) end = text + len;
        line++;
        char *q = p;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q < end) { // blank lines are skipped but still counted, so errors name the editor's line
            cJSON *obj = cJSON_ParseWithLength(p, (size_t)(end - p));
            if (!obj || !cJSON_IsObject(obj)) die("%s:%d: not a JSON object", path, line);
            fn(obj, line, ctx);
            cJSON_Delete(obj);
        }
        p = end + 1;
    }
    free(text);
}

void prompts_free(PromptSet *ps) { free(ps->prompts); free(ps->lens); free(ps->ids); memset(ps, 0, sizeof *ps); }

void pairs_free(PairSet *ps) { free(ps->pairs); free(ps->ids); memset(ps, 0, sizeof *ps); }

int pairs_truncate(PairSet *ps, int max_len, int max_prompt_len) {
    int n_cut = 0;
    for (int i = 0; i < ps->n_pairs; i++) {
        Pair *p = &ps->pairs[i];
        int longest = p->n_chosen > p->n_rejected ? p->n_chosen : p->n_rejected;
        if (p->n_prompt + longest <= max_len) continue;
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
    char *text = read_whole_file(path, &n);
    JsonConfig *cfg = xmalloc(sizeof *cfg);
    cfg->path = strdup(path);
    cfg->root = cJSON_ParseWithLength(text, n);
    free(text);
    if (!cfg->root || !cJSON_IsObject(cfg->root)) die("%s: not a JSON object", path);
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

long config_int(JsonConfig *cfg, const char *key, int required, long def) {
    cJSON *it = config_item(cfg, key, required);
    if (!it) return def;
    if (!cJSON_IsNumber(it) || it->valuedouble != (double)(long)it->valuedouble)
        die("%s: \"%s\" must be an integer", cfg->path, key);
    return (long)it->valuedouble;
}

double config_num(JsonConfig *cfg, const char *key, int required, double def) {
    cJSON *it = config_item(cfg, key, required);
    if (!it) return def;
    if (!cJSON_IsNumber(it)) die("%s: \"%s\" must be a number", cfg->path, key);
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
    if (!it) return def;
    if (!cJSON_IsNumber(it)) die("%s: \"%s\" must be an integer or a list of integers", cfg->path, key);
    return (long)it->valuedouble;
}
