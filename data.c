// data.c: text preference pairs and chat templates, the REPOPAIR binary pair file,
// and the commands prepare / encode / decode. Plumbing only; data.h describes the formats.
#include "data.h"
#include "outdir.h"
#include "tokenizer.h"
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <string.h>
#include "gguf.h"

static int ends_with_str(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

// ----------------------------------------------------------------------------
// tokenizer: --tokenizer, else the model's (directory files, or a GGUF file's metadata)

// NULL with the reason in err (not die(): the caller closes the file first)
static Tokenizer *tokenizer_of_gguf(GGUF *g, const char *path, char *err, size_t errlen) {
    const char *kind = gguf_get_str(g, "tokenizer.ggml.model");
    if (!kind || strcmp(kind, "gpt2")) {
        snprintf(err, errlen, "%s: tokenizer.ggml.model \"%s\" is not supported (byte-level BPE, \"gpt2\", is)", path, kind ? kind : "?");
        return NULL;
    }
    uint64_t nt = 0, nm = 0;
    char *const *tokens = gguf_get_arr_strs(g, "tokenizer.ggml.tokens", &nt);
    char *const *merges = gguf_get_arr_strs(g, "tokenizer.ggml.merges", &nm);
    if (!tokens || !merges || nt == 0 || nt > 0x7fffffff || nm > 0x7fffffff) {
        snprintf(err, errlen, "%s: tokenizer.ggml.tokens / tokenizer.ggml.merges are missing", path);
        return NULL;
    }
    const char *keys[2] = {"tokenizer.ggml.tokens", "tokenizer.ggml.merges"};
    // UTF-8 without NUL bytes: the tokenizer takes C strings, the gguf package and tokenizer.json take UTF-8
    // (byte-level BPE tokens always are: every byte has its own printable char)
    for (int k = 0; k < 2; k++) {
        const GGUFKV *kv = gguf_find_kv(g, keys[k]);
        for (uint64_t i = 0; i < kv->arr_n; i++)
            if (strlen(kv->arr_strs[i]) != kv->arr_lens[i] || !utf8_valid(kv->arr_strs[i], kv->arr_lens[i])) {
                snprintf(err, errlen, "%s: %s[%llu] is not UTF-8 text without NUL bytes", path, keys[k], (unsigned long long)i);
                return NULL;
            }
    }
    const char *pre = gguf_get_str(g, "tokenizer.ggml.pre");
    int pre_kind = pre ? tokenizer_pre_kind_from_name(pre) : TOK_PRE_GPT2;
    if (pre_kind < 0) {
        snprintf(err, errlen, "%s: tokenizer.ggml.pre \"%s\" is not supported (gpt-2, smollm, llama-bpe are)", path, pre);
        return NULL;
    }
    int64_t *types64 = xmalloc(nt * sizeof(int64_t));
    int *types = NULL;
    if (gguf_get_arr_ints(g, "tokenizer.ggml.token_type", types64, nt)) {
        types = xmalloc(nt * sizeof(int));
        for (uint64_t i = 0; i < nt; i++) types[i] = types64[i] < INT32_MIN || types64[i] > INT32_MAX ? 0 : (int)types64[i];
    }
    uint32_t eos;
    int eos_id = gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &eos) && eos < nt ? (int)eos : -1;
    char why[900];
    Tokenizer *t = tokenizer_from_arrays((const char *const *)tokens, (int)nt, (const char *const *)merges, (int)nm,
                                         types, (TokPreKind)pre_kind, eos_id, why, sizeof why);
    if (!t) snprintf(err, errlen, "%s: tokenizer: %s", path, why);
    free(types64); free(types);
    return t;
}

static Tokenizer *tokenizer_from_gguf(const char *path) {
    char err[1024];
    GGUF *g = gguf_open(path, err, sizeof err);
    if (!g) die("%s", err);
    Tokenizer *t = tokenizer_of_gguf(g, path, err, sizeof err);
    gguf_close(g);
    if (!t) die("%s", err);
    return t;
}

