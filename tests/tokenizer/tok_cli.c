// tok_cli: a thin command-line wrapper around tokenizer.h for the tests and
// the benchmark.
//
//   tok_cli [-e] encode TOKENIZER   stdin lines -> space-separated ids per line
//   tok_cli [-e] decode TOKENIZER   stdin lines of ids -> text per line
//   tok_cli [-e] pieces TOKENIZER   stdin lines -> pre-tokenizer pieces, as
//                                   space-separated hex byte strings
//   tok_cli info TOKENIZER          vocab size, eos id, a few lookups
//   tok_cli write-json TOKENIZER OUT_DIR
//                                   OUT_DIR/tokenizer.json + tokenizer_config.json
//                                   (tokenizer_write_json / _config_json)
//   tok_cli bench TOKENIZER FILE [REPEAT [whole]]
//                                   encode FILE line by line (newlines kept),
//                                   or in one call with "whole"; print MB/s
//                                   and the token count
//
// TOKENIZER is a path for tokenizer_load, or arrays:DIR to go through
// tokenizer_from_arrays with DIR/{tokens.txt (escaped, one per line),
// merges.txt, types.txt, eos.txt, pre.txt}, the way a GGUF reader would.
//
// -e: lines are escaped ("\n" and "\\"), so a test string may hold newlines.
#define _POSIX_C_SOURCE 200809L
#include "../../tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t unescape(char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n && (s[i + 1] == 'n' || s[i + 1] == '\\')) {
            s[k++] = s[i + 1] == 'n' ? '\n' : '\\';
            i++;
        } else {
            s[k++] = s[i];
        }
    }
    return k;
}

static void write_escaped(const char *s, size_t n, int esc) {
    for (size_t i = 0; i < n; i++) {
        if (esc && s[i] == '\n') fputs("\\n", stdout);
        else if (esc && s[i] == '\\') fputs("\\\\", stdout);
        else putchar(s[i]);
    }
    putchar('\n');
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Reads a file's lines into a NULL-terminated array (unescaped if esc).
static char **read_lines(const char *dir, const char *name, int esc, int *n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "tok_cli: %s: cannot open\n", path); exit(1); }
    char **lines = NULL, *line = NULL;
    size_t cap = 0;
    ssize_t got;
    *n = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n') len--;
        if (esc) len = unescape(line, len);
        lines = realloc(lines, sizeof(char *) * (size_t)(*n + 2));
        lines[*n] = malloc(len + 1);
        memcpy(lines[*n], line, len);
        lines[*n][len] = '\0';
        (*n)++;
    }
    free(line);
    fclose(f);
    if (lines) lines[*n] = NULL;
    return lines;
}

static Tokenizer *load_arrays(const char *dir, char *err, size_t errlen) {
    int nt, nm, ny, ne, np;
    char **tokens = read_lines(dir, "tokens.txt", 1, &nt), **merges = read_lines(dir, "merges.txt", 0, &nm);
    char **types = read_lines(dir, "types.txt", 0, &ny), **eos = read_lines(dir, "eos.txt", 0, &ne);
    char **pre = read_lines(dir, "pre.txt", 0, &np);
    int *tt = malloc(sizeof(int) * (size_t)(nt + 1));
    for (int i = 0; i < nt; i++) tt[i] = i < ny ? atoi(types[i]) : 1;
    int kind = np ? tokenizer_pre_kind_from_name(pre[0]) : -1;
    Tokenizer *t = NULL;
    if (kind < 0) snprintf(err, errlen, "%s/pre.txt: unknown pre-tokenizer", dir);
    else t = tokenizer_from_arrays((const char *const *)tokens, nt, (const char *const *)merges, nm, tt,
                                   (TokPreKind)kind, ne ? atoi(eos[0]) : -1, err, errlen);
    char **all[] = {tokens, merges, types, eos, pre};
    int counts[] = {nt, nm, ny, ne, np};
    for (int k = 0; k < 5; k++) {
        for (int i = 0; i < counts[k]; i++) free(all[k][i]);
        free(all[k]);
    }
    free(tt);
    return t;
}

