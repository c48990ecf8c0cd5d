// checkpoint.c: the model's parameters in files. config.json and GGUF metadata -> Config; each
// Hugging Face tensor name -> its place in the one parameter buffer (repo.c); reading safetensors
// (sharded or not) and GGUF (dequantized, llama.cpp's Q/K row permutation undone); writing a
// directory that Hugging Face's from_pretrained loads. Plumbing: the algorithm lives in repo.c.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"
#include "io.h"
#include "data.h"
#include "gguf.h"
#include <cjson/cJSON.h>

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

int is_gguf(const char *path) { return ends_with(path, ".gguf"); }

// ----------------------------------------------------------------------------
// configuration

// Llama, Mistral, Qwen2: config keys as Hugging Face's LlamaConfig / MistralConfig / Qwen2Config
static void llama_config(Config *c, JsonConfig *j, const char *path, const char *type) {
    c->arch = ARCH_LLAMA;
    c->vocab_size = (int)config_int(j, "vocab_size", 1, 0);
    c->channels = (int)config_int(j, "hidden_size", 1, 0);
    c->hidden = (int)config_int(j, "intermediate_size", 1, 0);
    c->n_layer = (int)config_int(j, "num_hidden_layers", 1, 0);
    c->n_head = (int)config_int(j, "num_attention_heads", 1, 0);
    c->n_kv_head = (int)config_int(j, "num_key_value_heads", 0, c->n_head);
    c->max_seq_len = (int)config_int(j, "max_position_embeddings", 1, 0);
    c->norm_eps = (float)config_num(j, "rms_norm_eps", 0, 1e-6);
    c->rope_theta = (float)config_num(j, "rope_theta", 0, 10000.0);
    c->tied = config_bool(j, "tie_word_embeddings", 0, 0); // False in all three HF configs
    const char *act = config_str(j, "hidden_act", 0, "silu");
    if (strcmp(act, "silu")) die("%s: hidden_act \"%s\" is not supported (silu is)", path, act);
    if (config_has(j, "rope_scaling")) {
        const char *kind = config_sub_str(j, "rope_scaling", "rope_type");
        if (!kind) kind = config_sub_str(j, "rope_scaling", "type");
        if (!kind || strcmp(kind, "default")) // newer configs spell plain RoPE {"rope_type": "default"}
            die("%s: rope_scaling \"%s\" is not supported (only null: plain RoPE)", path, kind ? kind : "?");
    }
    if (!strcmp(type, "qwen2")) {          // Qwen2: q, k, v biases; no o_proj / MLP biases
        c->qkv_bias = 1;                   // (transformers 4.38's eager mask applies sliding_window even
        c->sliding_window = (int)config_int(j, "sliding_window", 0, 0); // with use_sliding_window false)
    } else if (!strcmp(type, "mistral")) { // Mistral: no biases; a sliding window unless null
        c->sliding_window = (int)config_int(j, "sliding_window", 0, 0);
    } else {                               // Llama: attention_bias covers q, k, v and o
        c->qkv_bias = c->proj_bias = config_bool(j, "attention_bias", 0, 0);
        c->mlp_bias = config_bool(j, "mlp_bias", 0, 0);
    }
    if (c->vocab_size <= 0 || c->channels <= 0 || c->n_layer <= 0 || c->n_head <= 0 || c->n_kv_head <= 0 ||
        c->max_seq_len <= 0 || c->hidden <= 0 || c->sliding_window < 0)
        die("%s: sizes must be positive", path);
    if (!config_has(j, "head_dim") && c->channels % c->n_head)
        die("%s: hidden_size %d is not divisible by num_attention_heads %d", path, c->channels, c->n_head);
    c->head_dim = (int)config_int(j, "head_dim", 0, c->channels / c->n_head);
    if (c->head_dim <= 0 || c->head_dim % 2) die("%s: head_dim %d must be positive and even (RoPE rotates pairs)", path, c->head_dim);
    if (c->n_head % c->n_kv_head)
        die("%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", path, c->n_head, c->n_kv_head);
    if (!(c->rope_theta > 0)) die("%s: rope_theta must be positive", path);
}

