// tokenizer.h: byte-level BPE (GPT-2 family) that encodes and decodes exactly
// like Hugging Face `tokenizers` for the models this trainer supports.
//
// The vocabulary and merges live in one in-memory form however they were read
// (tokenizer.json, vocab.json + merges.txt, or arrays handed over by a GGUF
// reader), so the encoder never cares where the data came from.
//
// Checked id-for-id against tokenizers 0.15.2 with PCRE2 10.42 (Debian 12)
// by tests/tokenizer/test_exact.sh.
//
// A Tokenizer is immutable after construction except for a private scratch
// area and piece cache, so: one Tokenizer per thread when encoding in parallel.
#ifndef REPO_TOKENIZER_H
#define REPO_TOKENIZER_H
#ifdef __cplusplus
extern "C" {
#endif
#include <stddef.h>

typedef struct Tokenizer Tokenizer;

// How text is cut into pieces before BPE runs on each piece.
typedef enum {
    TOK_PRE_GPT2 = 0,  // ByteLevel(use_regex=true): GPT-2's regex
    TOK_PRE_SMOLLM,    // Sequence[Digits(individual_digits=true), ByteLevel(use_regex=true)]
    TOK_PRE_LLAMA3,    // Sequence[Split(Llama-3 regex, Isolated), ByteLevel(use_regex=false)];
                       // from arrays this also sets BPE ignore_merges, as Llama-3 does
} TokPreKind;

// Maps a GGUF `tokenizer.ggml.pre` value ("gpt-2", "smollm", "llama-bpe")
// to a kind; returns -1 for names we do not implement.
int tokenizer_pre_kind_from_name(const char *name);

// Loads from a directory (tokenizer.json if present, else vocab.json +
// merges.txt) or from an explicit tokenizer.json / vocab.json path.
// On failure returns NULL and writes a message naming the file into err.
// The EOS id comes from tokenizer_config.json / special_tokens_map.json
// beside the files when present, else from well-known token names.
Tokenizer *tokenizer_load(const char *path_or_dir, char *err, size_t errlen);

// Builds a tokenizer from arrays, e.g. GGUF metadata.
//   tokens[i]      token text in byte-level unicode form ("Ġthe"); id = i
//   merges[r]      "left right", rank r (lower merges first)
//   token_types    optional (NULL = all normal), GGUF numbering:
//                  3 = control  -> added special token (matched before BPE)
//                  4 = user-defined -> added non-special token
//                  anything else -> ordinary vocabulary entry
//   eos_id         -1 if unknown
Tokenizer *tokenizer_from_arrays(const char *const *tokens, int n_tokens,
                                 const char *const *merges, int n_merges,
                                 const int *token_types, TokPreKind pre,
                                 int eos_id, char *err, size_t errlen);

void tokenizer_free(Tokenizer *t);

// Encodes len bytes of UTF-8 text (no BOS/EOS added; special tokens written
// in the text, e.g. "<|im_start|>", become their ids). *ids_out is malloc'd
// and owned by the caller. Returns the number of ids, or -1 on allocation
// failure (also for more than 2^31-1 ids, or one pre-tokenized piece of 2 GB
// or more). Like tokenizers, a byte the vocabulary has no token for is
// dropped (SmolLM2 lacks a few control bytes), and lstrip/rstrip added tokens
// swallow the whitespace beside them, so decode(encode(s)) can differ from s.
// Invalid UTF-8 is accepted and round-trips byte for byte.
int tokenizer_encode(Tokenizer *t, const char *text, size_t len, int **ids_out);

// The pieces BPE would see (added-token matches included), as start/end byte
// offsets: (*bounds_out)[2i], (*bounds_out)[2i+1]. For tests and debugging.
// Returns the piece count, or -1 on allocation failure.
int tokenizer_pieces(Tokenizer *t, const char *text, size_t len, size_t **bounds_out);

// Decodes ids to bytes: ByteLevel's inverse map, or a token's own text when
// it has chars outside that map (added tokens like "<|im_start|>" come out as
// written, as in tokenizers' decoder). The result is
// malloc'd, NUL-terminated; its length (without the NUL) goes to *len_out if
// non-NULL. Unknown ids are skipped. Returns NULL on allocation failure.
char *tokenizer_decode(const Tokenizer *t, const int *ids, int n, size_t *len_out);

// Id of a token given its vocabulary text (byte-level form for ordinary
// tokens, plain text for added tokens such as "<|im_start|>"); -1 if absent.
int tokenizer_token_id(const Tokenizer *t, const char *token_text);
// Vocabulary text of an id, NULL if out of range or unused.
const char *tokenizer_token_text(const Tokenizer *t, int id);
int tokenizer_vocab_size(const Tokenizer *t);
int tokenizer_eos_id(const Tokenizer *t);        // -1 if unknown
void tokenizer_set_eos_id(Tokenizer *t, int id);
int tokenizer_is_special(const Tokenizer *t, int id);

// Writes a Hugging Face tokenizer.json that `tokenizers` (and so
// AutoTokenizer) encodes with exactly as this tokenizer does: BPE vocab +
// merges, the pre-tokenizer spelled as GPT-2's / SmolLM2's / Llama-3's own
// files do, ByteLevel decoder and post-processor (no BOS template), added
// tokens with their flags (special for GGUF control tokens). Written as
// PATH.tmp.<pid> and renamed into place. Returns 1, or 0 with err set.
int tokenizer_write_json(const Tokenizer *t, const char *path, char *err, size_t errlen);
// A minimal tokenizer_config.json beside it: tokenizer_class
// PreTrainedTokenizerFast, eos_token (tokenizer_eos_id), bos_token when
// bos_id >= 0, unk_token if any, chat_template when non-NULL. Atomic too.
int tokenizer_write_config_json(const Tokenizer *t, const char *path, int bos_id, const char *chat_template,
                                char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
