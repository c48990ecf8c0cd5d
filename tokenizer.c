// tokenizer.c: byte-level BPE, bit-for-bit compatible with Hugging Face
// `tokenizers` (0.15) for GPT-2, SmolLM2 and Llama-3 style tokenizers.
//
// Pipeline for encode, mirroring tokenizers' Tokenizer::encode:
//   1. added tokens ("<|im_start|>") cut the raw text first: those with
//      normalized=false in one pass, then the normalized ones in the gaps
//      (both passes see the same text since we accept no normalizer);
//   2. every gap goes through the pre-tokenizer stages, each a regex whose
//      matches and the text between them become pieces (Split "Isolated");
//   3. every piece is BPE'd on its bytes; the byte -> unicode mapping of
//      ByteLevel is folded into the vocabulary at load time, so the hot path
//      never builds the "Ġthe" strings.
#define _POSIX_C_SOURCE 200809L // fileno, fsync, getpid (tokenizer_write_json) under -std=c11
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer.h"
#include "io.h" // read_file, json_parse: files read as strictly as tokenizers reads them

#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// ----------------------------------------------------------------------------
// patterns, spelled exactly as in the models' tokenizer.json files

static const char *PAT_GPT2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char *PAT_LLAMA3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// Digits splits on Rust's char::is_numeric: general category N, which is \p{N}
// except that tokenizers 0.15's Rust knows Unicode 15 and PCRE2 10.42 knows
// Unicode 14. The three numeric blocks Unicode 15 added are listed by hand
// (Kawi, Kaktovik and Nag Mundari digits); the byte-level regexes need no such
// patch because Oniguruma's tables are Unicode 14 too.
#define NUMERIC_SET "\\p{N}\\x{11f50}-\\x{11f59}\\x{1d2c0}-\\x{1d2d3}\\x{1e4f0}-\\x{1e4f9}"
static const char *PAT_DIGITS_EACH = "[" NUMERIC_SET "]";
static const char *PAT_DIGITS_RUN = "[" NUMERIC_SET "]+";

// ----------------------------------------------------------------------------
// small helpers

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    one_line(err, errlen); // tokens in the message may hold newlines
}

static char *str_ndup(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static char *str_dup(const char *s) { return str_ndup(s, strlen(s)); }

static uint64_t hash_bytes(const void *p, size_t n) { // FNV-1a, then a mix so low bits are usable
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return h;
}

static uint64_t mix64(uint64_t x) { // splitmix64 finalizer
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the
// rest are moved to U+0100.. in byte order, so every byte gets a visible char.
static void byte_level_map(int byte_cp[256], int cp_byte[324]) {
    for (int i = 0; i < 324; i++) cp_byte[i] = -1;
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_cp[b] = keep ? b : 256 + n++;
        cp_byte[byte_cp[b]] = b;
    }
}

static int utf8_put(char *out, int cp) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F)); return 4;
}

// Decodes one UTF-8 char; on malformed input consumes one byte and returns -1.
static int utf8_get(const unsigned char *s, size_t n, size_t *used) {
    unsigned c = s[0];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || (size_t)len > n) { *used = 1; return -1; }
    int cp = len == 1 ? (int)c : len == 2 ? (int)(c & 0x1F) : len == 3 ? (int)(c & 0x0F) : (int)(c & 0x07);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) { *used = 1; return -1; }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    *used = (size_t)len;
    return cp;
}

// Rust's char::is_whitespace (Unicode White_Space), used by lstrip/rstrip.
static int is_white_space(int cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

// ----------------------------------------------------------------------------
// string -> id map (open addressing; keys are not owned)

typedef struct { const char *key; uint32_t len; int val; uint64_t hash; } StrSlot;
typedef struct { StrSlot *slots; size_t cap, n; } StrMap;

static int strmap_init(StrMap *m, size_t expected) {
    m->cap = pow2_at_least(expected * 2 + 1);
    m->n = 0;
    m->slots = calloc(m->cap, sizeof(StrSlot));
    return m->slots != NULL;
}

static StrSlot *strmap_slot(const StrMap *m, const char *key, size_t len, uint64_t h) {
    size_t i = h & (m->cap - 1);
    for (;;) {
        StrSlot *s = &m->slots[i];
        if (!s->key || (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)) return s;
        i = (i + 1) & (m->cap - 1);
    }
}

static int strmap_get(const StrMap *m, const char *key, size_t len) {
    if (!m->slots) return -1;
    StrSlot *s = strmap_slot(m, key, len, hash_bytes(key, len));
    return s->key ? s->val : -1;
}

// Later puts win, like the HashMap inserts in tokenizers.
static int strmap_put(StrMap *m, const char *key, size_t len, int val) {
    if ((m->n + 1) * 2 > m->cap) {
        StrMap bigger = {calloc(m->cap * 2, sizeof(StrSlot)), m->cap * 2, 0};
        if (!bigger.slots) return 0;
        for (size_t i = 0; i < m->cap; i++) {
            StrSlot *o = &m->slots[i];
            if (o->key) { *strmap_slot(&bigger, o->key, o->len, o->hash) = *o; bigger.n++; }
        }
        free(m->slots);
        *m = bigger;
    }
    uint64_t h = hash_bytes(key, len);
    StrSlot *s = strmap_slot(m, key, len, h);
    if (!s->key) m->n++;
    *s = (StrSlot){key, (uint32_t)len, val, h};
    return 1;
}

// ----------------------------------------------------------------------------
// (left id, right id) -> (rank, merged id)

typedef struct { uint64_t key; int rank, merged; } MergeSlot;
typedef struct { MergeSlot *slots; size_t cap; } MergeMap;
#define MERGE_EMPTY UINT64_MAX

static MergeSlot *merge_slot(const MergeMap *m, uint64_t key) {
    size_t i = mix64(key) & (m->cap - 1);
    while (m->slots[i].key != MERGE_EMPTY && m->slots[i].key != key) i = (i + 1) & (m->cap - 1);
    return &m->slots[i];
}

static inline const MergeSlot *merge_find(const MergeMap *m, int a, int b) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    const MergeSlot *s = merge_slot(m, key);
    return s->key == MERGE_EMPTY ? NULL : s;
}

// ----------------------------------------------------------------------------
// the tokenizer

typedef struct {
    char *content;
    size_t len;
    int id;
    int special, lstrip, rstrip, single_word, normalized;
} AddedToken;

// Added tokens matched in one pass, leftmost-longest like the Aho-Corasick
// automaton tokenizers builds: by_first[b] lists the tokens starting with
// byte b, longest first.
typedef struct {
    AddedToken **toks;
    int n;
    int *by_first_start; // 257 offsets into order[]
    int *order;
} AddedGroup;

typedef struct { int id; int prev, next; int alive; } Sym;
typedef struct { int rank, pos, merged; } HeapItem;

#define CACHE_SLOTS 65536
#define CACHE_MAX_BYTES 23
#define CACHE_MAX_IDS 8
typedef struct { uint64_t hash; uint8_t len, nids; char bytes[CACHE_MAX_BYTES]; int ids[CACHE_MAX_IDS]; } CacheSlot;

struct Tokenizer {
    int n_vocab;           // highest id + 1
    char **text;           // per id: vocabulary text (byte-level form) or NULL for holes
    char **bytes;          // per id: what decode writes
    int *nbytes;
    unsigned char *special;
    StrMap vocab;          // text -> id, model vocabulary plus added tokens
    int byte_id[256];      // id of each single-byte token, -1 if missing
    MergeMap merges;
    int unk_id, ignore_merges, eos_id;
    int byte_cp[256], cp_byte[324];

    AddedToken *added;
    int n_added;
    AddedGroup groups[2];  // [0]: normalized=false, [1]: normalized=true
    pcre2_code *word_char; // single_word's notion of a word char (alphanumeric or '_'); built on demand

    pcre2_code *stages[4]; // pre-tokenizer regexes, applied in order
    const char *stage_pat[4]; // their patterns (static strings: PAT_*), for tokenizer_write_json
    int n_stages;
    pcre2_match_data *md;