static Config config_from_json(const char *model_dir) { // DIR/config.json, or a config file itself
    char path[4096];
    if (file_exists(model_dir)) snprintf(path, sizeof path, "%s", model_dir);
    else snprintf(path, sizeof path, "%s/config.json", model_dir);
    JsonConfig *j = config_load(path);
    Config c;
    memset(&c, 0, sizeof c);
    const char *type = config_str(j, "model_type", 1, NULL);
    if (!strcmp(type, "llama") || !strcmp(type, "mistral") || !strcmp(type, "qwen2")) {
        llama_config(&c, j, path, type);
        c.eos = (int)config_first_int(j, "eos_token_id", -1);
        config_free(j);
        return c;
    }
    if (strcmp(type, "gpt2") != 0) die("%s: model_type \"%s\" is not supported (gpt2, llama, mistral, qwen2 are)", path, type);
    c.arch = ARCH_GPT2;
    c.tied = c.qkv_bias = c.proj_bias = c.mlp_bias = 1;
    c.vocab_size = (int)config_int(j, "vocab_size", 1, 0);
    c.channels = (int)config_int(j, "n_embd", 1, 0);
    c.n_layer = (int)config_int(j, "n_layer", 1, 0);
    c.n_head = (int)config_int(j, "n_head", 1, 0);
    c.max_seq_len = (int)config_int(j, "n_positions", !config_has(j, "n_ctx"), config_int(j, "n_ctx", 0, 0));
    c.norm_eps = (float)config_num(j, "layer_norm_epsilon", 0, 1e-5);
    c.hidden = (int)config_int(j, "n_inner", 0, 4L * c.channels);
    const char *act = config_str(j, "activation_function", 0, "gelu_new");
    if (strcmp(act, "gelu_new") && strcmp(act, "gelu_pytorch_tanh"))
        die("%s: activation_function \"%s\" is not supported (gelu_new is)", path, act);
    if (c.vocab_size <= 0 || c.channels <= 0 || c.n_layer <= 0 || c.n_head <= 0 || c.max_seq_len <= 0 || c.hidden <= 0)
        die("%s: sizes must be positive", path);
    if (c.channels % c.n_head) die("%s: n_embd %d is not divisible by n_head %d", path, c.channels, c.n_head);
    c.n_kv_head = c.n_head;
    c.head_dim = c.channels / c.n_head;
    c.eos = (int)config_first_int(j, "eos_token_id", -1);
    config_free(j);
    return c;
}

// GGUF (llama.cpp's single-file format), Llama and Qwen2: hyper-parameters from its metadata
static Config gguf_config(const char *path) {
    char err[1024];
    GGUF *g = gguf_open(path, err, sizeof err);
    if (!g) die("%s", err);
    // llama (Mistral files say llama too) or qwen2: q, k, v biases, and rows not permuted by the converter
    const char *arch = gguf_get_str(g, "general.architecture");
    if (!arch || (strcmp(arch, "llama") && strcmp(arch, "qwen2")))
        die("%s: general.architecture \"%s\" is not supported (llama, qwen2 are)", path, arch ? arch : "?");
    int permuted = !strcmp(arch, "llama");
    GGUFLlamaConfig gc;
    if (gguf_llama_config(g, &gc, err, sizeof err)) die("%s", err);
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    const char *scaling = gguf_get_str(g, key);
    if ((scaling && strcmp(scaling, "none")) || gguf_find_tensor(g, "rope_freqs.weight"))
        die("%s: rope scaling \"%s\" is not supported (only plain RoPE)", path, scaling ? scaling : "llama3 rope_freqs");
    Config config, *c = &config;
    memset(c, 0, sizeof *c);
    c->arch = ARCH_LLAMA;
    c->vocab_size = gc.vocab_size; c->channels = gc.n_embd; c->hidden = gc.n_ff; c->n_layer = gc.n_layer;
    c->n_head = gc.n_head; c->n_kv_head = gc.n_head_kv; c->max_seq_len = gc.n_ctx;
    c->norm_eps = gc.rms_norm_eps; c->rope_theta = gc.rope_theta; c->tied = gc.tied_embeddings;
    c->head_dim = c->channels / c->n_head;
    uint32_t u;
    snprintf(key, sizeof key, "%s.attention.key_length", arch);
    if (gguf_get_u32(g, key, &u)) c->head_dim = (int)u;
    snprintf(key, sizeof key, "%s.rope.dimension_count", arch);
    if (gguf_get_u32(g, key, &u) && (int)u != c->head_dim)
        die("%s: %s %u differs from the head size %d (partial RoPE is not supported)", path, key, u, c->head_dim);
    if (c->max_seq_len <= 0) die("%s: %s.context_length is missing", path, arch);
    if (c->head_dim % 2) die("%s: head size %d must be even (RoPE rotates pairs)", path, c->head_dim);
    c->qkv_bias = gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
    c->proj_bias = gguf_find_tensor(g, "blk.0.attn_output.bias") != NULL;
    c->mlp_bias = gguf_find_tensor(g, "blk.0.ffn_gate.bias") != NULL;
    if (!permuted && (!c->qkv_bias || c->proj_bias || c->mlp_bias))
        die("%s: a qwen2 file needs attn_q/k/v biases and no others", path);
    c->eos = gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u) && u <= INT32_MAX ? (int)u : -1;
    gguf_close(g);
    return config;
}

