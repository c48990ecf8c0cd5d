// gguf.c: GGUF reader, ggml dequantization, and the llama GGUF -> HF glue.
// See gguf.h for the API. Layout of a GGUF file (all little-endian):
//
//   "GGUF" u32 version  u64 n_tensors  u64 n_kv
//   n_kv x      { string key, u32 value_type, value }
//   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
//   padding to general.alignment (default 32)
//   data section: each tensor at data_offset + offset
//
// string = u64 length + bytes (no NUL); array = u32 elem_type, u64 n, elements.
// Version 1 used u32 counts and lengths (refused, as by gguf-py and ggml);
// versions 2 and 3 only differ in that v3 allows big-endian files, which ggml
// refuses on little-endian machines and so do we.
#define _POSIX_C_SOURCE 200809L
#include "gguf.h"
#include "io.h" // utf8_valid, f16_to_f32
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// Bit-exactness with ggml needs a*b+c evaluated as two roundings. GCC only
// fuses into FMA under -ffp-contract=fast, its default outside ISO mode when
// the target has FMA (-march=native); -std=c11 or -ffp-contract=off avoid it.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

// ----------------------------------------------------------------------------
// errors: always "path: message", one line

static int fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, const char *path, const char *fmt, ...) {
    if (err && errlen > 0) {
        int n = snprintf(err, errlen, "%s: ", path);
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
        one_line(err, errlen);
    }
    return -1;
}

// ----------------------------------------------------------------------------
// type tables

// bytes per element for each metadata scalar type (0 = not a fixed-size scalar)
static const size_t kv_type_size[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_UINT8] = 1, [GGUF_TYPE_INT8] = 1, [GGUF_TYPE_UINT16] = 2, [GGUF_TYPE_INT16] = 2,
    [GGUF_TYPE_UINT32] = 4, [GGUF_TYPE_INT32] = 4, [GGUF_TYPE_FLOAT32] = 4, [GGUF_TYPE_BOOL] = 1,
    [GGUF_TYPE_UINT64] = 8, [GGUF_TYPE_INT64] = 8, [GGUF_TYPE_FLOAT64] = 8,
};
static const char *const kv_type_names[GGUF_TYPE_COUNT] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool",
    "string", "array", "uint64", "int64", "float64",
};

// Block size (elements) and bytes per block, as ggml's type_traits / the gguf
// package's GGML_QUANT_SIZES. We need these for every type, supported or not,
// to validate that each tensor's data lies inside the file.
static const struct { const char *name; int blck; int size; } ggml_types[GGML_TYPE_COUNT] = {
    [GGML_TYPE_F32] = {"F32", 1, 4},         [GGML_TYPE_F16] = {"F16", 1, 2},
    [GGML_TYPE_Q4_0] = {"Q4_0", 32, 18},     [GGML_TYPE_Q4_1] = {"Q4_1", 32, 20},
    [GGML_TYPE_Q5_0] = {"Q5_0", 32, 22},     [GGML_TYPE_Q5_1] = {"Q5_1", 32, 24},
    [GGML_TYPE_Q8_0] = {"Q8_0", 32, 34},     [GGML_TYPE_Q8_1] = {"Q8_1", 32, 40},
    [GGML_TYPE_Q2_K] = {"Q2_K", 256, 84},    [GGML_TYPE_Q3_K] = {"Q3_K", 256, 110},
    [GGML_TYPE_Q4_K] = {"Q4_K", 256, 144},   [GGML_TYPE_Q5_K] = {"Q5_K", 256, 176},
    [GGML_TYPE_Q6_K] = {"Q6_K", 256, 210},   [GGML_TYPE_Q8_K] = {"Q8_K", 256, 292},
    [GGML_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66}, [GGML_TYPE_IQ2_XS] = {"IQ2_XS", 256, 74},
    [GGML_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98}, [GGML_TYPE_IQ1_S] = {"IQ1_S", 256, 50},
    [GGML_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18}, [GGML_TYPE_IQ3_S] = {"IQ3_S", 256, 110},
    [GGML_TYPE_IQ2_S] = {"IQ2_S", 256, 82},  [GGML_TYPE_IQ4_XS] = {"IQ4_XS", 256, 136},
    [GGML_TYPE_I8] = {"I8", 1, 1},           [GGML_TYPE_I16] = {"I16", 1, 2},
    [GGML_TYPE_I32] = {"I32", 1, 4},         [GGML_TYPE_I64] = {"I64", 1, 8},
    [GGML_TYPE_F64] = {"F64", 1, 8},         [GGML_TYPE_IQ1_M] = {"IQ1_M", 256, 56},
    [GGML_TYPE_BF16] = {"BF16", 1, 2},       [GGML_TYPE_TQ1_0] = {"TQ1_0", 256, 54},
    [GGML_TYPE_TQ2_0] = {"TQ2_0", 256, 66},  [GGML_TYPE_MXFP4] = {"MXFP4", 32, 17},
};

const char *gguf_type_name(uint32_t t) { return t < GGUF_TYPE_COUNT ? kv_type_names[t] : "?"; }
const char *ggml_type_name(uint32_t t) {
    return t < GGML_TYPE_COUNT && ggml_types[t].name ? ggml_types[t].name : "?";
}

// ----------------------------------------------------------------------------
// bounds-checked cursor over the mapped file

typedef struct {
    const uint8_t *p;
    size_t size, pos;
} Cursor;

static size_t remaining(const Cursor *c) { return c->size - c->pos; }

static int take(Cursor *c, void *dst, size_t n) {
    if (n > remaining(c)) return -1;
    memcpy(dst, c->p + c->pos, n);
    c->pos += n;
    return 0;
}
static int take_u32(Cursor *c, uint32_t *v) { return take(c, v, 4); }
static int take_u64(Cursor *c, uint64_t *v) { return take(c, v, 8); }

