// data.h: the data users bring, turned into the token ids repo.c trains on.
//
// A pair file (--data) or prompt file (--prompts) is either
//   - a REPOPAIR binary file written by `repo prepare` (detected by its magic), or
//   - JSONL where each line is, independently,
//       {"prompt_ids": [...], "chosen_ids": [...], "rejected_ids": [...]}   ids used as given, or
//       {"prompt": P, "chosen": R, "rejected": R}                            text, tokenized here:
//     P is a string or a list of {"role", "content"} messages (roles system, user, assistant);
//     R is a string (the answer) or a list of messages whose last one is the assistant's answer.
//     Without "prompt", the messages before the answer in "chosen" (and "rejected": they must be the
//     same) are the prompt, as in HH-RLHF / UltraFeedback exports that hold whole conversations.
// The prompt is rendered with the chat template and tokenized; each answer is tokenized on its own
// and gets the template's end-of-turn token (chatml <|im_end|>, llama3 <|eot_id|>, plain the EOS).
//
// REPOPAIR layout, all little-endian: "REPOPAIR", u32 version (1), u32 vocab size, u64 pairs,
// u64 ids, then per pair i32 n_prompt, n_chosen, n_rejected and that many i32 ids.
#ifndef REPO_DATA_H
#define REPO_DATA_H
#include "io.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *model;          // --model: directory or .gguf (its tokenizer, when no --tokenizer)
    const char *tokenizer;      // --tokenizer: tokenizer.json, vocab.json, a directory or a .gguf
    const char *chat_template;  // --chat-template plain|chatml|llama3; NULL: chatml if the tokenizer has <|im_start|>
    int skip_bad;               // --skip-bad: skip bad lines (counted per reason) instead of dying
} DataOptions;

// Every id is checked against vocab_size; errors name FILE:LINE (JSONL) or FILE (binary).
// The tokenizer is loaded only when a line holds text.
void data_load_pairs(PairSet *ps, const char *path, int vocab_size, const DataOptions *o);
// the prompts of a pair file, or of a file of lines with only "prompt_ids" or "prompt"
void data_load_prompts(PromptSet *ps, const char *path, int vocab_size, const DataOptions *o);
// one user message given on the command line (sample --prompt): rendered with the chat template
// and tokenized into *ids; *end_of_turn gets the id that ends the answer (-1 if none). Returns the count.
int data_chat_prompt(const char *text, const DataOptions *o, int **ids, int *end_of_turn);
// ids -> text with the same tokenizer (malloc'd, NUL-terminated)
char *data_decode(const int *ids, int n, const DataOptions *o);
// that tokenizer itself, for a program decoding many texts (tokenizer.h; tokenizer_free it)
struct Tokenizer *data_tokenizer(const DataOptions *o);
// a GGUF file's tokenizer as OUT_DIR/tokenizer.json + tokenizer_config.json (Hugging Face's files,
// encoding id for id as the GGUF's tokenizer does; eos/bos and chat template from its metadata)
void data_write_gguf_tokenizer(const char *gguf_path, const char *out_dir);
// atomic: written under a temporary name and renamed into place
void pairs_write_bin(const PairSet *ps, int vocab_size, const char *path);

// `repo prepare`, `repo encode`, `repo decode` (cmd is the command's name, argv its options)
int data_command(const char *cmd, int argc, char **argv);
#ifdef __cplusplus
}
#endif
#endif