// Ranges that keep every size product of the model in 64 bits and every per-row width in an int;
// anything outside is refused by name rather than wrapped or allocated.
static void validate_config(const Config *c, const char *path) {
    struct { const char *name; long long v, lo, hi; } f[] = {
        {"vocab size", c->vocab_size, 1, 1 << 28}, {"layers", c->n_layer, 1, 1 << 16},
        {"width (hidden_size / n_embd)", c->channels, 1, 1 << 20}, {"attention heads", c->n_head, 1, 1 << 16},
        {"key/value heads", c->n_kv_head, 1, 1 << 16}, {"head size", c->head_dim, 1, 1 << 16},
        {"MLP width", c->hidden, 1, 1 << 22}, {"positions", c->max_seq_len, 1, 1 << 24},
    };
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        if (f[i].v < f[i].lo || f[i].v > f[i].hi)
            die("%s: %s %lld is out of range [%lld, %lld]", path, f[i].name, f[i].v, f[i].lo, f[i].hi);
    if ((long long)(c->n_head + 2LL * c->n_kv_head) * c->head_dim > (1 << 22))
        die("%s: %d heads of size %d are too wide", path, c->n_head, c->head_dim);
    if (!(c->norm_eps > 0) || !(c->norm_eps < 1)) die("%s: the norm epsilon %g must be in (0, 1)", path, c->norm_eps);
    if (c->arch == ARCH_LLAMA && !(c->rope_theta > 1 && c->rope_theta < 3e38f))
        die("%s: rope_theta %g must be a finite number above 1", path, c->rope_theta);
}

Config checkpoint_config(const char *model_path) {
    Config c = is_gguf(model_path) ? gguf_config(model_path) : config_from_json(model_path);
    validate_config(&c, model_path);
    return c;
}

// ----------------------------------------------------------------------------
// tensor names: the Hugging Face class's names for each slice of the parameter buffer

