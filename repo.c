/*
repo.c: RePO (ReLU-based Preference Optimization) and its baselines, in one file.

A preference pair is (prompt x, chosen y_w, rejected y_l). For a policy pi,
    l(y|x) = (1/|y|) sum_t log pi(y_t | x, y_<t)          mean log-prob of the response
    M      = l(y_w|x) - l(y_l|x)                           length-normalized margin
    L_RePO = mean over the batch of ReLU(gamma - M)        pairs with M >= gamma are filtered
It is the beta -> infinity limit of SimPO's -log sigmoid(beta (M - gamma)) / beta.

Reading order: the model (config, one parameter buffer, the layers each with its
forward beside its backward, the whole model over a batch of sequences with a
response mask), the objective (per-sequence log-prob sums -> per-pair loss and
its derivative: the only place that knows about RePO, SimPO, DPO, ...), AdamW and
the schedules, the training loop, eval, and main. File formats live in io.c.
*/
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "io.h"
#include "data.h"
#ifdef REPO_GGUF
#include "gguf.h"
#endif

// ----------------------------------------------------------------------------
// model configuration

// GPT-2: LayerNorm, learned positions, GELU MLP, biases everywhere, tied head.
// Llama (also Mistral, Qwen2 where the math is the same): RMSNorm, rotary positions (RoPE),
// grouped-query attention, SwiGLU MLP, biases only where the config says, head tied or not.
typedef enum { ARCH_GPT2, ARCH_LLAMA } Arch;

typedef struct {
    Arch arch;
    int vocab_size;
    int max_seq_len;   // positions the model knows (GPT-2's n_positions, max_position_embeddings)
    int n_layer;
    int n_head;
    int n_kv_head;     // == n_head for GPT-2
    int channels;      // C
    int head_dim;      // hd; n_head * hd may differ from C in Llama
    int hidden;        // MLP width (4C for GPT-2, intermediate_size for Llama)
    float norm_eps;
    float rope_theta;  // Llama: RoPE base
    int tied;          // output head is the token embedding (always for GPT-2)
    int qkv_bias, proj_bias, mlp_bias; // which linear layers have biases (all for GPT-2)
    int sliding_window; // Mistral / Qwen2 attention window, 0 if none: sequences must fit in it
    int gguf_eos;       // a GGUF file's tokenizer.ggml.eos_token_id (-1 if none); config.json says it otherwise
} Config;

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

static Config config_from_file(const char *model_dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", model_dir);
    JsonConfig *j = config_load(path);
    Config c;
    memset(&c, 0, sizeof c);
    const char *type = config_str(j, "model_type", 1, NULL);
    if (!strcmp(type, "llama") || !strcmp(type, "mistral") || !strcmp(type, "qwen2")) {
        llama_config(&c, j, path, type);
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
    config_free(j);
    return c;
}

// ----------------------------------------------------------------------------
// parameters: one buffer, named pointers into it. 2-D tensors come first so that
// AdamW's weight decay (2-D tensors only, as usual) is one flat loop with a cut-off.

// widths derived from the config: the attention output (NH hd; C for GPT-2), the fused qkv rows
// [q (NH hd) | k (NKV hd) | v (NKV hd)], and the MLP's first layer (GPT-2 c_fc: H; Llama [gate | up]: 2H)
static int attn_dim(const Config *c) { return c->n_head * c->head_dim; }
static int qkv_dim(const Config *c) { return (c->n_head + 2 * c->n_kv_head) * c->head_dim; }
static int fc_dim(const Config *c) { return c->arch == ARCH_LLAMA ? 2 * c->hidden : c->hidden; }

// Tensors an architecture lacks have size 0 (GPT-2: lmhead; Llama: wpe, the norm biases, and the
// biases its config leaves out). Llama's names: wte embed_tokens, qkvw [q_proj | k_proj | v_proj],
// attprojw o_proj, fcw [gate_proj | up_proj], fcprojw down_proj, ln1w input_layernorm,
// ln2w post_attention_layernorm, lnfw model.norm, lmhead lm_head (untied only).
#define NUM_PARAMETER_TENSORS 17
typedef struct {
    float *wte;      // (V, C)    token embedding, also the output head when tied
    float *wpe;      // (maxT, C) position embedding
    float *qkvw;     // (L, (NH + 2 NKV) hd, C)   GPT-2: (L, 3C, C)
    float *attprojw; // (L, C, NH hd)
    float *fcw;      // (L, F, C)  F = fc_dim: 4C for GPT-2, 2H for Llama
    float *fcprojw;  // (L, C, H)
    float *lmhead;   // (V, C)    untied output head
    // 1-D tensors: no weight decay
    float *ln1w, *ln1b;   // (L, C)
    float *qkvb;          // (L, (NH + 2 NKV) hd)
    float *attprojb;      // (L, C)
    float *ln2w, *ln2b;   // (L, C)
    float *fcb;           // (L, F)
    float *fcprojb;       // (L, C)
    float *lnfw, *lnfb;   // (C)
} ParameterTensors;

static void parameter_sizes(const Config *c, size_t sizes[NUM_PARAMETER_TENSORS], size_t *n_decay) {
    size_t V = c->vocab_size, C = c->channels, L = c->n_layer, H = c->hidden, T = c->max_seq_len;
    size_t QKV = qkv_dim(c), A = attn_dim(c), F = fc_dim(c);
    int gpt2 = c->arch == ARCH_GPT2; // LayerNorm biases and learned positions
    size_t s[NUM_PARAMETER_TENSORS] = {V * C, gpt2 ? T * C : 0, L * QKV * C, L * C * A, L * F * C, L * C * H,
                                       c->tied ? 0 : V * C,
                                       L * C, gpt2 ? L * C : 0, c->qkv_bias ? L * QKV : 0, c->proj_bias ? L * C : 0,
                                       L * C, gpt2 ? L * C : 0, c->mlp_bias ? L * F : 0, c->mlp_bias ? L * C : 0,
                                       C, gpt2 ? C : 0};
    memcpy(sizes, s, sizeof s);
    *n_decay = 0;
    for (int i = 0; i < 7; i++) *n_decay += s[i];
}

static void point_parameters(ParameterTensors *p, float *memory, const size_t sizes[NUM_PARAMETER_TENSORS]) {
    float **ptrs[NUM_PARAMETER_TENSORS] = {&p->wte, &p->wpe, &p->qkvw, &p->attprojw, &p->fcw, &p->fcprojw, &p->lmhead,
        &p->ln1w, &p->ln1b, &p->qkvb, &p->attprojb, &p->ln2w, &p->ln2b, &p->fcb, &p->fcprojb, &p->lnfw, &p->lnfb};
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) { *ptrs[i] = sizes[i] ? memory : NULL; memory += sizes[i]; }
}

// How each Hugging Face tensor maps onto the buffer: name, offset, our shape (out, in),
// and whether the file stores it transposed (GPT-2's Conv1D keeps [in, out]).
typedef struct {
    char name[128];
    size_t offset;
    int rows, cols;       // cols == 0: a vector of `rows`
    int hf_transposed;
} TensorEntry;

// ----------------------------------------------------------------------------
// the layers, each forward beside its backward. Backward functions accumulate (+=).
// Shapes: B sequences of T tokens, C channels; "N" is B*T rows.

// out = wte[token] + wpe[t]
static void encoder_forward(float *out, const int *tokens, const float *wte, const float *wpe, int B, int T, int C) {
    #pragma omp parallel for
    for (int bt = 0; bt < B * T; bt++) {
        const float *te = wte + (size_t)tokens[bt] * C;
        if (!wpe) { memcpy(out + (size_t)bt * C, te, C * sizeof(float)); continue; } // Llama: no learned positions
        const float *pe = wpe + (size_t)(bt % T) * C;
        for (int i = 0; i < C; i++) out[(size_t)bt * C + i] = te[i] + pe[i];
    }
}

static void encoder_backward(float *dwte, float *dwpe, const float *dout, const int *tokens, int B, int T, int C) {
    // serial: many positions may share a token row
    for (int bt = 0; bt < B * T; bt++) {
        float *dte = dwte + (size_t)tokens[bt] * C;
        const float *d = dout + (size_t)bt * C;
        if (!dwpe) { for (int i = 0; i < C; i++) dte[i] += d[i]; continue; }
        float *dpe = dwpe + (size_t)(bt % T) * C;
        for (int i = 0; i < C; i++) { dte[i] += d[i]; dpe[i] += d[i]; }
    }
}

// out = (x - mean) / sqrt(var + eps) * w + b
static void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                              int N, int C, float eps) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float m = 0, v = 0;
        for (int i = 0; i < C; i++) m += x[i];
        m /= C;
        for (int i = 0; i < C; i++) { float d = x[i] - m; v += d * d; }
        float s = 1.0f / sqrtf(v / C + eps);
        float *o = out + (size_t)n * C;
        for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * w[i] + b[i];
        mean[n] = m; rstd[n] = s;
    }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dout * w
static void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                               const float *mean, const float *rstd, int N, int C) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C, *x = inp + (size_t)n * C;
        float m = mean[n], s = rstd[n], mg = 0, mgx = 0;
        for (int i = 0; i < C; i++) { float g = d[i] * w[i]; mg += g; mgx += g * (x[i] - m) * s; }
        mg /= C; mgx /= C;
        float *dx = dinp + (size_t)n * C;
        for (int i = 0; i < C; i++) dx[i] += s * (d[i] * w[i] - mg - (x[i] - m) * s * mgx);
    }
    // weight and bias gradients sum over rows: split by channel so threads never collide
    #pragma omp parallel for
    for (int i = 0; i < C; i++) {
        float gw = 0, gb = 0;
        for (int n = 0; n < N; n++) {
            float d = dout[(size_t)n * C + i];
            gw += d * (inp[(size_t)n * C + i] - mean[n]) * rstd[n];
            gb += d;
        }
        dw[i] += gw; db[i] += gb;
    }
}

// out (N, OC) = inp (N, C) @ weight (OC, C)^T + bias (OC)
#define MATMUL_TILE 8
static void matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC) {
    // tiles of MATMUL_TILE rows reuse each weight row from cache MATMUL_TILE times
    int n_tiles = (N + MATMUL_TILE - 1) / MATMUL_TILE;
    #pragma omp parallel for collapse(2)
    for (int tile = 0; tile < n_tiles; tile++) {
        for (int o = 0; o < OC; o++) {
            int n0 = tile * MATMUL_TILE, rows = N - n0 < MATMUL_TILE ? N - n0 : MATMUL_TILE;
            const float *w = weight + (size_t)o * C;
            float acc[MATMUL_TILE] = {0};
            if (rows == MATMUL_TILE) {
                for (int i = 0; i < C; i++)
                    for (int r = 0; r < MATMUL_TILE; r++) acc[r] += inp[(size_t)(n0 + r) * C + i] * w[i];
            } else {
                for (int r = 0; r < rows; r++)
                    for (int i = 0; i < C; i++) acc[r] += inp[(size_t)(n0 + r) * C + i] * w[i];
            }
            for (int r = 0; r < rows; r++) out[(size_t)(n0 + r) * OC + o] = acc[r] + (bias ? bias[o] : 0.0f);
        }
    }
}

// dinp += dout @ weight; dweight += dout^T @ inp; dbias += sum over rows of dout.
// Both products accumulate a block of MM_ROWS x MM_COLS outputs in registers while streaming the
// shared dimension (about 2x the simple loops here); rows of dout that are all zero (filtered
// pairs, prompt positions) are skipped.
#define MM_ROWS 6
#define MM_COLS 32
static int zero_row(const float *d, int n) { for (int i = 0; i < n; i++) if (d[i] != 0.0f) return 0; return 1; }

// acc[r][:cols] += sum_k a[r * a_stride + k * a_step] * b[k * b_stride][:cols]; the same
// kernel serves both products, which differ only in how the scalars a are laid out
static void mm_block(float acc[MM_ROWS][MM_COLS], const float *a, size_t a_stride, size_t a_step, int rows,
                     const float *b, size_t b_stride, int cols, int K) {
    if (rows == MM_ROWS && cols == MM_COLS) { // the common case, with constant trip counts to vectorize
        for (int k = 0; k < K; k++) {
            const float *bk = b + (size_t)k * b_stride;
            for (int r = 0; r < MM_ROWS; r++) {
                float g = a[r * a_stride + k * a_step];
                for (int j = 0; j < MM_COLS; j++) acc[r][j] += g * bk[j];
            }
        }
        return;
    }
    for (int k = 0; k < K; k++) {
        const float *bk = b + (size_t)k * b_stride;
        for (int r = 0; r < rows; r++) {
            float g = a[r * a_stride + k * a_step];
            for (int j = 0; j < cols; j++) acc[r][j] += g * bk[j];
        }
    }
}

static void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, int N, int C, int OC) {
    int n_tiles = (N + MM_ROWS - 1) / MM_ROWS, o_tiles = (OC + MM_ROWS - 1) / MM_ROWS, chunks = (C + MM_COLS - 1) / MM_COLS;
    char *live = xmalloc(N); // rows of dout with any non-zero entry
    #pragma omp parallel for
    for (int n = 0; n < N; n++) live[n] = !zero_row(dout + (size_t)n * OC, OC);
    // dinp[n, i] += sum_o dout[n, o] weight[o, i]
    #pragma omp parallel for collapse(2) schedule(dynamic)
    for (int tile = 0; tile < n_tiles; tile++)
        for (int chunk = 0; chunk < chunks; chunk++) {
            int n0 = tile * MM_ROWS, rows = N - n0 < MM_ROWS ? N - n0 : MM_ROWS;
            int i0 = chunk * MM_COLS, cols = C - i0 < MM_COLS ? C - i0 : MM_COLS, any = 0;
            for (int r = 0; r < rows; r++) any |= live[n0 + r];
            if (!any) continue;
            float acc[MM_ROWS][MM_COLS] = {{0}};
            mm_block(acc, dout + (size_t)n0 * OC, OC, 1, rows, weight + i0, C, cols, OC);
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < cols; j++) dinp[(size_t)(n0 + r) * C + i0 + j] += acc[r][j];
        }
    // dweight[o, i] += sum_n dout[n, o] inp[n, i], over runs of consecutive live rows
    int *run_start = xmalloc(N * sizeof(int)), *run_len = xmalloc(N * sizeof(int)), n_runs = 0;
    for (int n = 0; n < N; n++) {
        if (!live[n]) continue;
        if (n_runs && run_start[n_runs - 1] + run_len[n_runs - 1] == n) run_len[n_runs - 1]++;
        else { run_start[n_runs] = n; run_len[n_runs++] = 1; }
    }
    #pragma omp parallel for collapse(2) schedule(dynamic)
    for (int tile = 0; tile < o_tiles; tile++)
        for (int chunk = 0; chunk < chunks; chunk++) {
            int o0 = tile * MM_ROWS, rows = OC - o0 < MM_ROWS ? OC - o0 : MM_ROWS;
            int i0 = chunk * MM_COLS, cols = C - i0 < MM_COLS ? C - i0 : MM_COLS;
            float acc[MM_ROWS][MM_COLS] = {{0}};
            for (int k = 0; k < n_runs; k++)
                mm_block(acc, dout + (size_t)run_start[k] * OC + o0, 1, OC, rows, inp + (size_t)run_start[k] * C + i0, C, cols, run_len[k]);
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < cols; j++) dweight[(size_t)(o0 + r) * C + i0 + j] += acc[r][j];
            if (dbias && chunk == 0)
                for (int r = 0; r < rows; r++) {
                    float gb = 0;
                    for (int k = 0; k < n_runs; k++)
                        for (int n = run_start[k]; n < run_start[k] + run_len[k]; n++) gb += dout[(size_t)n * OC + o0 + r];
                    dbias[o0 + r] += gb;
                }
        }
    free(live); free(run_start); free(run_len);
}

