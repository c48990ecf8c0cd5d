// gguf_dump: test driver for gguf.c. Prints what the reader sees so the
// Python tests can compare it with what the gguf package wrote / reads.
//
//   gguf_dump meta FILE          one JSON object per metadata key
//   gguf_dump tensors FILE       one JSON object per tensor
//   gguf_dump config FILE        llama hyper-parameters as JSON
//   gguf_dump get FILE KIND KEY  one typed getter (u32 i32 u64 i64 f32 f64 bool str
//                                strs ints), prints the value or "missing"
//   gguf_dump f32 FILE [NAME..]  raw float32 of the named tensors (default: all,
//                                in file order) on stdout
//   gguf_dump hf FILE NAME       like f32 for one tensor, but in Hugging Face
//                                layout (attn_q/attn_k un-permuted), and prints
//                                the HF name on stderr
//
// Any reader error goes to stderr as one line; the exit status is then 1.
#include "../../gguf.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void json_str(const char *s, uint64_t len) {
    putchar('"');
    for (uint64_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}

// one element of type t at p
static void json_scalar(uint32_t t, const void *p) {
    switch (t) {
    case GGUF_TYPE_UINT8: printf("%u", *(const uint8_t *)p); break;
    case GGUF_TYPE_INT8: printf("%d", *(const int8_t *)p); break;
    case GGUF_TYPE_UINT16: printf("%u", *(const uint16_t *)p); break;
    case GGUF_TYPE_INT16: printf("%d", *(const int16_t *)p); break;
    case GGUF_TYPE_UINT32: printf("%" PRIu32, *(const uint32_t *)p); break;
    case GGUF_TYPE_INT32: printf("%" PRId32, *(const int32_t *)p); break;
    case GGUF_TYPE_UINT64: printf("%" PRIu64, *(const uint64_t *)p); break;
    case GGUF_TYPE_INT64: printf("%" PRId64, *(const int64_t *)p); break;
    case GGUF_TYPE_FLOAT32: printf("%.9g", *(const float *)p); break;
    case GGUF_TYPE_FLOAT64: printf("%.17g", *(const double *)p); break;
    case GGUF_TYPE_BOOL: printf("%s", *(const uint8_t *)p ? "true" : "false"); break;
    }
}

static void dump_meta(const GGUF *g) {
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const GGUFKV *kv = &g->kv[i];
        printf("{\"key\": ");
        json_str(kv->key, strlen(kv->key));
        printf(", \"type\": \"%s\", ", gguf_type_name(kv->type));
        if (kv->type == GGUF_TYPE_STRING) {
            printf("\"value\": ");
            json_str(kv->str, kv->str_len);
        } else if (kv->type == GGUF_TYPE_ARRAY) {
            printf("\"elem\": \"%s\", \"value\": [", gguf_type_name(kv->arr_type));
            for (uint64_t j = 0; j < kv->arr_n; j++) {
                if (j) printf(", ");
                if (kv->arr_type == GGUF_TYPE_STRING) json_str(kv->arr_strs[j], kv->arr_lens[j]);
                else {
                    // element sizes: reuse the scalar printer on the packed copy
                    static const int sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
                    json_scalar(kv->arr_type, (const char *)kv->arr + j * sz[kv->arr_type]);
                }
            }
            printf("]");
        } else {
            // the widened value, printed at the stored width
            uint8_t b8 = (uint8_t)kv->v.u; int8_t i8 = (int8_t)kv->v.i;
            uint16_t u16 = (uint16_t)kv->v.u; int16_t i16 = (int16_t)kv->v.i;
            uint32_t u32 = (uint32_t)kv->v.u; int32_t i32 = (int32_t)kv->v.i;
            float f32 = (float)kv->v.f;
            const void *p = NULL;
            switch (kv->type) {
            case GGUF_TYPE_UINT8: case GGUF_TYPE_BOOL: p = &b8; break;
            case GGUF_TYPE_INT8: p = &i8; break;
            case GGUF_TYPE_UINT16: p = &u16; break;
            case GGUF_TYPE_INT16: p = &i16; break;
            case GGUF_TYPE_UINT32: p = &u32; break;
            case GGUF_TYPE_INT32: p = &i32; break;
            case GGUF_TYPE_FLOAT32: p = &f32; break;
            case GGUF_TYPE_UINT64: p = &kv->v.u; break;
            case GGUF_TYPE_INT64: p = &kv->v.i; break;
            case GGUF_TYPE_FLOAT64: p = &kv->v.f; break;
            }
            printf("\"value\": ");
            json_scalar(kv->type, p);
        }
        printf("}\n");
    }
}

static void dump_tensors(const GGUF *g) {
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const GGUFTensor *t = &g->tensors[i];
        char hf[256];
        printf("{\"name\": ");
        json_str(t->name, strlen(t->name));
        printf(", \"type\": \"%s\", \"ne\": [", ggml_type_name(t->type));
        for (int d = 0; d < t->n_dims; d++) printf("%s%" PRId64, d ? ", " : "", t->ne[d]);
        printf("], \"shape\": [");
        for (int d = 0; d < t->n_dims; d++) printf("%s%" PRId64, d ? ", " : "", t->shape[d]);
        printf("], \"n_elements\": %" PRId64 ", \"offset\": %" PRIu64 ", \"nbytes\": %zu, \"supported\": %s, \"hf\": ",
               t->n_elements, t->offset, t->nbytes, gguf_type_supported(t->type) ? "true" : "false");
        if (gguf_hf_name(t->name, hf, sizeof hf) == 0) json_str(hf, strlen(hf));
        else printf("null");
        printf("}\n");
    }
}

