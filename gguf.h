// gguf.h: a reader for GGUF files (llama.cpp's model format, versions 2 and 3).
//
// The whole file is mmap'ed read-only and every count, length and offset in it
// is checked against the file size before it is used, so a corrupt or
// truncated file gives a one-line error naming the file instead of a crash.
//
// What is accepted: files both references read, the gguf package (0.17,
// gguf-py) and ggml's gguf reader (llama.cpp). gguf-py checks little (it
// takes a repeated key, any alignment, overlapping tensors), so ggml's rules
// are kept too: versions 2 and 3, little-endian; keys unique, no arrays of
// arrays; general.alignment a power-of-two uint32; at most 4 dimensions,
// names under 64 bytes and unique; tensors in the order of their infos, each
// padded to the alignment. From gguf-py: keys and names must be UTF-8 (and,
// for our C strings, free of NUL bytes). tests/test_formats.py lists the cases.
// Metadata strings are copied out NUL-terminated (GGUF strings are not);
// tensor data stays in the mapping and is converted to float32 on request.
//
// Shapes: GGUF lists a tensor's dimensions fastest-varying first (ggml's ne[]),
// while Hugging Face / PyTorch list them slowest first. GGUFTensor keeps both:
// ne[] as stored, shape[] reversed. A GGUF tensor with ne = {cols, rows} is a
// row-major [rows][cols] matrix, i.e. the same memory layout as the HF tensor
// of shape [rows, cols] (except attn_q/attn_k, see gguf_unpermute_qk).
#ifndef REPO_GGUF_H
#define REPO_GGUF_H
#ifdef __cplusplus
extern "C" {
#endif
#include <stddef.h>
#include <stdint.h>

// metadata value types (GGUF spec numbering)
enum {
    GGUF_TYPE_UINT8 = 0, GGUF_TYPE_INT8 = 1, GGUF_TYPE_UINT16 = 2, GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4, GGUF_TYPE_INT32 = 5, GGUF_TYPE_FLOAT32 = 6, GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8, GGUF_TYPE_ARRAY = 9, GGUF_TYPE_UINT64 = 10, GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12, GGUF_TYPE_COUNT
};

// tensor types (ggml_type numbering). Every type listed here can be parsed;
// gguf_type_supported() says which ones gguf_tensor_to_f32 can convert.
enum {
    GGML_TYPE_F32 = 0, GGML_TYPE_F16 = 1, GGML_TYPE_Q4_0 = 2, GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6, GGML_TYPE_Q5_1 = 7, GGML_TYPE_Q8_0 = 8, GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10, GGML_TYPE_Q3_K = 11, GGML_TYPE_Q4_K = 12, GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14, GGML_TYPE_Q8_K = 15, GGML_TYPE_IQ2_XXS = 16, GGML_TYPE_IQ2_XS = 17,
    GGML_TYPE_IQ3_XXS = 18, GGML_TYPE_IQ1_S = 19, GGML_TYPE_IQ4_NL = 20, GGML_TYPE_IQ3_S = 21,
    GGML_TYPE_IQ2_S = 22, GGML_TYPE_IQ4_XS = 23, GGML_TYPE_I8 = 24, GGML_TYPE_I16 = 25,
    GGML_TYPE_I32 = 26, GGML_TYPE_I64 = 27, GGML_TYPE_F64 = 28, GGML_TYPE_IQ1_M = 29,
    GGML_TYPE_BF16 = 30, GGML_TYPE_TQ1_0 = 34, GGML_TYPE_TQ2_0 = 35, GGML_TYPE_MXFP4 = 39,
    GGML_TYPE_COUNT = 40
};

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

typedef struct {
    char *key;
    uint32_t type;            // GGUF_TYPE_*
    // scalars: the value widened to the matching field (bool -> u)
    union { uint64_t u; int64_t i; double f; } v;
    char *str; uint64_t str_len;        // GGUF_TYPE_STRING (NUL-terminated copy)
    // GGUF_TYPE_ARRAY: arr_type is the element type, arr_n the element count.
    // Numeric elements are copied into arr (native layout of arr_type);
    // string elements into arr_strs[i] (NUL-terminated) with lengths arr_lens[i].
    // Arrays of arrays are rejected, as ggml does.
    uint32_t arr_type; uint64_t arr_n;
    void *arr;
    char **arr_strs; uint64_t *arr_lens;
} GGUFKV;

typedef struct {
    char *name;
    uint32_t type;                 // GGML_TYPE_*
    int n_dims;
    int64_t ne[GGUF_MAX_DIMS];     // GGUF/ggml order: ne[0] fastest-varying (unused dims = 1)
    int64_t shape[GGUF_MAX_DIMS];  // HF/PyTorch order: shape[i] = ne[n_dims-1-i]
    int64_t n_elements;
    uint64_t offset;               // from the start of the data section
    size_t nbytes;
    const uint8_t *data;           // into the mapping
} GGUFTensor;

typedef struct {
    char *path;
    uint32_t version;
    size_t file_size;
    const uint8_t *map;
    uint64_t n_kv, n_tensors;
    GGUFKV *kv;
    GGUFTensor *tensors;
    size_t alignment;
    size_t data_offset;            // file offset of the data section
    uint32_t *tensor_index;        // tensor indices sorted by name, for lookup
} GGUF;

// Open and validate a GGUF file. On error returns NULL and writes one line
// "PATH: what went wrong" (no newline) into err.
GGUF *gguf_open(const char *path, char *err, size_t errlen);
void gguf_close(GGUF *g);

// ---- metadata ---------------------------------------------------------------
// Scalar getters return 1 and set *out when the key exists with a compatible
// type (any integer type whose value fits; float32 or float64 for floats),
// else 0 and leave *out alone, so callers can pre-load a default.
const GGUFKV *gguf_find_kv(const GGUF *g, const char *key);
int gguf_get_u32(const GGUF *g, const char *key, uint32_t *out);
int gguf_get_i32(const GGUF *g, const char *key, int32_t *out);
int gguf_get_u64(const GGUF *g, const char *key, uint64_t *out);
int gguf_get_i64(const GGUF *g, const char *key, int64_t *out);
int gguf_get_f32(const GGUF *g, const char *key, float *out);
int gguf_get_f64(const GGUF *g, const char *key, double *out);
int gguf_get_bool(const GGUF *g, const char *key, int *out);
const char *gguf_get_str(const GGUF *g, const char *key);   // NULL if missing / not a string

// Arrays. gguf_get_arr_n returns the element count (0 if missing or not an array).
// gguf_get_arr_strs returns the string array (NULL if missing / not strings),
// e.g. tokenizer.ggml.tokens and tokenizer.ggml.merges.
// gguf_get_arr_ints copies an integer array (any integer element type, e.g.
// tokenizer.ggml.token_type) into dst[0..n) as int64; returns 1 on success,
// 0 if missing, not integers, or a different length than n.
uint64_t gguf_get_arr_n(const GGUF *g, const char *key);
char *const *gguf_get_arr_strs(const GGUF *g, const char *key, uint64_t *n);
int gguf_get_arr_ints(const GGUF *g, const char *key, int64_t *dst, uint64_t n);
int gguf_get_arr_f32(const GGUF *g, const char *key, float *dst, uint64_t n);

const char *gguf_type_name(uint32_t gguf_type);   // "uint8", ..., "array"
const char *ggml_type_name(uint32_t ggml_type);   // "F32", "Q4_K", ... ("?" if unknown)

// ---- tensors ----------------------------------------------------------------
const GGUFTensor *gguf_find_tensor(const GGUF *g, const char *name); // NULL if absent
int gguf_type_supported(uint32_t ggml_type);  // 1 if gguf_tensor_to_f32 handles it
// Convert a whole tensor to float32 in dst[0..t->n_elements), in the tensor's
// memory order (= row-major in HF shape order). Returns 0, or -1 with one line
// in err for an unsupported type or a NaN / infinite value (naming the first). Bit-exact with ggml's dequantize_row_* as
// long as the compiler does not contract a*b+c into an FMA (see gguf.c).
int gguf_tensor_to_f32(const GGUF *g, const GGUFTensor *t, float *dst, char *err, size_t errlen);

// ---- llama ------------------------------------------------------------------
// llama.cpp's converter interleaves each head's rows of attn_q / attn_k for
// its RoPE. Undo that in place on a row-major [rows][cols] float matrix,
// giving the HF q_proj / k_proj layout. n_head is the head count for Q and the
// KV head count for K. Returns 0, or -1 if rows is not a multiple of 2*n_head.
int gguf_unpermute_qk(float *w, int rows, int cols, int n_head);

// Map a llama GGUF tensor name to its Hugging Face name ("blk.3.attn_q.weight"
// -> "model.layers.3.self_attn.q_proj.weight"). Returns 0, or -1 when the
// name is not a known llama tensor or out is too small.
int gguf_hf_name(const char *gguf_name, char *out, size_t n);

typedef struct {
    int n_layer;        // {arch}.block_count
    int n_embd;         // {arch}.embedding_length
    int n_ff;           // {arch}.feed_forward_length
    int n_head;         // {arch}.attention.head_count
    int n_head_kv;      // {arch}.attention.head_count_kv (default n_head)
    int n_ctx;          // {arch}.context_length (0 if absent)
    int vocab_size;     // len(tokenizer.ggml.tokens), else {arch}.vocab_size
    float rms_norm_eps; // {arch}.attention.layer_norm_rms_epsilon (default 1e-5)
    float rope_theta;   // {arch}.rope.freq_base (default 10000)
    int tied_embeddings;// 1 if there is no output.weight (lm_head = token_embd)
} GGUFLlamaConfig;
// Reads the hyper-parameters, using general.architecture as the key prefix
// (llama-family files only). Returns 0, or -1 with one line in err naming the
// key: counts must fit in int and agree with the tensors present (token_embd,
// blk.0.ffn_up, the last block), eps must be finite and >= 0, the RoPE base > 0.
int gguf_llama_config(const GGUF *g, GGUFLlamaConfig *c, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