// Causal self-attention with grouped-query heads. qkv rows are [q (NH*hd) | k (NKV*hd) | v (NKV*hd)];
// query head h reads key/value head h / (NH/NKV).
// att[b,h,t,:] = softmax_{t2<=t}(q_t . k_t2 / sqrt(hd)); out_t = sum_t2 att * v_t2
static void attention_forward(float *out, float *att, const float *qkv, int B, int T, int NH, int NKV, int hd) {
    int qkv_dim = (NH + 2 * NKV) * hd, group = NH / NKV;
    float scale = 1.0f / sqrtf((float)hd);
    #pragma omp parallel for collapse(3)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH; h++) {
                const float *q = qkv + ((size_t)b * T + t) * qkv_dim + h * hd;
                const float *k0 = qkv + (size_t)b * T * qkv_dim + (NH + h / group) * hd;
                const float *v0 = k0 + NKV * hd;
                float *a = att + (((size_t)b * NH + h) * T + t) * T;
                float maxval = -INFINITY;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *k = k0 + (size_t)t2 * qkv_dim;
                    float s = 0;
                    for (int i = 0; i < hd; i++) s += q[i] * k[i];
                    a[t2] = s * scale;
                    if (a[t2] > maxval) maxval = a[t2];
                }
                float sum = 0;
                for (int t2 = 0; t2 <= t; t2++) { a[t2] = expf(a[t2] - maxval); sum += a[t2]; }
                for (int t2 = 0; t2 <= t; t2++) a[t2] /= sum;
                for (int t2 = t + 1; t2 < T; t2++) a[t2] = 0;
                float *o = out + ((size_t)b * T + t) * NH * hd + h * hd;
                for (int i = 0; i < hd; i++) o[i] = 0;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *v = v0 + (size_t)t2 * qkv_dim;
                    for (int i = 0; i < hd; i++) o[i] += a[t2] * v[i];
                }
            }
}

// softmax backward: dpre = att * (datt - sum(att * datt)); then dq, dk from dpre, dv from att
static void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att,
                               int B, int T, int NH, int NKV, int hd) {
    int qkv_dim = (NH + 2 * NKV) * hd, group = NH / NKV;
    float scale = 1.0f / sqrtf((float)hd);
    // a sequence whose pair was filtered has no gradient at all: skip it
    char *live = xmalloc(B);
    for (int b = 0; b < B; b++) live[b] = !zero_row(dout + (size_t)b * T * NH * hd, T * NH * hd);
    // one thread per (sequence, kv head): the query heads of a group all write that head's dk, dv
    #pragma omp parallel
    {
        float *datt = xmalloc(sizeof(float) * T);
        #pragma omp for collapse(2) schedule(dynamic)
        for (int b = 0; b < B; b++)
            for (int kvh = 0; kvh < NKV; kvh++)
                for (int h = kvh * group; h < (kvh + 1) * group && live[b]; h++)
                    for (int t = 0; t < T; t++) {
                        const float *a = att + (((size_t)b * NH + h) * T + t) * T;
                        const float *d = dout + ((size_t)b * T + t) * NH * hd + h * hd;
                        const float *q = qkv + ((size_t)b * T + t) * qkv_dim + h * hd;
                        float *dq = dqkv + ((size_t)b * T + t) * qkv_dim + h * hd;
                        size_t kbase = (size_t)b * T * qkv_dim + (NH + kvh) * hd, vbase = kbase + NKV * hd;
                        float dot = 0;
                        for (int t2 = 0; t2 <= t; t2++) {
                            const float *v = qkv + vbase + (size_t)t2 * qkv_dim;
                            float *dv = dqkv + vbase + (size_t)t2 * qkv_dim, s = 0;
                            for (int i = 0; i < hd; i++) { s += d[i] * v[i]; dv[i] += a[t2] * d[i]; }
                            datt[t2] = s;
                            dot += a[t2] * s;
                        }
                        for (int t2 = 0; t2 <= t; t2++) {
                            float g = a[t2] * (datt[t2] - dot) * scale;
                            const float *k = qkv + kbase + (size_t)t2 * qkv_dim;
                            float *dk = dqkv + kbase + (size_t)t2 * qkv_dim;
                            for (int i = 0; i < hd; i++) { dq[i] += g * k[i]; dk[i] += g * q[i]; }
                        }
                    }
        free(datt);
    }
    free(live);
}

// gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
#define GELU_SCALE 0.7978845608028654f
static void gelu_forward(float *out, const float *inp, size_t n) {
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_SCALE * (x + 0.044715f * x * x * x)));
    }
}

static void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float x = inp[i], u = GELU_SCALE * (x + 0.044715f * x * x * x), th = tanhf(u);
        float du = GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += dout[i] * (0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du);
    }
}

// Llama's layers. RMSNorm as Hugging Face's LlamaRMSNorm (float32 throughout):
// out = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps)
static void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float ss = 0;
        for (int i = 0; i < C; i++) ss += x[i] * x[i];
        float s = 1.0f / sqrtf(ss / C + eps);
        float *o = out + (size_t)n * C;
        for (int i = 0; i < C; i++) o[i] = x[i] * s * w[i];
        rstd[n] = s;
    }
}

// dx = rstd * (g - x * rstd^2 * mean(g * x)), g = dout * w; dw = sum over rows of dout * x * rstd
static void rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                             const float *rstd, int N, int C) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C, *x = inp + (size_t)n * C;
        float s = rstd[n], mgx = 0;
        for (int i = 0; i < C; i++) mgx += d[i] * w[i] * x[i];
        mgx /= C;
        float *dx = dinp + (size_t)n * C;
        for (int i = 0; i < C; i++) dx[i] += s * (d[i] * w[i] - x[i] * s * s * mgx);
    }
    #pragma omp parallel for
    for (int i = 0; i < C; i++) {
        float gw = 0;
        for (int n = 0; n < N; n++) gw += dout[(size_t)n * C + i] * inp[(size_t)n * C + i] * rstd[n];
        dw[i] += gw;
    }
}

// RoPE tables as Hugging Face's LlamaRotaryEmbedding (in float32): inv_freq_i = theta^(-2i/hd),
// angle = t * inv_freq_i, for i < hd/2 (emb = cat(freqs, freqs): both halves share an angle)
static void rope_tables(float *cos_t, float *sin_t, int T, int hd, float theta) {
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        float inv_freq = 1.0f / (float)pow((double)theta, (double)((float)(2 * i) / (float)hd));
        for (int t = 0; t < T; t++) {
            float angle = (float)t * inv_freq;
            cos_t[(size_t)t * half + i] = (float)cos((double)angle);
            sin_t[(size_t)t * half + i] = (float)sin((double)angle);
        }
    }
}

// in place on the first n_heads heads of each row (q and k: they lead the qkv rows), position t = row % T:
// x' = x cos + rotate_half(x) sin, rotate_half(x) = cat(-x[hd/2:], x[:hd/2])
static void rope_forward(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int n_heads, int hd, int row_dim) {
    int half = hd / 2;
    #pragma omp parallel for
    for (int bt = 0; bt < B * T; bt++) {
        const float *cs = cos_t + (size_t)(bt % T) * half, *sn = sin_t + (size_t)(bt % T) * half;
        for (int h = 0; h < n_heads; h++) {
            float *x = qkv + (size_t)bt * row_dim + h * hd;
            for (int i = 0; i < half; i++) {
                float x1 = x[i], x2 = x[i + half];
                x[i] = x1 * cs[i] - x2 * sn[i];
                x[i + half] = x2 * cs[i] + x1 * sn[i];
            }
        }
    }
}

// the transpose rotation, in place on the gradient: dx1 = d1 cos + d2 sin, dx2 = d2 cos - d1 sin
static void rope_backward(float *dqkv, const float *cos_t, const float *sin_t, int B, int T, int n_heads, int hd, int row_dim) {
    int half = hd / 2;
    #pragma omp parallel for
    for (int bt = 0; bt < B * T; bt++) {
        const float *cs = cos_t + (size_t)(bt % T) * half, *sn = sin_t + (size_t)(bt % T) * half;
        for (int h = 0; h < n_heads; h++) {
            float *d = dqkv + (size_t)bt * row_dim + h * hd;
            for (int i = 0; i < half; i++) {
                float d1 = d[i], d2 = d[i + half];
                d[i] = d1 * cs[i] + d2 * sn[i];
                d[i + half] = d2 * cs[i] - d1 * sn[i];
            }
        }
    }
}

// SwiGLU on rows [gate (H) | up (H)]: out = silu(gate) * up, silu(g) = g sigmoid(g)
static void swiglu_forward(float *out, const float *inp, int N, int H) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *g = inp + (size_t)n * 2 * H, *u = g + H;
        float *o = out + (size_t)n * H;
        for (int i = 0; i < H; i++) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

// dgate = dout * up * sig * (1 + g (1 - sig)), dup = dout * silu(g)
static void swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int H) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *g = inp + (size_t)n * 2 * H, *u = g + H, *d = dout + (size_t)n * H;
        float *dg = dinp + (size_t)n * 2 * H, *du = dg + H;
        for (int i = 0; i < H; i++) {
            float sig = 1.0f / (1.0f + expf(-g[i]));
            dg[i] += d[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
            du[i] += d[i] * g[i] * sig;
        }
    }
}

// out = a + b. Its backward is the identity into both inputs, so model_backward keeps
// one dresidual buffer that every block adds into, rather than calling a function.
static void residual_forward(float *out, const float *a, const float *b, size_t n) {
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

// The output head over the response positions only (prompt positions carry no loss,
// so their logits are never formed): logp_r = logits_r[target_r] - logsumexp(logits_r).
// The (R, V) logits buffer is the only vocabulary-sized buffer; backward turns it into
// dlogits in place: dlogits = dlogp * (onehot(target) - softmax).
static void logprob_forward(float *logp, float *lse, const float *logits, const int *targets, int R, int V) {
    #pragma omp parallel for
    for (int r = 0; r < R; r++) {
        const float *z = logits + (size_t)r * V;
        float maxval = -INFINITY;
        for (int v = 0; v < V; v++) if (z[v] > maxval) maxval = z[v];
        float sum = 0;
        for (int v = 0; v < V; v++) sum += expf(z[v] - maxval);
        lse[r] = maxval + logf(sum);
        logp[r] = z[targets[r]] - lse[r];
    }
}

static void logprob_backward(float *logits_to_dlogits, const float *dlogp, const float *lse, const int *targets, int R, int V) {
    #pragma omp parallel for
    for (int r = 0; r < R; r++) {
        float *z = logits_to_dlogits + (size_t)r * V, g = dlogp[r];
        for (int v = 0; v < V; v++) z[v] = -g * expf(z[v] - lse[r]);
        z[targets[r]] += g;
    }
}

// ----------------------------------------------------------------------------
// the model over a batch: B sequences (chosen and rejected interleaved), right-padded
// to T tokens; R response positions, each with its sequence and target token.

typedef struct {
    float *encoded;               // (B, T, C)
    float *ln1, *ln1_mean, *ln1_rstd;   // (L, B, T, C), (L, B, T) x2
    float *qkv;                   // (L, B, T, (NH + 2 NKV) hd): 3C for GPT-2; Llama's q, k after RoPE
    float *atty;                  // (L, B, T, NH hd)
    float *att;                   // (L, B, NH, T, T)
    float *residual2;             // (L, B, T, C)
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fch, *fch_gelu;        // (L, B, T, F), (L, B, T, H): GPT-2 c_fc and gelu, Llama [gate | up] and swiglu
    float *residual3;             // (L, B, T, C)
    float *lnf, *lnf_mean, *lnf_rstd; // (B, T, C), (B, T) x2
    float *hidden;                // (R, C) lnf at the response positions
    float *logits;                // (R, V) becomes dlogits in backward
    float *lse, *logp, *dlogp;    // (R)
} Activations;

// scratch for the backward pass: one layer's worth, reused across layers
typedef struct {
    float *dresidual;             // (B, T, C) gradient flowing down the residual stream
    float *dln, *datty, *dqkv, *dfch, *dfch_gelu, *dhidden, *dres2;
} BackwardScratch;

typedef struct {
    Config config;
    ParameterTensors params, grads;
    size_t param_sizes[NUM_PARAMETER_TENSORS];
    size_t num_parameters, num_decay_parameters;
    float *params_memory, *grads_memory, *m_memory, *v_memory;
    TensorEntry *entries;
    int n_entries;
    // activations are sized for max_B sequences of max_T tokens, pointed per batch
    int max_B, max_T;
    float *acts_memory, *scratch_memory;
    float *rope_cos, *rope_sin;   // Llama: (max_T, hd/2)
    Activations acts;
    BackwardScratch scratch;
    int B, T, R;                  // the current batch
    int *tokens;                  // (B, T)
    int *resp_row, *resp_seq, *resp_target; // (R): row b*T+t, sequence b, token at t+1
} Model;

static void build_tensor_entries(Model *m) {
    const Config *c = &m->config;
    int C = c->channels, H = c->hidden, L = c->n_layer;
    m->entries = xcalloc(2 + 16 * L + 3, sizeof(TensorEntry));
    ParameterTensors *p = &m->params;
    TensorEntry *e = m->entries;
    #define ENTRY(ptr, rows_, cols_, tr, ...) do { snprintf(e->name, sizeof e->name, __VA_ARGS__); \
        e->offset = (size_t)((ptr) - m->params_memory); e->rows = rows_; e->cols = cols_; e->hf_transposed = tr; e++; } while (0)
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
        m->n_entries = (int)(e - m->entries);
        return;
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
    m->n_entries = (int)(e - m->entries);
}