    // scratch reused across encode calls
    int *out; size_t out_n, out_cap;
    Sym *syms; size_t sym_cap;
    HeapItem *heap; size_t heap_cap;
    int *work; size_t work_cap;
    char *scratch; size_t scratch_cap;
    CacheSlot *cache;
};

static void added_group_free(AddedGroup *g) {
    free(g->toks); free(g->by_first_start); free(g->order);
    memset(g, 0, sizeof *g);
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_vocab; i++) { free(t->text[i]); free(t->bytes[i]); }
    free(t->text); free(t->bytes); free(t->nbytes); free(t->special);
    free(t->vocab.slots); free(t->merges.slots);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    added_group_free(&t->groups[0]); added_group_free(&t->groups[1]);
    if (t->word_char) pcre2_code_free(t->word_char);
    for (int i = 0; i < t->n_stages; i++) pcre2_code_free(t->stages[i]);
    if (t->md) pcre2_match_data_free(t->md);
    free(t->out); free(t->syms); free(t->heap); free(t->work); free(t->scratch); free(t->cache);
    free(t);
}

// ----------------------------------------------------------------------------
// construction. A Builder collects (text, id) pairs, merges and added tokens
// from any source; builder_finish turns them into a Tokenizer.

typedef struct {
    char **tok; int *tok_id; int n_tok, cap_tok;       // model vocabulary
    char **ml, **mr; int n_merge, cap_merge;            // merges (left, right)
    AddedToken *added; int n_added, cap_added;
    const char *stage_pat[4]; int n_stages;
    int unk_id, ignore_merges, eos_id;
} Builder;

static void builder_free(Builder *b) {
    for (int i = 0; i < b->n_tok; i++) free(b->tok[i]);
    for (int i = 0; i < b->n_merge; i++) { free(b->ml[i]); free(b->mr[i]); }
    for (int i = 0; i < b->n_added; i++) free(b->added[i].content);
    free(b->tok); free(b->tok_id); free(b->ml); free(b->mr); free(b->added);
}

static int grow(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return 1;
    if (need > INT32_MAX / 2) return 0; // the doubling below stays inside int
    int nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return 0;
    *p = q;
    *cap = nc;
    return 1;
}

static int builder_add_token(Builder *b, const char *text, int id) {
    int cap = b->cap_tok;
    if (!grow((void **)&b->tok, &cap, b->n_tok + 1, sizeof(char *))) return 0;
    if (!grow((void **)&b->tok_id, &b->cap_tok, b->n_tok + 1, sizeof(int))) return 0;
    if (!(b->tok[b->n_tok] = str_dup(text))) return 0;
    b->tok_id[b->n_tok++] = id;
    return 1;
}

static int builder_add_merge(Builder *b, const char *l, size_t ll, const char *r, size_t rl) {
    int cap = b->cap_merge;
    if (!grow((void **)&b->ml, &cap, b->n_merge + 1, sizeof(char *))) return 0;
    if (!grow((void **)&b->mr, &b->cap_merge, b->n_merge + 1, sizeof(char *))) return 0;
    b->ml[b->n_merge] = str_ndup(l, ll);
    b->mr[b->n_merge] = str_ndup(r, rl);
    if (!b->ml[b->n_merge] || !b->mr[b->n_merge]) { b->n_merge++; return 0; }
    b->n_merge++;
    return 1;
}

// A merge line is "left right" with exactly one space, as tokenizers demands.
static int builder_add_merge_line(Builder *b, const char *line, size_t len, int rank, char *err, size_t errlen,
                                  const char *file) {
    const char *sp = memchr(line, ' ', len);
    if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - line))) {
        set_err(err, errlen, "%s: merge %d is not 'left right': %.*s", file, rank, (int)(len < 80 ? len : 80), line);
        return 0;
    }
    if (!builder_add_merge(b, line, (size_t)(sp - line), sp + 1, len - (size_t)(sp + 1 - line))) {
        set_err(err, errlen, "out of memory");
        return 0;
    }
    return 1;
}

static int builder_add_added(Builder *b, AddedToken a) {
    if (!grow((void **)&b->added, &b->cap_added, b->n_added + 1, sizeof(AddedToken))) return 0;
    b->added[b->n_added++] = a;
    return 1;
}

// Oniguruma, which tokenizers uses, reads \s as Unicode White_Space; PCRE2
// with UCP adds U+180E (Mongolian vowel separator, no longer a space since
// Unicode 6.3). Spelling the set out keeps the two engines in step.
#define WHITE_SPACE_SET "\\t-\\r\\x20\\x85\\xa0\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"

// Rewrites \s and \S (outside classes) into explicit sets. Returns a malloc'd
// pattern, or NULL for \S inside a character class, which a set cannot say.
static char *spell_out_spaces(const char *pat) {
    size_t n = strlen(pat), cap = n * 8 + sizeof WHITE_SPACE_SET * 4 + 16, k = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        if (pat[i] == '\\' && i + 1 < n) {
            char c = pat[i + 1];
            const char *rep = NULL;
            if (c == 's') rep = in_class ? WHITE_SPACE_SET : "[" WHITE_SPACE_SET "]";
            else if (c == 'S' && !in_class) rep = "[^" WHITE_SPACE_SET "]";
            else if (c == 'S') { free(out); return NULL; }
            if (rep) {
                size_t rl = strlen(rep);
                if (k + rl + 2 > cap) { cap = (k + rl) * 2 + 16; char *o = realloc(out, cap); if (!o) { free(out); return NULL; } out = o; }
                memcpy(out + k, rep, rl);
                k += rl;
            } else {
                if (k + 3 > cap) { cap = cap * 2; char *o = realloc(out, cap); if (!o) { free(out); return NULL; } out = o; }
                out[k++] = '\\';
                out[k++] = c;
            }
            i++;
            continue;
        }
        if (k + 2 > cap) { cap = cap * 2; char *o = realloc(out, cap); if (!o) { free(out); return NULL; } out = o; }
        // a ']' right after '[' or '[^' is a literal, not the end of the class
        if (pat[i] == '[' && !in_class) {
            in_class = 1;
            out[k++] = pat[i];
            if (i + 1 < n && pat[i + 1] == '^') out[k++] = pat[++i];
            if (i + 1 < n && pat[i + 1] == ']') out[k++] = pat[++i];
            continue;
        }
        if (pat[i] == ']' && in_class) in_class = 0;
        out[k++] = pat[i];
    }
    out[k] = '\0';
    return out;
}

static pcre2_code *compile_pattern(const char *pat, char *err, size_t errlen) {
    int ec;
    PCRE2_SIZE eo;
    char *spelled = spell_out_spaces(pat);
    if (!spelled) { set_err(err, errlen, "unsupported pre-tokenizer regex (\\S inside [...]): %s", pat); return NULL; }
    // MATCH_INVALID_UTF: our input is bytes, not a Rust &str; malformed
    // sequences simply never match and fall into the gaps between matches.
    // It also spares the per-call UTF validity scan of the whole subject.
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)spelled, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
    free(spelled);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        set_err(err, errlen, "cannot compile pre-tokenizer regex: %s: %s", msg, pat);
        return NULL;
    }
#ifndef REPO_FUZZ // fuzz builds free what a die() left behind with free(), which cannot release JIT code
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); // optional: falls back to the interpreter
#endif
    return re;
}