// A GGUF string, copied out NUL-terminated. The length is checked against the
// bytes left before allocating, so a corrupt length can't ask for terabytes.
static int take_str(Cursor *c, char **out, uint64_t *len_out) {
    uint64_t len;
    if (take_u64(c, &len) || len > remaining(c)) return -1;
    char *s = malloc((size_t)len + 1);
    if (!s) return -1;
    memcpy(s, c->p + c->pos, (size_t)len);
    s[len] = '\0';
    c->pos += (size_t)len;
    *out = s;
    if (len_out) *len_out = len;
    return 0;
}

// ----------------------------------------------------------------------------
// metadata

// Read one scalar of type t (already known to be a fixed-size scalar) into kv->v.
static void decode_scalar(uint32_t t, const uint8_t *p, GGUFKV *kv) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_BOOL: kv->v.u = p[0]; break;
    case GGUF_TYPE_INT8: kv->v.i = (int8_t)p[0]; break;
    case GGUF_TYPE_UINT16: { uint16_t x; memcpy(&x, p, 2); kv->v.u = x; break; }
    case GGUF_TYPE_INT16: { int16_t x; memcpy(&x, p, 2); kv->v.i = x; break; }
    case GGUF_TYPE_UINT32: { uint32_t x; memcpy(&x, p, 4); kv->v.u = x; break; }
    case GGUF_TYPE_INT32: { int32_t x; memcpy(&x, p, 4); kv->v.i = x; break; }
    case GGUF_TYPE_FLOAT32: { float x; memcpy(&x, p, 4); kv->v.f = x; break; }
    case GGUF_TYPE_UINT64: memcpy(&kv->v.u, p, 8); break;
    case GGUF_TYPE_INT64: memcpy(&kv->v.i, p, 8); break;
    case GGUF_TYPE_FLOAT64: memcpy(&kv->v.f, p, 8); break;
    }
}

// Read kv's value (its key and type are already read). Returns 0 or -1 with
// err set; partial allocations stay in kv for gguf_close to free.
static int read_value(Cursor *c, GGUFKV *kv, const char *path, char *err, size_t errlen) {
    uint32_t t = kv->type;
    if (t >= GGUF_TYPE_COUNT)
        return fail(err, errlen, path, "key '%s' has unknown value type %u", kv->key, t);
    if (t == GGUF_TYPE_STRING) {
        if (take_str(c, &kv->str, &kv->str_len))
            return fail(err, errlen, path, "key '%s': string runs past end of file", kv->key);
        return 0;
    }
    if (t != GGUF_TYPE_ARRAY) {
        uint8_t buf[8];
        if (take(c, buf, kv_type_size[t]))
            return fail(err, errlen, path, "key '%s': value runs past end of file", kv->key);
        decode_scalar(t, buf, kv);
        return 0;
    }
    if (take_u32(c, &kv->arr_type) || take_u64(c, &kv->arr_n))
        return fail(err, errlen, path, "key '%s': array header runs past end of file", kv->key);
    uint32_t et = kv->arr_type;
    if (et >= GGUF_TYPE_COUNT || et == GGUF_TYPE_ARRAY)
        return fail(err, errlen, path, "key '%s': unsupported array element type %u", kv->key, et);
    if (et != GGUF_TYPE_STRING) {
        size_t es = kv_type_size[et];
        if (kv->arr_n > remaining(c) / es)
            return fail(err, errlen, path, "key '%s': array of %llu %s runs past end of file",
                        kv->key, (unsigned long long)kv->arr_n, kv_type_names[et]);
        size_t nb = (size_t)kv->arr_n * es;
        kv->arr = malloc(nb ? nb : 1);
        if (!kv->arr) return fail(err, errlen, path, "key '%s': out of memory", kv->key);
        take(c, kv->arr, nb);
        return 0;
    }
    // Array of strings: first walk it to validate every length and sum them,
    // then copy all of them into one buffer (kv->arr) so there is one free.
    if (kv->arr_n > remaining(c) / 8)
        return fail(err, errlen, path, "key '%s': array of %llu strings runs past end of file",
                    kv->key, (unsigned long long)kv->arr_n);
    size_t n = (size_t)kv->arr_n, total = 0, start = c->pos;
    for (size_t i = 0; i < n; i++) {
        uint64_t len;
        if (take_u64(c, &len) || len > remaining(c))
            return fail(err, errlen, path, "key '%s': string %zu runs past end of file", kv->key, i);
        c->pos += (size_t)len;
        total += (size_t)len + 1;   // can't overflow: bounded by the file size + n
    }
    c->pos = start;
    kv->arr_strs = malloc((n ? n : 1) * sizeof(char *));
    kv->arr_lens = malloc((n ? n : 1) * sizeof(uint64_t));
    char *buf = kv->arr = malloc(total ? total : 1);
    if (!kv->arr_strs || !kv->arr_lens || !buf)
        return fail(err, errlen, path, "key '%s': out of memory", kv->key);
    for (size_t i = 0; i < n; i++) {
        uint64_t len = 0;
        take_u64(c, &len);  // validated above
        memcpy(buf, c->p + c->pos, (size_t)len);
        buf[len] = '\0';
        c->pos += (size_t)len;
        kv->arr_strs[i] = buf;
        kv->arr_lens[i] = len;
        buf += len + 1;
    }
    return 0;
}