static void model_alloc_parameters(Model *m) {
    parameter_sizes(&m->config, m->param_sizes, &m->num_decay_parameters);
    m->num_parameters = 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) m->num_parameters += m->param_sizes[i];
    m->params_memory = xmalloc(m->num_parameters * sizeof(float));
    point_parameters(&m->params, m->params_memory, m->param_sizes);
    build_tensor_entries(m);
}

// names in files may lack the "transformer." (GPT-2) or "model." (Llama) prefix;
// buffers like attn.bias are not parameters
static const char *strip_prefix(const char *name) {
    if (strncmp(name, "transformer.", 12) == 0) return name + 12;
    return strncmp(name, "model.", 6) == 0 ? name + 6 : name;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static void model_load_weights(Model *m, const char *model_dir) {
    TensorSource ts;
    ts_open(&ts, model_dir);
    float *tmp = NULL;
    for (int i = 0; i < m->n_entries; i++) {
        TensorEntry *e = &m->entries[i];
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
        float *dst = m->params_memory + e->offset;
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
            if ((m->config.tied && !strcmp(n, "lm_head.weight")) || ends_with(n, ".attn.bias") ||
                ends_with(n, ".attn.masked_bias") || ends_with(n, ".rotary_emb.inv_freq")) continue;
            int found = 0;
            for (int j = 0; j < m->n_entries && !found; j++) found = !strcmp(strip_prefix(m->entries[j].name), n);
            if (!found && unknown++ < 3)
                fprintf(stderr, "repo: warning: %s: ignoring unexpected tensor %s\n", ts.files[f].path, ts.files[f].tensors[i].name);
        }
    free(tmp);
    ts_close(&ts);
}

// writes `memory` (parameters or gradients, same layout) under the model's tensor names
static void model_write_tensors(const Model *m, const float *memory, const char *path) {
    StOut *outs = xcalloc(m->n_entries, sizeof(StOut));
    float **transposed = xcalloc(m->n_entries, sizeof(float *));
    for (int i = 0; i < m->n_entries; i++) {
        const TensorEntry *e = &m->entries[i];
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
    st_write(path, outs, m->n_entries);
    for (int i = 0; i < m->n_entries; i++) free(transposed[i]);
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
    if (c->gguf_eos >= 0) fprintf(af.f, "  \"eos_token_id\": %d,\n", c->gguf_eos);
    fprintf(af.f, "  \"max_position_embeddings\": %d,\n  \"rms_norm_eps\": %.9g,\n  \"rope_theta\": %.9g,\n"
            "  \"rope_scaling\": null,\n", c->max_seq_len, c->norm_eps, c->rope_theta);
    if (!qwen2) fprintf(af.f, "  \"attention_bias\": %s,\n  \"mlp_bias\": %s,\n", c->qkv_bias ? "true" : "false",
                        c->mlp_bias ? "true" : "false");
    fprintf(af.f, "  \"tie_word_embeddings\": %s,\n  \"vocab_size\": %d,\n  \"torch_dtype\": \"float32\"\n}\n",
            c->tied ? "true" : "false", c->vocab_size);
    atomic_close(&af);
}

// a directory Hugging Face loads: config.json (copied), model.safetensors, tokenizer files
static void model_save(const Model *m, const char *src_dir, const char *out_dir) {
    make_dir(out_dir);
    char src[4096], dst[4096];
    snprintf(dst, sizeof dst, "%s/model.safetensors", out_dir);
    model_write_tensors(m, m->params_memory, dst);
    const char *copied[] = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                            "special_tokens_map.json", "vocab.json", "merges.txt"};
    for (size_t i = 0; i < sizeof copied / sizeof *copied; i++) {
        snprintf(src, sizeof src, "%s/%s", src_dir, copied[i]);
        snprintf(dst, sizeof dst, "%s/%s", out_dir, copied[i]);
        if (file_exists(src) && strcmp(src, dst) != 0) copy_file_atomic(src, dst);
    }
    if (ends_with(src_dir, ".gguf")) { // no config.json to copy: write one
        snprintf(dst, sizeof dst, "%s/config.json", out_dir);
        write_llama_config(&m->config, dst);
        data_write_gguf_tokenizer(src_dir, out_dir); // tokenizer.json + tokenizer_config.json from its metadata
    }
}

// ----------------------------------------------------------------------------
// GGUF (llama.cpp's single-file format), Llama only: hyper-parameters from its metadata, tensors
// dequantized to float32 and renamed to Hugging Face's names (gguf.c), attn_q / attn_k rows
// un-permuted from llama.cpp's RoPE layout. Built when the Makefile defines REPO_GGUF and links gguf.c.

static int is_gguf(const char *path) { return ends_with(path, ".gguf"); }

#ifdef REPO_GGUF
static void model_load_gguf(Model *m, const char *path) {
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
    Config *c = &m->config;
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
    c->gguf_eos = gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u) && u <= INT32_MAX ? (int)u : -1;
    model_alloc_parameters(m);
    char *seen = xcalloc(m->n_entries, 1);
    int unknown = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const GGUFTensor *t = &g->tensors[i];
        char hf[160];
        int j = -1;
        if (gguf_hf_name(t->name, hf, sizeof hf) == 0)
            for (j = 0; j < m->n_entries && strcmp(m->entries[j].name, hf); j++) {}
        if (j < 0 || j == m->n_entries) {
            if (unknown++ < 3) fprintf(stderr, "repo: warning: %s: ignoring unexpected tensor %s\n", path, t->name);
            continue;
        }
        const TensorEntry *e = &m->entries[j];
        if (t->n_dims != (e->cols ? 2 : 1) || t->shape[0] != e->rows || (e->cols && t->shape[1] != e->cols))
            die("%s: tensor %s has %d dimensions [%lld, %lld], expected [%d, %d]", path, t->name, t->n_dims,
                (long long)t->shape[0], (long long)(t->n_dims > 1 ? t->shape[1] : 0), e->rows, e->cols);
        float *dst = m->params_memory + e->offset;
        if (gguf_tensor_to_f32(g, t, dst, err, sizeof err)) die("%s", err);
        int is_q = ends_with(t->name, ".attn_q.weight"), is_k = ends_with(t->name, ".attn_k.weight");
        if (permuted && (is_q || is_k) && gguf_unpermute_qk(dst, e->rows, e->cols, is_q ? c->n_head : c->n_kv_head))
            die("%s: tensor %s: %d rows do not split into heads", path, t->name, e->rows);
        seen[j] = 1;
    }
    for (int j = 0; j < m->n_entries; j++)
        if (!seen[j]) die("%s: tensor for %s is missing", path, m->entries[j].name);
    free(seen);
    gguf_close(g);
}
#endif

// a model directory (config.json + model.safetensors or its sharded index), or a .gguf file
static void model_load(Model *m, const char *model_dir) {
    memset(m, 0, sizeof *m);
    if (is_gguf(model_dir)) {
#ifdef REPO_GGUF
        model_load_gguf(m, model_dir);
        return;
#else
        die("%s: this build reads no GGUF (make with REPO_GGUF and gguf.c)", model_dir);
#endif
    }
    m->config = config_from_file(model_dir);
    model_alloc_parameters(m);
    model_load_weights(m, model_dir);
}

// activations for up to max_B sequences of max_T tokens (all positions may be response positions)
static size_t activation_floats(const Config *c, int B, int T, int R) {
    size_t L = c->n_layer, C = c->channels, H = c->hidden, NH = c->n_head, BT = (size_t)B * T;
    size_t qkv = qkv_dim(c), A = attn_dim(c), F = fc_dim(c);
    return BT * C + L * BT * (4 * C + A + 4 + qkv + F + H) + L * B * NH * (size_t)T * T + BT * (C + 2)
         + (size_t)R * (C + c->vocab_size + 3);
}

static void point_activations(Model *m, int B, int T, int R) {
    const Config *c = &m->config;
    size_t L = c->n_layer, C = c->channels, H = c->hidden, NH = c->n_head, BT = (size_t)B * T;
    size_t qkv = qkv_dim(c), A = attn_dim(c), F = fc_dim(c);
    Activations *a = &m->acts;
    float *p = m->acts_memory;
    #define TAKE(field, n) do { a->field = p; p += (n); } while (0)
    TAKE(encoded, BT * C);
    TAKE(ln1, L * BT * C); TAKE(ln1_mean, L * BT); TAKE(ln1_rstd, L * BT);
    TAKE(qkv, L * BT * qkv); TAKE(atty, L * BT * A); TAKE(att, L * B * NH * T * T);
    TAKE(residual2, L * BT * C);
    TAKE(ln2, L * BT * C); TAKE(ln2_mean, L * BT); TAKE(ln2_rstd, L * BT);
    TAKE(fch, L * BT * F); TAKE(fch_gelu, L * BT * H); TAKE(residual3, L * BT * C);
    TAKE(lnf, BT * C); TAKE(lnf_mean, BT); TAKE(lnf_rstd, BT);
    TAKE(hidden, (size_t)R * C); TAKE(logits, (size_t)R * c->vocab_size);
    TAKE(lse, R); TAKE(logp, R); TAKE(dlogp, R);
    #undef TAKE
    BackwardScratch *s = &m->scratch;
    p = m->scratch_memory;
    s->dresidual = p; p += BT * C;
    s->dln = p; p += BT * C;
    s->datty = p; p += BT * A;
    s->dres2 = p; p += BT * C;
    s->dqkv = p; p += BT * qkv;
    s->dfch = p; p += BT * F;
    s->dfch_gelu = p; p += BT * H;
    s->dhidden = p; p += (size_t)R * C;
}

static void model_alloc_batch(Model *m, int max_B, int max_T) {
    const Config *c = &m->config;
    size_t BT = (size_t)max_B * max_T;
    size_t qkv = qkv_dim(c), A = attn_dim(c), F = fc_dim(c);
    m->max_B = max_B; m->max_T = max_T;
    m->acts_memory = xmalloc(activation_floats(c, max_B, max_T, (int)BT) * sizeof(float));
    m->scratch_memory = xmalloc((BT * (3 * c->channels + A + qkv + F + c->hidden) + BT * c->channels) * sizeof(float));
    if (c->arch == ARCH_LLAMA) { // RoPE angles for positions 0 .. max_T-1
        m->rope_cos = xmalloc((size_t)max_T * (c->head_dim / 2) * sizeof(float));
        m->rope_sin = xmalloc((size_t)max_T * (c->head_dim / 2) * sizeof(float));
        rope_tables(m->rope_cos, m->rope_sin, max_T, c->head_dim, c->rope_theta);
    }
    m->tokens = xmalloc(BT * sizeof(int));
    m->resp_row = xmalloc(BT * sizeof(int));
    m->resp_seq = xmalloc(BT * sizeof(int));
    m->resp_target = xmalloc(BT * sizeof(int));
}

static void model_alloc_training(Model *m) {
    m->grads_memory = xcalloc(m->num_parameters, sizeof(float));
    m->m_memory = xcalloc(m->num_parameters, sizeof(float));
    m->v_memory = xcalloc(m->num_parameters, sizeof(float));
    point_parameters(&m->grads, m->grads_memory, m->param_sizes);
}

// layer l's slice of a per-layer tensor; NULL for a tensor the architecture lacks (size 0)
static float *at_layer(float *base, int l, size_t stride) { return base ? base + (size_t)l * stride : NULL; }