// Builds the by-first-byte index of one added-token group.
static int build_group(AddedGroup *g, AddedToken *all, int n_all, int normalized) {
    g->n = 0;
    g->toks = malloc(sizeof(AddedToken *) * (size_t)(n_all + 1));
    g->order = malloc(sizeof(int) * (size_t)(n_all + 1));
    g->by_first_start = calloc(258, sizeof(int));
    if (!g->toks || !g->order || !g->by_first_start) return 0;
    for (int i = 0; i < n_all; i++)
        if (all[i].normalized == normalized && all[i].len > 0) g->toks[g->n++] = &all[i];
    // counting sort by first byte, then longest first within a bucket
    for (int i = 0; i < g->n; i++) g->by_first_start[(unsigned char)g->toks[i]->content[0] + 1]++;
    for (int b = 0; b < 257; b++) g->by_first_start[b + 1] += g->by_first_start[b];
    int fill[256];
    for (int b = 0; b < 256; b++) fill[b] = g->by_first_start[b];
    for (int i = 0; i < g->n; i++) g->order[fill[(unsigned char)g->toks[i]->content[0]]++] = i;
    for (int b = 0; b < 256; b++) { // insertion sort: buckets are tiny
        int s = g->by_first_start[b], e = g->by_first_start[b + 1];
        for (int i = s + 1; i < e; i++) {
            int v = g->order[i], j = i;
            while (j > s && g->toks[g->order[j - 1]]->len < g->toks[v]->len) { g->order[j] = g->order[j - 1]; j--; }
            g->order[j] = v;
        }
    }
    return 1;
}

static Tokenizer *builder_finish(Builder *b, char *err, size_t errlen) {
    Tokenizer *t = calloc(1, sizeof *t);
    if (!t) { set_err(err, errlen, "out of memory"); return NULL; }
    t->unk_id = b->unk_id;
    t->ignore_merges = b->ignore_merges;
    t->eos_id = b->eos_id;
    byte_level_map(t->byte_cp, t->cp_byte);

    int max_id = -1;
    for (int i = 0; i < b->n_tok; i++) {
        if (b->tok_id[i] < 0) { set_err(err, errlen, "negative id for token '%s'", b->tok[i]); goto fail; }
        if (b->tok_id[i] > max_id) max_id = b->tok_id[i];
    }
    for (int i = 0; i < b->n_added; i++) if (b->added[i].id > max_id) max_id = b->added[i].id;
    t->n_vocab = max_id + 1;
    t->text = calloc((size_t)t->n_vocab + 1, sizeof(char *));
    t->bytes = calloc((size_t)t->n_vocab + 1, sizeof(char *));
    t->nbytes = calloc((size_t)t->n_vocab + 1, sizeof(int));
    t->special = calloc((size_t)t->n_vocab + 1, 1);
    if (!t->text || !t->bytes || !t->nbytes || !t->special ||
        !strmap_init(&t->vocab, (size_t)(b->n_tok + b->n_added))) goto oom;
    for (int i = 0; i < b->n_tok; i++) {
        int id = b->tok_id[i];
        if (t->text[id]) { // the map would keep pointing at whichever text we dropped
            set_err(err, errlen, "id %d is used by both '%s' and '%s'", id, t->text[id], b->tok[i]);
            goto fail;
        }
        t->text[id] = b->tok[i];
        b->tok[i] = NULL;
        if (!strmap_put(&t->vocab, t->text[id], strlen(t->text[id]), id)) goto oom;
    }
    // added tokens: their content is what the text must contain, and what
    // token_id finds (tokenizers looks in the added vocabulary first)
    t->added = b->added;
    t->n_added = b->n_added;
    b->added = NULL;
    b->n_added = 0;
    for (int i = 0; i < t->n_added; i++) {
        AddedToken *a = &t->added[i];
        if (!t->text[a->id] && !(t->text[a->id] = str_dup(a->content))) goto oom;
        if (!strmap_put(&t->vocab, a->content, a->len, a->id)) goto oom;
        if (a->special) t->special[a->id] = 1;
        if (a->single_word && !t->word_char &&
            !(t->word_char = compile_pattern("^[\\p{Alphabetic}\\p{N}_]$", err, errlen))) goto fail;
    }
    if (!build_group(&t->groups[0], t->added, t->n_added, 0) ||
        !build_group(&t->groups[1], t->added, t->n_added, 1)) goto oom;

    // what decode writes: the ByteLevel decoder maps every char back to its
    // byte, unless a char has no byte, in which case the token's raw UTF-8 is
    // kept (this is how "<|im_start|>"-like added tokens come out verbatim)
    for (int id = 0; id < t->n_vocab; id++) {
        const char *s = t->text[id];
        if (!s) continue;
        size_t n = strlen(s);
        char *out = malloc(n + 1);
        if (!out) goto oom;
        size_t k = 0, i = 0;
        int all_mapped = 1;
        while (i < n) {
            size_t used;
            int cp = utf8_get((const unsigned char *)s + i, n - i, &used);
            if (cp < 0 || cp >= 324 || t->cp_byte[cp] < 0) { all_mapped = 0; break; }
            out[k++] = (char)t->cp_byte[cp];
            i += used;
        }
        if (!all_mapped) { memcpy(out, s, n); k = n; }
        out[k] = '\0';
        t->bytes[id] = out;
        t->nbytes[id] = (int)k;
    }
    for (int c = 0; c < 256; c++) {
        char u[4];
        int n = utf8_put(u, t->byte_cp[c]);
        t->byte_id[c] = strmap_get(&t->vocab, u, (size_t)n);
    }

    // merges, resolved to ids once so encode never touches strings
    t->merges.cap = pow2_at_least((size_t)b->n_merge * 2 + 1);
    t->merges.slots = malloc(t->merges.cap * sizeof(MergeSlot));
    if (!t->merges.slots) goto oom;
    for (size_t i = 0; i < t->merges.cap; i++) t->merges.slots[i].key = MERGE_EMPTY;
    for (int r = 0; r < b->n_merge; r++) {
        size_t ll = strlen(b->ml[r]), rl = strlen(b->mr[r]);
        int a = strmap_get(&t->vocab, b->ml[r], ll), c = strmap_get(&t->vocab, b->mr[r], rl);
        char *joined = malloc(ll + rl + 1);
        if (!joined) goto oom;
        memcpy(joined, b->ml[r], ll);
        memcpy(joined + ll, b->mr[r], rl + 1);
        int m = strmap_get(&t->vocab, joined, ll + rl);
        if (a < 0 || c < 0 || m < 0) {
            set_err(err, errlen, "merge %d '%s %s': token '%s' is not in the vocabulary", r, b->ml[r], b->mr[r],
                    a < 0 ? b->ml[r] : c < 0 ? b->mr[r] : joined);
            free(joined);
            goto fail;
        }
        free(joined);
        uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)c;
        MergeSlot *s = merge_slot(&t->merges, key);
        *s = (MergeSlot){key, r, m}; // a repeated pair keeps its last rank, as in tokenizers
    }

    for (int i = 0; i < b->n_stages; i++) {
        if (!(t->stages[i] = compile_pattern(b->stage_pat[i], err, errlen))) goto fail;
        t->stage_pat[i] = b->stage_pat[i];
        t->n_stages = i + 1;
    }
    if (!(t->md = pcre2_match_data_create(1, NULL))) goto oom;
    return t;
oom:
    set_err(err, errlen, "out of memory");
fail:
    tokenizer_free(t);
    return NULL;
}

static int set_pre_kind(Builder *b, TokPreKind pre) {
    b->n_stages = 0;
    switch (pre) {
    case TOK_PRE_GPT2: b->stage_pat[b->n_stages++] = PAT_GPT2; return 1;
    case TOK_PRE_SMOLLM:
        b->stage_pat[b->n_stages++] = PAT_DIGITS_EACH;
        b->stage_pat[b->n_stages++] = PAT_GPT2;
        return 1;
    case TOK_PRE_LLAMA3: b->stage_pat[b->n_stages++] = PAT_LLAMA3; return 1;
    }
    return 0;
}

