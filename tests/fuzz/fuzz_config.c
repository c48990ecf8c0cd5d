// config.json: config_load and every getter on the keys repo.c reads (ints must fit in int32)
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("config.json", data, size);
    fuzz_begin();
    if (setjmp(repo_die_jump)) { fuzz_check_message(repo_die_msg, path); fuzz_end(1); return 0; }
    JsonConfig *c = config_load(path);
    static const char *ints[] = {"vocab_size", "n_embd", "n_layer", "hidden_size", "num_key_value_heads", "head_dim"};
    for (int i = 0; i < 6; i++) {
        long v = config_int(c, ints[i], 0, 7);
        if (v < INT32_MIN || v > INT32_MAX) abort();
    }
    config_num(c, "rms_norm_eps", 0, 1e-6);
    config_str(c, "model_type", 0, "gpt2");
    config_bool(c, "tie_word_embeddings", 0, 0);
    config_first_int(c, "eos_token_id", -1);
    config_sub_str(c, "rope_scaling", "type");
    config_has(c, "n_ctx");
    config_int(c, "vocab_size", 1, 0); // required: "missing" is an error too
    config_free(c);
    fuzz_end(0);
    return 0;
}