TensorEntry *checkpoint_entries(const Config *c, const ParameterTensors *p, const float *base, int *n_entries) {
    int C = c->channels, H = c->hidden, L = c->n_layer;
    TensorEntry *entries = xcalloc(2 + 16 * (size_t)L + 3, sizeof(TensorEntry)), *e = entries;
    #define ENTRY(ptr, rows_, cols_, tr, ...) do { snprintf(e->name, sizeof e->name, __VA_ARGS__); \
        e->offset = (size_t)((ptr) - base); e->rows = rows_; e->cols = cols_; e->hf_transposed = tr; e++; } while (0)
    if (c->arch == ARCH_LLAMA) { // names as LlamaForCausalLM saves them; nn.Linear weights are [out, in]
        int NH = c->n_head, NKV = c->n_kv_head, hd = c->head_dim, A = attn_dim(c), QKV = qkv_dim(c);
        const char *qkv_names[3] = {"q_proj", "k_proj", "v_proj"};
        int qkv_rows[3] = {NH * hd, NKV * hd, NKV * hd}, qkv_start[3] = {0, NH * hd, (NH + NKV) * hd};
        ENTRY(p->wte, c->vocab_size, C, 0, "model.embed_tokens.weight");
        for (int l = 0; l < L; l++) {
            ENTRY(p->ln1w + l * C, C, 0, 0, "model.layers.%d.input_layernorm.weight", l);
            for (int k = 0; k < 3; k++) {  // row ranges of the fused qkv weight (and bias)
                ENTRY(p->qkvw + ((size_t)l * QKV + qkv_start[k]) * C, qkv_rows[k], C, 0, "model.layers.%d.self_attn.%s.weight", l, qkv_names[k]);
                if (c->qkv_bias) ENTRY(p->qkvb + (size_t)l * QKV + qkv_start[k], qkv_rows[k], 0, 0, "model.layers.%d.self_attn.%s.bias", l, qkv_names[k]);
            }
            ENTRY(p->attprojw + (size_t)l * C * A, C, A, 0, "model.layers.%d.self_attn.o_proj.weight", l);
            if (c->proj_bias) ENTRY(p->attprojb + l * C, C, 0, 0, "model.layers.%d.self_attn.o_proj.bias", l);
            ENTRY(p->ln2w + l * C, C, 0, 0, "model.layers.%d.post_attention_layernorm.weight", l);
            ENTRY(p->fcw + (size_t)l * 2 * H * C, H, C, 0, "model.layers.%d.mlp.gate_proj.weight", l);       // rows [0, H)
            if (c->mlp_bias) ENTRY(p->fcb + (size_t)l * 2 * H, H, 0, 0, "model.layers.%d.mlp.gate_proj.bias", l);
            ENTRY(p->fcw + ((size_t)l * 2 * H + H) * C, H, C, 0, "model.layers.%d.mlp.up_proj.weight", l);   // rows [H, 2H)
            if (c->mlp_bias) ENTRY(p->fcb + (size_t)l * 2 * H + H, H, 0, 0, "model.layers.%d.mlp.up_proj.bias", l);
            ENTRY(p->fcprojw + (size_t)l * C * H, C, H, 0, "model.layers.%d.mlp.down_proj.weight", l);
            if (c->mlp_bias) ENTRY(p->fcprojb + l * C, C, 0, 0, "model.layers.%d.mlp.down_proj.bias", l);
        }
        ENTRY(p->lnfw, C, 0, 0, "model.norm.weight");
        if (!c->tied) ENTRY(p->lmhead, c->vocab_size, C, 0, "lm_head.weight");
        *n_entries = (int)(e - entries);
        return entries;
    }
    ENTRY(p->wte, c->vocab_size, C, 0, "transformer.wte.weight");
    ENTRY(p->wpe, c->max_seq_len, C, 0, "transformer.wpe.weight");
    for (int l = 0; l < L; l++) {
        ENTRY(p->ln1w + l * C, C, 0, 0, "transformer.h.%d.ln_1.weight", l);
        ENTRY(p->ln1b + l * C, C, 0, 0, "transformer.h.%d.ln_1.bias", l);
        ENTRY(p->qkvw + (size_t)l * 3 * C * C, 3 * C, C, 1, "transformer.h.%d.attn.c_attn.weight", l);
        ENTRY(p->qkvb + l * 3 * C, 3 * C, 0, 0, "transformer.h.%d.attn.c_attn.bias", l);
        ENTRY(p->attprojw + (size_t)l * C * C, C, C, 1, "transformer.h.%d.attn.c_proj.weight", l);
        ENTRY(p->attprojb + l * C, C, 0, 0, "transformer.h.%d.attn.c_proj.bias", l);
        ENTRY(p->ln2w + l * C, C, 0, 0, "transformer.h.%d.ln_2.weight", l);
        ENTRY(p->ln2b + l * C, C, 0, 0, "transformer.h.%d.ln_2.bias", l);
        ENTRY(p->fcw + (size_t)l * H * C, H, C, 1, "transformer.h.%d.mlp.c_fc.weight", l);
        ENTRY(p->fcb + (size_t)l * H, H, 0, 0, "transformer.h.%d.mlp.c_fc.bias", l);
        ENTRY(p->fcprojw + (size_t)l * C * H, C, H, 1, "transformer.h.%d.mlp.c_proj.weight", l);
        ENTRY(p->fcprojb + l * C, C, 0, 0, "transformer.h.%d.mlp.c_proj.bias", l);
    }
    ENTRY(p->lnfw, C, 0, 0, "transformer.ln_f.weight");
    ENTRY(p->lnfb, C, 0, 0, "transformer.ln_f.bias");
    #undef ENTRY
    *n_entries = (int)(e - entries);
    return entries;
}


// ----------------------------------------------------------------------------
// reading