int tokenizer_pre_kind_from_name(const char *name) {
    static const struct { const char *name; TokPreKind kind; } known[] = {
        {"gpt2", TOK_PRE_GPT2}, {"gpt-2", TOK_PRE_GPT2},
        {"smollm", TOK_PRE_SMOLLM}, {"llama3", TOK_PRE_LLAMA3}, {"llama-bpe", TOK_PRE_LLAMA3},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (name && strcmp(name, known[i].name) == 0) return (int)known[i].kind;
    return -1;
}

Tokenizer *tokenizer_from_arrays(const char *const *tokens, int n_tokens, const char *const *merges, int n_merges,
                                 const int *token_types, TokPreKind pre, int eos_id, char *err, size_t errlen) {
    Builder b = {0};
    b.unk_id = -1;
    b.eos_id = eos_id;
    Tokenizer *t = NULL;
    if (!set_pre_kind(&b, pre)) { set_err(err, errlen, "unknown pre-tokenizer kind %d", (int)pre); goto done; }
    b.ignore_merges = pre == TOK_PRE_LLAMA3; // as Llama-3's tokenizer.json (and llama.cpp) has it
    for (int i = 0; i < n_tokens; i++) {
        int type = token_types ? token_types[i] : 1;
        if (type == 3 || type == 4) {
            AddedToken a = {str_dup(tokens[i]), strlen(tokens[i]), i, type == 3, 0, 0, 0, 0};
            if (!a.content || !builder_add_added(&b, a)) { free(a.content); goto oom; }
        }
        if (!builder_add_token(&b, tokens[i], i)) goto oom;
    }
    for (int r = 0; r < n_merges; r++)
        if (!builder_add_merge_line(&b, merges[r], strlen(merges[r]), r, err, errlen, "merges")) goto done;
    t = builder_finish(&b, err, errlen);
    goto done;
oom:
    set_err(err, errlen, "out of memory");
done:
    builder_free(&b);
    return t;
}

// ----------------------------------------------------------------------------
// loading files

// tokenizers' JSON is serde_json: strict syntax; a repeated key counts once, the last, in maps and in
// the root and BPE objects (hand-written visitors), but refuses the file inside the derived structs
// (added tokens, normalizer, pre-tokenizer, post-processor, decoder): keep_last = 0 keeps repeats
// for the caller to check
static cJSON *read_json(const char *path, int keep_last, char *err, size_t errlen) {
    char why[256];
    size_t n;
    char *s = read_file(path, &n, err, errlen);
    if (!s) return NULL;
    cJSON *j = keep_last ? json_parse(s, n, why, sizeof why) : json_parse_raw(s, n, why, sizeof why);
    if (!j) set_err(err, errlen, "%s: %s", path, why);
    free(s);
    return j;
}

// the first key an object (or any object inside it) repeats, NULL if none
static const char *repeated_key(const cJSON *node) {
    for (const cJSON *a = node ? node->child : NULL; a; a = a->next) {
        const char *r = repeated_key(a);
        if (r) return r;
        if (cJSON_IsObject(node))
            for (const cJSON *b = a->next; b; b = b->next) if (!strcmp(a->string, b->string)) return a->string;
    }
    return NULL;
}

// ids are u32 in tokenizers; we take them below 2^24 (every real vocabulary is far smaller), so a
// stray huge id cannot make us allocate per-id tables of gigabytes
#define MAX_TOKEN_ID ((1 << 24) - 1)
static int token_id(const cJSON *v, int *id) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= MAX_TOKEN_ID) ||
        v->valuedouble != (double)(int)v->valuedouble)
        return 0;
    *id = (int)v->valuedouble;
    return 1;
}

static int json_bool(const cJSON *obj, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

static const char *json_type(const cJSON *obj) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(v) ? v->valuestring : "?";
}

static int load_vocab_object(Builder *b, const cJSON *vocab, const char *file, char *err, size_t errlen) {
    if (!cJSON_IsObject(vocab)) { set_err(err, errlen, "%s: vocab is not a JSON object", file); return 0; }
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int id;
        if (!token_id(e, &id)) {
            set_err(err, errlen, "%s: vocab entry '%s' has no valid id (an integer in [0, %d])", file, e->string, MAX_TOKEN_ID);
            return 0;
        }
        if (!builder_add_token(b, e->string, id)) { set_err(err, errlen, "out of memory"); return 0; }
    }
    return 1;
}

// Translates a tokenizer.json pre_tokenizer into regex stages, refusing
// anything whose behaviour we do not reproduce exactly.
static int parse_pre_tokenizer(Builder *b, const cJSON *pt, const char *file, int *saw_byte_level, char *err,
                               size_t errlen) {
    const char *type = json_type(pt);
    if (*saw_byte_level) {
        set_err(err, errlen, "%s: pre-tokenizer %s after ByteLevel is not supported", file, type);
        return 0;
    }
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers");
        for (const cJSON *e = list ? list->child : NULL; e; e = e->next)
            if (!parse_pre_tokenizer(b, e, file, saw_byte_level, err, errlen)) return 0;
        return 1;
    }
    if (b->n_stages >= 3) { set_err(err, errlen, "%s: too many pre-tokenizers", file); return 0; }
    if (strcmp(type, "ByteLevel") == 0) {
        if (json_bool(pt, "add_prefix_space", 0)) {
            set_err(err, errlen, "%s: ByteLevel with add_prefix_space=true is not supported", file);
            return 0;
        }
        if (json_bool(pt, "use_regex", 1)) b->stage_pat[b->n_stages++] = PAT_GPT2;
        *saw_byte_level = 1;
        return 1;
    }
    if (strcmp(type, "Digits") == 0) {
        b->stage_pat[b->n_stages++] = json_bool(pt, "individual_digits", 0) ? PAT_DIGITS_EACH : PAT_DIGITS_RUN;
        return 1;
    }
    if (strcmp(type, "Split") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(pt, "pattern");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *behavior = cJSON_GetObjectItemCaseSensitive(pt, "behavior");
        if (!cJSON_IsString(re)) {
            set_err(err, errlen, "%s: Split pre-tokenizer without a Regex pattern is not supported", file);
            return 0;
        }
        if (!cJSON_IsString(behavior) || strcmp(behavior->valuestring, "Isolated") != 0 ||
            json_bool(pt, "invert", 0)) {
            set_err(err, errlen, "%s: Split pre-tokenizer: only behavior Isolated, invert false is supported",
                    file);
            return 0;
        }
        // Only patterns whose PCRE2 reading has been checked against
        // Oniguruma's (tests/tokenizer, Unicode sweep) are accepted.
        const char *p = re->valuestring;
        b->stage_pat[b->n_stages++] = strcmp(p, PAT_LLAMA3) == 0 ? PAT_LLAMA3 : strcmp(p, PAT_GPT2) == 0 ? PAT_GPT2
                                                                                                      : NULL;
        if (!b->stage_pat[b->n_stages - 1]) {
            set_err(err, errlen, "%s: Split pre-tokenizer with an unknown regex is not supported: %s", file, p);
            return 0;
        }
        return 1;
    }
    set_err(err, errlen, "%s: pre-tokenizer %s is not supported", file, type);
    return 0;
}