// forward over the current batch (m->tokens, m->resp_*): fills acts.logp for each response position
static void model_forward(Model *m) {
    const Config *c = &m->config;
    int B = m->B, T = m->T, R = m->R, C = c->channels, H = c->hidden, NH = c->n_head, NKV = c->n_kv_head, hd = c->head_dim;
    int N = B * T, qkv_dim = (NH + 2 * NKV) * hd, A = attn_dim(c), F = fc_dim(c);
    point_activations(m, B, T, R);
    ParameterTensors *p = &m->params;
    Activations *a = &m->acts;
    encoder_forward(a->encoded, m->tokens, p->wte, p->wpe, B, T, C);
    for (int l = 0; l < c->n_layer; l++) {
        const float *x = l == 0 ? a->encoded : a->residual3 + (size_t)(l - 1) * N * C;
        float *ln1 = a->ln1 + (size_t)l * N * C, *qkv = a->qkv + (size_t)l * N * qkv_dim;
        float *atty = a->atty + (size_t)l * N * A, *att = a->att + (size_t)l * B * NH * T * T;
        float *res2 = a->residual2 + (size_t)l * N * C, *ln2 = a->ln2 + (size_t)l * N * C;
        float *fch = a->fch + (size_t)l * N * F, *fchg = a->fch_gelu + (size_t)l * N * H;
        float *res3 = a->residual3 + (size_t)l * N * C;
        if (c->arch == ARCH_LLAMA) { // RMSNorm, RoPE on q and k, GQA, SwiGLU; biases as the config says
            rmsnorm_forward(ln1, a->ln1_rstd + l * N, x, p->ln1w + l * C, N, C, c->norm_eps);
            matmul_forward(qkv, ln1, p->qkvw + (size_t)l * qkv_dim * C, at_layer(p->qkvb, l, qkv_dim), N, C, qkv_dim);
            rope_forward(qkv, m->rope_cos, m->rope_sin, B, T, NH + NKV, hd, qkv_dim);
            attention_forward(atty, att, qkv, B, T, NH, NKV, hd);
            matmul_forward(res2, atty, p->attprojw + (size_t)l * C * A, at_layer(p->attprojb, l, C), N, A, C);
            residual_forward(res2, x, res2, (size_t)N * C);
            rmsnorm_forward(ln2, a->ln2_rstd + l * N, res2, p->ln2w + l * C, N, C, c->norm_eps);
            matmul_forward(fch, ln2, p->fcw + (size_t)l * F * C, at_layer(p->fcb, l, F), N, C, F);
            swiglu_forward(fchg, fch, N, H);
            matmul_forward(res3, fchg, p->fcprojw + (size_t)l * C * H, at_layer(p->fcprojb, l, C), N, H, C);
            residual_forward(res3, res2, res3, (size_t)N * C);
            continue;
        }
        layernorm_forward(ln1, a->ln1_mean + l * N, a->ln1_rstd + l * N, x, p->ln1w + l * C, p->ln1b + l * C, N, C, c->norm_eps);
        matmul_forward(qkv, ln1, p->qkvw + (size_t)l * qkv_dim * C, p->qkvb + l * qkv_dim, N, C, qkv_dim);
        attention_forward(atty, att, qkv, B, T, NH, NKV, hd);
        matmul_forward(res2, atty, p->attprojw + (size_t)l * C * C, p->attprojb + l * C, N, C, C);
        residual_forward(res2, x, res2, (size_t)N * C);
        layernorm_forward(ln2, a->ln2_mean + l * N, a->ln2_rstd + l * N, res2, p->ln2w + l * C, p->ln2b + l * C, N, C, c->norm_eps);
        matmul_forward(fch, ln2, p->fcw + (size_t)l * H * C, p->fcb + l * H, N, C, H);
        gelu_forward(fchg, fch, (size_t)N * H);
        matmul_forward(res3, fchg, p->fcprojw + (size_t)l * C * H, p->fcprojb + l * C, N, H, C);
        residual_forward(res3, res2, res3, (size_t)N * C);
    }
    const float *last = a->residual3 + (size_t)(c->n_layer - 1) * N * C;
    if (c->arch == ARCH_LLAMA) rmsnorm_forward(a->lnf, a->lnf_rstd, last, p->lnfw, N, C, c->norm_eps);
    else layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, last, p->lnfw, p->lnfb, N, C, c->norm_eps);
    for (int r = 0; r < R; r++) memcpy(a->hidden + (size_t)r * C, a->lnf + (size_t)m->resp_row[r] * C, C * sizeof(float));
    matmul_forward(a->logits, a->hidden, c->tied ? p->wte : p->lmhead, NULL, R, C, c->vocab_size);
    logprob_forward(a->logp, a->lse, a->logits, m->resp_target, R, c->vocab_size);
}

// backward from acts.dlogp (dLoss/dlogp per response position); accumulates into grads
static void model_backward(Model *m) {
    const Config *c = &m->config;
    int B = m->B, T = m->T, R = m->R, C = c->channels, H = c->hidden, NH = c->n_head, NKV = c->n_kv_head, hd = c->head_dim;
    int N = B * T, qkv_dim = (NH + 2 * NKV) * hd, A = attn_dim(c), F = fc_dim(c);
    ParameterTensors *p = &m->params, *g = &m->grads;
    Activations *a = &m->acts;
    BackwardScratch *s = &m->scratch;
    logprob_backward(a->logits, a->dlogp, a->lse, m->resp_target, R, c->vocab_size);
    memset(s->dhidden, 0, (size_t)R * C * sizeof(float));
    matmul_backward(s->dhidden, c->tied ? g->wte : g->lmhead, NULL, a->logits, a->hidden, c->tied ? p->wte : p->lmhead,
                    R, C, c->vocab_size);
    memset(s->dln, 0, (size_t)N * C * sizeof(float));
    for (int r = 0; r < R; r++) {
        float *d = s->dln + (size_t)m->resp_row[r] * C;
        for (int i = 0; i < C; i++) d[i] += s->dhidden[(size_t)r * C + i];
    }
    memset(s->dresidual, 0, (size_t)N * C * sizeof(float));
    const float *last = a->residual3 + (size_t)(c->n_layer - 1) * N * C;
    if (c->arch == ARCH_LLAMA) rmsnorm_backward(s->dresidual, g->lnfw, s->dln, last, p->lnfw, a->lnf_rstd, N, C);
    else layernorm_backward(s->dresidual, g->lnfw, g->lnfb, s->dln, last, p->lnfw, a->lnf_mean, a->lnf_rstd, N, C);
    for (int l = c->n_layer - 1; l >= 0; l--) {
        const float *x = l == 0 ? a->encoded : a->residual3 + (size_t)(l - 1) * N * C;
        float *ln1 = a->ln1 + (size_t)l * N * C, *qkv = a->qkv + (size_t)l * N * qkv_dim;
        float *atty = a->atty + (size_t)l * N * A, *att = a->att + (size_t)l * B * NH * T * T;
        float *res2 = a->residual2 + (size_t)l * N * C, *ln2 = a->ln2 + (size_t)l * N * C;
        float *fch = a->fch + (size_t)l * N * F, *fchg = a->fch_gelu + (size_t)l * N * H;
        // dresidual holds dLoss/d residual3[l]; it flows unchanged into residual2 and x (residual adds)
        if (c->arch == ARCH_LLAMA) {
            memset(s->dfch_gelu, 0, (size_t)N * H * sizeof(float));
            matmul_backward(s->dfch_gelu, g->fcprojw + (size_t)l * C * H, at_layer(g->fcprojb, l, C), s->dresidual, fchg,
                            p->fcprojw + (size_t)l * C * H, N, H, C);
            memset(s->dfch, 0, (size_t)N * F * sizeof(float));
            swiglu_backward(s->dfch, fch, s->dfch_gelu, N, H);
            memset(s->dln, 0, (size_t)N * C * sizeof(float));
            matmul_backward(s->dln, g->fcw + (size_t)l * F * C, at_layer(g->fcb, l, F), s->dfch, ln2, p->fcw + (size_t)l * F * C, N, C, F);
            rmsnorm_backward(s->dresidual, g->ln2w + l * C, s->dln, res2, p->ln2w + l * C, a->ln2_rstd + l * N, N, C);
            memset(s->datty, 0, (size_t)N * A * sizeof(float));
            matmul_backward(s->datty, g->attprojw + (size_t)l * C * A, at_layer(g->attprojb, l, C), s->dresidual, atty,
                            p->attprojw + (size_t)l * C * A, N, A, C);
            memset(s->dqkv, 0, (size_t)N * qkv_dim * sizeof(float));
            attention_backward(s->dqkv, s->datty, qkv, att, B, T, NH, NKV, hd);
            rope_backward(s->dqkv, m->rope_cos, m->rope_sin, B, T, NH + NKV, hd, qkv_dim);
            memset(s->dln, 0, (size_t)N * C * sizeof(float));
            matmul_backward(s->dln, g->qkvw + (size_t)l * qkv_dim * C, at_layer(g->qkvb, l, qkv_dim), s->dqkv, ln1,
                            p->qkvw + (size_t)l * qkv_dim * C, N, C, qkv_dim);
            rmsnorm_backward(s->dresidual, g->ln1w + l * C, s->dln, x, p->ln1w + l * C, a->ln1_rstd + l * N, N, C);
            continue;
        }
        memset(s->dfch_gelu, 0, (size_t)N * H * sizeof(float));
        matmul_backward(s->dfch_gelu, g->fcprojw + (size_t)l * C * H, g->fcprojb + l * C, s->dresidual, fchg,
                        p->fcprojw + (size_t)l * C * H, N, H, C);
        memset(s->dfch, 0, (size_t)N * H * sizeof(float));
        gelu_backward(s->dfch, fch, s->dfch_gelu, (size_t)N * H);
        memset(s->dln, 0, (size_t)N * C * sizeof(float));
        matmul_backward(s->dln, g->fcw + (size_t)l * H * C, g->fcb + l * H, s->dfch, ln2, p->fcw + (size_t)l * H * C, N, C, H);
        layernorm_backward(s->dresidual, g->ln2w + l * C, g->ln2b + l * C, s->dln, res2, p->ln2w + l * C,
                           a->ln2_mean + l * N, a->ln2_rstd + l * N, N, C);
        memset(s->datty, 0, (size_t)N * C * sizeof(float));
        matmul_backward(s->datty, g->attprojw + (size_t)l * C * C, g->attprojb + l * C, s->dresidual, atty,
                        p->attprojw + (size_t)l * C * C, N, C, C);
        memset(s->dqkv, 0, (size_t)N * qkv_dim * sizeof(float));
        attention_backward(s->dqkv, s->datty, qkv, att, B, T, NH, NKV, hd);
        memset(s->dln, 0, (size_t)N * C * sizeof(float));
        matmul_backward(s->dln, g->qkvw + (size_t)l * qkv_dim * C, g->qkvb + l * qkv_dim, s->dqkv, ln1,
                        p->qkvw + (size_t)l * qkv_dim * C, N, C, qkv_dim);
        layernorm_backward(s->dresidual, g->ln1w + l * C, g->ln1b + l * C, s->dln, x, p->ln1w + l * C,
                           a->ln1_mean + l * N, a->ln1_rstd + l * N, N, C);
    }
    encoder_backward(g->wte, g->wpe, s->dresidual, m->tokens, B, T, C);
}

// ----------------------------------------------------------------------------
// incremental decoding (sampling): a key/value cache per layer, so each new token costs one row
// through the network instead of a forward over its whole sequence. The prompt goes through
// model_forward once (kv_prefill copies its keys and values, Llama's already rotated); then
// decode_step takes one token per sequence at its position (the RoPE angle / GPT-2 wpe row).

typedef struct {
    int B, T;                     // sequences and positions the cache holds
    float *k, *v;                 // (L, B, T, NKV hd)
    float *x, *ln, *qkv, *atty, *res, *fch, *fchg, *mean, *rstd, *att; // rows in flight: (B, ...), att (B, NH, T)
    float *logits;                // (B, V)
} KVCache;

static void kv_alloc(KVCache *kv, const Config *c, int B, int T) {
    size_t KV = (size_t)c->n_kv_head * c->head_dim, C = c->channels;
    kv->B = B; kv->T = T;
    kv->k = xmalloc((size_t)c->n_layer * B * T * KV * sizeof(float));
    kv->v = xmalloc((size_t)c->n_layer * B * T * KV * sizeof(float));
    float **bufs[] = {&kv->x, &kv->ln, &kv->qkv, &kv->atty, &kv->res, &kv->fch, &kv->fchg, &kv->mean, &kv->rstd,
                      &kv->att, &kv->logits};
    size_t widths[] = {(size_t)C, (size_t)C, (size_t)qkv_dim(c), (size_t)attn_dim(c), (size_t)C, (size_t)fc_dim(c),
                       (size_t)c->hidden, 1, 1, (size_t)c->n_head * T, (size_t)c->vocab_size};
    for (int i = 0; i < 11; i++) *bufs[i] = xmalloc((size_t)B * widths[i] * sizeof(float));
}

static void kv_free(KVCache *kv) {
    float *bufs[] = {kv->k, kv->v, kv->x, kv->ln, kv->qkv, kv->atty, kv->res, kv->fch, kv->fchg, kv->mean, kv->rstd, kv->att, kv->logits};
    for (int i = 0; i < 13; i++) free(bufs[i]);
}

// after model_forward over B <= kv->B sequences of T <= kv->T tokens: cache every position's k, v
static void kv_prefill(const Model *m, KVCache *kv) {
    const Config *c = &m->config;
    int QKV = qkv_dim(c), KV = c->n_kv_head * c->head_dim, A = attn_dim(c);
    for (int l = 0; l < c->n_layer; l++)
        for (int b = 0; b < m->B; b++)
            for (int t = 0; t < m->T; t++) {
                const float *row = m->acts.qkv + ((size_t)l * m->B * m->T + (size_t)b * m->T + t) * QKV;
                size_t at = (((size_t)l * kv->B + b) * kv->T + t) * KV;
                memcpy(kv->k + at, row + A, KV * sizeof(float));
                memcpy(kv->v + at, row + A + KV, KV * sizeof(float));
            }
}

// attention_forward's last row for each sequence in flight: query row i (sequence seq[i], position
// pos[i]) against that sequence's cached keys and values 0..pos[i]
static void attention_decode(float *out, float *att, const float *qkv, const float *kc, const float *vc,
                             const int *seq, const int *pos, int n, int T, int NH, int NKV, int hd) {
    int qkv_dim = (NH + 2 * NKV) * hd, group = NH / NKV, KV = NKV * hd;
    float scale = 1.0f / sqrtf((float)hd);
    #pragma omp parallel for collapse(2)
    for (int i = 0; i < n; i++)
        for (int h = 0; h < NH; h++) {
            const float *q = qkv + (size_t)i * qkv_dim + h * hd;
            const float *k0 = kc + (size_t)seq[i] * T * KV + (h / group) * hd, *v0 = vc + (size_t)seq[i] * T * KV + (h / group) * hd;
            float *a = att + ((size_t)i * NH + h) * T, maxval = -INFINITY;
            for (int t2 = 0; t2 <= pos[i]; t2++) {
                const float *k = k0 + (size_t)t2 * KV;
                float s = 0;
                for (int j = 0; j < hd; j++) s += q[j] * k[j];
                a[t2] = s * scale;
                if (a[t2] > maxval) maxval = a[t2];
            }
            float sum = 0;
            for (int t2 = 0; t2 <= pos[i]; t2++) { a[t2] = expf(a[t2] - maxval); sum += a[t2]; }
            for (int t2 = 0; t2 <= pos[i]; t2++) a[t2] /= sum;
            float *o = out + (size_t)i * NH * hd + h * hd;
            for (int j = 0; j < hd; j++) o[j] = 0;
            for (int t2 = 0; t2 <= pos[i]; t2++) {
                const float *v = v0 + (size_t)t2 * KV;
                for (int j = 0; j < hd; j++) o[j] += a[t2] * v[j];
            }
        }
}