// names in files may lack the "transformer." (GPT-2) or "model." (Llama) prefix;
// buffers like attn.bias are not parameters
static const char *strip_prefix(const char *name) {
    if (strncmp(name, "transformer.", 12) == 0) return name + 12;
    return strncmp(name, "model.", 6) == 0 ? name + 6 : name;
}


static void load_safetensors(const char *model_dir, const Config *cfg, const TensorEntry *entries, int n_entries, float *params) {
    TensorSource ts;
    ts_open(&ts, model_dir);
    float *tmp = NULL;
    for (int i = 0; i < n_entries; i++) {
        const TensorEntry *e = &entries[i];
        SafeTensors *st;
        StTensor *t = ts_find(&ts, e->name, &st);
        if (!t) t = ts_find(&ts, strip_prefix(e->name), &st);
        if (!t) die("%s: tensor %s is missing", ts.desc, e->name);
        int want_ndim = e->cols ? 2 : 1;
        int64_t r = e->hf_transposed ? e->cols : e->rows, c = e->hf_transposed ? e->rows : e->cols;
        if (t->ndim != want_ndim || t->shape[0] != r || (want_ndim == 2 && t->shape[1] != c)) {
            char have[96] = "", want[64];
            for (int d = 0; d < t->ndim && d < 4; d++)
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
            if (want_ndim == 2) snprintf(want, sizeof want, "%lld, %lld", (long long)r, (long long)c);
            else snprintf(want, sizeof want, "%lld", (long long)r);
            die("%s: tensor %s has shape [%s], expected [%s]", st->path, t->name, have, want);
        }
        float *dst = params + e->offset;
        if (!e->hf_transposed) { st_read_f32(st, t, dst); continue; }
        tmp = (float *)realloc(tmp, (size_t)e->rows * e->cols * sizeof(float));
        st_read_f32(st, t, tmp);
        for (int a = 0; a < e->cols; a++)      // file [in][out] -> ours [out][in]
            for (int b = 0; b < e->rows; b++) dst[(size_t)b * e->cols + a] = tmp[(size_t)a * e->rows + b];
    }
    int unknown = 0;
    for (int f = 0; f < ts.n_files; f++)
        for (int i = 0; i < ts.files[f].n_tensors; i++) {
            const char *n = strip_prefix(ts.files[f].tensors[i].name);
            if ((cfg->tied && !strcmp(n, "lm_head.weight")) || ends_with(n, ".attn.bias") ||
                ends_with(n, ".attn.masked_bias") || ends_with(n, ".rotary_emb.inv_freq")) continue;
            int found = 0;
            for (int j = 0; j < n_entries && !found; j++) found = !strcmp(strip_prefix(entries[j].name), n);
            if (!found && unknown++ < 3)
                fprintf(stderr, "repo: warning: %s: ignoring unexpected tensor %s\n", ts.files[f].path, ts.files[f].tensors[i].name);
        }
    free(tmp);
    ts_close(&ts);
}

// writes `memory` (parameters or gradients, same layout) under the model's tensor names

// GGUF tensors: dequantized to float32 and renamed to Hugging Face's names (gguf.c); llama.cpp
// permutes attn_q / attn_k rows for its interleaved RoPE (llama files, not qwen2): undone here
static void load_gguf(const char *path, const Config *c, const TensorEntry *entries, int n_entries, float *params) {
    char err[1024];
    GGUF *g = gguf_open(path, err, sizeof err);
    if (!g) die("%s", err);
    const char *arch = gguf_get_str(g, "general.architecture");
    int permuted = arch && !strcmp(arch, "llama");
    char *seen = xcalloc(n_entries, 1);
    int unknown = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const GGUFTensor *t = &g->tensors[i];
        char hf[160];
        int j = -1;
        if (gguf_hf_name(t->name, hf, sizeof hf) == 0)
            for (j = 0; j < n_entries && strcmp(entries[j].name, hf); j++) {}
        if (j < 0 || j == n_entries) {
            if (unknown++ < 3) fprintf(stderr, "repo: warning: %s: ignoring unexpected tensor %s\n", path, t->name);
            continue;
        }
        const TensorEntry *e = &entries[j];
        if (t->n_dims != (e->cols ? 2 : 1) || t->shape[0] != e->rows || (e->cols && t->shape[1] != e->cols))
            die("%s: tensor %s has %d dimensions [%lld, %lld], expected [%d, %d]", path, t->name, t->n_dims,
                (long long)t->shape[0], (long long)(t->n_dims > 1 ? t->shape[1] : 0), e->rows, e->cols);
        float *dst = params + e->offset;
        if (gguf_tensor_to_f32(g, t, dst, err, sizeof err)) die("%s", err);
        int is_q = ends_with(t->name, ".attn_q.weight"), is_k = ends_with(t->name, ".attn_k.weight");
        if (permuted && (is_q || is_k) && gguf_unpermute_qk(dst, e->rows, e->cols, is_q ? c->n_head : c->n_kv_head))
            die("%s: tensor %s: %d rows do not split into heads", path, t->name, e->rows);
        seen[j] = 1;
    }
    for (int j = 0; j < n_entries; j++)
        if (!seen[j]) die("%s: tensor for %s is missing", path, entries[j].name);
    free(seen);
    gguf_close(g);
}