void data_write_gguf_tokenizer(const char *gguf_path, const char *out_dir) {
    char err[1024], path[4200];
    GGUF *g = gguf_open(gguf_path, err, sizeof err);
    if (!g) die("%s", err);
    // a GGUF without a byte-level BPE tokenizer we read: the model is saved all the same, without tokenizer files
    const char *kind = gguf_get_str(g, "tokenizer.ggml.model"), *pre = gguf_get_str(g, "tokenizer.ggml.pre");
    const char *why = !gguf_get_arr_n(g, "tokenizer.ggml.tokens") ? "it has no tokenizer.ggml.tokens"
                      : !kind || strcmp(kind, "gpt2") ? "its tokenizer.ggml.model is not \"gpt2\""
                      : !gguf_get_arr_n(g, "tokenizer.ggml.merges") ? "it has no tokenizer.ggml.merges"
                      : pre && tokenizer_pre_kind_from_name(pre) < 0 ? "its tokenizer.ggml.pre is not supported"
                      : NULL;
    if (why) {
        fprintf(stderr, "note: %s: %s, so %s gets no tokenizer.json\n", gguf_path, why, out_dir);
        gguf_close(g);
        return;
    }
    Tokenizer *t = tokenizer_of_gguf(g, gguf_path, err, sizeof err);
    int ok = t != NULL;
    if (ok) {
        uint32_t bos;
        int bos_id = gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos) && (int64_t)bos < tokenizer_vocab_size(t) ? (int)bos : -1;
        snprintf(path, sizeof path, "%s/tokenizer.json", out_dir);
        ok = tokenizer_write_json(t, path, err, sizeof err);
        const GGUFKV *tpl = gguf_find_kv(g, "tokenizer.chat_template");
        const char *chat = tpl && tpl->type == GGUF_TYPE_STRING ? tpl->str : NULL;
        if (chat && (strlen(chat) != tpl->str_len || !utf8_valid(chat, tpl->str_len))) {
            fprintf(stderr, "note: %s: tokenizer.chat_template is not UTF-8 text, so %s/tokenizer_config.json has none\n", gguf_path, out_dir);
            chat = NULL;
        }
        snprintf(path, sizeof path, "%s/tokenizer_config.json", out_dir);
        ok = ok && tokenizer_write_config_json(t, path, bos_id, chat, err, sizeof err);
    }
    tokenizer_free(t);
    gguf_close(g);
    if (!ok) die("%s", err);
}

static Tokenizer *load_tokenizer(const DataOptions *o) {
    const char *path = o->tokenizer ? o->tokenizer : o->model;
    if (!path) die("text data needs a tokenizer: give --tokenizer PATH or a --model with tokenizer files");
    if (ends_with_str(path, ".gguf")) {
        return tokenizer_from_gguf(path);
    }
    char err[1024];
    Tokenizer *t = tokenizer_load(path, err, sizeof err);
    if (!t) die("%s (text needs a tokenizer: tokenizer.json or vocab.json + merges.txt in the model directory, or --tokenizer PATH)", err);
    return t;
}

struct Tokenizer *data_tokenizer(const DataOptions *o) { return load_tokenizer(o); }

// ----------------------------------------------------------------------------
// chat templates

enum { TPL_PLAIN, TPL_CHATML, TPL_LLAMA3 };
static const char *tpl_names[] = {"plain", "chatml", "llama3"};

static int parse_template(const char *name) {
    for (int i = 0; i < 3; i++) if (!strcmp(name, tpl_names[i])) return i;
    die("--chat-template: unknown template \"%s\" (plain, chatml, llama3)", name);
}

// picks the template and its end-of-turn id; dies when the tokenizer lacks the template's tokens
static int template_setup(Tokenizer *t, const char *name, int *eos) {
    int tpl = name ? parse_template(name) : tokenizer_token_id(t, "<|im_start|>") >= 0 ? TPL_CHATML : TPL_PLAIN;
    static const char *need[3][5] = {{NULL}, {"<|im_end|>", "<|im_start|>", NULL},
                                     {"<|eot_id|>", "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", NULL}};
    for (int i = 0; need[tpl][i]; i++)
        if (tokenizer_token_id(t, need[tpl][i]) < 0)
            die("--chat-template %s: the tokenizer has no %s token", tpl_names[tpl], need[tpl][i]);
    *eos = tpl == TPL_PLAIN ? tokenizer_eos_id(t) : tokenizer_token_id(t, need[tpl][0]);
    if (*eos < 0) die("--chat-template plain: the tokenizer has no EOS token to end the responses with");
    return tpl;
}

typedef struct { char *s; size_t n, cap; } Str;
static void str_add(Str *b, const char *s) {
    size_t k = strlen(s);
    if (b->n + k + 1 > b->cap) { b->cap = (b->n + k + 1) * 2; b->s = realloc(b->s, b->cap); if (!b->s) die("out of memory"); }
    memcpy(b->s + b->n, s, k + 1);
    b->n += k;
}

