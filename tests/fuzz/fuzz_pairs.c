// JSONL pair and prompt files (ids and text lines, chat templates, --skip-bad) through data.c, with
// fuzz.h's tokenizer (ChatML tokens, so text lines render with chatml)
#include "fuzz.h"
#include "../../data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char tok_dir[512];
    static int vocab;
    if (!*tok_dir) {
        char err[512];
        Tokenizer *t = fuzz_tokenizer(TOK_PRE_GPT2);
        snprintf(tok_dir, sizeof tok_dir, "%s", fuzz_path("tok"));
        mkdir(tok_dir, 0700);
        char p[600];
        snprintf(p, sizeof p, "%s/tokenizer.json", tok_dir);
        if (!tokenizer_write_json(t, p, err, sizeof err)) { fprintf(stderr, "%s\n", err); abort(); }
        vocab = tokenizer_vocab_size(t);
        tokenizer_free(t);
    }
    const char *path = fuzz_write("pairs.jsonl", data, size);
    fuzz_begin();
    DataOptions o = {0};
    o.tokenizer = tok_dir;
    if (setjmp(repo_die_jump) == 0) {
        PairSet ps;
        data_load_pairs(&ps, path, vocab, &o);
        for (int i = 0; i < ps.n_pairs; i++) { // every id in range, every length positive
            Pair *p = &ps.pairs[i];
            if (p->n_prompt <= 0 || p->n_chosen <= 0 || p->n_rejected <= 0) abort();
            for (int j = 0; j < p->n_chosen; j++) if (p->chosen[j] < 0 || p->chosen[j] >= vocab) abort();
        }
        pairs_truncate(&ps, 8, 4);
        pairs_free(&ps);
    } else { fuzz_check_message(repo_die_msg, path); fuzz_end(1); fuzz_begin(); }
    o.skip_bad = 1;
    if (setjmp(repo_die_jump) == 0) {
        PromptSet prompts;
        data_load_prompts(&prompts, path, vocab, &o);
        prompts_free(&prompts);
        fuzz_end(0);
    } else { fuzz_check_message(repo_die_msg, path); fuzz_end(1); }
    return 0;
}
