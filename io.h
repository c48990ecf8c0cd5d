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
// rewrites control characters in s (newlines too) as \n, \x01, ...: a message naming a key or a
// tensor from a file stays one line (die() does it; so do gguf.c's and tokenizer.c's error strings)
void one_line(char *s, size_t cap);
#ifdef REPO_FUZZ
// fuzz builds (tests/fuzz): die() keeps its line in repo_die_msg and longjmps to repo_die_jump,
// so an error is a normal return to the harness instead of an exit
#include <setjmp.h>
extern jmp_buf repo_die_jump;
extern char repo_die_msg[1024];
void repo_fuzz_close_readers(void);  // the LineReaders a die() left open
#endif
void *xmalloc(size_t n);                 // dies on failure
void *xcalloc(size_t n, size_t size);    // dies on failure
// A whole file, NUL-terminated: regular files, pipes (--data /dev/stdin, <(...)), never seeking.
// read_file returns NULL with one line "PATH: ..." in err (missing, a directory, a read error);
// read_whole_file dies with that line instead.
char *read_file(const char *path, size_t *len, char *err, size_t errlen);
char *read_whole_file(const char *path, size_t *len);
FILE *open_input(const char *path);      // fopen for reading; dies naming the file (a directory too)
// the rest of an open stream (hint: its expected size, or 0), NUL-terminated; NULL with err set
char *read_stream(FILE *f, const char *path, size_t hint, size_t *len, char *err, size_t errlen);
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
// JSON (cJSON underneath), read as strictly as the reference readers do: serde_json (safetensors,
// tokenizers) and Python's json (transformers' config.json, the data). Exactly one value with only
// blanks (space, tab, CR, LF) around it, valid UTF-8, no control characters inside strings, no NaN.
// When an object repeats a key the last one counts, as in Python's dict and serde's maps.
// (cJSON alone takes NUL bytes and control characters for blanks, ignores what follows the value
// and finds the first of a repeated key.) "\u0000" is refused: C strings cannot hold it.
struct cJSON;
// NULL on error, with one line in err: "invalid JSON at byte 17: ..."
struct cJSON *json_parse(const char *text, size_t len, char *err, size_t errlen);
// the same, keeping repeated keys (for formats that refuse them in places); then json_keep_last
struct cJSON *json_parse_raw(const char *text, size_t len, char *err, size_t errlen);
void json_keep_last(struct cJSON *node);   // drops the earlier copies of repeated keys, recursively
int json_valid(const char *text, size_t len, char *err, size_t errlen); // the same check, no tree
// 1 if s[0..n) is valid UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF)
int utf8_valid(const char *s, size_t n);

// ----------------------------------------------------------------------------
// safetensors: 8-byte LE header length, JSON header, raw LE data. st_open accepts exactly what the
// safetensors library (0.4) accepts: header at most 100 MB; every entry {dtype, shape, data_offsets}
// with a known dtype; the tensors tile the data section from 0 to its end in offset order, with no
// gap, overlap or trailing bytes; __metadata__ null or string -> string; a name given twice counts
// once, the last (as serde's map does; the offsets check then usually refuses the file).
enum { ST_F32 = 0, ST_F16, ST_BF16, ST_OTHER };
typedef struct {
    char *name;
    int dtype;              // ST_F32 / ST_F16 / ST_BF16 / ST_OTHER (kept so unused buffers load)
    char dtype_name[16];
    int ndim;
    int64_t *shape;         // ndim entries
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
// parse and validate every entry; dies with "FILE: tensor NAME: ..." (or "FILE: header: ...")
void st_open(SafeTensors *st, const char *path);
void st_close(SafeTensors *st);
StTensor *st_find(SafeTensors *st, const char *name); // NULL if absent
int64_t st_numel(const StTensor *t);
// convert to float32; dies if the dtype is not F32/F16/BF16, or naming the first NaN / infinity
void st_read_f32(SafeTensors *st, const StTensor *t, float *dst);
// a tensor source: the tensors of a model directory, from DIR/model.safetensors or, when that is
// absent, from the shards that DIR/model.safetensors.index.json's weight_map names (every name
// must sit in the shard the index says). A tensor found in two shards is refused, naming both:
// transformers would silently take the copy in the last shard by file name, whatever the index says.
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
// a text file line by line (getline: memory follows the longest line; pipes work)
typedef struct {
    FILE *f; const char *path;
    char *text; size_t cap;
    size_t len, raw_len;    // the line without its '\n', and as read
    int line;               // 1-based, blank lines counted
} LineReader;
void lines_open(LineReader *r, const char *path);    // dies naming the file
int lines_next(LineReader *r);                       // 1 with the next line in text[0..len), 0 at the end
char *lines_slurp(LineReader *r, size_t *len);       // the current line as read plus the rest of the file
void lines_close(LineReader *r);
int line_is_blank(const char *s, size_t n);          // only spaces, tabs, CRs
// one line of JSON Lines: exactly one JSON object (json_parse's rules); NULL with the reason in err
struct cJSON *jsonl_parse(const char *text, size_t len, char *err, size_t errlen);
// calls fn(obj, line, ctx) with each non-blank line parsed (obj is a cJSON *), reading one line at a
// time (pipes work); dies naming FILE:LINE when a line is not exactly one JSON object
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
// required lookups die with "FILE: missing/bad KEY"; optional ones return def when absent.
// Integers must be whole numbers that fit in int32, numbers finite.
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