const GGUFKV *gguf_find_kv(const GGUF *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

static int is_int_type(uint32_t t) {
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_INT8 || t == GGUF_TYPE_UINT16 ||
           t == GGUF_TYPE_INT16 || t == GGUF_TYPE_UINT32 || t == GGUF_TYPE_INT32 ||
           t == GGUF_TYPE_UINT64 || t == GGUF_TYPE_INT64;
}
static int is_signed_type(uint32_t t) {
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 || t == GGUF_TYPE_INT64;
}

// Writers disagree on integer widths (u32 vs i32 vs u64 for the same key), so
// integer getters accept any integer type and only check the value's range.
// These two fetch the value as signed or unsigned; 0 if it doesn't fit.
static int get_as_u64(const GGUF *g, const char *key, uint64_t *out) {
    const GGUFKV *kv = gguf_find_kv(g, key);
    if (!kv || !is_int_type(kv->type)) return 0;
    if (is_signed_type(kv->type)) {
        if (kv->v.i < 0) return 0;
        *out = (uint64_t)kv->v.i;
    } else {
        *out = kv->v.u;
    }
    return 1;
}
static int get_as_i64(const GGUF *g, const char *key, int64_t *out) {
    const GGUFKV *kv = gguf_find_kv(g, key);
    if (!kv || !is_int_type(kv->type)) return 0;
    if (is_signed_type(kv->type)) {
        *out = kv->v.i;
    } else {
        if (kv->v.u > (uint64_t)INT64_MAX) return 0;
        *out = (int64_t)kv->v.u;
    }
    return 1;
}

int gguf_get_u64(const GGUF *g, const char *key, uint64_t *out) { return get_as_u64(g, key, out); }
int gguf_get_i64(const GGUF *g, const char *key, int64_t *out) { return get_as_i64(g, key, out); }
int gguf_get_u32(const GGUF *g, const char *key, uint32_t *out) {
    uint64_t v;
    if (!get_as_u64(g, key, &v) || v > UINT32_MAX) return 0;
    *out = (uint32_t)v;
    return 1;
}
int gguf_get_i32(const GGUF *g, const char *key, int32_t *out) {
    int64_t v;
    if (!get_as_i64(g, key, &v) || v < INT32_MIN || v > INT32_MAX) return 0;
    *out = (int32_t)v;
    return 1;
}
int gguf_get_f64(const GGUF *g, const char *key, double *out) {
    const GGUFKV *kv = gguf_find_kv(g, key);
    if (!kv || (kv->type != GGUF_TYPE_FLOAT32 && kv->type != GGUF_TYPE_FLOAT64)) return 0;
    *out = kv->v.f;
    return 1;
}
int gguf_get_f32(const GGUF *g, const char *key, float *out) {
    double v;
    if (!gguf_get_f64(g, key, &v)) return 0;
    *out = (float)v;
    return 1;
}
int gguf_get_bool(const GGUF *g, const char *key, int *out) {
    const GGUFKV *kv = gguf_find_kv(g, key);
    if (!kv || kv->type != GGUF_TYPE_BOOL) return 0;
    *out = kv->v.u != 0;
    return 1;
}
const char *gguf_get_str(const GGUF *g, const char *key) {
    const GGUFKV *kv = gguf_find_kv(g, key);
    return kv && kv->type == GGUF_TYPE_STRING ? kv->str : NULL;
}

uint64_t gguf_get_arr_n(const GGUF *g, const char *key) {
    const GGUFKV *kv = gguf_find_kv(g, key);
    return kv && kv->type == GGUF_TYPE_ARRAY ? kv->arr_n : 0;
}
char *const *gguf_get_arr_strs(const GGUF *g, const char *key, uint64_t *n) {
    const GGUFKV *kv = gguf_find_kv(g, key);
    if (!kv || kv->type != GGUF_TYPE_ARRAY || kv->arr_type != GGUF_TYPE_STRING) return NULL;
    if (n) *n = kv->arr_n;
    return kv->arr_strs;
}
int gguf_get_arr_ints(const GGUF *g, const char *key, int64_t *dst, uint64_t n) {
    const GGUFKV *kv = gguf_find_kv(g, key);
    if (!kv || kv->type != GGUF_TYPE_ARRAY || !is_int_type(kv->arr_type) || kv->arr_n != n) return 0;
    GGUFKV tmp = {0};
    size_t es = kv_type_size[kv->arr_type];
    for (uint64_t i = 0; i < n; i++) {
        decode_scalar(kv->arr_type, (const uint8_t *)kv->arr + i * es, &tmp);
        // u64 values above INT64_MAX wrap; no tokenizer array comes near that
        dst[i] = is_signed_type(kv->arr_type) ? tmp.v.i : (int64_t)tmp.v.u;
    }
    return 1;
}
int gguf_get_arr_f32(const GGUF *g, const char *key, float *dst, uint64_t n) {
    const GGUFKV *kv = gguf_find_kv(g, key);
    if (!kv || kv->type != GGUF_TYPE_ARRAY || kv->arr_n != n ||
        (kv->arr_type != GGUF_TYPE_FLOAT32 && kv->arr_type != GGUF_TYPE_FLOAT64)) return 0;
    GGUFKV tmp = {0};
    size_t es = kv_type_size[kv->arr_type];
    for (uint64_t i = 0; i < n; i++) {
        decode_scalar(kv->arr_type, (const uint8_t *)kv->arr + i * es, &tmp);
        dst[i] = (float)tmp.v.f;
    }
    return 1;
}

// ----------------------------------------------------------------------------
// open / close

typedef struct { const char *name; uint32_t idx; } NameIdx;
static int cmp_name_idx(const void *a, const void *b) {
    return strcmp(((const NameIdx *)a)->name, ((const NameIdx *)b)->name);
}

// Sort names and report the first duplicate (NULL if none). Duplicates make
// lookups ambiguous, and ggml rejects them too. On success, if idx_out is
// given, it receives the indices in name order.
static const char *sort_find_dup(NameIdx *v, size_t n, uint32_t *idx_out) {
    qsort(v, n, sizeof *v, cmp_name_idx);
    for (size_t i = 1; i < n; i++)
        if (strcmp(v[i - 1].name, v[i].name) == 0) return v[i].name;
    if (idx_out)
        for (size_t i = 0; i < n; i++) idx_out[i] = v[i].idx;
    return NULL;
}

void gguf_close(GGUF *g) {
    if (!g) return;
    if (g->kv) {
        for (uint64_t i = 0; i < g->n_kv; i++) {
            GGUFKV *kv = &g->kv[i];
            free(kv->key); free(kv->str); free(kv->arr); free(kv->arr_strs); free(kv->arr_lens);
        }
    }
    if (g->tensors)
        for (uint64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    free(g->tensor_index);
    if (g->map && g->file_size) munmap((void *)g->map, g->file_size);
    free(g->path);
    free(g);
}

// Keys and tensor names: the gguf package decodes them as UTF-8 (and refuses the file otherwise);
// a NUL byte would cut our C-string copy short, so it is refused too
static int name_ok(const char *s, uint64_t len) { return strlen(s) == len && utf8_valid(s, (size_t)len); }
enum { GGML_MAX_NAME = 64 }; // ggml keeps tensor names in char[64]

// Everything after mapping; -1 with err set on any problem.
static int parse(GGUF *g, char *err, size_t errlen) {
    const char *path = g->path;
    Cursor c = {g->map, g->file_size, 0};
    char magic[4];
    if (take(&c, magic, 4) || memcmp(magic, "GGUF", 4) != 0)
        return fail(err, errlen, path, "not a GGUF file (bad magic)");
    if (take_u32(&c, &g->version))
        return fail(err, errlen, path, "truncated header");
    if ((g->version & 0xFFFF) == 0) // "3" written big-endian reads as 0x03000000
        return fail(err, errlen, path, "a big-endian GGUF file (version field %#x): llama.cpp and this reader take little-endian ones only", g->version);
    if (g->version != 2 && g->version != 3)
        return fail(err, errlen, path, "unsupported GGUF version %u (2 and 3 are read, as by the gguf package)", g->version);
    uint64_t n_tensors, n_kv;
    if (take_u64(&c, &n_tensors) || take_u64(&c, &n_kv))
        return fail(err, errlen, path, "truncated header");
    // Each kv takes at least 13 bytes (key length, type, 1-byte value) and each
    // tensor info at least 24, so larger counts can't fit in the file; checking
    // first keeps a corrupt count from driving a huge allocation.
    if (n_kv > remaining(&c) / 13)
        return fail(err, errlen, path, "metadata count %llu is too large for the file", (unsigned long long)n_kv);
    if (n_tensors > remaining(&c) / 24 || n_tensors > UINT32_MAX)
        return fail(err, errlen, path, "tensor count %llu is too large for the file", (unsigned long long)n_tensors);

    g->kv = calloc(n_kv ? n_kv : 1, sizeof(GGUFKV));
    if (!g->kv) return fail(err, errlen, path, "out of memory");
    for (uint64_t i = 0; i < n_kv; i++) {
        GGUFKV *kv = &g->kv[i];
        g->n_kv = i + 1;  // so gguf_close frees this partly-read entry too
        uint64_t klen;
        if (take_str(&c, &kv->key, &klen))
            return fail(err, errlen, path, "metadata key #%llu runs past end of file", (unsigned long long)i);
        if (!name_ok(kv->key, klen))
            return fail(err, errlen, path, "metadata key #%llu is not UTF-8 text without NUL bytes", (unsigned long long)i);
        if (take_u32(&c, &kv->type))
            return fail(err, errlen, path, "key '%s': type runs past end of file", kv->key);
        if (read_value(&c, kv, path, err, errlen)) return -1;
    }
    {
        NameIdx *v = malloc((n_kv ? n_kv : 1) * sizeof *v);
        if (!v) return fail(err, errlen, path, "out of memory");
        for (uint64_t i = 0; i < n_kv; i++) v[i] = (NameIdx){g->kv[i].key, (uint32_t)i};
        const char *dup = sort_find_dup(v, n_kv, NULL);
        int r = dup ? fail(err, errlen, path, "duplicate metadata key '%s'", dup) : 0;
        free(v);
        if (r) return r;
    }

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const GGUFKV *al = gguf_find_kv(g, "general.alignment");
    if (al) {
        // ggml requires a u32 power of two; tensor offsets are multiples of it
        if (al->type != GGUF_TYPE_UINT32 || al->v.u == 0 || (al->v.u & (al->v.u - 1)) != 0)
            return fail(err, errlen, path, "key 'general.alignment' must be a power-of-two uint32");
        g->alignment = (size_t)al->v.u;
    }

    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof(GGUFTensor));
    if (!g->tensors) return fail(err, errlen, path, "out of memory");
    for (uint64_t i = 0; i < n_tensors; i++) {
        GGUFTensor *t = &g->tensors[i];
        g->n_tensors = i + 1;
        uint64_t nlen;
        if (take_str(&c, &t->name, &nlen))
            return fail(err, errlen, path, "tensor #%llu: name runs past end of file", (unsigned long long)i);
        if (!name_ok(t->name, nlen))
            return fail(err, errlen, path, "tensor #%llu: name is not UTF-8 text without NUL bytes", (unsigned long long)i);
        if (nlen >= GGML_MAX_NAME)
            return fail(err, errlen, path, "tensor '%.40s...': name is %llu bytes, ggml's limit is %d", t->name,
                        (unsigned long long)nlen, GGML_MAX_NAME - 1);
        uint32_t n_dims;
        if (take_u32(&c, &n_dims))
            return fail(err, errlen, path, "tensor '%s': info runs past end of file", t->name);
        if (n_dims > GGUF_MAX_DIMS)
            return fail(err, errlen, path, "tensor '%s': %u dimensions (max %d)", t->name, n_dims, GGUF_MAX_DIMS);
        t->n_dims = (int)n_dims;
        t->n_elements = 1;
        for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = t->shape[d] = 1;
        for (int d = 0; d < t->n_dims; d++) {
            uint64_t ne;
            if (take_u64(&c, &ne))
                return fail(err, errlen, path, "tensor '%s': info runs past end of file", t->name);
            if (ne > (uint64_t)INT64_MAX || (ne > 0 && (uint64_t)t->n_elements > (uint64_t)INT64_MAX / ne))
                return fail(err, errlen, path, "tensor '%s': dimensions overflow", t->name);
            t->ne[d] = (int64_t)ne;
            t->n_elements *= (int64_t)ne;
        }
        for (int d = 0; d < t->n_dims; d++) t->shape[d] = t->ne[t->n_dims - 1 - d];
        if (take_u32(&c, &t->type) || take_u64(&c, &t->offset))
            return fail(err, errlen, path, "tensor '%s': info runs past end of file", t->name);
        if (t->type >= GGML_TYPE_COUNT || ggml_types[t->type].blck == 0)
            return fail(err, errlen, path, "tensor '%s': unknown tensor type %u", t->name, t->type);
        int64_t blck = ggml_types[t->type].blck;
        if (t->ne[0] % blck != 0)
            return fail(err, errlen, path, "tensor '%s': row length %lld is not a multiple of the %s block size %lld",
                        t->name, (long long)t->ne[0], ggml_types[t->type].name, (long long)blck);
        // A legal element count can still give a byte size past size_t.
        uint64_t nblocks = (uint64_t)(t->n_elements / blck), bs = (uint64_t)ggml_types[t->type].size;
        if (nblocks > SIZE_MAX / bs)
            return fail(err, errlen, path, "tensor '%s': size overflows", t->name);
        t->nbytes = (size_t)(nblocks * bs);
        if (t->offset % g->alignment != 0)
            return fail(err, errlen, path, "tensor '%s': offset %llu is not a multiple of the alignment %zu",
                        t->name, (unsigned long long)t->offset, g->alignment);
    }

    // The data section starts at the next alignment boundary. A file with no
    // tensor data may end before that boundary, so don't require it to exist.
    size_t pad = (g->alignment - c.pos % g->alignment) % g->alignment;
    g->data_offset = c.pos + pad;
    size_t data_size = g->data_offset <= g->file_size ? g->file_size - g->data_offset : 0;
    // as ggml requires: tensor data in the order of the infos, each padded to the alignment
    uint64_t expected = 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        GGUFTensor *t = &g->tensors[i];
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return fail(err, errlen, path, "tensor '%s': data [%llu, +%zu) runs past end of file (data section is %zu bytes)",
                        t->name, (unsigned long long)t->offset, t->nbytes, data_size);
        if (t->offset != expected)
            return fail(err, errlen, path, "tensor '%s': offset %llu, expected %llu (tensors follow one another, each "
                        "padded to the alignment)", t->name, (unsigned long long)t->offset, (unsigned long long)expected);
        expected = t->offset + (t->nbytes + g->alignment - 1) / g->alignment * g->alignment;
        t->data = g->map + g->data_offset + t->offset;
    }

    g->tensor_index = malloc((n_tensors ? n_tensors : 1) * sizeof(uint32_t));
    NameIdx *v = malloc((n_tensors ? n_tensors : 1) * sizeof *v);
    if (!g->tensor_index || !v) { free(v); return fail(err, errlen, path, "out of memory"); }
    for (uint64_t i = 0; i < n_tensors; i++) v[i] = (NameIdx){g->tensors[i].name, (uint32_t)i};
    const char *dup = sort_find_dup(v, n_tensors, g->tensor_index);
    int r = dup ? fail(err, errlen, path, "duplicate tensor name '%s'", dup) : 0;
    free(v);
    return r;
}