// msgs[0..n): validated messages; a string prompt is one user message (plain: used verbatim)
static void render_prompt(Str *b, int tpl, cJSON **msgs, int n) {
    if (tpl == TPL_LLAMA3) str_add(b, "<|begin_of_text|>");
    for (int i = 0; i < n; i++) {
        const char *role = cJSON_GetObjectItemCaseSensitive(msgs[i], "role")->valuestring;
        const char *content = cJSON_GetObjectItemCaseSensitive(msgs[i], "content")->valuestring;
        if (tpl == TPL_PLAIN) { if (i) str_add(b, "\n\n"); str_add(b, content); }
        else if (tpl == TPL_CHATML) { str_add(b, "<|im_start|>"); str_add(b, role); str_add(b, "\n"); str_add(b, content); str_add(b, "<|im_end|>\n"); }
        else { str_add(b, "<|start_header_id|>"); str_add(b, role); str_add(b, "<|end_header_id|>\n\n"); str_add(b, content); str_add(b, "<|eot_id|>"); }
    }
    if (tpl == TPL_CHATML) str_add(b, "<|im_start|>assistant\n");
    if (tpl == TPL_LLAMA3) str_add(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

int data_chat_prompt(const char *text, const DataOptions *o, int **ids, int *end_of_turn) {
    Tokenizer *t = load_tokenizer(o);
    int tpl = template_setup(t, o->chat_template, end_of_turn);
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "role", "user");
    cJSON_AddStringToObject(msg, "content", text);
    Str b = {0};
    if (tpl == TPL_PLAIN) str_add(&b, text);
    else render_prompt(&b, tpl, &msg, 1);
    int n = tokenizer_encode(t, b.s, b.n, ids);
    cJSON_Delete(msg); free(b.s); tokenizer_free(t);
    if (n <= 0) die("--prompt: the prompt tokenizes to nothing");
    return n;
}

char *data_decode(const int *ids, int n, const DataOptions *o) {
    Tokenizer *t = load_tokenizer(o);
    size_t len;
    char *text = tokenizer_decode(t, ids, n, &len);
    tokenizer_free(t);
    return text;
}

// ----------------------------------------------------------------------------
// reading JSONL lines of either form, one problem per line

enum { BAD_JSON, BAD_MISSING, BAD_TYPE, BAD_ROLE, BAD_EMPTY, BAD_ID, BAD_CONVERSATION, N_BAD };
static const char *bad_names[N_BAD] = {"not a JSON object", "missing field", "not a string / wrong type",
                                       "unknown role", "empty (or tokenizes to nothing)", "token id out of range",
                                       "malformed conversation"};

typedef struct {
    const char *path;
    const DataOptions *o;
    int vocab_size, per_line;  // 3 ids arrays per pair, 1 per prompt
    Tokenizer *tok;            // loaded at the first text line
    int tpl, eos;
    int *ids; size_t used, cap_ids;
    int *lens; size_t *offs; int n; size_t cap;
    int skipped[N_BAD], lines;
    char msg[600];
} Reader;

static int bad(Reader *r, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(Reader *r, int kind, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    return kind + 1;
}

static void push_id(Reader *r, int id) {
    if (r->used == r->cap_ids) {
        r->cap_ids = r->cap_ids * 2 + 1024;
        r->ids = realloc(r->ids, r->cap_ids * sizeof(int));
        if (!r->ids) die("out of memory reading %s", r->path);
    }
    r->ids[r->used++] = id;
}

static int ids_array(Reader *r, cJSON *obj, const char *key, int *len) {
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!arr) return bad(r, BAD_MISSING, "missing \"%s\"", key);
    if (!cJSON_IsArray(arr)) return bad(r, BAD_TYPE, "\"%s\" must be an array of token ids", key);
    int i = 0;
    for (cJSON *v = arr->child; v; v = v->next, i++) {
        // whole and in range, checked in double first: casting 1e300 to int is undefined
        double d = cJSON_IsNumber(v) ? v->valuedouble : 0.5;
        if (!(d > -1e15 && d < 1e15) || d != (double)(int64_t)d)
            return bad(r, BAD_ID, "\"%s\"[%d] is not an integer token id", key, i);
        if (d < 0 || d >= r->vocab_size)
            return bad(r, BAD_ID, "\"%s\"[%d] = %.0f is outside the vocabulary [0, %d)", key, i, d, r->vocab_size);
        int id = (int)d;
        push_id(r, id);
    }
    if (i == 0) return bad(r, BAD_EMPTY, "\"%s\" is empty", key);
    *len = i;
    return 0;
}

// a list of {role, content} messages; what[] names it in messages
static int check_messages(Reader *r, cJSON *arr, const char *what) {
    int i = 0;
    for (cJSON *m = arr->child; m; m = m->next, i++) {
        if (!cJSON_IsObject(m)) return bad(r, BAD_TYPE, "\"%s\"[%d] is not a {\"role\", \"content\"} message", what, i);
        cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role"), *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!role) return bad(r, BAD_MISSING, "\"%s\"[%d]: missing \"role\"", what, i);
        if (!cJSON_IsString(role)) return bad(r, BAD_TYPE, "\"%s\"[%d]: \"role\" is not a string", what, i);
        if (strcmp(role->valuestring, "system") && strcmp(role->valuestring, "user") && strcmp(role->valuestring, "assistant"))
            return bad(r, BAD_ROLE, "\"%s\"[%d]: unknown role \"%s\" (system, user, assistant)", what, i, role->valuestring);
        if (!content) return bad(r, BAD_MISSING, "\"%s\"[%d]: missing \"content\"", what, i);
        if (!cJSON_IsString(content)) return bad(r, BAD_TYPE, "\"%s\"[%d]: \"content\" is not a string", what, i);
    }
    if (i == 0) return bad(r, BAD_EMPTY, "\"%s\" is an empty list", what);
    return 0;
}

static int same_message(cJSON *a, cJSON *b) {
    const char *k[2] = {"role", "content"};
    for (int i = 0; i < 2; i++)
        if (strcmp(cJSON_GetObjectItemCaseSensitive(a, k[i])->valuestring, cJSON_GetObjectItemCaseSensitive(b, k[i])->valuestring))
            return 0;
    return 1;
}

