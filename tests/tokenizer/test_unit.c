// test_unit: small handmade vocabularies for the corners the big exactness
// test reaches only by chance: merge order ties, the heap path for long
// words, invalid UTF-8, special tokens from GGUF-style arrays, ignore_merges,
// and the error messages for files we refuse.
#define _POSIX_C_SOURCE 200809L
#include "../../tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int passed, failed;

static void check(int ok, const char *name, const char *detail) {
    printf("%s unit: %s%s%s\n", ok ? "PASS" : "FAIL", name, detail && !ok ? ": " : "", detail && !ok ? detail : "");
    if (ok) passed++; else failed++;
}

// encodes text and compares with the expected token texts
static void expect_tokens(Tokenizer *t, const char *name, const char *text, size_t len, const char *const *want,
                          int nwant) {
    int *ids;
    int n = tokenizer_encode(t, text, len, &ids);
    char got[4096] = "";
    int ok = n == nwant;
    for (int i = 0; i < n; i++) {
        const char *s = tokenizer_token_text(t, ids[i]);
        if (strlen(got) < 3000) { strcat(got, s ? s : "?"); strcat(got, "|"); }
        if (i < nwant && (!s || strcmp(s, want[i]) != 0)) ok = 0;
    }
    check(ok, name, got);
    size_t dlen;
    char *back = tokenizer_decode(t, ids, n, &dlen);
    char nm[256];
    snprintf(nm, sizeof nm, "%s round trip", name);
    check(dlen == len && memcmp(back, text, len) == 0, nm, back);
    free(back);
    free(ids);
}

static const char *byte_char(int b, char *buf) { // GPT-2's byte -> visible char, as UTF-8
    int n = 0, cp = -1;
    for (int c = 0; c < 256; c++) {
        int keep = (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE);
        int v = keep ? c : 256 + n++;
        if (c == b) cp = v;
    }
    if (cp < 0x80) { buf[0] = (char)cp; buf[1] = 0; }
    else { buf[0] = (char)(0xC0 | (cp >> 6)); buf[1] = (char)(0x80 | (cp & 0x3F)); buf[2] = 0; }
    return buf;
}