// n new tokens: token[i] at position pos[i] of cached sequence seq[i]; fills kv->logits (n, V)
static void decode_step(const Model *m, KVCache *kv, const int *token, const int *pos, const int *seq, int n) {
    const Config *c = &m->config;
    const ParameterTensors *p = &m->params;
    int C = c->channels, H = c->hidden, NH = c->n_head, NKV = c->n_kv_head, hd = c->head_dim;
    int QKV = qkv_dim(c), A = attn_dim(c), F = fc_dim(c), KV = NKV * hd, llama = c->arch == ARCH_LLAMA;
    for (int i = 0; i < n; i++) {
        const float *te = p->wte + (size_t)token[i] * C;
        for (int j = 0; j < C; j++) kv->x[(size_t)i * C + j] = te[j] + (p->wpe ? p->wpe[(size_t)pos[i] * C + j] : 0.0f);
    }
    for (int l = 0; l < c->n_layer; l++) {
        float *kc = kv->k + (size_t)l * kv->B * kv->T * KV, *vc = kv->v + (size_t)l * kv->B * kv->T * KV;
        if (llama) rmsnorm_forward(kv->ln, kv->rstd, kv->x, p->ln1w + l * C, n, C, c->norm_eps);
        else layernorm_forward(kv->ln, kv->mean, kv->rstd, kv->x, p->ln1w + l * C, p->ln1b + l * C, n, C, c->norm_eps);
        matmul_forward(kv->qkv, kv->ln, p->qkvw + (size_t)l * QKV * C, at_layer(p->qkvb, l, QKV), n, C, QKV);
        for (int i = 0; i < n; i++) {
            float *row = kv->qkv + (size_t)i * QKV;
            if (llama) rope_forward(row, m->rope_cos + (size_t)pos[i] * (hd / 2), m->rope_sin + (size_t)pos[i] * (hd / 2),
                                    1, 1, NH + NKV, hd, QKV);
            size_t at = ((size_t)seq[i] * kv->T + pos[i]) * KV;
            memcpy(kc + at, row + A, KV * sizeof(float));
            memcpy(vc + at, row + A + KV, KV * sizeof(float));
        }
        attention_decode(kv->atty, kv->att, kv->qkv, kc, vc, seq, pos, n, kv->T, NH, NKV, hd);
        matmul_forward(kv->res, kv->atty, p->attprojw + (size_t)l * C * A, at_layer(p->attprojb, l, C), n, A, C);
        residual_forward(kv->x, kv->x, kv->res, (size_t)n * C);
        if (llama) rmsnorm_forward(kv->ln, kv->rstd, kv->x, p->ln2w + l * C, n, C, c->norm_eps);
        else layernorm_forward(kv->ln, kv->mean, kv->rstd, kv->x, p->ln2w + l * C, p->ln2b + l * C, n, C, c->norm_eps);
        matmul_forward(kv->fch, kv->ln, p->fcw + (size_t)l * F * C, at_layer(p->fcb, l, F), n, C, F);
        if (llama) swiglu_forward(kv->fchg, kv->fch, n, H);
        else gelu_forward(kv->fchg, kv->fch, (size_t)n * H);
        matmul_forward(kv->res, kv->fchg, p->fcprojw + (size_t)l * C * H, at_layer(p->fcprojb, l, C), n, H, C);
        residual_forward(kv->x, kv->x, kv->res, (size_t)n * C);
    }
    if (llama) rmsnorm_forward(kv->ln, kv->rstd, kv->x, p->lnfw, n, C, c->norm_eps);
    else layernorm_forward(kv->ln, kv->mean, kv->rstd, kv->x, p->lnfw, p->lnfb, n, C, c->norm_eps);
    matmul_forward(kv->logits, kv->ln, c->tied ? p->wte : p->lmhead, NULL, n, C, c->vocab_size);
}

// ----------------------------------------------------------------------------
// batches of pairs: sequence 2i is prompt+chosen, 2i+1 is prompt+rejected.
// Position t predicts token t+1, so the response tokens y_1..y_n of a sequence with
// a prompt of P tokens are predicted at positions P-1 .. P+n-2.

static int pair_seq_len(const Pair *p, int rejected) { return p->n_prompt + (rejected ? p->n_rejected : p->n_chosen); }

static void model_set_batch(Model *m, Pair *const *pairs, int n_pairs) {
    int T = 0;
    for (int i = 0; i < n_pairs; i++)
        for (int k = 0; k < 2; k++) if (pair_seq_len(pairs[i], k) > T) T = pair_seq_len(pairs[i], k);
    m->B = 2 * n_pairs; m->T = T; m->R = 0;
    for (int i = 0; i < n_pairs; i++)
        for (int k = 0; k < 2; k++) {
            const Pair *p = pairs[i];
            int b = 2 * i + k, n_resp = k ? p->n_rejected : p->n_chosen;
            const int *resp = k ? p->rejected : p->chosen;
            int *row = m->tokens + (size_t)b * T;
            memcpy(row, p->prompt, p->n_prompt * sizeof(int));
            memcpy(row + p->n_prompt, resp, n_resp * sizeof(int));
            for (int t = p->n_prompt + n_resp; t < T; t++) row[t] = 0; // padding: causal attention never looks right
            for (int j = 0; j < n_resp; j++) {
                m->resp_row[m->R] = b * T + p->n_prompt - 1 + j;
                m->resp_seq[m->R] = b;
                m->resp_target[m->R] = resp[j];
                m->R++;
            }
        }
}

// summed response log-probs per sequence: seq_logp[b]
static void sequence_logps(const Model *m, double *seq_logp) {
    for (int b = 0; b < m->B; b++) seq_logp[b] = 0;
    for (int r = 0; r < m->R; r++) seq_logp[m->resp_seq[r]] += m->acts.logp[r];
}

// ----------------------------------------------------------------------------
// the objective: per-pair statistics in, loss and dLoss/d(summed log-probs) out.
// s = summed response log-prob, n = response length, l = s/n; r = reference model's s.

typedef struct { double s_c, s_r; int n_c, n_r; double ref_c, ref_r; } PairStats;
typedef struct { double loss, d_sc, d_sr; } PairLoss;
// hyper-parameters: gamma target margin, beta inverse temperature, lambda weight of an
// auxiliary term, delta hinge margin (SLiC), alpha length penalty (R-DPO)
typedef struct { double gamma, beta, lambda, delta, alpha; } LossParams;

static double softplus(double x) { return (x > 0 ? x : 0) + log1p(exp(-fabs(x))); }
static double sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }
static double margin(PairStats p) { return p.s_c / p.n_c - p.s_r / p.n_r; }

// RePO: ReLU(gamma - M). Pairs with M >= gamma are filtered: zero loss, zero gradient.
static PairLoss loss_repo(PairStats p, LossParams h) {
    double M = margin(p);
    if (M >= h.gamma) return (PairLoss){0, 0, 0};
    return (PairLoss){h.gamma - M, -1.0 / p.n_c, 1.0 / p.n_r};
}

// SimPO: -log sigmoid(beta (M - gamma)); dL/dM = -beta sigmoid(-beta (M - gamma))
static PairLoss loss_simpo(PairStats p, LossParams h) {
    double z = h.beta * (margin(p) - h.gamma), dM = -h.beta * sigmoid(-z);
    return (PairLoss){softplus(-z), dM / p.n_c, -dM / p.n_r};
}

// RePO++: -log sigmoid(min(beta (M - gamma), 0)): SimPO's weighting, RePO's filter
static PairLoss loss_repo_pp(PairStats p, LossParams h) {
    double z = h.beta * (margin(p) - h.gamma);
    if (z >= 0) return (PairLoss){log(2.0), 0, 0};
    double dM = -h.beta * sigmoid(-z);
    return (PairLoss){softplus(-z), dM / p.n_c, -dM / p.n_r};
}

// DPO: -log sigmoid(beta [(s_c - r_c) - (s_r - r_r)]), summed log-probs against the frozen initial model
static PairLoss loss_dpo(PairStats p, LossParams h) {
    double z = h.beta * ((p.s_c - p.ref_c) - (p.s_r - p.ref_r)), dz = -h.beta * sigmoid(-z);
    return (PairLoss){softplus(-z), dz, -dz};
}

// IPO: ((s_c - r_c)/n_c - (s_r - r_r)/n_r - 1/(2 beta))^2
static PairLoss loss_ipo(PairStats p, LossParams h) {
    double u = (p.s_c - p.ref_c) / p.n_c - (p.s_r - p.ref_r) / p.n_r - 1.0 / (2 * h.beta);
    return (PairLoss){u * u, 2 * u / p.n_c, -2 * u / p.n_r};
}

// SFT on the chosen responses: -l_chosen
static PairLoss loss_sft(PairStats p, LossParams h) {
    return (PairLoss){-p.s_c / p.n_c, -1.0 / p.n_c, 0};
}

// SLiC-HF: max(0, delta - s_c + s_r) - lambda s_c
static PairLoss loss_slic(PairStats p, LossParams h) {
    double hinge = h.delta - p.s_c + p.s_r;
    if (hinge <= 0) return (PairLoss){-h.lambda * p.s_c, -h.lambda, 0};
    return (PairLoss){hinge - h.lambda * p.s_c, -1 - h.lambda, 1};
}

// CPO: -log sigmoid(beta s_c - beta s_r) - lambda s_c
static PairLoss loss_cpo(PairStats p, LossParams h) {
    double z = h.beta * (p.s_c - p.s_r), dz = -h.beta * sigmoid(-z);
    return (PairLoss){softplus(-z) - h.lambda * p.s_c, dz - h.lambda, -dz};
}

// ORPO: -l_c - lambda log sigmoid(odds(l_c) - odds(l_r)), odds(l) = l - log(1 - e^l), d odds/dl = 1/(1 - e^l).
// dL/dl_c = -1 - lambda sigmoid(-z) / (1 - e^l_c) is 0/0 when a confident model's l_c rounds to 0;
// multiplied out it is -1 - lambda / ((1 - e^l_c) + e^(l_c - odds(l_r))), finite there.
static PairLoss loss_orpo(PairStats p, LossParams h) {
    double lc = p.s_c / p.n_c, lr = p.s_r / p.n_r, odds_r = lr - log(-expm1(lr));
    double z = (lc - log(-expm1(lc))) - odds_r;
    double d_lc = -1 - h.lambda / (-expm1(lc) + exp(lc - odds_r)), d_lr = h.lambda * sigmoid(-z) / -expm1(lr);
    return (PairLoss){-lc + h.lambda * softplus(-z), d_lc / p.n_c, d_lr / p.n_r};
}

// R-DPO: -log sigmoid(beta h_c - beta h_r - alpha (n_c - n_r)), h = s - r
static PairLoss loss_rdpo(PairStats p, LossParams h) {
    double z = h.beta * ((p.s_c - p.ref_c) - (p.s_r - p.ref_r)) - h.alpha * (p.n_c - p.n_r), dz = -h.beta * sigmoid(-z);
    return (PairLoss){softplus(-z), dz, -dz};
}

// DPO with RePO's filter: ReLU(gamma - (h_c - h_r))
static PairLoss loss_dpo_repo(PairStats p, LossParams h) {
    double hm = (p.s_c - p.ref_c) - (p.s_r - p.ref_r);
    if (hm >= h.gamma) return (PairLoss){0, 0, 0};
    return (PairLoss){h.gamma - hm, -1, 1};
}

// DPO with RePO++'s filter: -log sigmoid(min(beta (h_c - h_r) - gamma, 0))
static PairLoss loss_dpo_repo_pp(PairStats p, LossParams h) {
    double z = h.beta * ((p.s_c - p.ref_c) - (p.s_r - p.ref_r)) - h.gamma;
    if (z >= 0) return (PairLoss){log(2.0), 0, 0};
    double dz = -h.beta * sigmoid(-z);
    return (PairLoss){softplus(-z), dz, -dz};
}

// which hyper-parameters a loss reads (any other is refused on the command line)
enum { USES_GAMMA = 1, USES_BETA = 2, USES_LAMBDA = 4, USES_DELTA = 8, USES_ALPHA = 16, NEEDS_REFERENCE = 32 };
typedef struct {
    const char *name;
    PairLoss (*fn)(PairStats, LossParams);
    int flags;
    LossParams defaults;    // gamma, beta, lambda, delta, alpha
    const char *formula;
} LossKind;

static const LossKind LOSSES[] = {
    {"repo",       loss_repo,        USES_GAMMA,                            {0.5, 0, 0, 0, 0},     "ReLU(gamma - M)"},
    {"simpo",      loss_simpo,       USES_GAMMA | USES_BETA,                {0.5, 2.5, 0, 0, 0},   "-log sigmoid(beta (M - gamma))"},
    {"repo++",     loss_repo_pp,     USES_GAMMA | USES_BETA,                {0.5, 2.5, 0, 0, 0},   "-log sigmoid(min(beta (M - gamma), 0))"},
    {"dpo",        loss_dpo,         USES_BETA | NEEDS_REFERENCE,           {0, 0.1, 0, 0, 0},     "-log sigmoid(beta [(s_c - r_c) - (s_r - r_r)])"},
    {"ipo",        loss_ipo,         USES_BETA | NEEDS_REFERENCE,           {0, 0.1, 0, 0, 0},     "((s_c - r_c)/n_c - (s_r - r_r)/n_r - 1/(2 beta))^2"},
    {"sft",        loss_sft,         0,                                     {0, 0, 0, 0, 0},       "-l_c"},
    {"slic",       loss_slic,        USES_LAMBDA | USES_DELTA,              {0, 0, 0.1, 1.0, 0},   "max(0, delta - s_c + s_r) - lambda s_c"},
    {"cpo",        loss_cpo,         USES_BETA | USES_LAMBDA,               {0, 0.1, 1.0, 0, 0},   "-log sigmoid(beta s_c - beta s_r) - lambda s_c"},
    {"orpo",       loss_orpo,        USES_LAMBDA,                           {0, 0, 0.1, 0, 0},     "-l_c - lambda log sigmoid(odds(l_c) - odds(l_r))"},
    {"rdpo",       loss_rdpo,        USES_BETA | USES_ALPHA | NEEDS_REFERENCE, {0, 0.1, 0, 0, 0.05}, "-log sigmoid(beta h_c - beta h_r - alpha (n_c - n_r))"},
    {"dpo-repo",   loss_dpo_repo,    USES_GAMMA | NEEDS_REFERENCE,          {0.5, 0, 0, 0, 0},     "ReLU(gamma - (h_c - h_r))"},
    {"dpo-repo++", loss_dpo_repo_pp, USES_GAMMA | USES_BETA | NEEDS_REFERENCE, {0.5, 0.1, 0, 0, 0}, "-log sigmoid(min(beta (h_c - h_r) - gamma, 0))"},
};
#define NUM_LOSSES ((int)(sizeof LOSSES / sizeof *LOSSES))