static int load_tokenizer_json(Builder *b, const char *file, char *err, size_t errlen) {
    cJSON *root = read_json(file, 0, err, errlen);
    if (!root) return 0;
    int ok = 0;
    if (!cJSON_IsObject(root)) { set_err(err, errlen, "%s: not a JSON object", file); goto done; }
    static const char *const root_keys[] = {"version", "truncation", "padding", "added_tokens", "normalizer",
                                            "pre_tokenizer", "post_processor", "decoder", "model"};
    for (const cJSON *k = root->child; k; k = k->next) {
        size_t i = 0, n = sizeof root_keys / sizeof root_keys[0];
        while (i < n && strcmp(k->string, root_keys[i])) i++;
        if (i == n) { set_err(err, errlen, "%s: unknown key \"%s\" (tokenizers refuses it)", file, k->string); goto done; }
        const char *r = i == n - 1 ? NULL : repeated_key(k); // the model's fields and vocab may repeat
        if (r) { set_err(err, errlen, "%s: %s: \"%s\" is given twice", file, k->string, r); goto done; }
    }
    json_keep_last(root);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!cJSON_IsObject(model)) { set_err(err, errlen, "%s: no model", file); goto done; }
    const cJSON *mtype = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (mtype && (!cJSON_IsString(mtype) || strcmp(mtype->valuestring, "BPE") != 0)) {
        set_err(err, errlen, "%s: model type %s is not supported (only BPE)", file, json_type(model));
        goto done;
    }
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (dropout && !cJSON_IsNull(dropout)) { set_err(err, errlen, "%s: BPE dropout is not supported", file); goto done; }
    if (json_bool(model, "byte_fallback", 0)) { set_err(err, errlen, "%s: BPE byte_fallback is not supported", file); goto done; }
    const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, affixes[i]);
        if (cJSON_IsString(v) && v->valuestring[0]) {
            set_err(err, errlen, "%s: BPE %s is not supported", file, affixes[i]);
            goto done;
        }
    }
    if (norm && !cJSON_IsNull(norm)) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(norm, "normalizers");
        if (!(strcmp(json_type(norm), "Sequence") == 0 && cJSON_GetArraySize(list) == 0)) {
            set_err(err, errlen, "%s: normalizer %s is not supported", file, json_type(norm));
            goto done;
        }
    }
    if (dec && !cJSON_IsNull(dec) && strcmp(json_type(dec), "ByteLevel") != 0) {
        set_err(err, errlen, "%s: decoder %s is not supported (only ByteLevel)", file, json_type(dec));
        goto done;
    }
    int saw_byte_level = 0;
    if (pre && !cJSON_IsNull(pre) && !parse_pre_tokenizer(b, pre, file, &saw_byte_level, err, errlen)) goto done;
    if (!saw_byte_level) {
        set_err(err, errlen, "%s: pre-tokenizer must include ByteLevel (byte-level BPE only)", file);
        goto done;
    }
    b->ignore_merges = json_bool(model, "ignore_merges", 0);
    if (!load_vocab_object(b, cJSON_GetObjectItemCaseSensitive(model, "vocab"), file, err, errlen)) goto done;
    // merges: all "left right" strings (tokenizers <= 0.19) or all ["left", "right"] pairs (0.20 on)
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsArray(merges)) { set_err(err, errlen, "%s: model.merges must be a list", file); goto done; }
    int rank = 0, pairs = merges->child && cJSON_IsArray(merges->child);
    for (const cJSON *m = merges->child; m; m = m->next, rank++) {
        if (!pairs && cJSON_IsString(m)) {
            if (!builder_add_merge_line(b, m->valuestring, strlen(m->valuestring), rank, err, errlen, file)) goto done;
        } else if (pairs && cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            const char *l = m->child->valuestring, *r = m->child->next->valuestring;
            if (!builder_add_merge(b, l, strlen(l), r, strlen(r))) { set_err(err, errlen, "out of memory"); goto done; }
        } else {
            set_err(err, errlen, "%s: merge %d is not %s", file, rank,
                    pairs ? "a [\"left\", \"right\"] pair like the first" : "a \"left right\" string like the first");
            goto done;
        }
    }
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (added && !cJSON_IsArray(added)) { set_err(err, errlen, "%s: added_tokens must be a list", file); goto done; }
    int i = 0;
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next, i++) {
        // tokenizers requires every field (AddedTokenWithId)
        static const char *const flags[5] = {"single_word", "lstrip", "rstrip", "normalized", "special"};
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        int id, f = 0;
        while (f < 5 && cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(a, flags[f]))) f++;
        if (!cJSON_IsObject(a) || !token_id(cJSON_GetObjectItemCaseSensitive(a, "id"), &id) || !cJSON_IsString(content) || f < 5) {
            set_err(err, errlen, "%s: added_tokens[%d] needs an id in [0, %d], a content string and the booleans "
                    "single_word, lstrip, rstrip, normalized, special", file, i, MAX_TOKEN_ID);
            goto done;
        }
        AddedToken t = {str_dup(content->valuestring), strlen(content->valuestring), id,
                        json_bool(a, "special", 0), json_bool(a, "lstrip", 0), json_bool(a, "rstrip", 0),
                        json_bool(a, "single_word", 0), json_bool(a, "normalized", 1)};
        if (!t.content || !builder_add_added(b, t)) { free(t.content); set_err(err, errlen, "out of memory"); goto done; }
    }
    if (cJSON_IsString(unk)) { // resolved after the vocabulary is complete
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(model, "vocab"),
                                                          unk->valuestring);
        if (!token_id(v, &b->unk_id)) b->unk_id = -1;
    }
    ok = 1;
done:
    cJSON_Delete(root);
    return ok;
}

static int load_vocab_merges(Builder *b, const char *vocab_path, const char *merges_path, char *err, size_t errlen) {
    cJSON *vocab = read_json(vocab_path, 1, err, errlen);
    if (!vocab) return 0;
    int ok = load_vocab_object(b, vocab, vocab_path, err, errlen);
    cJSON_Delete(vocab);
    if (!ok) return 0;
    size_t n;
    char *text = read_file(merges_path, &n, err, errlen);
    if (!text) return 0;
    if (!utf8_valid(text, n)) { set_err(err, errlen, "%s: not valid UTF-8", merges_path); free(text); return 0; }
    // as tokenizers' BPE::read_file: every line but "#version..." ones is "left right" (a blank line too)
    int rank = 0, lineno = 0;
    for (char *line = text; line < text + n;) {
        char *nl = memchr(line, '\n', (size_t)(text + n - line));
        char *end = nl ? nl : text + n;
        size_t len = (size_t)(end - line);
        lineno++;
        if (len && line[len - 1] == '\r') len--;
        if (!(len >= 8 && !strncmp(line, "#version", 8))) {
            char where[4300];
            snprintf(where, sizeof where, "%s:%d", merges_path, lineno);
            if (!builder_add_merge_line(b, line, len, rank, err, errlen, where)) { free(text); return 0; }
            rank++;
        }
        line = end + 1;
    }
    free(text);
    // GPT2TokenizerFast registers <|endoftext|> as a special added token
    int eot = -1;
    for (int i = 0; i < b->n_tok; i++) if (strcmp(b->tok[i], "<|endoftext|>") == 0) eot = b->tok_id[i];
    if (eot >= 0) {
        AddedToken a = {str_dup("<|endoftext|>"), 13, eot, 1, 0, 0, 0, 0};
        if (!a.content || !builder_add_added(b, a)) { free(a.content); set_err(err, errlen, "out of memory"); return 0; }
    }
    return set_pre_kind(b, TOK_PRE_GPT2);
}

// The EOS token is not in tokenizer.json; transformers keeps it in
// tokenizer_config.json / special_tokens_map.json. Without those we fall back
// to the names the supported families use.
static int find_eos(const Tokenizer *t, const char *dir, char *err, size_t errlen) {
    const char *files[] = {"tokenizer_config.json", "special_tokens_map.json"};
    for (int i = 0; i < 2; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (access(path, F_OK) != 0) continue;
        cJSON *j = read_json(path, 1, err, errlen); // a broken file is an error, as in transformers
        if (!j) return -2;
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "eos_token");
        if (cJSON_IsObject(e)) e = cJSON_GetObjectItemCaseSensitive(e, "content");
        int id = cJSON_IsString(e) ? tokenizer_token_id(t, e->valuestring) : -1;
        cJSON_Delete(j);
        if (id >= 0) return id;
    }
    const char *names[] = {"<|endoftext|>", "<|end_of_text|>", "</s>"};
    for (int i = 0; i < 3; i++) {
        int id = tokenizer_token_id(t, names[i]);
        if (id >= 0) return id;
    }
    return -1;
}