void checkpoint_load(const char *model_path, const Config *c, const TensorEntry *e, int n, float *params) {
    if (is_gguf(model_path)) load_gguf(model_path, c, e, n, params);
    else load_safetensors(model_path, c, e, n, params);
}

// ----------------------------------------------------------------------------
// writing

void checkpoint_write_tensors(const TensorEntry *entries, int n_entries, const float *memory, const char *path) {
    StOut *outs = xcalloc(n_entries, sizeof(StOut));
    float **transposed = xcalloc(n_entries, sizeof(float *));
    for (int i = 0; i < n_entries; i++) {
        const TensorEntry *e = &entries[i];
        const float *src = memory + e->offset;
        outs[i].name = e->name;
        outs[i].ndim = e->cols ? 2 : 1;
        outs[i].shape[0] = e->hf_transposed ? e->cols : e->rows;
        outs[i].shape[1] = e->hf_transposed ? e->rows : e->cols;
        outs[i].data = src;
        if (e->hf_transposed) {
            float *t = transposed[i] = xmalloc((size_t)e->rows * e->cols * sizeof(float));
            for (int a = 0; a < e->rows; a++)
                for (int b = 0; b < e->cols; b++) t[(size_t)b * e->rows + a] = src[(size_t)a * e->cols + b];
            outs[i].data = t;
        }
    }
    st_write(path, outs, n_entries);
    for (int i = 0; i < n_entries; i++) free(transposed[i]);
    free(transposed); free(outs);
}

// config.json for a model that came without one (GGUF): what LlamaForCausalLM reads
static void write_llama_config(const Config *c, const char *path) {
    int qwen2 = c->qkv_bias && !c->proj_bias && !c->mlp_bias; // Llama's attention_bias would add an o_proj bias
    AtomicFile af = atomic_open(path);
    if (qwen2) fprintf(af.f, "{\n  \"architectures\": [\"Qwen2ForCausalLM\"],\n  \"model_type\": \"qwen2\",\n"
                       "  \"use_sliding_window\": false,\n  \"sliding_window\": null,\n");
    else fprintf(af.f, "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n");
    fprintf(af.f, "  \"hidden_act\": \"silu\",\n  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n"
            "  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n",
            c->channels, c->hidden, c->n_layer, c->n_head, c->n_kv_head);
    if (c->head_dim * c->n_head != c->channels) fprintf(af.f, "  \"head_dim\": %d,\n", c->head_dim);
    if (c->eos >= 0) fprintf(af.f, "  \"eos_token_id\": %d,\n", c->eos);
    fprintf(af.f, "  \"max_position_embeddings\": %d,\n  \"rms_norm_eps\": %.9g,\n  \"rope_theta\": %.9g,\n"
            "  \"rope_scaling\": null,\n", c->max_seq_len, c->norm_eps, c->rope_theta);
    if (!qwen2) fprintf(af.f, "  \"attention_bias\": %s,\n  \"mlp_bias\": %s,\n", c->qkv_bias ? "true" : "false",
                        c->mlp_bias ? "true" : "false");
    fprintf(af.f, "  \"tie_word_embeddings\": %s,\n  \"vocab_size\": %d,\n  \"torch_dtype\": \"float32\"\n}\n",
            c->tied ? "true" : "false", c->vocab_size);
    atomic_close(&af);
}

