// encode / decode on arbitrary bytes with fuzz.h's tokenizer for each pre-tokenizer (the first byte
// picks it): every byte has a token and no added token strips, so decode(encode(s)) == s exactly;
// the pieces cover s in order; a second encode gives the same ids (the piece cache)
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static Tokenizer *toks[3];
    if (!toks[0]) for (int k = 0; k < 3; k++) toks[k] = fuzz_tokenizer((TokPreKind)k);
    if (size == 0) return 0;
    Tokenizer *t = toks[data[0] % 3];
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    int *ids = NULL, *again = NULL;
    int m = tokenizer_encode(t, s, n, &ids);
    if (m < 0) abort();
    size_t len;
    char *back = tokenizer_decode(t, ids, m, &len);
    if (len != n || memcmp(back, s, n)) { fprintf(stderr, "decode(encode(s)) != s\n"); abort(); }
    if (tokenizer_encode(t, s, n, &again) != m || memcmp(ids, again, sizeof(int) * (size_t)m)) abort();
    size_t *b, at = 0;
    int np = tokenizer_pieces(t, s, n, &b);
    for (int i = 0; i < np; i++) {
        if (b[2 * i] != at || b[2 * i + 1] <= b[2 * i]) { fprintf(stderr, "pieces do not tile the text\n"); abort(); }
        at = b[2 * i + 1];
    }
    if (at != n) abort();
    free(b); free(back); free(ids); free(again);
    return 0;
}