static Tokenizer *small_arrays(void) {
    static char bytes[256][4];
    const char *tokens[300];
    int types[300], n = 0;
    for (int b = 0; b < 256; b++) { types[n] = 1; tokens[n++] = byte_char(b, bytes[b]); }
    const char *extra[] = {"aa", "aaaa", "Ġa", "<|end|>", "<user>"};
    int extra_type[] = {1, 1, 1, 3, 4};
    for (int i = 0; i < 5; i++) { types[n] = extra_type[i]; tokens[n++] = extra[i]; }
    const char *merges[] = {"a a", "aa aa", "Ġ a"};
    char err[256];
    Tokenizer *t = tokenizer_from_arrays(tokens, n, merges, 3, types, TOK_PRE_GPT2, 259, err, sizeof err);
    check(t != NULL, "tokenizer_from_arrays", err);
    return t;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void expect_load_error(const char *dir, const char *json, const char *needle, const char *name) {
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_file(path, json);
    Tokenizer *t = tokenizer_load(dir, err, sizeof err);
    char detail[1024];
    snprintf(detail, sizeof detail, "got \"%s\", want it to mention \"%s\" and the file", err, needle);
    check(!t && strstr(err, needle) && strstr(err, "tokenizer.json"), name, detail);
    tokenizer_free(t);
}

#define BYTE_LEVEL "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true}"

int main(void) {
    Tokenizer *t = small_arrays();
    if (!t) return 1;
    const char *w1[] = {"aa", "a"};
    expect_tokens(t, "ties merge leftmost first", "aaa", 3, w1, 2);
    const char *w2[] = {"aaaa", "a", "Ġa", "Ġ"};
    expect_tokens(t, "ranks and pre-tokenizer", "aaaaa a ", 8, w2, 4);
    // 47 a's go through the scan, 101 through the heap: same rule, same answer
    char run[128];
    memset(run, 'a', sizeof run);
    const char *w47[] = {"aaaa", "aaaa", "aaaa", "aaaa", "aaaa", "aaaa", "aaaa", "aaaa", "aaaa", "aaaa", "aaaa",
                         "aa", "a"};
    expect_tokens(t, "47-byte word (scan)", run, 47, w47, 13);
    const char *w101[26];
    for (int i = 0; i < 25; i++) w101[i] = "aaaa";
    w101[25] = "a";
    expect_tokens(t, "101-byte word (heap)", run, 101, w101, 26);
    int *ids;
    int n = tokenizer_encode(t, "a<|end|> <user><|end|", 21, &ids);
    // a <|end|> Ġ <user> < | e n d |
    check(n == 10 && ids[1] == 259 && ids[3] == 260 && tokenizer_is_special(t, 259) && !tokenizer_is_special(t, 260),
          "added tokens from token types (control = special, user-defined = added)", NULL);
    free(ids);
    const char bad_utf8[] = "ok \xff\xfe\xc3 \xe2\x82 caf\xc3\xa9\x80";
    int nb = (int)sizeof bad_utf8 - 1;
    n = tokenizer_encode(t, bad_utf8, (size_t)nb, &ids);
    size_t dlen;
    char *back = tokenizer_decode(t, ids, n, &dlen);
    check(n > 0 && dlen == (size_t)nb && memcmp(back, bad_utf8, (size_t)nb) == 0, "invalid UTF-8 round trips", NULL);
    free(back);
    free(ids);
    check(tokenizer_token_id(t, "<|end|>") == 259 && tokenizer_token_id(t, "nope") == -1 &&
          tokenizer_eos_id(t) == 259 && tokenizer_vocab_size(t) == 261, "lookups", NULL);
    n = tokenizer_encode(t, "", 0, &ids);
    check(n == 0 && ids != NULL, "empty text", NULL);
    free(ids);
    tokenizer_free(t);

    check(tokenizer_pre_kind_from_name("smollm") == TOK_PRE_SMOLLM && tokenizer_pre_kind_from_name("gpt2") ==
          TOK_PRE_GPT2 && tokenizer_pre_kind_from_name("llama-bpe") == TOK_PRE_LLAMA3 &&
          tokenizer_pre_kind_from_name("qwen2") == -1, "pre-tokenizer names", NULL);

    char dir[] = "/tmp/tok_unit_XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char err[512] = "";
    char missing[600];
    snprintf(missing, sizeof missing, "%s/none", dir);
    Tokenizer *none = tokenizer_load(missing, err, sizeof err);
    check(!none && strstr(err, missing), "missing path is named", err);

    // ignore_merges (Llama-3): a piece that is a token is taken whole
    const char *vocab = "{\"a\":0,\"b\":1,\"c\":2,\"bc\":3,\"abc\":4,\"ab\":5}";
    char json[2048];
    snprintf(json, sizeof json, "{\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":" BYTE_LEVEL ","
             "\"decoder\":" BYTE_LEVEL ",\"model\":{\"type\":\"BPE\",\"ignore_merges\":%s,\"vocab\":%s,"
             "\"merges\":[[\"b\",\"c\"],[\"a\",\"b\"]]}}", "true", vocab);
    char path[600];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_file(path, json);
    t = tokenizer_load(path, err, sizeof err);
    const char *wi[] = {"abc"};
    if (t) expect_tokens(t, "ignore_merges", "abc", 3, wi, 1);
    else check(0, "ignore_merges load", err);
    tokenizer_free(t);
    snprintf(json, sizeof json, "{\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":" BYTE_LEVEL ","
             "\"decoder\":" BYTE_LEVEL ",\"model\":{\"type\":\"BPE\",\"ignore_merges\":%s,\"vocab\":%s,"
             "\"merges\":[\"b c\",\"a b\"]}}", "false", vocab);
    write_file(path, json);
    t = tokenizer_load(dir, err, sizeof err);
    const char *wm[] = {"a", "bc"};
    if (t) expect_tokens(t, "merges without ignore_merges", "abc", 3, wm, 2);
    else check(0, "merges load", err);
    tokenizer_free(t);

    expect_load_error(dir, "{\"pre_tokenizer\":{\"type\":\"Whitespace\"},\"model\":{\"type\":\"BPE\",\"vocab\":{},"
                      "\"merges\":[]}}", "Whitespace", "unknown pre-tokenizer refused by name");
    expect_load_error(dir, "{\"normalizer\":{\"type\":\"NFC\"},\"pre_tokenizer\":" BYTE_LEVEL ",\"model\":{"
                      "\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}", "NFC", "unknown normalizer refused by name");
    expect_load_error(dir, "{\"pre_tokenizer\":" BYTE_LEVEL ",\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}",
                      "WordPiece", "non-BPE model refused");
    expect_load_error(dir, "{\"pre_tokenizer\":" BYTE_LEVEL ",\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},"
                      "\"merges\":[\"a z\"]}}", "'z'", "merge with unknown token refused");
    expect_load_error(dir, "{\"pre_tokenizer\":" BYTE_LEVEL ",\"model\":", "invalid JSON", "broken JSON");
    // as tokenizers reads merges: a list of strings or (0.20 on) of pairs, never mixed, never one string
    expect_load_error(dir, "{\"pre_tokenizer\":" BYTE_LEVEL ",\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,"
                      "\"ab\":2},\"merges\":[[\"a\",\"b\"],\"a b\"]}}", "merge 1 is not", "merges mixing pairs and strings refused");
    expect_load_error(dir, "{\"pre_tokenizer\":" BYTE_LEVEL ",\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,"
                      "\"ab\":2},\"merges\":\"a b\"}}", "merges must be a list", "merges given as one string refused");
    expect_load_error(dir, "{\"pre_tokenizer\":" BYTE_LEVEL ",\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}}}",
                      "merges must be a list", "missing merges refused");
    remove(path);
    rmdir(dir);

    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
