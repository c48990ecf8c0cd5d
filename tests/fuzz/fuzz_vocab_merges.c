// vocab.json + merges.txt: the input up to its first NUL byte is vocab.json, the rest merges.txt
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t vn = nul ? (size_t)(nul - data) : size;
    const char *vocab = fuzz_write("vocab.json", data, vn);
    fuzz_write("merges.txt", nul ? nul + 1 : data, nul ? size - vn - 1 : 0);
    char err[1024];
    Tokenizer *t = tokenizer_load(vocab, err, sizeof err);
    if (!t) { fuzz_check_message(err, fuzz_dir); return 0; } // names vocab.json or merges.txt:LINE
    int *ids = NULL;
    int n = tokenizer_encode(t, "the cat sat", 11, &ids);
    if (n < 0) abort();
    free(tokenizer_decode(t, ids, n, NULL));
    free(ids);
    tokenizer_free(t);
    return 0;
}
