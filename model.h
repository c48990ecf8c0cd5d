// model.h: the model's configuration and its parameter layout, shared by repo.c (the algorithm)
// and checkpoint.c (which maps them onto Hugging Face and GGUF files).
#ifndef REPO_MODEL_H
#define REPO_MODEL_H
#include <stddef.h>

// GPT-2: LayerNorm, learned positions, GELU MLP, biases everywhere, tied head.
// Llama (also Mistral, Qwen2 where the math is the same): RMSNorm, rotary positions (RoPE),
// grouped-query attention, SwiGLU MLP, biases only where the config says, head tied or not.
typedef enum { ARCH_GPT2, ARCH_LLAMA } Arch;

typedef struct {
    Arch arch;
    int vocab_size;
    int max_seq_len;    // positions the model knows (GPT-2's n_positions, max_position_embeddings)
    int n_layer;
    int n_head;
    int n_kv_head;      // == n_head for GPT-2
    int channels;       // C
    int head_dim;       // hd; n_head * hd may differ from C in Llama
    int hidden;         // MLP width (4C for GPT-2, intermediate_size for Llama)
    float norm_eps;
    float rope_theta;   // Llama: RoPE base
    int tied;           // output head is the token embedding (always for GPT-2)
    int qkv_bias, proj_bias, mlp_bias; // which linear layers have biases (all for GPT-2)
    int sliding_window; // Mistral / Qwen2 attention window, 0 if none: sequences must fit in it
    int eos;            // the end-of-sequence id (config.json's eos_token_id, a GGUF's); -1 if none
} Config;

// widths derived from the config: the attention output (NH hd; C for GPT-2), the fused qkv rows
// [q (NH hd) | k (NKV hd) | v (NKV hd)], and the MLP's first layer (GPT-2 c_fc: H; Llama [gate | up]: 2H)
static inline int attn_dim(const Config *c) { return c->n_head * c->head_dim; }
static inline int qkv_dim(const Config *c) { return (c->n_head + 2 * c->n_kv_head) * c->head_dim; }
static inline int fc_dim(const Config *c) { return c->arch == ARCH_LLAMA ? 2 * c->hidden : c->hidden; }

// The parameters live in one buffer; these are named pointers into it. 2-D tensors come first so
// that AdamW's weight decay (2-D tensors only, as usual) is one flat loop with a cut-off.
// Tensors an architecture lacks have size 0 and a NULL pointer (GPT-2: lmhead; Llama: wpe, the norm
// biases, and the biases its config leaves out). Llama's names: wte embed_tokens,
// qkvw [q_proj | k_proj | v_proj], attprojw o_proj, fcw [gate_proj | up_proj], fcprojw down_proj,
// ln1w input_layernorm, ln2w post_attention_layernorm, lnfw model.norm, lmhead lm_head (untied only).
#define NUM_PARAMETER_TENSORS 17
#define NUM_MATRIX_TENSORS 7  // the first 7 are matrices (weight decay applies to them)
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

// ----------------------------------------------------------------------------
// checkpoint.c: how the buffer maps onto files. Each Hugging Face tensor is a name, an offset into
// the buffer, our shape (out, in), and whether the file stores it transposed (GPT-2's Conv1D keeps
// [in, out]). Every error is one line naming the file and the tensor or key.
typedef struct {
    char name[128];
    size_t offset;
    int rows, cols;       // cols == 0: a vector of `rows`
    int hf_transposed;
} TensorEntry;

#ifdef __cplusplus
extern "C" {
#endif
int is_gguf(const char *path);
// a model's configuration: DIR/config.json (GPT-2, Llama, Mistral, Qwen2), a config file itself, or a .gguf file's metadata
Config checkpoint_config(const char *model_path);
// the Hugging Face tensor names of a model whose parameters start at `base` (params pointing into it)
TensorEntry *checkpoint_entries(const Config *c, const ParameterTensors *p, const float *base, int *n_entries);
// every entry's tensor read into params (from safetensors, sharded or not, or dequantized from GGUF)
void checkpoint_load(const char *model_path, const Config *c, const TensorEntry *e, int n, float *params);
// `memory` (parameters or gradients, same layout) written under the entries' names (atomic)
void checkpoint_write_tensors(const TensorEntry *e, int n, const float *memory, const char *path);
// a directory Hugging Face loads: model.safetensors, config.json and tokenizer files copied from
// src (or generated, when src is a .gguf). Writes into out_dir, which must exist.
void checkpoint_save(const char *src, const Config *c, const TensorEntry *e, int n, const float *params,
                     const char *out_dir);

// The state of a training run beside its model in --out (a checkpoint: --save-every, SIGINT, the end):
// with the parameters and AdamW's moments, what `train --resume` needs to continue exactly.
typedef struct {
    int step, n_steps, finished;        // optimizer steps done; the run's length; 1 once the last is done
    int n_args;                         // the command's flags, to refuse a resume with different ones
    char **args;
    unsigned long long data_hash, eval_hash; // of the training and eval pairs' ids, as loaded
    int n_pairs, cursor, epoch;         // the data order: this epoch's permutation and the next position
    unsigned long long rng;
    int *order;
    long long log_bytes, margins_bytes; // where --log and --margins ended at this step
    double *ref_c, *ref_r;              // the frozen reference model's summed log-probs (DPO family), or NULL
} TrainerState;
void state_write(const char *dir, const TrainerState *s);   // DIR/trainer_state.json
int state_read(const char *dir, TrainerState *s);          // 0 when DIR holds none; dies naming a bad one
void optimizer_write(const char *dir, const float *m, const float *v, size_t n); // DIR/optimizer.safetensors
void optimizer_read(const char *dir, float *m, float *v, size_t n);
#ifdef __cplusplus
}
#endif
#endif