// a directory Hugging Face loads: config.json (copied), model.safetensors, tokenizer files
void checkpoint_save(const char *src, const Config *c, const TensorEntry *entries, int n_entries, const float *params,
                     const char *out_dir) {
    char from[4096], dst[4096];
    snprintf(dst, sizeof dst, "%s/model.safetensors", out_dir);
    checkpoint_write_tensors(entries, n_entries, params, dst);
    const char *copied[] = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                            "special_tokens_map.json", "vocab.json", "merges.txt"};
    for (size_t i = 0; i < sizeof copied / sizeof *copied; i++) {
        snprintf(from, sizeof from, "%s/%s", src, copied[i]);
        snprintf(dst, sizeof dst, "%s/%s", out_dir, copied[i]);
        if (file_exists(from) && strcmp(from, dst) != 0) copy_file_atomic(from, dst);
    }
    if (is_gguf(src)) { // no config.json to copy: write one
        snprintf(dst, sizeof dst, "%s/config.json", out_dir);
        write_llama_config(c, dst);
        data_write_gguf_tokenizer(src, out_dir); // tokenizer.json + tokenizer_config.json from its metadata
    }
}

// ----------------------------------------------------------------------------
// the training state (trainer_state.json) and AdamW's moments (optimizer.safetensors)

static cJSON *json_u64(unsigned long long x) { // as a string: a JSON number holds 53 bits exactly
    char s[32];
    snprintf(s, sizeof s, "%llu", x);
    return cJSON_CreateString(s);
}

void state_write(const char *dir, const TrainerState *s) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", "repo trainer state");
    cJSON_AddNumberToObject(j, "version", 1);
    cJSON_AddNumberToObject(j, "step", s->step);
    cJSON_AddNumberToObject(j, "n_steps", s->n_steps);
    cJSON_AddBoolToObject(j, "finished", s->finished);
    cJSON *args = cJSON_AddArrayToObject(j, "args");
    for (int i = 0; i < s->n_args; i++) cJSON_AddItemToArray(args, cJSON_CreateString(s->args[i]));
    cJSON_AddItemToObject(j, "data_hash", json_u64(s->data_hash));
    cJSON_AddItemToObject(j, "eval_hash", json_u64(s->eval_hash));
    cJSON_AddNumberToObject(j, "n_pairs", s->n_pairs);
    cJSON_AddNumberToObject(j, "cursor", s->cursor);
    cJSON_AddNumberToObject(j, "epoch", s->epoch);
    cJSON_AddItemToObject(j, "rng", json_u64(s->rng));
    cJSON_AddItemToObject(j, "order", cJSON_CreateIntArray(s->order, s->n_pairs));
    cJSON_AddNumberToObject(j, "log_bytes", (double)s->log_bytes);
    cJSON_AddNumberToObject(j, "margins_bytes", (double)s->margins_bytes);
    if (s->ref_c) { // %.17g round-trips a double exactly
        cJSON *ref = cJSON_AddObjectToObject(j, "reference_logps");
        cJSON_AddItemToObject(ref, "chosen", cJSON_CreateDoubleArray(s->ref_c, s->n_pairs));
        cJSON_AddItemToObject(ref, "rejected", cJSON_CreateDoubleArray(s->ref_r, s->n_pairs));
    }
    char *text = cJSON_PrintUnformatted(j), path[4200];
    snprintf(path, sizeof path, "%s/trainer_state.json", dir);
    AtomicFile af = atomic_open(path);
    fputs(text, af.f);
    fputc('\n', af.f);
    atomic_close(&af);
    free(text);
    cJSON_Delete(j);
}

static cJSON *state_item(cJSON *j, const char *path, const char *key, int type) {
    cJSON *it = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!it || !(it->type & type)) die("%s: \"%s\" is missing or malformed", path, key);
    return it;
}

static unsigned long long state_u64(cJSON *j, const char *path, const char *key) {
    const char *s = state_item(j, path, key, cJSON_String)->valuestring;
    char *end;
    unsigned long long x = strtoull(s, &end, 10);
    if (end == s || *end) die("%s: \"%s\" is not an integer", path, key);
    return x;
}

static int state_int(cJSON *j, const char *path, const char *key, double lo, double hi) {
    double x = state_item(j, path, key, cJSON_Number)->valuedouble;
    if (x != (double)(long long)x || x < lo || x > hi) die("%s: \"%s\" %g is out of range", path, key, x);
    return (int)x;
}

