"""Encoding speed of Hugging Face `tokenizers` and `tiktoken` on the benchmark text.

    tokenizer_bench.py TEXT VOCABS REPEAT

All timed single-threaded (the caller sets RAYON_NUM_THREADS=1), on the same
lines our tok_cli bench encodes: the text split after each '\\n', newline
kept, special tokens in the text recognised. Best of REPEAT runs.
"""
import json
import os
import sys
import time

import tiktoken
from tokenizers import Tokenizer

GPT2_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def best(fn, repeat):
    t = 1e30
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        t = min(t, time.perf_counter() - t0)
    return t, out


def gpt2_tiktoken(vocabs):
    """tiktoken Encoding from GPT-2's vocab.json: GPT-2's ids are its merge ranks."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    dec = {chr(c): b for b, c in zip(bs, cs)}
    vocab = json.load(open(os.path.join(vocabs, "gpt2", "vocab.json"), encoding="utf-8"))
    ranks = {bytes(dec[c] for c in tok): i for tok, i in vocab.items() if tok != "<|endoftext|>"}
    return tiktoken.Encoding("gpt2", pat_str=GPT2_PAT, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": vocab["<|endoftext|>"]})


def main():
    path, vocabs, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
    text = open(path, encoding="utf-8", newline="").read()  # keep \r as it is
    nbytes = len(text.encode())
    # split after '\n' only, as tok_cli does (str.splitlines also cuts at \r, \x85, ...)
    lines = [l + "\n" for l in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    if not lines[-1]:
        lines.pop()
    rows = []
    for name, tj in [("gpt2", os.path.join(vocabs, "gpt2-json", "tokenizer.json")),
                     ("smollm2", os.path.join(vocabs, "smollm2", "tokenizer.json"))]:
        tok = Tokenizer.from_file(tj)
        t, out = best(lambda: [tok.encode(l, add_special_tokens=False).ids for l in lines], repeat)
        rows.append((name, "tokenizers encode() per line", t, sum(map(len, out))))
        t, out = best(lambda: tok.encode_batch(lines, add_special_tokens=False), repeat)
        rows.append((name, "tokenizers encode_batch(lines), 1 thread", t, sum(len(e.ids) for e in out)))
        t, whole = best(lambda: tok.encode(text, add_special_tokens=False).ids, repeat)
        rows.append((name, "tokenizers encode(whole text)", t, len(whole)))
        if name == "gpt2":
            ref = out
            enc = gpt2_tiktoken(vocabs)
            t, out = best(lambda: [enc.encode(l, allowed_special="all") for l in lines], repeat)
            rows.append((name, "tiktoken encode() per line", t, sum(map(len, out))))
            same = all(a == b.ids for a, b in zip(out, ref))
            t, out = best(lambda: enc.encode_batch(lines, num_threads=1, allowed_special="all"), repeat)
            rows.append((name, "tiktoken encode_batch(lines, num_threads=1)", t, sum(map(len, out))))
            t, out = best(lambda: enc.encode(text, allowed_special="all"), repeat)
            rows.append((name, "tiktoken encode(whole text)", t, len(out)))
            if not same:
                print("warning: tiktoken ids differ from tokenizers' on some lines", file=sys.stderr)
    for name, how, t, ntok in rows:
        print(f"{name}\t{how}\t{nbytes}\t{ntok}\t{t:.3f}\t{nbytes / t / 1e6:.2f}")


if __name__ == "__main__":
    main()