// tokenizes text onto the id buffer (plus eos when >= 0); *len gets the count
static int encode_onto(Reader *r, const char *text, int eos, const char *what, int *len) {
    int *ids = NULL;
    int n = tokenizer_encode(r->tok, text, strlen(text), &ids);
    if (n < 0) die("out of memory tokenizing %s", r->path);
    if (n == 0) { free(ids); return bad(r, BAD_EMPTY, "%s tokenizes to nothing", what); }
    for (int i = 0; i < n; i++) {
        if (ids[i] >= r->vocab_size) {
            int id = ids[i];
            free(ids);
            return bad(r, BAD_ID, "%s: the tokenizer's id %d is outside the model's vocabulary [0, %d)", what, id, r->vocab_size);
        }
        push_id(r, ids[i]);
    }
    free(ids);
    if (eos >= 0) {
        if (eos >= r->vocab_size) return bad(r, BAD_ID, "end-of-turn id %d is outside the model's vocabulary [0, %d)", eos, r->vocab_size);
        push_id(r, eos);
        n++;
    }
    *len = n;
    return 0;
}

static int text_line(Reader *r, cJSON *obj, int *lens) {
    if (!r->tok) {
        r->tok = load_tokenizer(r->o);
        r->tpl = template_setup(r->tok, r->o->chat_template, &r->eos);
    }
    static const char *resp_keys[2] = {"chosen", "rejected"};
    cJSON *prompt = cJSON_GetObjectItemCaseSensitive(obj, "prompt");
    cJSON *resp[2], *answer[2] = {NULL, NULL};
    int n_resp = r->per_line == 3 ? 2 : 0, err;
    for (int k = 0; k < 2; k++) {
        resp[k] = cJSON_GetObjectItemCaseSensitive(obj, resp_keys[k]);
        if (k >= n_resp && !(k == 0 && !prompt && resp[k])) continue; // prompts only: chosen may hold the prompt
        if (!resp[k]) return bad(r, BAD_MISSING, "missing \"%s\"", resp_keys[k]);
        if (cJSON_IsString(resp[k])) { answer[k] = resp[k]; continue; }
        if (!cJSON_IsArray(resp[k])) return bad(r, BAD_TYPE, "\"%s\" must be a string or a list of messages", resp_keys[k]);
        if ((err = check_messages(r, resp[k], resp_keys[k]))) return err;
        cJSON *last = cJSON_GetArrayItem(resp[k], cJSON_GetArraySize(resp[k]) - 1);
        const char *role = cJSON_GetObjectItemCaseSensitive(last, "role")->valuestring;
        if (strcmp(role, "assistant"))
            return bad(r, BAD_CONVERSATION, "the last message of \"%s\" is the %s's, not the assistant's answer", resp_keys[k], role);
        answer[k] = cJSON_GetObjectItemCaseSensitive(last, "content");
    }
    // the prompt as a list of messages
    cJSON **msgs = NULL, *user = NULL;
    int n_msgs = 0;
    const char *verbatim = NULL;
    if (prompt) {
        if (cJSON_IsString(prompt)) {
            if (r->tpl == TPL_PLAIN) verbatim = prompt->valuestring;
            else {
                user = cJSON_CreateObject();
                cJSON_AddStringToObject(user, "role", "user");
                cJSON_AddStringToObject(user, "content", prompt->valuestring);
                msgs = xmalloc(sizeof(cJSON *));
                msgs[n_msgs++] = user;
            }
        } else if (cJSON_IsArray(prompt)) {
            if ((err = check_messages(r, prompt, "prompt"))) return err;
            msgs = xmalloc(cJSON_GetArraySize(prompt) * sizeof(cJSON *));
            for (cJSON *m = prompt->child; m; m = m->next) msgs[n_msgs++] = m;
        } else return bad(r, BAD_TYPE, "\"prompt\" must be a string or a list of messages");
    } else {
        // the conversation before the answer; chosen and rejected must agree on it
        if (!resp[0] || !cJSON_IsArray(resp[0]) || cJSON_GetArraySize(resp[0]) < 2)
            return bad(r, BAD_MISSING, "missing \"prompt\" (and \"chosen\" holds no messages before its answer)");
        n_msgs = cJSON_GetArraySize(resp[0]) - 1;
        msgs = xmalloc(n_msgs * sizeof(cJSON *));
        int i = 0;
        for (cJSON *m = resp[0]->child; i < n_msgs; m = m->next) msgs[i++] = m;
        if (n_resp == 2 && cJSON_IsArray(resp[1])) {
            int same = cJSON_GetArraySize(resp[1]) - 1 == n_msgs;
            i = 0;
            for (cJSON *m = resp[1]->child; same && i < n_msgs; m = m->next, i++) same = same_message(msgs[i], m);
            if (!same) {
                free(msgs);
                return bad(r, BAD_CONVERSATION, "no \"prompt\", and \"chosen\" and \"rejected\" differ before their answers");
            }
        }
    }
    Str text = {0};
    if (verbatim) str_add(&text, verbatim);
    else render_prompt(&text, r->tpl, msgs, n_msgs);
    free(msgs);
    cJSON_Delete(user);
    err = encode_onto(r, text.s ? text.s : "", -1, "the prompt", &lens[0]);
    free(text.s);
    if (err) return err;
    for (int k = 0; k < n_resp; k++) {
        char what[64];
        snprintf(what, sizeof what, "the answer in \"%s\"", resp_keys[k]);
        if (!*answer[k]->valuestring) return bad(r, BAD_EMPTY, "%s is empty", what);
        if ((err = encode_onto(r, answer[k]->valuestring, r->eos, what, &lens[1 + k]))) return err;
    }
    return 0;
}