GGUF *gguf_open(const char *path, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    GGUF *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        fail(err, errlen, path, "out of memory");
        return NULL;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        fail(err, errlen, path, "cannot open: %s", strerror(errno));
        gguf_close(g);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fail(err, errlen, path, "not a regular file");
        close(fd);
        gguf_close(g);
        return NULL;
    }
    g->file_size = (size_t)st.st_size;
    if (g->file_size == 0) {
        fail(err, errlen, path, "empty file");
        close(fd);
        gguf_close(g);
        return NULL;
    }
    void *m = mmap(NULL, g->file_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);  // the mapping keeps the file alive
    if (m == MAP_FAILED) {
        fail(err, errlen, path, "mmap failed: %s", strerror(errno));
        g->file_size = 0;
        gguf_close(g);
        return NULL;
    }
    g->map = m;
    if (parse(g, err, errlen) != 0) {
        gguf_close(g);
        return NULL;
    }
    return g;
}

const GGUFTensor *gguf_find_tensor(const GGUF *g, const char *name) {
    // binary search over the name-sorted index built by parse()
    size_t lo = 0, hi = (size_t)g->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const GGUFTensor *t = &g->tensors[g->tensor_index[mid]];
        int c = strcmp(name, t->name);
        if (c == 0) return t;
        if (c < 0) hi = mid; else lo = mid + 1;
    }
    return NULL;
}

