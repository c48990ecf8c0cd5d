// tokenizer.json: tokenizer_load (no die(): leaks are checked), then encode/decode a fixed text
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("tokenizer.json", data, size);
    char err[1024];
    Tokenizer *t = tokenizer_load(path, err, sizeof err);
    if (!t) { fuzz_check_message(err, path); return 0; }
    static const char text[] = "Hello world, 123 4567 <|im_start|>user\n  spaced\tout \xc3\xa9t\xc3\xa9 \xff\xfe end";
    int *ids = NULL;
    int n = tokenizer_encode(t, text, sizeof text - 1, &ids);
    if (n < 0) abort();
    for (int i = 0; i < n; i++) if (ids[i] < 0 || ids[i] >= tokenizer_vocab_size(t)) abort();
    size_t len;
    free(tokenizer_decode(t, ids, n, &len));
    free(ids);
    size_t *bounds;
    int np = tokenizer_pieces(t, text, sizeof text - 1, &bounds);
    for (int i = 0; i < np; i++) if (bounds[2 * i] > bounds[2 * i + 1] || bounds[2 * i + 1] > sizeof text - 1) abort();
    free(bounds);
    const char *out = fuzz_path("written.json");
    if (tokenizer_write_json(t, out, err, sizeof err)) { // what we write, we read
        Tokenizer *back = tokenizer_load(out, err, sizeof err);
        if (!back) { fprintf(stderr, "written tokenizer.json does not load: %s\n", err); abort(); }
        tokenizer_free(back);
    }
    tokenizer_free(t);
    return 0;
}