// a line read: its per_line sequences, the last lens[] ids pushed, become entry r->n
static int line_done(Reader *r, const int *lens) {
    if (r->n == INT32_MAX) die("%s: more than %d lines", r->path, INT32_MAX);
    if ((size_t)r->n == r->cap) {
        r->cap = r->cap * 2 + 64;
        r->lens = realloc(r->lens, r->cap * (size_t)r->per_line * sizeof(int));
        r->offs = realloc(r->offs, r->cap * (size_t)r->per_line * sizeof(size_t));
        if (!r->lens || !r->offs) die("out of memory reading %s", r->path);
    }
    size_t off = r->used;
    for (int k = 0; k < r->per_line; k++) off -= lens[k];
    for (int k = 0; k < r->per_line; k++) {
        r->offs[(size_t)r->n * r->per_line + k] = off;
        r->lens[(size_t)r->n * r->per_line + k] = lens[k];
        off += lens[k];
    }
    r->n++;
    return 0;
}

// past one JSON value of a text json_valid accepted (so strings end and brackets match)
static size_t skip_value(const char *s, size_t n, size_t i) {
    int depth = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '"') {
            for (i++; s[i] != '"'; i++) if (s[i] == '\\') i++;
            if (!depth) return i + 1;
        } else if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') { if (!depth) return i; if (!--depth) return i + 1; }
        else if (!depth && (c == ',' || c == ' ' || c == '\t' || c == '\r')) return i;
    }
    return i;
}

// The ids form read straight from the (valid) text: a cJSON node per id costs about 80 bytes, the
// id 4. Taken here: an object holding "prompt_ids", "chosen_ids", "rejected_ids" in this order, each
// once, as non-empty arrays of plain in-range integers (a prompt file may stop after prompt_ids),
// with any other members (no key with a backslash: it could spell one of ours). Returns 1 with the
// ids pushed. Any other line returns 0 and goes to the general reader, which reads what this one
// reads identically and words the errors.
static int ids_line_fast(Reader *r, const char *s, size_t n, int *lens) {
    static const char *keys[3] = {"prompt_ids", "chosen_ids", "rejected_ids"};
    size_t i = 0;
    int n_keys = 0;
#define BLANKS() while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) i++
    BLANKS();
    if (i == n || s[i++] != '{') return 0;
    for (;;) {
        BLANKS();
        if (i == n || s[i++] != '"') return 0;
        size_t key = i;
        while (i < n && s[i] != '"' && s[i] != '\\') i++;
        if (i == n || s[i] == '\\') return 0;
        size_t key_len = i++ - key;
        int k = 0;
        while (k < 3 && !(key_len == strlen(keys[k]) && !memcmp(s + key, keys[k], key_len))) k++;
        if (k < 3 && k != n_keys) return 0; // out of order or repeated: the general reader decides
        BLANKS();
        if (i == n || s[i++] != ':') return 0;
        BLANKS();
        if (k == 3) i = skip_value(s, n, i);
        else {
            n_keys++;
            if (i == n || s[i++] != '[') return 0;
            int count = 0;
            for (;;) {
                BLANKS();
                size_t start = i;
                int64_t id = 0;
                while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 10) id = id * 10 + (s[i++] - '0');
                if (i == start || (s[start] == '0' && i - start > 1) || id >= r->vocab_size) return 0;
                if (k < r->per_line) push_id(r, (int)id);
                count++;
                BLANKS();
                if (i < n && s[i] == ',') { i++; continue; }
                if (i < n && s[i] == ']') { i++; break; }
                return 0;
            }
            if (k < r->per_line) lens[k] = count;
        }
        BLANKS();
        if (i < n && s[i] == ',') { i++; continue; }
        if (i < n && s[i] == '}') { i++; break; }
        return 0;
    }
#undef BLANKS
    return n_keys >= r->per_line;
}

// one non-blank line: 0, or a problem kind + 1 with the message in r->msg
static int read_line(Reader *r, const char *text, size_t len) {
    int lens[3], err = 0;
    size_t start = r->used;
    char why[sizeof r->msg];
    if (json_valid(text, len, why, sizeof why) && ids_line_fast(r, text, len, lens)) return line_done(r, lens);
    r->used = start; // whatever the fast reader pushed before it gave up
    cJSON *obj = jsonl_parse(text, len, why, sizeof why);
    if (!obj) return bad(r, BAD_JSON, "%s", why);
    static const char *keys[3] = {"prompt_ids", "chosen_ids", "rejected_ids"};
    int ids_form = 0;
    for (int k = 0; k < 3; k++) ids_form |= cJSON_HasObjectItem(obj, keys[k]);
    if (r->per_line == 1) ids_form = cJSON_HasObjectItem(obj, "prompt_ids");
    if (ids_form) for (int k = 0; k < r->per_line && !err; k++) err = ids_array(r, obj, keys[k], &lens[k]);
    else err = text_line(r, obj, lens);
    cJSON_Delete(obj);
    return err ? err : line_done(r, lens);
}