static int write_f32(const GGUF *g, const GGUFTensor *t, int hf_layout) {
    char err[512];
    float *buf = malloc(((size_t)t->n_elements ? (size_t)t->n_elements : 1) * sizeof(float));
    if (!buf) { fprintf(stderr, "out of memory\n"); return 1; }
    if (gguf_tensor_to_f32(g, t, buf, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        free(buf);
        return 1;
    }
    if (hf_layout) {
        char hf[256];
        if (gguf_hf_name(t->name, hf, sizeof hf) != 0) {
            fprintf(stderr, "%s: no HF name for tensor '%s'\n", g->path, t->name);
            free(buf);
            return 1;
        }
        fprintf(stderr, "%s\n", hf);
        int is_q = strstr(t->name, ".attn_q.") != NULL, is_k = strstr(t->name, ".attn_k.") != NULL;
        if (is_q || is_k) {
            GGUFLlamaConfig c;
            if (gguf_llama_config(g, &c, err, sizeof err) != 0) {
                fprintf(stderr, "%s\n", err);
                free(buf);
                return 1;
            }
            int rows = (int)(t->n_elements / t->ne[0]);
            if (gguf_unpermute_qk(buf, rows, (int)t->ne[0], is_q ? c.n_head : c.n_head_kv) != 0) {
                fprintf(stderr, "%s: cannot un-permute '%s'\n", g->path, t->name);
                free(buf);
                return 1;
            }
        }
    }
    size_t n = (size_t)t->n_elements;
    int rc = fwrite(buf, sizeof(float), n, stdout) == n ? 0 : 1;
    free(buf);
    return rc;
}

static int getter(const GGUF *g, const char *kind, const char *key) {
    if (!strcmp(kind, "u32")) { uint32_t v; if (gguf_get_u32(g, key, &v)) { printf("%" PRIu32 "\n", v); return 0; } }
    else if (!strcmp(kind, "i32")) { int32_t v; if (gguf_get_i32(g, key, &v)) { printf("%" PRId32 "\n", v); return 0; } }
    else if (!strcmp(kind, "u64")) { uint64_t v; if (gguf_get_u64(g, key, &v)) { printf("%" PRIu64 "\n", v); return 0; } }
    else if (!strcmp(kind, "i64")) { int64_t v; if (gguf_get_i64(g, key, &v)) { printf("%" PRId64 "\n", v); return 0; } }
    else if (!strcmp(kind, "f32")) { float v; if (gguf_get_f32(g, key, &v)) { printf("%.9g\n", v); return 0; } }
    else if (!strcmp(kind, "f64")) { double v; if (gguf_get_f64(g, key, &v)) { printf("%.17g\n", v); return 0; } }
    else if (!strcmp(kind, "bool")) { int v; if (gguf_get_bool(g, key, &v)) { printf("%s\n", v ? "true" : "false"); return 0; } }
    else if (!strcmp(kind, "str")) { const char *s = gguf_get_str(g, key); if (s) { printf("%s\n", s); return 0; } }
    else if (!strcmp(kind, "strs")) {
        uint64_t n;
        char *const *s = gguf_get_arr_strs(g, key, &n);
        if (s) { for (uint64_t i = 0; i < n; i++) printf("%s\n", s[i]); return 0; }
    } else if (!strcmp(kind, "ints")) {
        uint64_t n = gguf_get_arr_n(g, key);
        int64_t *v = malloc((n ? n : 1) * sizeof *v);
        if (v && gguf_get_arr_ints(g, key, v, n)) {
            for (uint64_t i = 0; i < n; i++) printf("%" PRId64 "\n", v[i]);
            free(v);
            return 0;
        }
        free(v);
    } else {
        fprintf(stderr, "unknown getter kind '%s'\n", kind);
        return 2;
    }
    printf("missing\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: gguf_dump meta|tensors|config|get|f32|hf FILE ...\n");
        return 2;
    }
    const char *cmd = argv[1];
    char err[512];
    GGUF *g = gguf_open(argv[2], err, sizeof err);
    if (!g) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int rc = 0;
    if (!strcmp(cmd, "meta")) dump_meta(g);
    else if (!strcmp(cmd, "tensors")) dump_tensors(g);
    else if (!strcmp(cmd, "config")) {
        GGUFLlamaConfig c;
        if (gguf_llama_config(g, &c, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); rc = 1; }
        else printf("{\"n_layer\": %d, \"n_embd\": %d, \"n_ff\": %d, \"n_head\": %d, \"n_head_kv\": %d, "
                    "\"n_ctx\": %d, \"vocab_size\": %d, \"rms_norm_eps\": %.9g, \"rope_theta\": %.9g, \"tied_embeddings\": %s}\n",
                    c.n_layer, c.n_embd, c.n_ff, c.n_head, c.n_head_kv, c.n_ctx, c.vocab_size,
                    c.rms_norm_eps, c.rope_theta, c.tied_embeddings ? "true" : "false");
    } else if (!strcmp(cmd, "get") && argc == 5) rc = getter(g, argv[3], argv[4]);
    else if (!strcmp(cmd, "f32") || (!strcmp(cmd, "hf") && argc == 4)) {
        int hf = !strcmp(cmd, "hf");
        if (argc == 3) {
            for (uint64_t i = 0; i < g->n_tensors && rc == 0; i++) rc = write_f32(g, &g->tensors[i], 0);
        }
        for (int a = 3; a < argc && rc == 0; a++) {
            const GGUFTensor *t = gguf_find_tensor(g, argv[a]);
            if (!t) { fprintf(stderr, "%s: no tensor '%s'\n", g->path, argv[a]); rc = 1; }
            else rc = write_f32(g, t, hf);
        }
    } else {
        fprintf(stderr, "bad command '%s'\n", cmd);
        rc = 2;
    }
    gguf_close(g);
    return rc;
}