static const LossKind *find_loss(const char *name) {
    for (int i = 0; i < NUM_LOSSES; i++) if (!strcmp(LOSSES[i].name, name)) return &LOSSES[i];
    return NULL;
}

// ----------------------------------------------------------------------------
// AdamW as torch.optim.AdamW; weight decay on the 2-D tensors, which lead the buffer

static double global_grad_norm(const Model *m) {
    double sum = 0;
    #pragma omp parallel for reduction(+ : sum)
    for (size_t i = 0; i < m->num_parameters; i++) sum += (double)m->grads_memory[i] * m->grads_memory[i];
    return sqrt(sum);
}

static void adamw_update(Model *m, float lr, float beta1, float beta2, float eps, float weight_decay, int t) {
    float bias1 = 1.0f - powf(beta1, (float)t), bias2 = 1.0f - powf(beta2, (float)t);
    #pragma omp parallel for
    for (size_t i = 0; i < m->num_parameters; i++) {
        float g = m->grads_memory[i], wd = i < m->num_decay_parameters ? weight_decay : 0.0f;
        float mom = m->m_memory[i] = beta1 * m->m_memory[i] + (1.0f - beta1) * g;
        float vel = m->v_memory[i] = beta2 * m->v_memory[i] + (1.0f - beta2) * g * g;
        m->params_memory[i] -= lr * (wd * m->params_memory[i] + (mom / bias1) / (sqrtf(vel / bias2) + eps));
    }
}

// ----------------------------------------------------------------------------
// where the compute runs. Training and eval call these; on the CPU they are the functions
// above. repo.cu defines REPO_CUDA, includes this file, and supplies them on the GPU: the host
// keeps the same buffers, and only per-position log-probs (forward) and their gradients
// (backward) cross between host and device for each batch.

#ifndef REPO_CUDA
static void device_setup(Model *m) { (void)m; }                 // params are ready on the host
static void device_forward(Model *m) { model_forward(m); }       // tokens, resp_* -> acts.logp
static void device_backward(Model *m) { model_backward(m); }     // acts.dlogp -> += grads
static void device_zero_grads(Model *m) { memset(m->grads_memory, 0, m->num_parameters * sizeof(float)); }
static double device_grad_norm(Model *m) { return global_grad_norm(m); }
static void device_scale_grads(Model *m, float scale) {
    for (size_t i = 0; i < m->num_parameters; i++) m->grads_memory[i] *= scale;
}
static void device_adamw(Model *m, float lr, float weight_decay, int t) { adamw_update(m, lr, 0.9f, 0.999f, 1e-8f, weight_decay, t); }
static void device_sync_params(Model *m) { (void)m; }           // before parameters are saved
static void device_sync_grads(Model *m) { (void)m; }            // before gradients are saved
#else
static void device_setup(Model *m);
static void device_forward(Model *m);
static void device_backward(Model *m);
static void device_zero_grads(Model *m);
static double device_grad_norm(Model *m);
static void device_scale_grads(Model *m, float scale);
static void device_adamw(Model *m, float lr, float weight_decay, int t);
static void device_sync_params(Model *m);
static void device_sync_grads(Model *m);
#endif

// ----------------------------------------------------------------------------
// schedules over the run's steps; s counts from 0

typedef enum { SCHED_CONSTANT, SCHED_LINEAR, SCHED_COSINE } Schedule;

// lr: linear warmup to lr over `warmup` steps, then constant / linear / cosine decay to 0
static double lr_at(int s, int n_steps, double lr, int warmup, Schedule kind) {
    if (s < warmup) return lr * (s + 1) / warmup;
    double p = (double)(s - warmup) / (n_steps - warmup > 1 ? n_steps - warmup : 1);
    if (kind == SCHED_LINEAR) return lr * (1 - p);
    if (kind == SCHED_COSINE) return lr * 0.5 * (1 + cos(M_PI * p));
    return lr;
}

// gamma: from gamma_start at the first step to gamma_end at the last ("large to small": 1.0 -> 0.2)
static double gamma_at(int s, int n_steps, double g0, double g1, Schedule kind) {
    double p = n_steps > 1 ? (double)s / (n_steps - 1) : 0;
    if (kind == SCHED_LINEAR) return g0 + (g1 - g0) * p;
    if (kind == SCHED_COSINE) return g1 + (g0 - g1) * 0.5 * (1 + cos(M_PI * p));
    return g0;
}

static int is_finite(double x) { // by bit pattern: -ffast-math may assume isfinite() is always true
    uint64_t bits; memcpy(&bits, &x, 8);
    return ((bits >> 52) & 0x7ff) != 0x7ff;
}

// ----------------------------------------------------------------------------
// command line

typedef struct {
    const char *model, *data, *out, *log, *save_grads, *loss_name, *prompts, *margins, *prompt_text;
    int no_progress;
    float temperature, top_p;
    int n_samples, max_new;
    double gamma, gamma_end, beta, lambda, delta, alpha, lr, weight_decay, grad_clip;
    Schedule gamma_schedule, lr_schedule;
    int warmup_steps, batch_pairs, micro_batch_pairs, steps, epochs, max_len, max_prompt_len, seed, shuffle;
    int save_every;
    const char *tokenizer, *chat_template; // text data (data.c)
    int skip_bad;
    int given_gamma, given_beta, given_lambda, given_delta, given_alpha, given_gamma_end, given_gamma_schedule;
} Options;

static void usage(void) {
    printf(
"usage: repo train --model DIR --data FILE --out DIR [options]\n"
"       repo eval  --model DIR --data FILE [--out FILE.jsonl] [--max-len T] [--max-prompt-len P]\n"
"       repo init  --config config.json --out DIR [--seed S]   a freshly initialized model\n"
"       repo sample --model DIR|FILE.gguf --prompt TEXT | --prompts FILE.jsonl [--n K] [--max-new N]\n"
"                   [--temperature T] [--top-p P] [--seed S] [--out FILE.jsonl]   K samples per prompt\n"
"                   (T 0: greedy); --prompt answers one chat message as text\n"
"       repo prepare --model DIR --data FILE.jsonl --out FILE.bin   text or id pairs -> binary pair file\n"
"       repo encode|decode --model DIR | --tokenizer PATH   stdin lines: text -> ids | ids -> text\n"
"\n"
"data options (train, eval, sample, prepare): --data/--prompts take JSONL (ids or text) or a prepare'd file\n"
"  --tokenizer PATH       tokenizer for text lines (default: the model's)\n"
"  --chat-template T      plain|chatml|llama3 (default chatml if the tokenizer has <|im_start|>, else plain)\n"
"  --skip-bad             skip bad text/id lines, counting them per reason, instead of stopping\n"
"\n"
"train options:\n"
"  --loss NAME            repo (default), simpo, repo++, dpo, ipo, sft, slic, cpo, orpo, rdpo,\n"
"                         dpo-repo, dpo-repo++ (formulas and defaults: README)\n"
"  --gamma G              target margin gamma, or its start with a schedule (default 0.5)\n"
"  --gamma-end G          gamma at the last step (default: --gamma)\n"
"  --gamma-schedule S     constant|linear|cosine from --gamma to --gamma-end (default constant)\n"
"  --beta B               inverse temperature (simpo, repo++ 2.5; dpo, ipo, cpo, rdpo, dpo-repo++ 0.1)\n"
"  --lambda L             auxiliary weight (slic 0.1, cpo 1.0, orpo 0.1)\n"
"  --delta D              SLiC hinge margin (default 1.0)\n"
"  --alpha A              R-DPO length penalty (default 0.05)\n"
"  --lr LR                peak learning rate (default 1e-6)\n"
"  --lr-schedule S        constant|linear|cosine after warmup (default cosine)\n"
"  --warmup-steps N       linear warmup steps (default 10%% of the steps)\n"
"  --weight-decay W       AdamW decoupled weight decay on 2-D tensors (default 0)\n"
"  --grad-clip C          clip the global gradient norm to C, 0 disables (default 1.0)\n"
"  --batch-pairs B        pairs per optimizer step (default 8)\n"
"  --micro-batch-pairs m  pairs per forward/backward, gradients accumulated (default B)\n"
"  --steps N | --epochs E length of the run (default 1 epoch)\n"
"  --max-len T            longest sequence, prompt + response (default min(512, n_positions))\n"
"  --max-prompt-len P     prompt tokens kept when a pair is too long (default T/2)\n"
"  --seed S               shuffling seed (default 42)\n"
"  --no-shuffle           batches in file order\n"
"  --log FILE             append one JSON object per step\n"
"  --margins FILE         append every pair's margin M, one JSON line per step\n"
"  --no-progress          a line per step even on a terminal (default there: a progress bar)\n"
"  --save-grads FILE      write the first step's raw gradients as safetensors\n"
"  --save-every N         also write --out every N steps\n"
"  --threads N            OpenMP threads\n"
"  --precision P          ./repo_cuda's matmuls: fp32 (default), tf32, bf16 (./repo: fp32 only)\n");
}

static Schedule parse_schedule(const char *flag, const char *v) {
    if (!strcmp(v, "constant")) return SCHED_CONSTANT;
    if (!strcmp(v, "linear")) return SCHED_LINEAR;
    if (!strcmp(v, "cosine")) return SCHED_COSINE;
    die("%s: unknown schedule \"%s\" (constant, linear, cosine)", flag, v);
}

static double parse_num(const char *flag, const char *v) {
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !is_finite(x)) die("%s: \"%s\" is not a number", flag, v);
    return x;
}

static int parse_int(const char *flag, const char *v) {
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < -2147483647L || x > 2147483647L) die("%s: \"%s\" is not an integer", flag, v);
    return (int)x;
}

// --precision: the GPU build's matmul precision (repo.cu); the CPU computes in fp32 only
static const char *opt_precision = "fp32";

static Options parse_options(int argc, char **argv) {
    Options o = {0};
    o.loss_name = "repo"; o.lr = 1e-6; o.lr_schedule = SCHED_COSINE; o.warmup_steps = -1;
    o.n_samples = 1; o.max_new = 64; o.temperature = 1.0f; o.top_p = 1.0f;
    o.grad_clip = 1.0; o.batch_pairs = 8; o.seed = 42; o.shuffle = 1; o.max_len = -1; o.max_prompt_len = -1;
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--no-shuffle")) { o.shuffle = 0; continue; }
        if (!strcmp(f, "--no-progress")) { o.no_progress = 1; continue; }
        if (!strcmp(f, "--skip-bad")) { o.skip_bad = 1; continue; }
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) { usage(); exit(0); }
        if (i + 1 >= argc) die("%s needs a value (see --help)", f);
        const char *v = argv[++i];
        if (!strcmp(f, "--model")) o.model = v;
        else if (!strcmp(f, "--data")) o.data = v;
        else if (!strcmp(f, "--margins")) o.margins = v;
        else if (!strcmp(f, "--prompts")) o.prompts = v;
        else if (!strcmp(f, "--prompt")) o.prompt_text = v;
        else if (!strcmp(f, "--tokenizer")) o.tokenizer = v;
        else if (!strcmp(f, "--chat-template")) o.chat_template = v;
        else if (!strcmp(f, "--n")) o.n_samples = parse_int(f, v);
        else if (!strcmp(f, "--max-new")) o.max_new = parse_int(f, v);
        else if (!strcmp(f, "--temperature")) o.temperature = (float)parse_num(f, v);
        else if (!strcmp(f, "--top-p")) o.top_p = (float)parse_num(f, v);
        else if (!strcmp(f, "--out")) o.out = v;
        else if (!strcmp(f, "--log")) o.log = v;
        else if (!strcmp(f, "--save-grads")) o.save_grads = v;
        else if (!strcmp(f, "--loss")) o.loss_name = v;
        else if (!strcmp(f, "--gamma")) { o.gamma = parse_num(f, v); o.given_gamma = 1; }
        else if (!strcmp(f, "--gamma-end")) { o.gamma_end = parse_num(f, v); o.given_gamma_end = 1; }
        else if (!strcmp(f, "--gamma-schedule")) { o.gamma_schedule = parse_schedule(f, v); o.given_gamma_schedule = 1; }
        else if (!strcmp(f, "--beta")) { o.beta = parse_num(f, v); o.given_beta = 1; }
        else if (!strcmp(f, "--lambda")) { o.lambda = parse_num(f, v); o.given_lambda = 1; }
        else if (!strcmp(f, "--delta")) { o.delta = parse_num(f, v); o.given_delta = 1; }
        else if (!strcmp(f, "--alpha")) { o.alpha = parse_num(f, v); o.given_alpha = 1; }
        else if (!strcmp(f, "--lr")) o.lr = parse_num(f, v);
        else if (!strcmp(f, "--lr-schedule")) o.lr_schedule = parse_schedule(f, v);
        else if (!strcmp(f, "--warmup-steps")) o.warmup_steps = parse_int(f, v);
        else if (!strcmp(f, "--weight-decay")) o.weight_decay = parse_num(f, v);
        else if (!strcmp(f, "--grad-clip")) o.grad_clip = parse_num(f, v);
        else if (!strcmp(f, "--batch-pairs")) o.batch_pairs = parse_int(f, v);
        else if (!strcmp(f, "--micro-batch-pairs")) o.micro_batch_pairs = parse_int(f, v);
        else if (!strcmp(f, "--steps")) o.steps = parse_int(f, v);
        else if (!strcmp(f, "--epochs")) o.epochs = parse_int(f, v);
        else if (!strcmp(f, "--max-len")) o.max_len = parse_int(f, v);
        else if (!strcmp(f, "--max-prompt-len")) o.max_prompt_len = parse_int(f, v);
        else if (!strcmp(f, "--seed")) o.seed = parse_int(f, v);
        else if (!strcmp(f, "--save-every")) o.save_every = parse_int(f, v);
        else if (!strcmp(f, "--precision")) {
            if (strcmp(v, "fp32") && strcmp(v, "tf32") && strcmp(v, "bf16")) die("--precision: unknown \"%s\" (fp32, tf32, bf16)", v);
#ifndef REPO_CUDA
            if (strcmp(v, "fp32")) die("--precision %s needs the GPU build (make cuda: ./repo_cuda); ./repo computes in fp32", v);
#endif
            opt_precision = v;
        }
        else if (!strcmp(f, "--threads")) {
#ifdef _OPENMP
            omp_set_num_threads(parse_int(f, v));
#endif
        } else die("unknown option %s (see --help)", f);
    }
    return o;
}

