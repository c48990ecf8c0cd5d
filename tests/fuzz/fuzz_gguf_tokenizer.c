// a GGUF file's tokenizer, the way repo reads it (data.c: tokenizer.ggml.* -> tokenizer_from_arrays),
// then written as tokenizer.json + tokenizer_config.json and read back
#include "fuzz.h"
#include "../../data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("tok.gguf", data, size);
    const char *out = fuzz_path("gguf_out");
    mkdir(out, 0700);
    fuzz_begin();
    if (setjmp(repo_die_jump)) { fuzz_check_message(repo_die_msg, fuzz_dir); fuzz_end(1); return 0; } // every file is in it
    DataOptions o = {0};
    o.tokenizer = path;
    int ids[4] = {0, 1, 2, 3};
    free(data_decode(ids, 4, &o));
    data_write_gguf_tokenizer(path, out);
    char json[600], err[1024];
    snprintf(json, sizeof json, "%s/tokenizer.json", out);
    if (access(json, F_OK) == 0) { // what we wrote, we read
        Tokenizer *t = tokenizer_load(json, err, sizeof err);
        if (!t) { fprintf(stderr, "written tokenizer.json does not load: %s\n", err); abort(); }
        tokenizer_free(t);
        unlink(json);
    }
    fuzz_end(0);
    return 0;
}
