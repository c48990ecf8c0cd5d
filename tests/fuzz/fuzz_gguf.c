// GGUF (gguf.c alone: no die(), so leaks are checked too): open, the llama config, getters, and the
// conversion of every supported tensor
#include "fuzz.h"
#include "../../gguf.h"

static void check(const char *err, const char *path) {
    if (strncmp(err, path, strlen(path)) || err[strlen(path)] != ':') { fprintf(stderr, "error not naming the file: %s\n", err); abort(); }
    fuzz_check_message(err, path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("model.gguf", data, size);
    char err[1024];
    GGUF *g = gguf_open(path, err, sizeof err);
    if (!g) { check(err, path); return 0; }
    GGUFLlamaConfig c;
    if (gguf_llama_config(g, &c, err, sizeof err)) check(err, path);
    uint32_t u; int32_t i32; uint64_t u64; int64_t i64; float f; double d; int b;
    for (uint64_t i = 0; i < g->n_kv; i++) { // every getter on every key: type mismatches answer 0
        const char *k = g->kv[i].key;
        gguf_get_u32(g, k, &u); gguf_get_i32(g, k, &i32); gguf_get_u64(g, k, &u64); gguf_get_i64(g, k, &i64);
        gguf_get_f32(g, k, &f); gguf_get_f64(g, k, &d); gguf_get_bool(g, k, &b); gguf_get_str(g, k);
        uint64_t n = gguf_get_arr_n(g, k);
        gguf_get_arr_strs(g, k, &u64);
        if (n && n < 4096) {
            int64_t *iv = malloc(n * sizeof *iv);
            float *fv = malloc(n * sizeof *fv);
            gguf_get_arr_ints(g, k, iv, n); gguf_get_arr_f32(g, k, fv, n);
            free(iv); free(fv);
        }
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const GGUFTensor *t = &g->tensors[i];
        if (gguf_find_tensor(g, t->name) != t) abort();
        char hf[160];
        gguf_hf_name(t->name, hf, sizeof hf);
        if (!gguf_type_supported(t->type) || t->n_elements > (1 << 22)) continue;
        float *x = malloc((size_t)t->n_elements * sizeof(float) + 1);
        if (gguf_tensor_to_f32(g, t, x, err, sizeof err)) check(err, path);
        else if (t->n_dims == 2 && t->ne[1] > 0 && t->ne[1] < (1 << 20))
            gguf_unpermute_qk(x, (int)t->ne[1], (int)t->ne[0], 1 + (int)(t->ne[1] % 3));
        free(x);
    }
    gguf_close(g);
    return 0;
}