Tokenizer *tokenizer_load(const char *path, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    char dir[4096], json[4200], vocab[4200], merges[4200];
    int use_json;
    if (dir_exists(path)) {
        snprintf(dir, sizeof dir, "%s", path);
        snprintf(json, sizeof json, "%s/tokenizer.json", dir);
        snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
        snprintf(merges, sizeof merges, "%s/merges.txt", dir);
        use_json = access(json, F_OK) == 0;
        if (!use_json && access(vocab, F_OK) != 0) {
            set_err(err, errlen, "%s: no tokenizer.json or vocab.json + merges.txt in this directory", path);
            return NULL;
        }
    } else {
        const char *slash = strrchr(path, '/');
        if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        else snprintf(dir, sizeof dir, ".");
        size_t n = strlen(path);
        use_json = !(n >= 10 && strcmp(path + n - 10, "vocab.json") == 0);
        snprintf(json, sizeof json, "%s", path);
        snprintf(vocab, sizeof vocab, "%s", path);
        snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    }
    Builder b = {0};
    b.unk_id = -1;
    b.eos_id = -1;
    Tokenizer *t = NULL;
    if (use_json ? load_tokenizer_json(&b, json, err, errlen) : load_vocab_merges(&b, vocab, merges, err, errlen)) {
        t = builder_finish(&b, err, errlen);
        if (!t && err && errlen) { // name the file in build errors too
            char inner[512];
            snprintf(inner, sizeof inner, "%s", err);
            set_err(err, errlen, "%s: %s", use_json ? json : merges, inner);
        }
    }
    builder_free(&b);
    if (t && (t->eos_id = find_eos(t, dir, err, errlen)) == -2) { tokenizer_free(t); t = NULL; }
    return t;
}

// ----------------------------------------------------------------------------
// encoding

static int reserve(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t nc = *cap ? *cap : 256;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * elem);
    if (!q) return 0;
    *p = q;
    *cap = nc;
    return 1;
}

// One encode call. With `bounds` set, pieces are recorded instead of BPE'd
// (tokenizer_pieces, for tests that compare pre-tokenization directly).
typedef struct { Tokenizer *t; int oom; const char *base; size_t *bounds; size_t nb, cap; } Enc;

static void record_piece(Enc *e, const char *p, size_t n) {
    if (e->nb + 2 > e->cap && !reserve((void **)&e->bounds, &e->cap, e->nb + 2, sizeof(size_t))) {
        e->oom = 1;
        return;
    }
    e->bounds[e->nb++] = (size_t)(p - e->base);
    e->bounds[e->nb++] = (size_t)(p - e->base) + n;
}

static inline void emit(Enc *e, int id) {
    Tokenizer *t = e->t;
    if (t->out_n == t->out_cap && !reserve((void **)&t->out, &t->out_cap, t->out_n + 1, sizeof(int))) {
        e->oom = 1;
        return;
    }
    t->out[t->out_n++] = id;
}

static void heap_push(HeapItem *h, size_t *n, HeapItem it) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].rank < it.rank || (h[p].rank == it.rank && h[p].pos < it.pos)) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = it;
}

static HeapItem heap_pop(HeapItem *h, size_t *n) {
    HeapItem top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && (h[c + 1].rank < h[c].rank || (h[c + 1].rank == h[c].rank && h[c + 1].pos < h[c].pos))) c++;
        if (last.rank < h[c].rank || (last.rank == h[c].rank && last.pos < h[c].pos)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

// Applies merges to w[0..m), lowest rank first and leftmost among equal
// ranks, exactly the order of tokenizers' priority queue. Returns the new m.
// Short words (nearly all of them) use a plain scan; long ones (whitespace or
// symbol runs) a heap, so a megabyte of spaces is not quadratic.
static int bpe_merge(Tokenizer *t, Enc *e, int *w, int m) {
    if (m < 2) return m;
    if (m <= 48) {
        int rank[48], merged[48];
        for (int i = 0; i + 1 < m; i++) {
            const MergeSlot *s = merge_find(&t->merges, w[i], w[i + 1]);
            rank[i] = s ? s->rank : INT32_MAX;
            merged[i] = s ? s->merged : -1;
        }
        for (;;) {
            int best = INT32_MAX, bi = -1;
            for (int i = 0; i + 1 < m; i++) if (rank[i] < best) { best = rank[i]; bi = i; }
            if (bi < 0) break;
            w[bi] = merged[bi];
            m--;
            for (int i = bi + 1; i < m; i++) w[i] = w[i + 1];
            for (int i = bi + 1; i + 1 < m; i++) { rank[i] = rank[i + 1]; merged[i] = merged[i + 1]; }
            for (int i = bi - 1; i <= bi; i++) {
                if (i < 0 || i + 1 >= m) continue;
                const MergeSlot *s = merge_find(&t->merges, w[i], w[i + 1]);
                rank[i] = s ? s->rank : INT32_MAX;
                merged[i] = s ? s->merged : -1;
            }
        }
        return m;
    }
    if (!reserve((void **)&t->syms, &t->sym_cap, (size_t)m, sizeof(Sym)) ||
        !reserve((void **)&t->heap, &t->heap_cap, (size_t)m * 2, sizeof(HeapItem))) {
        e->oom = 1;
        return m;
    }
    Sym *sy = t->syms;
    HeapItem *h = t->heap;
    size_t hn = 0;
    for (int i = 0; i < m; i++) sy[i] = (Sym){w[i], i - 1, i + 1 < m ? i + 1 : -1, 1};
    for (int i = 0; i + 1 < m; i++) {
        const MergeSlot *s = merge_find(&t->merges, w[i], w[i + 1]);
        if (s) heap_push(h, &hn, (HeapItem){s->rank, i, s->merged});
    }
    while (hn) {
        HeapItem top = heap_pop(h, &hn);
        Sym *a = &sy[top.pos];
        if (!a->alive || a->next < 0) continue;
        Sym *b = &sy[a->next];
        const MergeSlot *s = merge_find(&t->merges, a->id, b->id);
        if (!s || s->merged != top.merged) continue; // stale: one side merged since
        a->id = top.merged;
        b->alive = 0;
        a->next = b->next;
        if (a->next >= 0) sy[a->next].prev = top.pos;
        // each merge adds at most two entries and removes one symbol, so the
        // heap never outgrows 2*m
        if (a->prev >= 0 && (s = merge_find(&t->merges, sy[a->prev].id, a->id)))
            heap_push(h, &hn, (HeapItem){s->rank, a->prev, s->merged});
        if (a->next >= 0 && (s = merge_find(&t->merges, a->id, sy[a->next].id)))
            heap_push(h, &hn, (HeapItem){s->rank, top.pos, s->merged});
    }
    int k = 0;
    for (int i = 0; i >= 0; i = sy[i].next) w[k++] = sy[i].id;
    return k;
}

static void bpe_piece(Enc *e, const unsigned char *p, size_t n) {
    Tokenizer *t = e->t;
    if (t->ignore_merges) { // Llama-3: a piece that is a whole token skips BPE
        if (!reserve((void **)&t->scratch, &t->scratch_cap, n * 2 + 1, 1)) { e->oom = 1; return; }
        size_t k = 0;
        for (size_t i = 0; i < n; i++) k += (size_t)utf8_put(t->scratch + k, t->byte_cp[p[i]]);
        int id = strmap_get(&t->vocab, t->scratch, k);
        if (id >= 0) { emit(e, id); return; }
    }
    CacheSlot *slot = NULL;
    uint64_t h = 0;
    if (n <= CACHE_MAX_BYTES) {
        if (!t->cache && !(t->cache = calloc(CACHE_SLOTS, sizeof(CacheSlot)))) { e->oom = 1; return; }
        h = hash_bytes(p, n) | 1; // never 0, which marks an empty slot
        slot = &t->cache[h & (CACHE_SLOTS - 1)];
        if (slot->hash == h && slot->len == n && memcmp(slot->bytes, p, n) == 0) {
            for (int i = 0; i < slot->nids; i++) emit(e, slot->ids[i]);
            return;
        }
    }
    // a piece of 2^31 bytes or more would overflow the int positions below (and tokenizers' u32 ids)
    if (n > INT32_MAX || !reserve((void **)&t->work, &t->work_cap, n, sizeof(int))) { e->oom = 1; return; }
    int *w = t->work, m = 0;
    for (size_t i = 0; i < n; i++) {
        int id = t->byte_id[p[i]];
        if (id < 0) id = t->unk_id; // a byte the vocabulary lacks: unk, or dropped like tokenizers does
        if (id >= 0) w[m++] = id;
    }
    m = bpe_merge(t, e, w, m);
    for (int i = 0; i < m; i++) emit(e, w[i]);
    if (slot && m <= CACHE_MAX_IDS) {
        slot->hash = h;
        slot->len = (uint8_t)n;
        slot->nids = (uint8_t)m;
        memcpy(slot->bytes, p, n);
        memcpy(slot->ids, w, sizeof(int) * (size_t)m);
    }
}

// Stage k of the pre-tokenizer: regex matches and the text between them are
// both pieces (tokenizers' Split with behavior Isolated). Each piece is its
// own subject, so lookaheads like GPT-2's \s+(?!\S) stop at the piece's end,
// as they do when tokenizers runs its stages one after another.
static void pretok(Enc *e, int k, const char *p, size_t n) {
    Tokenizer *t = e->t;
    if (n == 0) return;
    if (k == t->n_stages) {
        if (e->base) record_piece(e, p, n);
        else bpe_piece(e, (const unsigned char *)p, n);
        return;
    }
    pcre2_code *re = t->stages[k];
    size_t last = 0, off = 0;
    while (off < n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)p, n, off, 0, t->md, NULL);
        if (rc < 0) break; // no more matches (or a match error: the rest is one piece)
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
        size_t s = ov[0], end = ov[1];
        if (end == s) { // empty matches produce no piece; step over one char
            size_t used = 1;
            if (s < n) utf8_get((const unsigned char *)p + s, n - s, &used);
            off = s + used;
            continue;
        }
        if (s > last) pretok(e, k + 1, p + last, s - last);
        pretok(e, k + 1, p + s, end - s);
        last = off = end;
    }
    if (last < n) pretok(e, k + 1, p + last, n - last);
}