// JSON Lines, one line in memory at a time; the first line was read by read_any
static void read_jsonl(Reader *r, LineReader *lr) {
    int first = 1;
    do {
        if (line_is_blank(lr->text, lr->len)) continue; // skipped but counted, so errors name the editor's line
        r->lines++;
        size_t start = r->used;
        int err = read_line(r, lr->text, lr->len);
        // a first line that does not even start like an object, holding NUL bytes or bytes that are not UTF-8
        const char *q = lr->text;
        while (*q == ' ' || *q == '\t') q++;
        if (err && first && *q != '{' && (memchr(lr->text, 0, lr->len) || !utf8_valid(lr->text, lr->len)))
            die("%s: neither JSONL nor a REPOPAIR pair file (line %d holds binary data)", r->path, lr->line);
        first = 0;
        if (err) {
            if (!r->o->skip_bad) die("%s:%d: %s", r->path, lr->line, r->msg);
            r->skipped[err - 1]++;
            r->used = start; // drop what the line had pushed
        }
    } while (lines_next(lr));
    int total = 0;
    for (int k = 0; k < N_BAD; k++) total += r->skipped[k];
    if (total) {
        fprintf(stderr, "repo: skipped %d of %d lines of %s (--skip-bad):", total, r->lines, r->path);
        for (int k = 0, first_kind = 1; k < N_BAD; k++)
            if (r->skipped[k]) { fprintf(stderr, "%s %d %s", first_kind ? "" : ",", r->skipped[k], bad_names[k]); first_kind = 0; }
        fprintf(stderr, "\n");
    }
    if (r->tok) tokenizer_free(r->tok);
}

// ----------------------------------------------------------------------------
// REPOPAIR binary pair files

static const char MAGIC[8] = {'R', 'E', 'P', 'O', 'P', 'A', 'I', 'R'};
enum { BIN_VERSION = 1, BIN_HEADER = 32 };

static uint64_t get_le(const unsigned char *p, int n) {
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; i--) x = x << 8 | p[i];
    return x;
}
static void put_le(FILE *f, uint64_t x, int n) { // one fwrite, not n locked fputc calls
    unsigned char b[8];
    for (int i = 0; i < n; i++) b[i] = (unsigned char)(x >> (8 * i));
    fwrite(b, 1, (size_t)n, f);
}

static void read_bin(Reader *r, const unsigned char *b, size_t size) {
    const char *path = r->path;
    if (size < BIN_HEADER) die("%s: truncated REPOPAIR file: %zu bytes, shorter than its %d-byte header", path, size, BIN_HEADER);
    uint32_t version = (uint32_t)get_le(b + 8, 4), vocab = (uint32_t)get_le(b + 12, 4);
    uint64_t n_pairs = get_le(b + 16, 8), n_ids = get_le(b + 24, 8);
    if (version != BIN_VERSION) die("%s: REPOPAIR version %u is not supported (this build reads version %d)", path, version, BIN_VERSION);
    if ((int64_t)vocab != r->vocab_size)
        die("%s: prepared for a vocabulary of %u tokens, but the model has %d (run repo prepare with this model)", path, vocab, r->vocab_size);
    uint64_t room = (size - BIN_HEADER) / 4;
    if (n_pairs > room / 3 || n_ids > room || 3 * n_pairs + n_ids != room || (size - BIN_HEADER) % 4)
        die("%s: the header counts %llu pairs and %llu ids (%.0f bytes), but the file has %zu bytes%s", path,
            (unsigned long long)n_pairs, (unsigned long long)n_ids, BIN_HEADER + 4.0 * (3.0 * n_pairs + n_ids), size,
            BIN_HEADER + 4.0 * (3.0 * n_pairs + n_ids) > size ? " (truncated?)" : "");
    if (n_pairs == 0) die("%s: no preference pairs in the file", path);
    r->ids = xmalloc(n_ids * sizeof(int));
    r->lens = xmalloc(n_pairs * r->per_line * sizeof(int));
    r->offs = xmalloc(n_pairs * r->per_line * sizeof(size_t));
    const unsigned char *p = b + BIN_HEADER, *end = b + size;
    for (uint64_t i = 0; i < n_pairs; i++) {
        if (end - p < 12) die("%s: pair %llu: the file ends inside its lengths (truncated?)", path, (unsigned long long)i + 1);
        int64_t len[3];
        for (int k = 0; k < 3; k++) {
            len[k] = (int32_t)get_le(p + 4 * k, 4);
            if (len[k] <= 0) die("%s: pair %llu: length %lld (lengths must be positive)", path, (unsigned long long)i + 1, (long long)len[k]);
        }
        p += 12;
        if ((uint64_t)(len[0] + len[1] + len[2]) > n_ids - r->used || (uint64_t)(end - p) / 4 < (uint64_t)(len[0] + len[1] + len[2]))
            die("%s: pair %llu: its lengths run past the %llu ids the header counts", path, (unsigned long long)i + 1, (unsigned long long)n_ids);
        size_t base = r->used;
        for (int64_t j = 0; j < len[0] + len[1] + len[2]; j++, p += 4) {
            int32_t id = (int32_t)get_le(p, 4);
            if (id < 0 || id >= r->vocab_size)
                die("%s: pair %llu: id %d is outside the vocabulary [0, %d)", path, (unsigned long long)i + 1, id, r->vocab_size);
            r->ids[r->used++] = id;
        }
        for (int k = 0; k < r->per_line; k++) {
            r->offs[(size_t)r->n * r->per_line + k] = base;
            r->lens[(size_t)r->n * r->per_line + k] = (int)len[k];
            base += (size_t)len[k];
        }
        r->n++;
    }
    if (r->used != n_ids) die("%s: the pairs hold %zu ids, the header says %llu", path, r->used, (unsigned long long)n_ids);
}