// ----------------------------------------------------------------------------
// dequantization. Block layouts are ggml's (ggml-common.h); each function
// converts one block and mirrors the arithmetic order of ggml's
// dequantize_row_* so the results are bit-identical.

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

// IEEE half -> float: io.c's f16_to_f32, exact for every input (subnormals, inf, NaN included)
static float f16_at(const uint8_t *p) { return f16_to_f32(le16(p)); }

// block_q4_0 (18 bytes): f16 d; u8 qs[16]. Low nibbles are elements 0..15,
// high nibbles 16..31; value = (q - 8) * d.
static void deq_q4_0(const uint8_t *b, float *y) {
    float d = f16_at(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((qs[j] & 0x0F) - 8) * d;
        y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
    }
}
// block_q4_1 (20): f16 d, m; u8 qs[16]; value = q * d + m.
static void deq_q4_1(const uint8_t *b, float *y) {
    float d = f16_at(b), m = f16_at(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(qs[j] & 0x0F) * d + m;
        y[j + 16] = (float)(qs[j] >> 4) * d + m;
    }
}
// block_q5_0 (22): f16 d; u8 qh[4] (bit j = 5th bit of element j); u8 qs[16].
static void deq_q5_0(const uint8_t *b, float *y) {
    float d = f16_at(b);
    uint32_t qh = (uint32_t)b[2] | (uint32_t)b[3] << 8 | (uint32_t)b[4] << 16 | (uint32_t)b[5] << 24;
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
        y[j] = (float)(((qs[j] & 0x0F) | h0) - 16) * d;
        y[j + 16] = (float)(((qs[j] >> 4) | h1) - 16) * d;
    }
}
// block_q5_1 (24): f16 d, m; u8 qh[4]; u8 qs[16]; value = q * d + m.
static void deq_q5_1(const uint8_t *b, float *y) {
    float d = f16_at(b), m = f16_at(b + 2);
    uint32_t qh = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
        y[j] = (float)((qs[j] & 0x0F) | h0) * d + m;
        y[j + 16] = (float)((qs[j] >> 4) | h1) * d + m;
    }
}
// block_q8_0 (34): f16 d; i8 qs[32].
static void deq_q8_0(const uint8_t *b, float *y) {
    float d = f16_at(b);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

// block_q2_K (84): u8 scales[16] (low nibble scale, high nibble min);
// u8 qs[64] (2-bit); f16 d, dmin. Each 128-element half uses 32 bytes of qs,
// four 2-bit planes of 32 elements, each plane two 16-element sub-blocks.
static void deq_q2_k(const uint8_t *b, float *y) {
    const uint8_t *sc = b, *q = b + 16;
    float d = f16_at(b + 80), min = f16_at(b + 82);
    int is = 0;
    for (int n = 0; n < 256; n += 128) {
        for (int shift = 0; shift < 8; shift += 2) {
            for (int half = 0; half < 2; half++) {
                uint8_t s = sc[is++];
                float dl = d * (float)(s & 0xF), ml = min * (float)(s >> 4);
                for (int l = 0; l < 16; l++)
                    *y++ = dl * (float)((q[l + 16 * half] >> shift) & 3) - ml;
            }
        }
        q += 32;
    }
}

// block_q3_K (110): u8 hmask[32] (the 3rd bit, inverted: set means +0, clear
// means -4); u8 qs[64] (low 2 bits, as Q2_K); u8 scales[12] (16 6-bit scales,
// low nibbles in bytes 0..7, high 2 bits in bytes 8..11); f16 d.
static void deq_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hm = b, *q = b + 32, *s = b + 96;
    float d_all = f16_at(b + 108);
    int8_t scales[16];
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
        int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        scales[j] = (int8_t)((lo | (hi << 4)) - 32);
    }
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < 256; n += 128) {
        for (int shift = 0; shift < 8; shift += 2) {
            for (int half = 0; half < 2; half++) {
                float dl = d_all * (float)scales[is++];
                for (int l = 0; l < 16; l++) {
                    int k = l + 16 * half;
                    int v = ((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4);
                    *y++ = dl * (float)v;
                }
            }
            m <<= 1;
        }
        q += 32;
    }
}

