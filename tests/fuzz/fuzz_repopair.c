// REPOPAIR binary pair files: "REPOPAIR" + the input; the model's vocabulary is taken from the
// header's (when plausible) so that inputs get past that check
#include "fuzz.h"
#include "../../data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *file = malloc(size + 8);
    memcpy(file, "REPOPAIR", 8);
    if (size) memcpy(file + 8, data, size);
    const char *path = fuzz_write("pairs.bin", file, size + 8);
    free(file);
    int vocab = 1000;
    if (size >= 8) {
        uint32_t v = (uint32_t)data[4] | (uint32_t)data[5] << 8 | (uint32_t)data[6] << 16 | (uint32_t)data[7] << 24;
        if (v > 0 && v < (1u << 24)) vocab = (int)v;
    }
    DataOptions o = {0};
    fuzz_begin();
    if (setjmp(repo_die_jump) == 0) {
        PairSet ps;
        data_load_pairs(&ps, path, vocab, &o);
        for (int i = 0; i < ps.n_pairs; i++)
            if (ps.pairs[i].n_prompt <= 0 || ps.pairs[i].n_rejected <= 0 || ps.pairs[i].prompt[0] >= vocab) abort();
        // what we read, we write back byte for byte
        const char *copy = fuzz_path("copy.bin");
        pairs_write_bin(&ps, vocab, copy);
        size_t n1, n2;
        char *a = read_whole_file(path, &n1), *b = read_whole_file(copy, &n2);
        if (n1 != n2 || memcmp(a, b, n1)) { fprintf(stderr, "REPOPAIR file read and written back differs\n"); abort(); }
        free(a); free(b);
        pairs_free(&ps);
        fuzz_end(0);
    } else { fuzz_check_message(repo_die_msg, path); fuzz_end(1); }
    return 0;
}