void pairs_write_bin(const PairSet *ps, int vocab_size, const char *path) {
    uint64_t n_ids = 0;
    for (int i = 0; i < ps->n_pairs; i++) n_ids += ps->pairs[i].n_prompt + ps->pairs[i].n_chosen + ps->pairs[i].n_rejected;
    AtomicFile af = atomic_open(path);
    fwrite(MAGIC, 1, 8, af.f);
    put_le(af.f, BIN_VERSION, 4); put_le(af.f, (uint32_t)vocab_size, 4);
    put_le(af.f, (uint64_t)ps->n_pairs, 8); put_le(af.f, n_ids, 8);
    for (int i = 0; i < ps->n_pairs; i++) {
        const Pair *p = &ps->pairs[i];
        const int *seqs[3] = {p->prompt, p->chosen, p->rejected};
        int lens[3] = {p->n_prompt, p->n_chosen, p->n_rejected};
        for (int k = 0; k < 3; k++) put_le(af.f, (uint32_t)lens[k], 4);
        for (int k = 0; k < 3; k++) for (int j = 0; j < lens[k]; j++) put_le(af.f, (uint32_t)seqs[k][j], 4);
    }
    atomic_close(&af);
}

// ----------------------------------------------------------------------------
// loading either kind of file

// REPOPAIR files are recognized by their first bytes (the first "line" of a binary file ends at any
// 0x0a byte); everything else is read as JSON Lines, streaming, so pipes and huge files work
static void read_any(Reader *r) {
    LineReader lr;
    lines_open(&lr, r->path);
    if (lines_next(&lr) && !memcmp(lr.text, MAGIC, lr.raw_len < 8 ? lr.raw_len : 8)) {
        size_t size;
        char *bytes = lines_slurp(&lr, &size);
        read_bin(r, (const unsigned char *)bytes, size);
        free(bytes);
    } else if (lr.line) read_jsonl(r, &lr);
    lines_close(&lr);
}

void data_load_pairs(PairSet *ps, const char *path, int vocab_size, const DataOptions *o) {
    Reader r = {.path = path, .o = o, .vocab_size = vocab_size, .per_line = 3};
    read_any(&r);
    if (r.n == 0) die("%s: no preference pairs in the file", path);
    memset(ps, 0, sizeof *ps);
    ps->n_pairs = r.n;
    ps->ids = r.ids;
    ps->pairs = xcalloc(r.n, sizeof(Pair));
    for (int i = 0; i < r.n; i++) {
        Pair *p = &ps->pairs[i];
        size_t at = 3 * (size_t)i;
        p->prompt = r.ids + r.offs[at];       p->n_prompt = r.lens[at];
        p->chosen = r.ids + r.offs[at + 1];   p->n_chosen = r.lens[at + 1];
        p->rejected = r.ids + r.offs[at + 2]; p->n_rejected = r.lens[at + 2];
    }
    free(r.offs); free(r.lens);
}

void data_load_prompts(PromptSet *ps, const char *path, int vocab_size, const DataOptions *o) {
    Reader r = {.path = path, .o = o, .vocab_size = vocab_size, .per_line = 1};
    read_any(&r);
    if (r.n == 0) die("%s: no prompts in the file", path);
    memset(ps, 0, sizeof *ps);
    ps->n = r.n;
    ps->ids = r.ids;
    ps->lens = r.lens;
    ps->prompts = xmalloc(r.n * sizeof(int *));
    for (int i = 0; i < r.n; i++) ps->prompts[i] = r.ids + r.offs[i];
    free(r.offs);
}

// ----------------------------------------------------------------------------
// commands

