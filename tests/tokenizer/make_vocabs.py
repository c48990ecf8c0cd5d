"""Turns the downloaded vocabularies into the tokenizer directories the tests use.

    make_vocabs.py DEST

DEST/gpt2/        vocab.json + merges.txt (+ tokenizer_config.json), as shipped
DEST/gpt2-json/   the same vocabulary as a tokenizer.json written by `tokenizers`
DEST/smollm2/     tokenizer.json rebuilt from the GGUF metadata of
                  SmolLM2-135M-Instruct, laid out like the original on the Hub
"""
import json
import os
import sys


def gpt2_json(dest):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    out = os.path.join(dest, "gpt2-json")
    if os.path.exists(os.path.join(out, "tokenizer.json")):
        return
    os.makedirs(out, exist_ok=True)
    src = os.path.join(dest, "gpt2")
    tok = Tokenizer(models.BPE.from_file(os.path.join(src, "vocab.json"), os.path.join(src, "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    # as in gpt2's tokenizer.json on the Hub: special, normalized=true
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=True)])
    tok.save(os.path.join(out, "tokenizer.json"))
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>"}, f)


def smollm2_json(dest):
    out = os.path.join(dest, "smollm2")
    if os.path.exists(os.path.join(out, "tokenizer.json")):
        return
    import gguf
    r = gguf.GGUFReader(os.path.join(out, "SmolLM2-135M-Instruct.Q4_1.gguf"))

    def strings(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    def scalar(key):
        f = r.fields[key]
        return f.parts[f.data[0]].tolist()[0]

    tokens = strings("tokenizer.ggml.tokens")
    merges = strings("tokenizer.ggml.merges")
    f = r.fields["tokenizer.ggml.token_type"]
    types = [int(f.parts[i][0]) for i in f.data]
    pre = bytes(r.fields["tokenizer.ggml.pre"].parts[r.fields["tokenizer.ggml.pre"].data[0]]).decode()
    assert pre == "smollm", pre
    eos, bos = scalar("tokenizer.ggml.eos_token_id"), scalar("tokenizer.ggml.bos_token_id")
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, t in enumerate(tokens) if types[i] == 3]
    tj = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": merges},
    }
    assert len(tj["model"]["vocab"]) == len(tokens), "duplicate token strings"
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as fo:
        json.dump(tj, fo, ensure_ascii=False)
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as fo:
        json.dump({"eos_token": tokens[eos], "bos_token": tokens[bos]}, fo)


if __name__ == "__main__":
    gpt2_json(sys.argv[1])
    smollm2_json(sys.argv[1])