static int prev_char_start(const char *p, size_t i) {
    do i--; while (i > 0 && ((unsigned char)p[i] & 0xC0) == 0x80);
    return (int)i;
}

static int is_word_char(const Tokenizer *t, const char *p, size_t n) {
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int rc = md ? pcre2_match(t->word_char, (PCRE2_SPTR)p, n, 0, 0, md, NULL) : -1;
    pcre2_match_data_free(md);
    return rc >= 0;
}

// Added tokens of group g cut the text; the gaps go to group g+1, and after
// the last group to the pre-tokenizer.
static void split_added(Enc *e, int g, const char *p, size_t n) {
    Tokenizer *t = e->t;
    if (g == 2) { pretok(e, 0, p, n); return; }
    const AddedGroup *G = &t->groups[g];
    if (G->n == 0) { split_added(e, g + 1, p, n); return; }
    size_t prev_stop = 0, i = 0;
    while (i < n) {
        unsigned c = (unsigned char)p[i];
        const AddedToken *hit = NULL;
        for (int j = G->by_first_start[c]; j < G->by_first_start[c + 1]; j++) {
            const AddedToken *a = G->toks[G->order[j]];
            if (a->len <= n - i && memcmp(p + i, a->content, a->len) == 0) { hit = a; break; }
        }
        if (!hit) { i++; continue; }
        size_t start = i, stop = i + hit->len;
        i = stop;
        if (start < prev_stop) continue;
        if (hit->single_word) {
            int word_before = 0, word_after = 0;
            if (start > 0) {
                int s = prev_char_start(p, start);
                word_before = is_word_char(t, p + s, start - (size_t)s);
            }
            if (stop < n) {
                size_t used;
                utf8_get((const unsigned char *)p + stop, n - stop, &used);
                word_after = is_word_char(t, p + stop, used);
            }
            if (word_before || word_after) continue;
        }
        if (hit->lstrip) {
            while (start > prev_stop) {
                int s = prev_char_start(p, start);
                size_t used;
                if (!is_white_space(utf8_get((const unsigned char *)p + s, start - (size_t)s, &used))) break;
                start = (size_t)s;
            }
        }
        if (hit->rstrip) {
            while (stop < n) {
                size_t used;
                if (!is_white_space(utf8_get((const unsigned char *)p + stop, n - stop, &used))) break;
                stop += used;
            }
        }
        if (start > prev_stop) split_added(e, g + 1, p + prev_stop, start - prev_stop);
        if (e->base) record_piece(e, p + start, stop - start);
        else emit(e, hit->id);
        prev_stop = stop;
    }
    if (prev_stop < n) split_added(e, g + 1, p + prev_stop, n - prev_stop);
}

int tokenizer_encode(Tokenizer *t, const char *text, size_t len, int **ids_out) {
    Enc e = {t, 0, NULL, NULL, 0, 0};
    t->out_n = 0;
    split_added(&e, 0, text, len);
    int *ids = e.oom || t->out_n > INT32_MAX ? NULL : malloc(sizeof(int) * (t->out_n ? t->out_n : 1));
    if (!ids) { *ids_out = NULL; return -1; }
    if (t->out_n) memcpy(ids, t->out, sizeof(int) * t->out_n);
    *ids_out = ids;
    return (int)t->out_n;
}

int tokenizer_pieces(Tokenizer *t, const char *text, size_t len, size_t **bounds_out) {
    Enc e = {t, 0, text, NULL, 0, 0};
    split_added(&e, 0, text, len);
    if (e.oom) { free(e.bounds); *bounds_out = NULL; return -1; }
    *bounds_out = e.bounds;
    return (int)(e.nb / 2);
}

// ----------------------------------------------------------------------------
// decoding and lookups

char *tokenizer_decode(const Tokenizer *t, const int *ids, int n, size_t *len_out) {
    size_t total = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < t->n_vocab && t->bytes[ids[i]]) total += (size_t)t->nbytes[ids[i]];
    char *out = malloc(total + 1);
    if (!out) return NULL;
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab || !t->bytes[ids[i]]) continue;
        memcpy(out + k, t->bytes[ids[i]], (size_t)t->nbytes[ids[i]]);
        k += (size_t)t->nbytes[ids[i]];
    }
    out[k] = '\0';
    if (len_out) *len_out = k;
    return out;
}

int tokenizer_token_id(const Tokenizer *t, const char *token_text) {
    return strmap_get(&t->vocab, token_text, strlen(token_text));
}

const char *tokenizer_token_text(const Tokenizer *t, int id) {
    return id >= 0 && id < t->n_vocab ? t->text[id] : NULL;
}

int tokenizer_vocab_size(const Tokenizer *t) { return t->n_vocab; }
int tokenizer_eos_id(const Tokenizer *t) { return t->eos_id; }
void tokenizer_set_eos_id(Tokenizer *t, int id) { t->eos_id = id; }
int tokenizer_is_special(const Tokenizer *t, int id) { return id >= 0 && id < t->n_vocab && t->special[id]; }

// ----------------------------------------------------------------------------
// writing tokenizer.json / tokenizer_config.json (Hugging Face's layout)

// PATH.tmp.<pid>, then rename: readers never see half a file
static int write_atomic(const char *path, const char *data, size_t n, char *err, size_t errlen) {
    size_t tl = strlen(path) + 32;
    char *tmp = malloc(tl);
    if (!tmp) { set_err(err, errlen, "out of memory"); return 0; }
    snprintf(tmp, tl, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) { set_err(err, errlen, "%s: cannot create file", tmp); free(tmp); return 0; }
    int ok = fwrite(data, 1, n, f) == n;
    ok = (fflush(f) == 0) && ok;
    ok = (fsync(fileno(f)) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        set_err(err, errlen, "%s: writing failed", ok ? path : tmp);
        remove(tmp);
        free(tmp);
        return 0;
    }
    free(tmp);
    return 1;
}

static int write_json_atomic(cJSON *root, const char *path, char *err, size_t errlen) {
    if (!root) { set_err(err, errlen, "out of memory"); return 0; }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) { set_err(err, errlen, "out of memory"); return 0; }
    size_t n = strlen(text);
    char *withnl = realloc(text, n + 2);
    if (!withnl) { free(text); set_err(err, errlen, "out of memory"); return 0; }
    withnl[n] = '\n'; withnl[n + 1] = '\0';
    int ok = write_atomic(path, withnl, n + 1, err, errlen);
    free(withnl);
    return ok;
}