// ----------------------------------------------------------------------------
// shared by train and eval: load model and data, fit the data to the context

typedef struct { Model model; PairSet data; int max_len; } Setup;

static void setup(Setup *s, Options *o, int micro_pairs) {
    if (!o->model) die("--model DIR is required");
    if (!o->data) die("--data FILE is required");
    model_load(&s->model, o->model);
    const Config *c = &s->model.config;
    int max_len = o->max_len > 0 ? o->max_len : (c->max_seq_len < 512 ? c->max_seq_len : 512);
    if (max_len > c->max_seq_len) die("--max-len %d exceeds the model's %d positions", max_len, c->max_seq_len);
    if (c->sliding_window && max_len > c->sliding_window) // within the window, sliding-window attention is causal attention
        die("--max-len %d exceeds the model's sliding_window %d (sliding-window attention is not implemented)", max_len, c->sliding_window);
    if (max_len < 2) die("--max-len must be at least 2");
    int max_prompt = o->max_prompt_len > 0 ? o->max_prompt_len : max_len / 2;
    if (max_prompt >= max_len) die("--max-prompt-len %d must be smaller than --max-len %d", max_prompt, max_len);
    DataOptions dopt = {o->model, o->tokenizer, o->chat_template, o->skip_bad}; // a named struct: repo.cu compiles this file as C++
    data_load_pairs(&s->data, o->data, c->vocab_size, &dopt);
    int cut = pairs_truncate(&s->data, max_len, max_prompt);
    if (cut) printf("truncated %d of %d pairs to --max-len %d (prompt kept to its last %d tokens, responses cut at the end)\n",
                    cut, s->data.n_pairs, max_len, max_prompt);
    int longest = 0;
    for (int i = 0; i < s->data.n_pairs; i++)
        for (int k = 0; k < 2; k++) if (pair_seq_len(&s->data.pairs[i], k) > longest) longest = pair_seq_len(&s->data.pairs[i], k);
    s->max_len = longest;
    model_alloc_batch(&s->model, 2 * micro_pairs, longest);
}

// forward over pairs[0..n) in micro-batches; fills summed log-probs per pair (chosen, rejected)
static void score_pairs(Model *m, Pair *pairs, int n, int micro, double *s_c, double *s_r) {
    Pair **batch = xmalloc(micro * sizeof(Pair *));
    double *seq = xmalloc(2 * micro * sizeof(double));
    for (int i0 = 0; i0 < n; i0 += micro) {
        int k = n - i0 < micro ? n - i0 : micro;
        for (int i = 0; i < k; i++) batch[i] = &pairs[i0 + i];
        model_set_batch(m, batch, k);
        device_forward(m);
        sequence_logps(m, seq);
        for (int i = 0; i < k; i++) { s_c[i0 + i] = seq[2 * i]; s_r[i0 + i] = seq[2 * i + 1]; }
    }
    free(batch); free(seq);
}

// ----------------------------------------------------------------------------
// training

typedef struct { uint64_t state; } Rng;
static uint64_t rng_next(Rng *r) { // xorshift64*
    r->state ^= r->state >> 12; r->state ^= r->state << 25; r->state ^= r->state >> 27;
    return r->state * 2685821657736338717ULL;
}
static void shuffle(int *a, int n, Rng *r) {
    for (int i = n - 1; i > 0; i--) { int j = (int)(rng_next(r) % (uint64_t)(i + 1)); int t = a[i]; a[i] = a[j]; a[j] = t; }
}

static double now_seconds(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec * 1e-9; }

static int train(int argc, char **argv) {
    Options o = parse_options(argc, argv);
    const LossKind *loss = find_loss(o.loss_name);
    if (!loss) die("--loss: unknown loss \"%s\" (see --help for the list)", o.loss_name);
    if (!o.out) die("--out DIR is required");
    // a flag the loss does not read would silently do nothing: refuse it
    if ((o.given_gamma || o.given_gamma_end || o.given_gamma_schedule) && !(loss->flags & USES_GAMMA))
        die("--loss %s does not use gamma; drop --gamma/--gamma-end/--gamma-schedule", loss->name);
    if (o.given_beta && !(loss->flags & USES_BETA)) die("--loss %s does not use beta; drop --beta", loss->name);
    if (o.given_lambda && !(loss->flags & USES_LAMBDA)) die("--loss %s does not use lambda; drop --lambda", loss->name);
    if (o.given_delta && !(loss->flags & USES_DELTA)) die("--loss %s does not use delta; drop --delta", loss->name);
    if (o.given_alpha && !(loss->flags & USES_ALPHA)) die("--loss %s does not use alpha; drop --alpha", loss->name);
    if (!o.given_gamma) o.gamma = loss->defaults.gamma;
    if (!o.given_beta) o.beta = loss->defaults.beta;
    if (!o.given_lambda) o.lambda = loss->defaults.lambda;
    if (!o.given_delta) o.delta = loss->defaults.delta;
    if (!o.given_alpha) o.alpha = loss->defaults.alpha;
    if ((loss->flags & USES_BETA) && !(o.beta > 0)) die("--beta must be positive");
    if (!o.given_gamma_end) o.gamma_end = o.gamma;
    if (o.given_gamma_end && !o.given_gamma_schedule && o.gamma_end != o.gamma) o.gamma_schedule = SCHED_LINEAR;
    if (o.batch_pairs < 1) die("--batch-pairs must be at least 1");
    if (o.micro_batch_pairs <= 0 || o.micro_batch_pairs > o.batch_pairs) o.micro_batch_pairs = o.batch_pairs;
    if (o.steps < 0 || o.epochs < 0) die("--steps and --epochs must not be negative");
    if (o.steps && o.epochs) die("give --steps or --epochs, not both");
    if (o.lr < 0 || o.weight_decay < 0 || o.grad_clip < 0) die("--lr, --weight-decay and --grad-clip must not be negative");

    Setup s;
    setup(&s, &o, o.micro_batch_pairs);
    Model *m = &s.model;
    model_alloc_training(m);
    device_setup(m);
    PairSet *data = &s.data;
    int n_pairs = data->n_pairs, steps_per_epoch = (n_pairs + o.batch_pairs - 1) / o.batch_pairs;
    int n_steps = o.steps ? o.steps : steps_per_epoch * (o.epochs ? o.epochs : 1);
    int warmup = o.warmup_steps >= 0 ? o.warmup_steps : n_steps / 10;

    // reference-based losses compare against the frozen initial model, scored once up front
    double *ref_c = xcalloc(n_pairs, sizeof(double)), *ref_r = xcalloc(n_pairs, sizeof(double));
    if (loss->flags & NEEDS_REFERENCE) {
        printf("scoring %d pairs with the frozen reference model...\n", n_pairs);
        score_pairs(m, data->pairs, n_pairs, o.micro_batch_pairs, ref_c, ref_r);
    }
    printf("model: %d layers, %d channels, %d heads, vocab %d, %.2fM parameters\n", m->config.n_layer,
           m->config.channels, m->config.n_head, m->config.vocab_size, m->num_parameters / 1e6);
    printf("data: %d pairs, longest sequence %d tokens; %d steps of %d pairs (micro-batches of %d)\n",
           n_pairs, s.max_len, n_steps, o.batch_pairs, o.micro_batch_pairs);
    printf("loss: %s = %s", loss->name, loss->formula);
    if (loss->flags & USES_GAMMA) printf(", gamma %g -> %g", o.gamma, o.gamma_end);
    if (loss->flags & USES_BETA) printf(", beta %g", o.beta);
    if (loss->flags & USES_LAMBDA) printf(", lambda %g", o.lambda);
    if (loss->flags & USES_DELTA) printf(", delta %g", o.delta);
    if (loss->flags & USES_ALPHA) printf(", alpha %g", o.alpha);
    printf("; lr %g, warmup %d\n", o.lr, warmup);

    FILE *log = NULL, *margins_log = NULL;
    if (o.log && !(log = fopen(o.log, "a"))) die("%s: cannot open log", o.log);
    if (o.margins && !(margins_log = fopen(o.margins, "a"))) die("%s: cannot open", o.margins);
    int progress_bar = isatty(fileno(stdout)) && !o.no_progress;
    int *order = xmalloc(n_pairs * sizeof(int));
    for (int i = 0; i < n_pairs; i++) order[i] = i;
    Rng rng = {(uint64_t)o.seed * 0x9E3779B97F4A7C15ULL + 1};
    int cursor = n_pairs; // start a new epoch at the first step
    Pair **batch = xmalloc(o.batch_pairs * sizeof(Pair *));
    int *batch_idx = xmalloc(o.batch_pairs * sizeof(int));
    double *seq = xmalloc(2 * o.micro_batch_pairs * sizeof(double));
    double *margins = xmalloc(o.batch_pairs * sizeof(double));

    for (int step = 0; step < n_steps; step++) {
        double t0 = now_seconds();
        double lr = lr_at(step, n_steps, o.lr, warmup, o.lr_schedule);
        LossParams hp = {gamma_at(step, n_steps, o.gamma, o.gamma_end, o.gamma_schedule), o.beta, o.lambda, o.delta, o.alpha};
        int B = 0;
        while (B < o.batch_pairs) { // a batch never spans epochs: the last one of an epoch may be short
            if (cursor == n_pairs) {
                if (B > 0) break;
                cursor = 0;
                if (o.shuffle) shuffle(order, n_pairs, &rng);
            }
            batch_idx[B] = order[cursor++];
            batch[B] = &data->pairs[batch_idx[B]];
            B++;
        }
        device_zero_grads(m);
        double loss_sum = 0, lc_sum = 0, lr_sum = 0;
        int n_tokens = 0;
        for (int i0 = 0; i0 < B; i0 += o.micro_batch_pairs) {
            int k = B - i0 < o.micro_batch_pairs ? B - i0 : o.micro_batch_pairs;
            model_set_batch(m, batch + i0, k);
            device_forward(m);
            sequence_logps(m, seq);
            double d_seq[2 * k];
            int any = 0;
            for (int i = 0; i < k; i++) {
                Pair *p = batch[i0 + i];
                PairStats st = {seq[2 * i], seq[2 * i + 1], p->n_chosen, p->n_rejected,
                                ref_c[batch_idx[i0 + i]], ref_r[batch_idx[i0 + i]]};
                PairLoss pl = loss->fn(st, hp);
                loss_sum += pl.loss;
                d_seq[2 * i] = pl.d_sc / B;      // the batch loss is a mean over its pairs
                d_seq[2 * i + 1] = pl.d_sr / B;
                any |= pl.d_sc != 0 || pl.d_sr != 0;
                margins[i0 + i] = st.s_c / st.n_c - st.s_r / st.n_r;
                lc_sum += st.s_c / st.n_c; lr_sum += st.s_r / st.n_r;
            }
            for (int b = 0; b < 2 * k; b++) n_tokens += pair_seq_len(batch[i0 + b / 2], b % 2);
            if (!any) continue; // every pair filtered: nothing to propagate
            for (int r = 0; r < m->R; r++) m->acts.dlogp[r] = (float)d_seq[m->resp_seq[r]];
            device_backward(m);
        }
        double batch_loss = loss_sum / B, grad_norm = device_grad_norm(m);
        if (!is_finite(batch_loss) || !is_finite(grad_norm)) {
            device_sync_params(m);
            model_save(m, o.model, o.out);
            die("step %d: loss %g, gradient norm %g are not finite; stopped before the update. "
                "%s holds the last good parameters (after step %d)", step + 1, batch_loss, grad_norm, o.out, step);
        }
        if (step == 0 && o.save_grads) { device_sync_grads(m); model_write_tensors(m, m->grads_memory, o.save_grads); }
        if (o.grad_clip > 0 && grad_norm > o.grad_clip)
            device_scale_grads(m, (float)(o.grad_clip / (grad_norm + 1e-6))); // as torch.nn.utils.clip_grad_norm_
        device_adamw(m, (float)lr, (float)o.weight_decay, step + 1);

        double mean = 0, var = 0;
        int acc = 0, filtered = 0;
        for (int i = 0; i < B; i++) { mean += margins[i]; acc += margins[i] > 0; filtered += margins[i] >= hp.gamma; }
        mean /= B;
        for (int i = 0; i < B; i++) var += (margins[i] - mean) * (margins[i] - mean);
        double std = sqrt(var / B), dt = now_seconds() - t0;
        if (progress_bar) { // one line redrawn in place on a terminal
            int width = 24, done = (int)((double)(step + 1) / n_steps * width);
            printf("\r[%.*s%*s] %d/%d | loss %.4f | margin %+.3f | acc %.2f | filtered %3.0f%% | gamma %.2f | %.0f tok/s ",
                   done, "########################", width - done, "", step + 1, n_steps, batch_loss, mean,
                   (double)acc / B, 100.0 * filtered / B, hp.gamma, n_tokens / dt);
            if (step + 1 == n_steps) printf("\n");
        } else
            printf("step %4d/%d | loss %.6f | margin %+.4f ±%.4f | acc %.2f | filtered %5.1f%% | gamma %.3f | lr %.2e | |g| %.3e | %.0f tok/s\n",
                   step + 1, n_steps, batch_loss, mean, std, (double)acc / B, 100.0 * filtered / B, hp.gamma, lr, grad_norm, n_tokens / dt);
        fflush(stdout);
        if (margins_log) { // every pair's margin: the histograms of the "emergent curriculum"
            fprintf(margins_log, "{\"step\": %d, \"gamma\": %.6g, \"margins\": [", step + 1, hp.gamma);
            for (int i = 0; i < B; i++) fprintf(margins_log, i ? ", %.6g" : "%.6g", margins[i]);
            fprintf(margins_log, "]}\n");
        }
        if (log) {
            fprintf(log, "{\"step\": %d, \"loss\": %.9g, \"gamma\": %.9g, \"lr\": %.9g, \"margin_mean\": %.9g, "
                    "\"margin_std\": %.9g, \"acc\": %.9g, \"filtered_frac\": %.9g, \"chosen_logp\": %.9g, "
                    "\"rejected_logp\": %.9g, \"grad_norm\": %.9g, \"tokens_per_s\": %.1f}\n",
                    step + 1, batch_loss, hp.gamma, lr, mean, std, (double)acc / B, (double)filtered / B,
                    lc_sum / B, lr_sum / B, grad_norm, n_tokens / dt);
            fflush(log);
        }
        if (o.save_every > 0 && (step + 1) % o.save_every == 0 && step + 1 < n_steps) {
            device_sync_params(m);
            model_save(m, o.model, o.out);
        }
    }
    device_sync_params(m);
    model_save(m, o.model, o.out);
    printf("saved %s\n", o.out);
    if (log) fclose(log);
    if (margins_log) fclose(margins_log);
    return 0;
}