int main(int argc, char **argv) {
    int esc = 0, a = 1;
    if (a < argc && strcmp(argv[a], "-e") == 0) { esc = 1; a++; }
    if (argc - a < 2) {
        fprintf(stderr, "usage: tok_cli [-e] encode|decode|info TOKENIZER | bench TOKENIZER FILE [REPEAT]\n");
        return 2;
    }
    const char *mode = argv[a], *path = argv[a + 1];
    char err[512];
    Tokenizer *t = strncmp(path, "arrays:", 7) == 0 ? load_arrays(path + 7, err, sizeof err)
                                                    : tokenizer_load(path, err, sizeof err);
    if (!t) { fprintf(stderr, "tok_cli: %s\n", err); return 1; }

    if (strcmp(mode, "write-json") == 0) {
        if (argc - a < 3) { fprintf(stderr, "tok_cli: write-json needs OUT_DIR\n"); return 2; }
        char out[4200];
        snprintf(out, sizeof out, "%s/tokenizer.json", argv[a + 2]);
        if (!tokenizer_write_json(t, out, err, sizeof err)) { fprintf(stderr, "tok_cli: %s\n", err); return 1; }
        snprintf(out, sizeof out, "%s/tokenizer_config.json", argv[a + 2]);
        if (!tokenizer_write_config_json(t, out, -1, NULL, err, sizeof err)) { fprintf(stderr, "tok_cli: %s\n", err); return 1; }
    } else if (strcmp(mode, "info") == 0) {
        printf("vocab_size %d\neos_id %d\n", tokenizer_vocab_size(t), tokenizer_eos_id(t));
        const char *probe[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "Ġthe"};
        for (int i = 0; i < 4; i++) printf("id %s %d\n", probe[i], tokenizer_token_id(t, probe[i]));
    } else if (strcmp(mode, "bench") == 0) {
        if (argc - a < 3) { fprintf(stderr, "tok_cli: bench needs FILE\n"); return 2; }
        FILE *f = fopen(argv[a + 2], "rb");
        if (!f) { fprintf(stderr, "tok_cli: %s: cannot open\n", argv[a + 2]); return 1; }
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *text = malloc((size_t)n + 1);
        if (!text || fread(text, 1, (size_t)n, f) != (size_t)n) { fprintf(stderr, "tok_cli: read failed\n"); return 1; }
        fclose(f);
        int repeat = argc - a > 3 ? atoi(argv[a + 3]) : 1;
        int whole = argc - a > 4 && strcmp(argv[a + 4], "whole") == 0;
        double best = 1e30;
        long tokens = 0;
        for (int r = 0; r < repeat; r++) {
            double t0 = now();
            tokens = 0;
            for (long i = 0; i < n;) {
                char *nl = whole ? NULL : memchr(text + i, '\n', (size_t)(n - i));
                long end = nl ? nl - text + 1 : n;
                int *ids;
                int k = tokenizer_encode(t, text + i, (size_t)(end - i), &ids);
                if (k < 0) { fprintf(stderr, "tok_cli: out of memory\n"); return 1; }
                tokens += k;
                free(ids);
                i = end;
            }
            double dt = now() - t0;
            if (dt < best) best = dt;
        }
        printf("bytes %ld tokens %ld seconds %.4f MB/s %.2f\n", n, tokens, best, n / best / 1e6);
        free(text);
    } else {
        int decode = strcmp(mode, "decode") == 0, pieces = strcmp(mode, "pieces") == 0;
        if (!decode && !pieces && strcmp(mode, "encode") != 0) { fprintf(stderr, "tok_cli: unknown mode %s\n", mode); return 2; }
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        int *ids = NULL;
        size_t ids_cap = 0;
        while ((got = getline(&line, &cap, stdin)) >= 0) {
            size_t n = (size_t)got;
            if (n && line[n - 1] == '\n') n--;
            if (decode) {
                size_t k = 0;
                char *p = line, *endp;
                line[n] = '\0';
                for (;;) {
                    long v = strtol(p, &endp, 10);
                    if (endp == p) break;
                    if (k == ids_cap) { ids_cap = ids_cap ? ids_cap * 2 : 256; ids = realloc(ids, ids_cap * sizeof(int)); }
                    ids[k++] = (int)v;
                    p = endp;
                }
                size_t len;
                char *s = tokenizer_decode(t, ids, (int)k, &len);
                write_escaped(s, len, esc);
                free(s);
            } else if (pieces) {
                if (esc) n = unescape(line, n);
                size_t *b;
                int k = tokenizer_pieces(t, line, n, &b);
                for (int i = 0; i < k; i++) {
                    if (i) putchar(' ');
                    for (size_t j = b[2 * i]; j < b[2 * i + 1]; j++) printf("%02x", (unsigned char)line[j]);
                }
                putchar('\n');
                free(b);
            } else {
                if (esc) n = unescape(line, n);
                int *out;
                int k = tokenizer_encode(t, line, n, &out);
                for (int i = 0; i < k; i++) printf(i ? " %d" : "%d", out[i]);
                putchar('\n');
                free(out);
            }
        }
        free(line);
        free(ids);
    }
    tokenizer_free(t);
    return 0;
}
