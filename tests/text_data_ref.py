"""Helpers for tests/test_text_data.sh: an independent Python reading of text pairs through
Hugging Face `tokenizers`, and a reader of `repo prepare`'s binary pair files.

    text_data_ref.py minitok OUT_DIR                 a handmade byte-level tokenizer.json (standard library only)
    text_data_ref.py mktok GPT2_DIR OUT_DIR          GPT-2 + chat special tokens, as tokenizer.json
    text_data_ref.py expect TOKENIZER_JSON TEMPLATE EOS IN.jsonl OUT.jsonl
                                                     ids by hand-rendered template + HF tokenizer
    text_data_ref.py readbin FILE.bin OUT.jsonl      REPOPAIR -> {"prompt_ids", ...} lines
    text_data_ref.py encode TOKENIZER_JSON < lines   HF ids, one line per input line
    text_data_ref.py logs A.jsonl B.jsonl            per-step logs equal except tokens_per_s
"""
import json
import struct
import sys

SPECIALS = ["<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]


def mktok(src, out):
    import os
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    os.makedirs(out, exist_ok=True)
    tok = Tokenizer(models.BPE.from_file(os.path.join(src, "vocab.json"), os.path.join(src, "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ["<|endoftext|>"] + SPECIALS])
    tok.save(os.path.join(out, "tokenizer.json"))
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"eos_token": "<|endoftext|>"}, f)
    print(tok.get_vocab_size())


def minitok(out):
    import os
    os.makedirs(out, exist_ok=True)
    # GPT-2's byte -> unicode map, so every byte has a token; a few merges; three special tokens
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    u = dict(zip(bs, map(chr, cs)))
    vocab = {u[b]: b for b in range(256)}
    merges = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "r e", "Ġ s", "a t"]
    for m in merges:
        vocab[m.replace(" ", "")] = len(vocab)
    added = []
    for t in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]:
        added.append({"id": len(vocab), "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True})
        vocab[t] = len(vocab)
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
          "pre_tokenizer": bl, "post_processor": None, "decoder": bl,
          "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                    "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                    "vocab": vocab, "merges": merges}}
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"eos_token": "<|endoftext|>"}, f)
    print(len(vocab))


def render(template, msgs):
    if template == "plain":
        return "\n\n".join(m["content"] for m in msgs)
    if template == "chatml":
        return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in msgs) + "<|im_start|>assistant\n"
    assert template == "llama3"
    return ("<|begin_of_text|>" + "".join(f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content']}<|eot_id|>"
                                           for m in msgs) + "<|start_header_id|>assistant<|end_header_id|>\n\n")


def expect(tok_path, template, eos_name, src, dst):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tok_path)
    eos = tok.token_to_id(eos_name)
    assert eos is not None, eos_name
    enc = lambda s: tok.encode(s, add_special_tokens=False).ids
    with open(src, encoding="utf-8") as f, open(dst, "w") as out:
        for line in f:
            if not line.strip():
                continue
            ex = json.loads(line)
            answers = [ex[k] if isinstance(ex[k], str) else ex[k][-1]["content"] for k in ("chosen", "rejected")]
            p = ex.get("prompt")
            if p is None:
                text = render(template, ex["chosen"][:-1])
            elif isinstance(p, str):
                text = p if template == "plain" else render(template, [{"role": "user", "content": p}])
            else:
                text = render(template, p)
            out.write(json.dumps({"prompt_ids": enc(text), "chosen_ids": enc(answers[0]) + [eos],
                                  "rejected_ids": enc(answers[1]) + [eos]}) + "\n")


def readbin(path, dst):
    b = open(path, "rb").read()
    assert b[:8] == b"REPOPAIR", "magic"
    version, vocab, n_pairs, n_ids = struct.unpack_from("<IIQQ", b, 8)
    assert version == 1, version
    pos, seen = 32, 0
    with open(dst, "w") as out:
        for _ in range(n_pairs):
            lens = struct.unpack_from("<3i", b, pos)
            pos += 12
            seqs = []
            for n in lens:
                seqs.append(list(struct.unpack_from(f"<{n}i", b, pos)))
                pos += 4 * n
                seen += n
            out.write(json.dumps(dict(zip(["prompt_ids", "chosen_ids", "rejected_ids"], seqs))) + "\n")
    assert pos == len(b) and seen == n_ids, (pos, len(b), seen, n_ids)
    print(vocab)


def encode(tok_path):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tok_path)
    for line in sys.stdin.buffer.read().decode("utf-8").split("\n")[:-1]:
        print(" ".join(map(str, tok.encode(line, add_special_tokens=False).ids)))


def logs(a, b):
    la = [json.loads(l) for l in open(a) if l.strip()]
    lb = [json.loads(l) for l in open(b) if l.strip()]
    for x in la + lb:
        x.pop("tokens_per_s", None)
    if not la or la != lb:
        print(f"logs differ: {len(la)} vs {len(lb)} steps; first: {la[:1]} vs {lb[:1]}")
        sys.exit(1)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"minitok": minitok, "mktok": mktok, "expect": expect, "readbin": readbin, "encode": encode, "logs": logs}[cmd](*args)