// the model's vocabulary size: config.json's vocab_size, or a GGUF file's token count
static int model_vocab_size(const char *model) {
    if (ends_with_str(model, ".gguf")) {
        char err[1024];
        GGUF *g = gguf_open(model, err, sizeof err);
        if (!g) die("%s", err);
        uint64_t n = gguf_get_arr_n(g, "tokenizer.ggml.tokens");
        gguf_close(g);
        if (n == 0 || n > 0x7fffffff) die("%s: no tokenizer.ggml.tokens", model);
        return (int)n;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", model);
    JsonConfig *cfg = config_load(path);
    int v = (int)config_int(cfg, "vocab_size", 1, 0);
    config_free(cfg);
    return v;
}

static int prepare(int argc, char **argv) {
    DataOptions o = {0};
    const char *data = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--skip-bad")) { o.skip_bad = 1; continue; }
        if (i + 1 >= argc) die("prepare: %s needs a value", f);
        const char *v = argv[++i];
        if (!strcmp(f, "--model")) o.model = v;
        else if (!strcmp(f, "--tokenizer")) o.tokenizer = v;
        else if (!strcmp(f, "--chat-template")) o.chat_template = v;
        else if (!strcmp(f, "--data")) data = v;
        else if (!strcmp(f, "--out")) out = v;
        else die("prepare: unknown option %s (prepare --model DIR --data FILE.jsonl --out FILE.bin "
                 "[--tokenizer PATH] [--chat-template plain|chatml|llama3] [--skip-bad])", f);
    }
    if (!data || !out) die("prepare: --data FILE.jsonl and --out FILE.bin are required");
    if (!o.model && !o.tokenizer) die("prepare: --model DIR (or --tokenizer PATH) is required");
    const char *inputs[] = {data, o.model, o.tokenizer};
    output_file_check("--out", out);
    output_not_input("--out", out, inputs, 3);
    int vocab;
    if (o.model) vocab = model_vocab_size(o.model);
    else {
        Tokenizer *t = load_tokenizer(&o);
        vocab = tokenizer_vocab_size(t);
        tokenizer_free(t);
    }
    PairSet ps;
    data_load_pairs(&ps, data, vocab, &o);
    pairs_write_bin(&ps, vocab, out);
    size_t n_ids = 0;
    for (int i = 0; i < ps.n_pairs; i++) n_ids += ps.pairs[i].n_prompt + ps.pairs[i].n_chosen + ps.pairs[i].n_rejected;
    printf("wrote %s: %d pairs, %zu ids, vocabulary %d\n", out, ps.n_pairs, n_ids, vocab);
    pairs_free(&ps);
    return 0;
}

// stdin lines -> ids (encode) or ids -> text (decode), one output line per input line
static int encode_decode(int decode, int argc, char **argv) {
    const char *cmd = decode ? "decode" : "encode";
    DataOptions o = {0};
    for (int i = 0; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) o.model = argv[i + 1];
        else if (!strcmp(argv[i], "--tokenizer")) o.tokenizer = argv[i + 1];
        else die("%s: unknown option %s (%s --model DIR | --tokenizer PATH)", cmd, argv[i], cmd);
    }
    if (argc % 2) die("%s: %s needs a value", cmd, argv[argc - 1]);
    if (!o.model && !o.tokenizer) die("%s: --model DIR or --tokenizer PATH is required", cmd);
    Tokenizer *t = load_tokenizer(&o);
    int vocab = tokenizer_vocab_size(t);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0, *ids = NULL;
    size_t cap_ids = 0;
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n') len--;
        if (!decode) {
            int *out = NULL, n = tokenizer_encode(t, line, len, &out);
            if (n < 0) die("out of memory");
            for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", out[i]);
            putchar('\n');
            free(out);
            continue;
        }
        line[len] = 0;
        if (memchr(line, 0, len)) die("stdin:%d: a NUL byte in a line of ids", lineno); // strtol would stop there
        int n = 0;
        for (char *p = line, *end;; p = end) {
            while (*p == ' ' || *p == '\t' || *p == '\r' || *p == ',') p++;
            if (!*p) break;
            long id = strtol(p, &end, 10);
            if (end == p || (*end && *end != ' ' && *end != '\t' && *end != '\r' && *end != ','))
                die("stdin:%d: \"%.20s\" is not a token id", lineno, p);
            if (id < 0 || id >= vocab) die("stdin:%d: id %ld is outside the vocabulary [0, %d)", lineno, id, vocab);
            if ((size_t)n == cap_ids) { cap_ids = cap_ids * 2 + 64; ids = realloc(ids, cap_ids * sizeof(int)); if (!ids) die("out of memory"); }
            ids[n++] = (int)id;
        }
        size_t out_len;
        char *text = tokenizer_decode(t, ids, n, &out_len);
        if (!text) die("out of memory");
        fwrite(text, 1, out_len, stdout);
        putchar('\n');
        free(text);
    }
    free(line); free(ids);
    tokenizer_free(t);
    if (fflush(stdout) != 0) die("writing stdout failed");
    return 0;
}

int data_command(const char *cmd, int argc, char **argv) {
    if (!strcmp(cmd, "prepare")) return prepare(argc, argv);
    if (!strcmp(cmd, "encode")) return encode_decode(0, argc, argv);
    if (!strcmp(cmd, "decode")) return encode_decode(1, argc, argv);
    die("unknown command \"%s\"", cmd);
}