// K-quant 6-bit scale/min pairs for Q4_K and Q5_K: 8 sub-blocks, packed into
// 12 bytes. Sub-blocks 0..3 use the low 6 bits of bytes 0..3 (scale) and
// 4..7 (min); sub-blocks 4..7 take their low 4 bits from bytes 8..11 and their
// top 2 bits from the spare top bits of bytes 0..7 (ggml's get_scale_min_k4).
static void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// block_q4_K (144): f16 d, dmin; u8 scales[12]; u8 qs[128]. Each 64-element
// chunk uses 32 bytes of qs: low nibbles are sub-block 2i, high nibbles 2i+1;
// value = d*scale * q - dmin*min.
static void deq_q4_k(const uint8_t *b, float *y) {
    float d = f16_at(b), min = f16_at(b + 2);
    const uint8_t *sc = b + 4, *q = b + 16;
    for (int is = 0; is < 8; is += 2) {
        uint8_t s, m;
        scale_min_k4(is, sc, &s, &m);
        float d1 = d * (float)s, m1 = min * (float)m;
        scale_min_k4(is + 1, sc, &s, &m);
        float d2 = d * (float)s, m2 = min * (float)m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
        q += 32;
    }
}

// block_q5_K (176): f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]. As
// Q4_K plus a 5th bit: sub-block k takes bit k of qh[l].
static void deq_q5_k(const uint8_t *b, float *y) {
    float d = f16_at(b), min = f16_at(b + 2);
    const uint8_t *sc = b + 4, *qh = b + 16, *ql = b + 48;
    uint8_t u1 = 1, u2 = 2;
    for (int is = 0; is < 8; is += 2) {
        uint8_t s, m;
        scale_min_k4(is, sc, &s, &m);
        float d1 = d * (float)s, m1 = min * (float)m;
        scale_min_k4(is + 1, sc, &s, &m);
        float d2 = d * (float)s, m2 = min * (float)m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        ql += 32;
        u1 <<= 2;
        u2 <<= 2;
    }
}

// block_q6_K (210): u8 ql[128] (low 4 bits); u8 qh[64] (high 2 bits);
// i8 scales[16] (one per 16 elements); f16 d. value = d * scale * (q - 32).
// Each 128-element half uses 64 bytes of ql and 32 of qh: element l + 32k
// takes nibble (k/2) of ql[l + 32*(k%2)] and bits 2k..2k+1 of qh[l].
static void deq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = f16_at(b + 208);
    for (int n = 0; n < 256; n += 128) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

// block_q8_K (292): f32 d; i8 qs[256]; i16 bsums[16] (sums for dot products, unused here).
static void deq_q8_k(const uint8_t *b, float *y) {
    float d;
    memcpy(&d, b, 4);
    for (int j = 0; j < 256; j++) y[j] = d * (float)(int8_t)b[4 + j];
}

typedef void (*BlockFn)(const uint8_t *block, float *y);
static BlockFn block_fn(uint32_t type) {
    switch (type) {
    case GGML_TYPE_Q4_0: return deq_q4_0;
    case GGML_TYPE_Q4_1: return deq_q4_1;
    case GGML_TYPE_Q5_0: return deq_q5_0;
    case GGML_TYPE_Q5_1: return deq_q5_1;
    case GGML_TYPE_Q8_0: return deq_q8_0;
    case GGML_TYPE_Q2_K: return deq_q2_k;
    case GGML_TYPE_Q3_K: return deq_q3_k;
    case GGML_TYPE_Q4_K: return deq_q4_k;
    case GGML_TYPE_Q5_K: return deq_q5_k;
    case GGML_TYPE_Q6_K: return deq_q6_k;
    case GGML_TYPE_Q8_K: return deq_q8_k;
    default: return NULL;
    }
}

