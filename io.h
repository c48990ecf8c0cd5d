// io.h: file formats and plumbing shared by repo.c and repo.cu.
// Nothing here knows about the model or the loss: safetensors, config.json,
// preference-pair files, atomic writes and error reporting.
#ifndef REPO_IO_H
#define REPO_IO_H
#ifdef __cplusplus
extern "C" {
#endif
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

// ----------------------------------------------------------------------------
// errors: one line on stderr, "repo: error: ...", then exit(1)
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void *xmalloc(size_t n);                 // dies on failure
void *xcalloc(size_t n, size_t size);    // dies on failure
char *read_whole_file(const char *path, size_t *len); // NUL-terminated; dies naming the file
int file_exists(const char *path);
int dir_exists(const char *path);
void make_dir(const char *path);         // mkdir -p; dies on failure
// atomic output: open PATH.tmp.<pid>, write, then atomic_close renames it to PATH.
// On any write error the temp file is removed and we die naming PATH.
typedef struct { FILE *f; char *path; char *tmp_path; } AtomicFile;
AtomicFile atomic_open(const char *path);
void atomic_close(AtomicFile *af);
void copy_file_atomic(const char *src, const char *dst);

// ----------------------------------------------------------------------------
// safetensors: 8-byte LE header length, JSON header, raw LE data
enum { ST_F32 = 0, ST_F16, ST_BF16, ST_OTHER };
typedef struct {
    char *name;
    int dtype;              // ST_F32 / ST_F16 / ST_BF16 / ST_OTHER (kept so unused buffers load)
    char dtype_name[16];
    int ndim;
    int64_t shape[8];
    size_t begin, end;      // byte offsets relative to the data section
} StTensor;
typedef struct {
    char *path;
    unsigned char *bytes;   // whole file
    size_t size;
    size_t data_start;      // 8 + header length
    StTensor *tensors;
    int n_tensors;
} SafeTensors;
// parse and validate every entry (offsets inside the file, sizes match shape*dtype);
// dies with "FILE: tensor NAME: ..." on any inconsistency
void st_open(SafeTensors *st, const char *path);
void st_close(SafeTensors *st);
StTensor *st_find(SafeTensors *st, const char *name); // NULL if absent
int64_t st_numel(const StTensor *t);
// convert to float32; dies if the dtype is not F32/F16/BF16
void st_read_f32(SafeTensors *st, const StTensor *t, float *dst);
// a tensor source: the tensors of a model directory, from DIR/model.safetensors or, when that is
// absent, from the shards that DIR/model.safetensors.index.json's weight_map names (every name
// must sit in the shard the index says). Errors name the file.
typedef struct {
    SafeTensors *files;
    int n_files;
    char *desc;             // "DIR/model.safetensors" or "DIR/model.safetensors.index.json"
} TensorSource;
void ts_open(TensorSource *ts, const char *model_dir); // dies if neither file is there
void ts_close(TensorSource *ts);
StTensor *ts_find(TensorSource *ts, const char *name, SafeTensors **file); // NULL if absent
// writing (F32 only). Atomic: temp file + rename.
typedef struct { const char *name; const float *data; int ndim; int64_t shape[4]; } StOut;
void st_write(const char *path, const StOut *tensors, int n);

// half-precision conversions
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t h);

// ----------------------------------------------------------------------------
// preference pairs as token ids
typedef struct {
    int *prompt, *chosen, *rejected;
    int n_prompt, n_chosen, n_rejected;
} Pair;
typedef struct {
    Pair *pairs;
    int n_pairs;
    int *ids;        // one allocation holding every id
} PairSet;
// calls fn(obj, line, ctx) with each non-blank line parsed (obj is a cJSON *); dies naming
// FILE:LINE when a line is not a JSON object
void jsonl_each(const char *path, void (*fn)(void *obj, int line, void *ctx), void *ctx);
// pair and prompt files are read by data.c (ids, text, or a prepared binary file)
void pairs_free(PairSet *ps);
typedef struct { int **prompts; int *lens; int n; int *ids; } PromptSet;
void prompts_free(PromptSet *ps);
// keep the prompt's last tokens (at most max_prompt_len) and cut the responses'
// ends so that prompt + longest response <= max_len; returns the number of pairs cut
int pairs_truncate(PairSet *ps, int max_len, int max_prompt_len);

// ----------------------------------------------------------------------------
// config.json (cJSON underneath; opaque here so repo.c stays free of JSON)
typedef struct JsonConfig JsonConfig;
JsonConfig *config_load(const char *path);           // dies naming the file if unreadable / not an object
void config_free(JsonConfig *cfg);
int config_has(JsonConfig *cfg, const char *key);    // present and not null
// required lookups die with "FILE: missing/bad KEY"; optional ones return def when absent
long config_int(JsonConfig *cfg, const char *key, int required, long def);
double config_num(JsonConfig *cfg, const char *key, int required, double def);
const char *config_str(JsonConfig *cfg, const char *key, int required, const char *def);
int config_bool(JsonConfig *cfg, const char *key, int required, int def);
// an integer, or the first of a list of integers (eos_token_id may be either); def when absent
long config_first_int(JsonConfig *cfg, const char *key, long def);
// a string member of an object member ({"rope_scaling": {"type": "linear"}}); NULL when absent
const char *config_sub_str(JsonConfig *cfg, const char *obj, const char *key);
#ifdef __cplusplus
}
// repo.cu compiles repo.c as C++: let the allocators' results convert to any pointer, as in C
struct AnyPtr { void *p; template <class T> operator T *() const { return (T *)p; } };
static inline AnyPtr xmalloc_any(size_t n) { return AnyPtr{xmalloc(n)}; }
static inline AnyPtr xcalloc_any(size_t n, size_t size) { return AnyPtr{xcalloc(n, size)}; }
#define xmalloc(n) xmalloc_any(n)
#define xcalloc(n, size) xcalloc_any(n, size)
#endif
#endif