static double *state_doubles(cJSON *a, const char *path, const char *key, int n) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) die("%s: \"%s\" must hold %d numbers", path, key, n);
    double *x = xmalloc((n ? n : 1) * sizeof(double));
    int i = 0;
    for (cJSON *e = a->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e)) die("%s: \"%s\" holds a non-number", path, key);
        x[i] = e->valuedouble;
    }
    return x;
}

int state_read(const char *dir, TrainerState *s) {
    char path[4200];
    snprintf(path, sizeof path, "%s/trainer_state.json", dir);
    if (!file_exists(path)) return 0;
    size_t n;
    char *text = read_whole_file(path, &n);
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    if (!cJSON_IsObject(j)) die("%s: not a JSON object", path);
    const char *format = state_item(j, path, "format", cJSON_String)->valuestring;
    if (strcmp(format, "repo trainer state") || state_int(j, path, "version", 1, 1) != 1)
        die("%s: not a trainer state this repo writes", path);
    memset(s, 0, sizeof *s);
    s->step = state_int(j, path, "step", 0, 2147483647);
    s->n_steps = state_int(j, path, "n_steps", 1, 2147483647);
    s->finished = cJSON_IsTrue(state_item(j, path, "finished", cJSON_True | cJSON_False));
    cJSON *args = state_item(j, path, "args", cJSON_Array);
    s->n_args = cJSON_GetArraySize(args);
    s->args = xcalloc(s->n_args + 1, sizeof(char *));
    int i = 0;
    for (cJSON *e = args->child; e; e = e->next, i++) {
        if (!cJSON_IsString(e)) die("%s: \"args\" holds a non-string", path);
        s->args[i] = strdup(e->valuestring);
    }
    s->data_hash = state_u64(j, path, "data_hash");
    s->eval_hash = state_u64(j, path, "eval_hash");
    s->n_pairs = state_int(j, path, "n_pairs", 1, 2147483647);
    s->cursor = state_int(j, path, "cursor", 0, s->n_pairs);
    s->epoch = state_int(j, path, "epoch", 0, 2147483647);
    s->rng = state_u64(j, path, "rng");
    double *order = state_doubles(state_item(j, path, "order", cJSON_Array), path, "order", s->n_pairs);
    s->order = xmalloc(s->n_pairs * sizeof(int));
    char *seen = xcalloc(s->n_pairs, 1);
    for (int k = 0; k < s->n_pairs; k++) { // a permutation of the pairs
        if (order[k] < 0 || order[k] >= s->n_pairs || order[k] != (int)order[k] || seen[(int)order[k]])
            die("%s: \"order\" is not a permutation of %d pairs", path, s->n_pairs);
        seen[s->order[k] = (int)order[k]] = 1;
    }
    free(order); free(seen);
    s->log_bytes = (long long)state_item(j, path, "log_bytes", cJSON_Number)->valuedouble;
    s->margins_bytes = (long long)state_item(j, path, "margins_bytes", cJSON_Number)->valuedouble;
    cJSON *ref = cJSON_GetObjectItemCaseSensitive(j, "reference_logps");
    if (ref) {
        s->ref_c = state_doubles(cJSON_GetObjectItemCaseSensitive(ref, "chosen"), path, "reference_logps.chosen", s->n_pairs);
        s->ref_r = state_doubles(cJSON_GetObjectItemCaseSensitive(ref, "rejected"), path, "reference_logps.rejected", s->n_pairs);
    }
    cJSON_Delete(j);
    return 1;
}

void optimizer_write(const char *dir, const float *m, const float *v, size_t n) {
    char path[4200];
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    StOut t[2] = {{"exp_avg", m, 1, {(int64_t)n}}, {"exp_avg_sq", v, 1, {(int64_t)n}}};
    st_write(path, t, 2);
}

void optimizer_read(const char *dir, float *m, float *v, size_t n) {
    char path[4200];
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    SafeTensors st;
    st_open(&st, path);
    const char *names[2] = {"exp_avg", "exp_avg_sq"};
    float *dst[2] = {m, v};
    for (int i = 0; i < 2; i++) {
        StTensor *t = st_find(&st, names[i]);
        if (!t || t->ndim != 1 || t->shape[0] != (int64_t)n || t->dtype != ST_F32)
            die("%s: tensor %s is missing or is not F32 [%zu]", path, names[i], n);
        st_read_f32(&st, t, dst[i]);
    }
    st_close(&st);
}