int gguf_type_supported(uint32_t type) {
    switch (type) {
    case GGML_TYPE_F32: case GGML_TYPE_F16: case GGML_TYPE_BF16: case GGML_TYPE_F64:
    case GGML_TYPE_I8: case GGML_TYPE_I16: case GGML_TYPE_I32:
        return 1;
    default:
        return block_fn(type) != NULL;
    }
}

static int convert(const GGUF *g, const GGUFTensor *t, float *dst, char *err, size_t errlen) {
    const uint8_t *p = t->data;
    size_t n = (size_t)t->n_elements;
    switch (t->type) {
    case GGML_TYPE_F32: memcpy(dst, p, n * 4); return 0;
    case GGML_TYPE_F16: for (size_t i = 0; i < n; i++) dst[i] = f16_at(p + 2 * i); return 0;
    case GGML_TYPE_BF16:  // bf16 is the top half of a float32
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)le16(p + 2 * i) << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return 0;
    case GGML_TYPE_F64:
        for (size_t i = 0; i < n; i++) { double x; memcpy(&x, p + 8 * i, 8); dst[i] = (float)x; }
        return 0;
    case GGML_TYPE_I8: for (size_t i = 0; i < n; i++) dst[i] = (float)(int8_t)p[i]; return 0;
    case GGML_TYPE_I16:
        for (size_t i = 0; i < n; i++) { int16_t x; memcpy(&x, p + 2 * i, 2); dst[i] = (float)x; }
        return 0;
    case GGML_TYPE_I32:
        for (size_t i = 0; i < n; i++) { int32_t x; memcpy(&x, p + 4 * i, 4); dst[i] = (float)x; }
        return 0;
    }
    BlockFn fn = block_fn(t->type);
    if (!fn)
        return fail(err, errlen, g->path, "tensor '%s': cannot convert type %s to float32",
                    t->name, ggml_type_name(t->type));
    size_t blck = (size_t)ggml_types[t->type].blck, bs = (size_t)ggml_types[t->type].size;
    for (size_t i = 0; i < n / blck; i++) fn(p + i * bs, dst + i * blck);
    return 0;
}

// NaN and infinity have every exponent bit set; F64 values beyond float's range become infinity too
static uint32_t exponent_bits(float x) { uint32_t b; memcpy(&b, &x, 4); return b & 0x7f800000u; }

int gguf_tensor_to_f32(const GGUF *g, const GGUFTensor *t, float *dst, char *err, size_t errlen) {
    if (convert(g, t, dst, err, errlen)) return -1;
    size_t n = (size_t)t->n_elements;
    uint32_t any = 0; // a flag in one vectorizable pass; the position only when needed
    for (size_t i = 0; i < n; i++) any |= exponent_bits(dst[i]) == 0x7f800000u;
    if (!any) return 0;
    size_t i = 0;
    while (exponent_bits(dst[i]) != 0x7f800000u) i++;
    uint32_t b;
    memcpy(&b, &dst[i], 4);
    return fail(err, errlen, g->path, "tensor '%s': element %zu is %s", t->name, i, b & 0x7fffff ? "NaN" : "infinite");
}

// ----------------------------------------------------------------------------
// llama: GGUF <-> Hugging Face

// llama.cpp's convert_hf_to_gguf.py permutes q_proj/k_proj rows with
//   w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2).reshape(rows, cols)
// so within a head, GGUF row 2*i + s holds HF row s*hd/2 + i (s = 0, 1):
// the two RoPE halves get interleaved, matching ggml's adjacent-pair RoPE.
int gguf_unpermute_qk(float *w, int rows, int cols, int n_head) {
    if (n_head <= 0 || rows % (2 * n_head) != 0 || cols <= 0) return -1;
    int hd = rows / n_head, half = hd / 2;
    size_t row_bytes = (size_t)cols * sizeof(float);
    float *tmp = malloc((size_t)hd * row_bytes);
    if (!tmp) return -1;
    for (int h = 0; h < n_head; h++) {
        float *head = w + (size_t)h * hd * cols;
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < half; i++)
                memcpy(tmp + (size_t)(s * half + i) * cols, head + (size_t)(2 * i + s) * cols, row_bytes);
        memcpy(head, tmp, (size_t)hd * row_bytes);
    }
    free(tmp);
    return 0;
}