// ----------------------------------------------------------------------------
// eval: summed and mean log-probs of each pair under a model

static int eval(int argc, char **argv) {
    Options o = parse_options(argc, argv);
    int micro = 4;
    Setup s;
    setup(&s, &o, micro);
    device_setup(&s.model);
    int n = s.data.n_pairs;
    double *s_c = xmalloc(n * sizeof(double)), *s_r = xmalloc(n * sizeof(double));
    score_pairs(&s.model, s.data.pairs, n, micro, s_c, s_r);
    AtomicFile af = {0};
    if (o.out) af = atomic_open(o.out);
    double sum_m = 0, sum_c = 0, sum_r = 0;
    int acc = 0;
    for (int i = 0; i < n; i++) {
        Pair *p = &s.data.pairs[i];
        double lc = s_c[i] / p->n_chosen, lr = s_r[i] / p->n_rejected;
        sum_m += lc - lr; sum_c += lc; sum_r += lr; acc += lc - lr > 0;
        if (o.out)
            fprintf(af.f, "{\"chosen_logp\": %.9g, \"rejected_logp\": %.9g, \"chosen_len\": %d, \"rejected_len\": %d, \"margin\": %.9g}\n",
                    s_c[i], s_r[i], p->n_chosen, p->n_rejected, lc - lr);
    }
    if (o.out) atomic_close(&af);
    printf("pairs %d | margin_mean %.6f | acc %.4f | chosen_logp %.6f | rejected_logp %.6f\n",
           n, sum_m / n, (double)acc / n, sum_c / n, sum_r / n);
    return 0;
}

// ----------------------------------------------------------------------------
// sampling: extend each prompt one token at a time. The prompts go through one forward over
// the batch, read at each sequence's last position (the response-position machinery of
// training with one "response" row per sequence); every later token is one decode_step
// against the key/value cache.

typedef struct { float temperature, top_p; int max_new, eos; } SampleParams;

static double rng_uniform(Rng *r) { return (rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

static const float *sort_probs; // qsort has no context argument
static int by_prob_desc(const void *a, const void *b) {
    float pa = sort_probs[*(const int *)a], pb = sort_probs[*(const int *)b];
    return (pa < pb) - (pa > pb);
}

// temperature 0 is greedy; top_p < 1 samples from the smallest set of tokens holding that much mass
static int sample_token(const float *logits, int V, SampleParams sp, Rng *rng, float *probs, int *order) {
    int best = 0;
    for (int v = 1; v < V; v++) if (logits[v] > logits[best]) best = v;
    if (sp.temperature <= 0) return best;
    double sum = 0;
    for (int v = 0; v < V; v++) sum += probs[v] = expf((logits[v] - logits[best]) / sp.temperature);
    int n = V;
    for (int v = 0; v < V; v++) order[v] = v;
    if (sp.top_p < 1) {
        sort_probs = probs;
        qsort(order, V, sizeof(int), by_prob_desc);
        double mass = 0;
        for (n = 0; n < V && mass < sp.top_p * sum; n++) mass += probs[order[n]];
        sum = mass;
    }
    double u = rng_uniform(rng) * sum, c = 0;
    for (int i = 0; i < n; i++) { c += probs[order[i]]; if (u < c) return order[i]; }
    return order[n - 1];
}

// samples[i] gets the new tokens for prompts[i] (EOS included when produced), lens in sample_lens
static void generate(Model *m, int **prompts, const int *prompt_lens, int n, SampleParams sp, Rng *rng,
                     int **samples, int *sample_lens) {
    int V = m->config.vocab_size, maxB = m->max_B, maxT = m->max_T;
    int *seq = xmalloc((size_t)maxB * maxT * sizeof(int)), *len = xmalloc(maxB * sizeof(int)), *active = xmalloc(maxB * sizeof(int));
    float *probs = xmalloc(V * sizeof(float));
    int *order = xmalloc(V * sizeof(int));
    int *rows = xmalloc(maxB * sizeof(int)), *toks = xmalloc(maxB * sizeof(int)), *pos = xmalloc(maxB * sizeof(int));
    KVCache kv;
    kv_alloc(&kv, &m->config, maxB, maxT);
    for (int i0 = 0; i0 < n; i0 += maxB) {
        int k = n - i0 < maxB ? n - i0 : maxB;
        for (int b = 0; b < k; b++) {
            len[b] = prompt_lens[i0 + b] < maxT ? prompt_lens[i0 + b] : maxT;
            memcpy(seq + (size_t)b * maxT, prompts[i0 + b] + prompt_lens[i0 + b] - len[b], len[b] * sizeof(int));
            samples[i0 + b] = xmalloc((sp.max_new + 1) * sizeof(int));
            sample_lens[i0 + b] = 0;
            active[b] = len[b] < maxT;
        }
        // the prompts in one forward (logits at each last prompt position), their keys and values cached;
        // then one decode_step per new token for the sequences still going
        int T = 0, R = 0;
        for (int b = 0; b < k; b++) if (len[b] > T) T = len[b];
        m->B = k; m->T = T;
        for (int b = 0; b < k; b++) {
            for (int t = 0; t < T; t++) m->tokens[(size_t)b * T + t] = t < len[b] ? seq[(size_t)b * maxT + t] : 0;
            if (!active[b]) continue;
            m->resp_row[R] = b * T + len[b] - 1; m->resp_seq[R] = b; m->resp_target[R] = 0;
            R++;
        }
        if (R == 0 || sp.max_new <= 0) continue;
        m->R = R;
        model_forward(m);
        kv_prefill(m, &kv);
        const float *logits = m->acts.logits;
        for (int r = 0; r < R; r++) rows[r] = m->resp_seq[r];
        for (int step = 0; step < sp.max_new && R > 0; step++) {
            int going = 0;
            for (int r = 0; r < R; r++) {
                int b = rows[r];
                int tok = sample_token(logits + (size_t)r * V, V, sp, rng, probs, order);
                samples[i0 + b][sample_lens[i0 + b]++] = tok;
                seq[(size_t)b * maxT + len[b]++] = tok;
                if (tok == sp.eos || len[b] >= maxT) { active[b] = 0; continue; }
                rows[going] = b; toks[going] = tok; pos[going] = len[b] - 1; going++;
            }
            R = going;
            if (R == 0 || step + 1 == sp.max_new) break;
            decode_step(m, &kv, toks, pos, rows, R);
            logits = kv.logits;
        }
    }
    kv_free(&kv);
    free(rows); free(toks); free(pos);
    free(seq); free(len); free(active); free(probs); free(order);
}

static void write_ids(FILE *f, const int *ids, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) fprintf(f, i ? ", %d" : "%d", ids[i]);
    fputc(']', f);
}

static int sample(int argc, char **argv) {
    Options o = parse_options(argc, argv);
    if (!o.model) die("--model DIR is required");
    if (!o.prompts == !o.prompt_text) die("sample needs --prompt TEXT or --prompts FILE.jsonl");
    Model m;
    model_load(&m, o.model);
    SampleParams sp = {o.temperature, o.top_p, o.max_new, m.config.gguf_eos};
    if (!is_gguf(o.model)) {
        char path[4096];
        snprintf(path, sizeof path, "%s/config.json", o.model);
        JsonConfig *cfg = config_load(path);
        sp.eos = (int)config_first_int(cfg, "eos_token_id", -1);
        config_free(cfg);
    }
    if (sp.top_p <= 0 || sp.top_p > 1) die("--top-p must be in (0, 1]");
    PromptSet ps;
    DataOptions dopt = {o.model, o.tokenizer, o.chat_template, o.skip_bad};
    if (o.prompt_text) { // one chat message: answered as text, stopping at the template's end of turn
        memset(&ps, 0, sizeof ps);
        ps.n = 1;
        ps.lens = xmalloc(sizeof(int));
        ps.prompts = xmalloc(sizeof(int *));
        int end_of_turn;
        ps.lens[0] = data_chat_prompt(o.prompt_text, &dopt, &ps.ids, &end_of_turn);
        ps.prompts[0] = ps.ids;
        for (int i = 0; i < ps.lens[0]; i++)
            if (ps.ids[i] >= m.config.vocab_size) die("--prompt: token id %d is outside the model's vocabulary", ps.ids[i]);
        if (end_of_turn >= 0) sp.eos = end_of_turn;
    } else
        data_load_prompts(&ps, o.prompts, m.config.vocab_size, &dopt);
    int n = ps.n * o.n_samples, longest = 0;
    int **prompts = xmalloc(n * sizeof(int *)), *lens = xmalloc(n * sizeof(int));
    for (int i = 0; i < n; i++) {
        prompts[i] = ps.prompts[i / o.n_samples]; lens[i] = ps.lens[i / o.n_samples];
        if (lens[i] > longest) longest = lens[i];
    }
    int maxT = longest + sp.max_new < m.config.max_seq_len ? longest + sp.max_new : m.config.max_seq_len;
    model_alloc_batch(&m, n < 64 ? n : 64, maxT);
    int **samples = xmalloc(n * sizeof(int *)), *sample_lens = xmalloc(n * sizeof(int));
    Rng rng = {(uint64_t)o.seed * 0x9E3779B97F4A7C15ULL + 1};
    generate(&m, prompts, lens, n, sp, &rng, samples, sample_lens);
    if (o.prompt_text) { // the answers as text, the end-of-turn token left out
        for (int j = 0; j < o.n_samples; j++) {
            int len = sample_lens[j] - (sample_lens[j] > 0 && samples[j][sample_lens[j] - 1] == sp.eos);
            char *text = data_decode(samples[j], len, &dopt);
            printf("%s%s\n", o.n_samples > 1 ? "--- sample\n" : "", text);
            free(text);
        }
        return 0;
    }
    AtomicFile af = {0};
    FILE *f = stdout;
    if (o.out) { af = atomic_open(o.out); f = af.f; }
    for (int p = 0; p < ps.n; p++) {
        fprintf(f, "{\"prompt_ids\": ");
        write_ids(f, ps.prompts[p], ps.lens[p]);
        fprintf(f, ", \"samples\": [");
        for (int j = 0; j < o.n_samples; j++) {
            if (j) fprintf(f, ", ");
            write_ids(f, samples[p * o.n_samples + j], sample_lens[p * o.n_samples + j]);
        }
        fprintf(f, "]}\n");
    }
    if (o.out) atomic_close(&af);
    return 0;
}

// ----------------------------------------------------------------------------
// init: a freshly initialized model from a config.json, as Hugging Face initializes GPT-2:
// weights ~ N(0, 0.02), residual output projections scaled by 1/sqrt(2 n_layer), norms 1, biases 0

static double rng_normal(Rng *r) { // Box-Muller
    double u1 = ((rng_next(r) >> 11) + 0.5) / 9007199254740992.0, u2 = (rng_next(r) >> 11) / 9007199254740992.0;
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

static int init_model(int argc, char **argv) {
    const char *config = NULL, *out = NULL;
    int seed = 42;
    for (int i = 0; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--config")) config = argv[i + 1];
        else if (!strcmp(argv[i], "--out")) out = argv[i + 1];
        else if (!strcmp(argv[i], "--seed")) seed = parse_int(argv[i], argv[i + 1]);
        else die("init: unknown option %s (init --config FILE --out DIR [--seed S])", argv[i]);
    }
    if (argc % 2) die("init: %s needs a value", argv[argc - 1]);
    if (!config || !out) die("init: --config FILE and --out DIR are required");
    // validate the config before anything is written
    char tmpdir[4096];
    snprintf(tmpdir, sizeof tmpdir, "%s.tmp.%d", out, (int)getpid());
    make_dir(tmpdir);
    char dst[4200];
    snprintf(dst, sizeof dst, "%s/config.json", tmpdir);
    copy_file_atomic(config, dst);
    Model m;
    memset(&m, 0, sizeof m);
    m.config = config_from_file(tmpdir);
    model_alloc_parameters(&m);
    Rng rng = {(uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1};
    for (int i = 0; i < m.n_entries; i++) {
        TensorEntry *e = &m.entries[i];
        float *w = m.params_memory + e->offset;
        size_t n = (size_t)e->rows * (e->cols ? e->cols : 1);
        int is_bias = strstr(e->name, "bias") != NULL;
        double std = 0.02;
        if (strstr(e->name, "c_proj.weight") || strstr(e->name, "o_proj") || strstr(e->name, "down_proj"))
            std /= sqrt(2.0 * m.config.n_layer);
        for (size_t j = 0; j < n; j++) w[j] = e->cols ? (float)(std * rng_normal(&rng)) : is_bias ? 0.0f : 1.0f;
    }
    model_save(&m, tmpdir, tmpdir);
    if (rename(tmpdir, out) != 0) die("%s: cannot move the new model into place (does it exist already?)", out);
    printf("initialized %s: %.2fM parameters, seed %d\n", out, m.num_parameters / 1e6, seed);
    return 0;
}

#ifndef REPO_NO_MAIN
int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) { usage(); return argc < 2; }
    if (!strcmp(argv[1], "train")) return train(argc - 2, argv + 2);
    if (!strcmp(argv[1], "eval")) return eval(argc - 2, argv + 2);
    if (!strcmp(argv[1], "init")) return init_model(argc - 2, argv + 2);
    if (!strcmp(argv[1], "sample")) return sample(argc - 2, argv + 2);
    if (!strcmp(argv[1], "prepare") || !strcmp(argv[1], "encode") || !strcmp(argv[1], "decode"))
        return data_command(argv[1], argc - 2, argv + 2);
    die("unknown command \"%s\" (train, eval; see --help)", argv[1]);
}
#endif
