// tests/fuzz/fuzz.h: what the libFuzzer harnesses share (tests/fuzz/README.md).
// Built with -DREPO_FUZZ: die() keeps its message and longjmps to repo_die_jump, so a refused input
// is a normal return here. Every error must still be one line, and name the file it is about.
#ifndef REPO_FUZZ_H
#define REPO_FUZZ_H
#define _GNU_SOURCE
#include "../../io.h"
#include "../../tokenizer.h"
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// What a die() leaves behind. die() leaves its allocations (and open readers) behind, as exit() would;
// run after run they would fill memory. Between fuzz_begin() and fuzz_end(), ASan's allocator hooks
// note every block the harness's thread allocates and frees; fuzz_end() after a die() closes the open
// readers and frees the blocks still noted. (tokenizer.c skips PCRE2's JIT in fuzz builds: JIT code
// is not malloc'd.) Harnesses set up their fixed data before fuzz_begin().
#include <pthread.h>
#include <sanitizer/allocator_interface.h>
enum { LIVE_SLOTS = 1 << 20 };                    // open addressing; cleared through `used`
static const volatile void *live[LIVE_SLOTS];
static uint32_t used[LIVE_SLOTS], n_used;
static volatile int tracking;
static pthread_t tracked_thread;
#define TOMBSTONE ((const volatile void *)1)          // a freed block: keeps probe chains whole
static size_t live_slot(const volatile void *p) { return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull >> 44); }
static void on_malloc(const volatile void *p, size_t n) {
    (void)n;
    if (!tracking || !pthread_equal(pthread_self(), tracked_thread)) return;
    if (n_used == LIVE_SLOTS / 2) { fprintf(stderr, "fuzz.h: more than %d allocations in one run\n", LIVE_SLOTS / 2); abort(); }
    size_t i = live_slot(p);
    while (live[i] && live[i] != TOMBSTONE) i = (i + 1) & (LIVE_SLOTS - 1);
    if (!live[i]) used[n_used++] = (uint32_t)i;
    live[i] = p;
}
static void on_free(const volatile void *p) {
    if (!tracking || !p) return;
    for (size_t i = live_slot(p); live[i]; i = (i + 1) & (LIVE_SLOTS - 1))
        if (live[i] == p) { live[i] = TOMBSTONE; return; }
}
static void fuzz_begin(void) {
    static int hooked;
    if (!hooked) { __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free); hooked = 1; }
    tracked_thread = pthread_self();
    tracking = 1;
}
// died: 1 after a die() (free what it left), 0 after a normal return (everything must be freed already)
static void fuzz_end(int died) {
    if (died) repo_fuzz_close_readers(); // fclose frees its FILE while the hooks still watch
    tracking = 0;
    size_t left = 0;
    for (uint32_t k = 0; k < n_used; k++) {
        const volatile void *p = live[used[k]];
        if (p != TOMBSTONE) { left++; if (died) free((void *)p); }
        live[used[k]] = NULL;
    }
    n_used = 0;
    if (!died && left) { fprintf(stderr, "fuzz.h: %zu blocks leaked by a run that did not die\n", left); abort(); }
}

// the parsers read paths: inputs go to files in a private directory (tmpfs when there is one)
static char fuzz_dir[256];
static void fuzz_rm_dir(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", fuzz_dir);
}
static const char *fuzz_path(const char *name) {
    static char path[4][512];
    static int next;
    if (!*fuzz_dir) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/repo-fuzz-%d", base, (int)getpid());
        if (mkdir(fuzz_dir, 0700) != 0) { perror(fuzz_dir); abort(); }
        atexit(fuzz_rm_dir);
    }
    char *p = path[next++ % 4];
    snprintf(p, 512, "%s/%s", fuzz_dir, name);
    return p;
}
static const char *fuzz_write(const char *name, const void *data, size_t size) {
    const char *p = fuzz_path(name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) { perror(p); abort(); }
    return p;
}

// a refusal is one non-empty line naming `about` (a path or a key; NULL: anything)
static void fuzz_check_message(const char *msg, const char *about) {
    if (!*msg || strchr(msg, '\n') || (about && !strstr(msg, about))) {
        fprintf(stderr, "bad error message (must be one line naming %s): \"%s\"\n", about ? about : "?", msg);
        abort();
    }
}

// a byte-level BPE over every byte, some merges and ChatML's control tokens, as a GGUF file would give
// it: deterministic, so encode and decode can be checked against each other
static Tokenizer *fuzz_tokenizer(TokPreKind pre) {
    static char tok_text[1024][32];
    const char *tokens[1024], *merges[1024];
    int types[1024], n = 0, m = 0;
    static char merge_text[1024][64];
    int byte_cp[256], k = 0;
    for (int b = 0; b < 256; b++) { // GPT-2's bytes_to_unicode
        int keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_cp[b] = keep ? b : 256 + k++;
    }
    for (int b = 0; b < 256; b++) {
        int cp = byte_cp[b];
        char *s = tok_text[n];
        if (cp < 0x80) { s[0] = (char)cp; s[1] = 0; }
        else { s[0] = (char)(0xC0 | (cp >> 6)); s[1] = (char)(0x80 | (cp & 0x3F)); s[2] = 0; }
        tokens[n] = s; types[n++] = 1;
    }
    // merges: pairs over a small alphabet (space as its byte-level char, letters, digits), two rounds
    const char *alpha[] = {"\xc4\xa0", "a", "e", "t", "h", "i", "n", "s", "o", "r", "1", "2", "\xc3\xa9", "'"};
    int na = sizeof alpha / sizeof alpha[0];
    for (int i = 0; i < na && n < 900; i++)
        for (int j = 0; j < na && n < 900; j++) {
            snprintf(merge_text[m], 64, "%s %s", alpha[i], alpha[j]);
            snprintf(tok_text[n], 32, "%s%s", alpha[i], alpha[j]);
            merges[m] = merge_text[m]; m++;
            tokens[n] = tok_text[n]; types[n++] = 1;
        }
    int first_pairs = n - 256;
    for (int i = 0; i + 1 < first_pairs && n < 1000; i += 7) { // pair + pair
        snprintf(merge_text[m], 64, "%s %s", tokens[256 + i], tokens[256 + i + 1]);
        snprintf(tok_text[n], 32, "%s%s", tokens[256 + i], tokens[256 + i + 1]);
        merges[m] = merge_text[m]; m++;
        tokens[n] = tok_text[n]; types[n++] = 1;
    }
    const char *control[] = {"<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|begin_of_text|>", "<|eot_id|>",
                             "<|start_header_id|>", "<|end_header_id|>"};
    for (int i = 0; i < 7; i++) { snprintf(tok_text[n], 32, "%s", control[i]); tokens[n] = tok_text[n]; types[n++] = 3; }
    char err[512];
    Tokenizer *t = tokenizer_from_arrays(tokens, n, merges, m, types, pre, n - 5, err, sizeof err);
    if (!t) { fprintf(stderr, "fuzz tokenizer: %s\n", err); abort(); }
    return t;
}
#endif