static cJSON *byte_level_json(int add_prefix_space, int trim_offsets, int use_regex) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "ByteLevel");
    cJSON_AddBoolToObject(o, "add_prefix_space", add_prefix_space);
    cJSON_AddBoolToObject(o, "trim_offsets", trim_offsets);
    cJSON_AddBoolToObject(o, "use_regex", use_regex);
    return o;
}

// The stages back as tokenizers' pre-tokenizers, spelled as the models' own
// files do: GPT-2 ByteLevel(use_regex); SmolLM2 Sequence[Digits(individual),
// ByteLevel(use_regex)]; Llama-3 Sequence[Split(regex, Isolated),
// ByteLevel(use_regex=false)]. A trailing GPT-2 stage is ByteLevel's own regex.
static cJSON *pre_tokenizer_json(const Tokenizer *t) {
    cJSON *list = cJSON_CreateArray();
    int regex_in_byte_level = t->n_stages > 0 && t->stage_pat[t->n_stages - 1] == PAT_GPT2;
    int n_split = regex_in_byte_level ? t->n_stages - 1 : t->n_stages;
    for (int i = 0; i < n_split; i++) {
        const char *p = t->stage_pat[i];
        cJSON *o = cJSON_CreateObject();
        if (p == PAT_DIGITS_EACH || p == PAT_DIGITS_RUN) {
            cJSON_AddStringToObject(o, "type", "Digits");
            cJSON_AddBoolToObject(o, "individual_digits", p == PAT_DIGITS_EACH);
        } else {
            cJSON_AddStringToObject(o, "type", "Split");
            cJSON *pat = cJSON_AddObjectToObject(o, "pattern");
            cJSON_AddStringToObject(pat, "Regex", p);
            cJSON_AddStringToObject(o, "behavior", "Isolated");
            cJSON_AddBoolToObject(o, "invert", 0);
        }
        cJSON_AddItemToArray(list, o);
    }
    cJSON_AddItemToArray(list, byte_level_json(0, 1, regex_in_byte_level));
    if (cJSON_GetArraySize(list) == 1) {
        cJSON *only = cJSON_DetachItemFromArray(list, 0);
        cJSON_Delete(list);
        return only;
    }
    cJSON *seq = cJSON_CreateObject();
    cJSON_AddStringToObject(seq, "type", "Sequence");
    cJSON_AddItemToObject(seq, "pretokenizers", list);
    return seq;
}

static int cmp_rank(const void *a, const void *b) {
    int x = ((const MergeSlot *)a)->rank, y = ((const MergeSlot *)b)->rank;
    return (x > y) - (x < y);
}

int tokenizer_write_json(const Tokenizer *t, const char *path, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    for (int id = 0; id < t->n_vocab; id++) // JSON text is UTF-8: a token that is not cannot be written
        if (t->text[id] && !utf8_valid(t->text[id], strlen(t->text[id]))) {
            set_err(err, errlen, "%s: token %d is not valid UTF-8, which tokenizer.json cannot hold", path, id);
            return 0;
        }
    cJSON *root = cJSON_CreateObject();
    if (!root) { set_err(err, errlen, "out of memory"); return 0; }
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (int i = 0; i < t->n_added; i++) {
        const AddedToken *a = &t->added[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", a->id);
        cJSON_AddStringToObject(o, "content", a->content);
        cJSON_AddBoolToObject(o, "single_word", a->single_word);
        cJSON_AddBoolToObject(o, "lstrip", a->lstrip);
        cJSON_AddBoolToObject(o, "rstrip", a->rstrip);
        cJSON_AddBoolToObject(o, "normalized", a->normalized);
        cJSON_AddBoolToObject(o, "special", a->special);
        cJSON_AddItemToArray(added, o);
    }
    cJSON_AddNullToObject(root, "normalizer");
    cJSON_AddItemToObject(root, "pre_tokenizer", pre_tokenizer_json(t));
    cJSON_AddItemToObject(root, "post_processor", byte_level_json(1, 0, 1));
    cJSON_AddItemToObject(root, "decoder", byte_level_json(1, 1, 1));

    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    const char *unk = t->unk_id >= 0 ? tokenizer_token_text(t, t->unk_id) : NULL;
    if (unk) cJSON_AddStringToObject(model, "unk_token", unk);
    else cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", 0);
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    if (t->ignore_merges) cJSON_AddBoolToObject(model, "ignore_merges", 1); // tokenizers >= 0.19 reads it
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int id = 0; id < t->n_vocab; id++) {
        const char *s = t->text[id];
        // one key per text: the id the encoder finds for it
        if (s && strmap_get(&t->vocab, s, strlen(s)) == id) cJSON_AddItemToObject(vocab, s, cJSON_CreateNumber(id));
    }
    // merges in rank order (a pair given twice kept its last rank, as in tokenizers)
    size_t n_merge = 0;
    for (size_t i = 0; i < t->merges.cap; i++) n_merge += t->merges.slots[i].key != MERGE_EMPTY;
    MergeSlot *ms = malloc((n_merge + 1) * sizeof *ms);
    if (!ms) { cJSON_Delete(root); set_err(err, errlen, "out of memory"); return 0; }
    n_merge = 0;
    for (size_t i = 0; i < t->merges.cap; i++) if (t->merges.slots[i].key != MERGE_EMPTY) ms[n_merge++] = t->merges.slots[i];
    qsort(ms, n_merge, sizeof *ms, cmp_rank);
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    for (size_t i = 0; i < n_merge; i++) {
        const char *l = t->text[(int)(ms[i].key >> 32)], *r = t->text[(int)(uint32_t)ms[i].key];
        size_t ll = strlen(l), rl = strlen(r);
        if (memchr(l, ' ', ll) || memchr(r, ' ', rl)) { // "left right" cannot hold a space
            set_err(err, errlen, "merge '%s' + '%s' has a space in a token", l, r);
            free(ms); cJSON_Delete(root);
            return 0;
        }
        char *line = malloc(ll + rl + 2);
        if (!line) { free(ms); cJSON_Delete(root); set_err(err, errlen, "out of memory"); return 0; }
        memcpy(line, l, ll); line[ll] = ' '; memcpy(line + ll + 1, r, rl + 1);
        cJSON_AddItemToArray(merges, cJSON_CreateString(line));
        free(line);
    }
    free(ms);
    return write_json_atomic(root, path, err, errlen);
}

int tokenizer_write_config_json(const Tokenizer *t, const char *path, int bos_id, const char *chat_template,
                                char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (chat_template && !utf8_valid(chat_template, strlen(chat_template))) {
        set_err(err, errlen, "%s: the chat template is not valid UTF-8", path);
        return 0;
    }
    cJSON *root = cJSON_CreateObject();
    if (!root) { set_err(err, errlen, "out of memory"); return 0; }
    cJSON_AddStringToObject(root, "tokenizer_class", "PreTrainedTokenizerFast");
    const char *bos = bos_id >= 0 ? tokenizer_token_text(t, bos_id) : NULL;
    const char *eos = t->eos_id >= 0 ? tokenizer_token_text(t, t->eos_id) : NULL;
    const char *unk = t->unk_id >= 0 ? tokenizer_token_text(t, t->unk_id) : NULL;
    if (bos) cJSON_AddStringToObject(root, "bos_token", bos);
    if (eos) cJSON_AddStringToObject(root, "eos_token", eos);
    if (unk) cJSON_AddStringToObject(root, "unk_token", unk);
    cJSON_AddBoolToObject(root, "add_prefix_space", 0);
    cJSON_AddBoolToObject(root, "clean_up_tokenization_spaces", 0);
    if (chat_template) cJSON_AddStringToObject(root, "chat_template", chat_template);
    return write_json_atomic(root, path, err, errlen);
}