// GGUF -> HF tensor names for llama. "blk.N.X.weight" maps via the second
// table to "model.layers.N.Y.weight" (same for .bias).
//
//   GGUF                      Hugging Face
//   token_embd.weight         model.embed_tokens.weight
//   output_norm.weight        model.norm.weight
//   output.weight             lm_head.weight   (absent when tied to token_embd)
//   blk.N.attn_norm           model.layers.N.input_layernorm
//   blk.N.attn_q              model.layers.N.self_attn.q_proj   (rows permuted, see above)
//   blk.N.attn_k              model.layers.N.self_attn.k_proj   (rows permuted, see above)
//   blk.N.attn_v              model.layers.N.self_attn.v_proj
//   blk.N.attn_output         model.layers.N.self_attn.o_proj
//   blk.N.ffn_norm            model.layers.N.post_attention_layernorm
//   blk.N.ffn_gate            model.layers.N.mlp.gate_proj
//   blk.N.ffn_up              model.layers.N.mlp.up_proj
//   blk.N.ffn_down            model.layers.N.mlp.down_proj
static const struct { const char *gguf, *hf; } llama_global_names[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};
static const struct { const char *gguf, *hf; } llama_block_names[] = {
    {"attn_norm", "input_layernorm"},
    {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"},
    {"ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},
    {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

int gguf_hf_name(const char *name, char *out, size_t n) {
    for (size_t i = 0; i < sizeof llama_global_names / sizeof llama_global_names[0]; i++)
        if (strcmp(name, llama_global_names[i].gguf) == 0) {
            int r = snprintf(out, n, "%s", llama_global_names[i].hf);
            return r >= 0 && (size_t)r < n ? 0 : -1;
        }
    if (strncmp(name, "blk.", 4) != 0) return -1;
    const char *p = name + 4, *q = p;
    while (*q >= '0' && *q <= '9') q++;
    if (q == p || q - p > 9 || *q != '.') return -1;
    int layer = atoi(p);
    q++;  // now "attn_q.weight"
    const char *dot = strrchr(q, '.');
    if (!dot || (strcmp(dot, ".weight") != 0 && strcmp(dot, ".bias") != 0)) return -1;
    for (size_t i = 0; i < sizeof llama_block_names / sizeof llama_block_names[0]; i++) {
        size_t len = strlen(llama_block_names[i].gguf);
        if ((size_t)(dot - q) == len && strncmp(q, llama_block_names[i].gguf, len) == 0) {
            int r = snprintf(out, n, "model.layers.%d.%s%s", layer, llama_block_names[i].hf, dot);
            return r >= 0 && (size_t)r < n ? 0 : -1;
        }
    }
    return -1;
}

int gguf_llama_config(const GGUF *g, GGUFLlamaConfig *c, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    const char *arch = gguf_get_str(g, "general.architecture");
    if (!arch) return fail(err, errlen, g->path, "missing string key 'general.architecture'");
    char key[256];
    struct { const char *suffix; int *dst; int required; } ints[] = {
        {"block_count", &c->n_layer, 1},
        {"embedding_length", &c->n_embd, 1},
        {"feed_forward_length", &c->n_ff, 1},
        {"attention.head_count", &c->n_head, 1},
        {"attention.head_count_kv", &c->n_head_kv, 0},
        {"context_length", &c->n_ctx, 0},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        snprintf(key, sizeof key, "%s.%s", arch, ints[i].suffix);
        uint32_t v;
        if (!gguf_get_u32(g, key, &v)) {
            if (gguf_find_kv(g, key) || ints[i].required)
                return fail(err, errlen, g->path, "key '%s' is missing or not a non-negative integer", key);
            continue;
        }
        if (v > INT_MAX || (v == 0 && ints[i].required))
            return fail(err, errlen, g->path, "key '%s' has invalid value %u", key, v);
        *ints[i].dst = (int)v;
    }
    if (c->n_head_kv == 0) c->n_head_kv = c->n_head;
    if (c->n_embd % c->n_head != 0 || c->n_head % c->n_head_kv != 0)
        return fail(err, errlen, g->path, "inconsistent head counts: %d wide, %d heads, %d kv heads",
                    c->n_embd, c->n_head, c->n_head_kv);

    // floats: eps >= 0 and a positive RoPE base, both finite (a float64 beyond float's range is not)
    c->rms_norm_eps = 1e-5f;
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    if (!gguf_get_f32(g, key, &c->rms_norm_eps) && gguf_find_kv(g, key))
        return fail(err, errlen, g->path, "key '%s' is not a float", key);
    if (!(c->rms_norm_eps >= 0 && c->rms_norm_eps <= FLT_MAX))
        return fail(err, errlen, g->path, "key '%s' is %g: it must be a finite number >= 0", key, (double)c->rms_norm_eps);
    c->rope_theta = 10000.0f;
    snprintf(key, sizeof key, "%s.rope.freq_base", arch);
    if (!gguf_get_f32(g, key, &c->rope_theta) && gguf_find_kv(g, key))
        return fail(err, errlen, g->path, "key '%s' is not a float", key);
    if (!(c->rope_theta > 0 && c->rope_theta <= FLT_MAX))
        return fail(err, errlen, g->path, "key '%s' is %g: it must be a finite number > 0", key, (double)c->rope_theta);

    uint64_t nv = gguf_get_arr_n(g, "tokenizer.ggml.tokens");
    if (nv == 0) {
        uint32_t v = 0;
        snprintf(key, sizeof key, "%s.vocab_size", arch);
        if (!gguf_get_u32(g, key, &v) || v == 0)
            return fail(err, errlen, g->path, "no 'tokenizer.ggml.tokens' array or '%s' for the vocab size", key);
        nv = v;
    }
    if (nv > INT_MAX) return fail(err, errlen, g->path, "vocab size %llu is too large", (unsigned long long)nv);
    c->vocab_size = (int)nv;
    c->tied_embeddings = gguf_find_tensor(g, "output.weight") == NULL;

    // counts against the tensors that hold them, so an absurd count is refused here, by key, not by
    // an allocation of its size: token_embd is [vocab][n_embd], ffn_up [n_ff][n_embd], the last layer exists
    const GGUFTensor *emb = gguf_find_tensor(g, "token_embd.weight"), *up = gguf_find_tensor(g, "blk.0.ffn_up.weight");
    if (emb && emb->ne[0] != c->n_embd)
        return fail(err, errlen, g->path, "key '%s.embedding_length' is %d but token_embd.weight's rows hold %lld",
                    arch, c->n_embd, (long long)emb->ne[0]);
    if (emb && emb->ne[1] != c->vocab_size)
        return fail(err, errlen, g->path, "the vocabulary has %d tokens but token_embd.weight has %lld rows",
                    c->vocab_size, (long long)emb->ne[1]);
    if (up && up->ne[1] != c->n_ff)
        return fail(err, errlen, g->path, "key '%s.feed_forward_length' is %d but blk.0.ffn_up.weight has %lld rows",
                    arch, c->n_ff, (long long)up->ne[1]);
    int any_block = 0, last_block = 0;
    char prefix[32];
    int plen = snprintf(prefix, sizeof prefix, "blk.%d.", c->n_layer - 1);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        any_block |= strncmp(g->tensors[i].name, "blk.", 4) == 0;
        last_block |= strncmp(g->tensors[i].name, prefix, (size_t)plen) == 0;
    }
    if (any_block && !last_block)
        return fail(err, errlen, g->path, "key '%s.block_count' is %d but the file has no %s* tensors", arch, c->n_layer, prefix);
    return 0;
}
