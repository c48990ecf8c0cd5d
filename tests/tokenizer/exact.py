"""Exactness test: our tokenizer (through tok_cli) against Hugging Face `tokenizers`.

    exact.py TOK_CLI VOCABS_DIR

Every record of gen_text.generate() is encoded by both, ids must be identical,
and decode(encode(s)) must give s back. The Unicode sweep compares
pre-tokenizer pieces directly, for every code point in several contexts.
Prints PASS/FAIL lines and a final "N passed, M failed".
"""
import json
import os
import subprocess
import sys

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

import gen_text

LLAMA3_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
              r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

results = []


def report(ok, name, detail=""):
    results.append(ok)
    print(("PASS " if ok else "FAIL ") + name + (f": {detail}" if detail else ""), flush=True)


def esc(s):
    return s.replace("\\", "\\\\").replace("\n", "\\n")


def cli(tok_cli, mode, path, lines):
    data = "".join(l + "\n" for l in lines).encode("utf-8", "surrogatepass")
    p = subprocess.run([tok_cli, "-e", mode, path], input=data, capture_output=True)
    if p.returncode != 0:
        raise RuntimeError(f"tok_cli {mode} {path} failed: {p.stderr.decode(errors='replace')}")
    out = p.stdout.decode("utf-8", "surrogateescape").split("\n")
    assert out[-1] == "" and len(out) == len(lines) + 1, (len(out), len(lines))
    return out[:-1]


def check_encode(tok_cli, name, ours_path, hf, recs):
    got = cli(tok_cli, "encode", ours_path, [esc(s) for s in recs])
    want = hf.encode_batch(recs, add_special_tokens=False)
    bad = []
    ours_ids = []
    for s, g, w in zip(recs, got, want):
        gi = [int(x) for x in g.split()]
        ours_ids.append(gi)
        if gi != w.ids:
            bad.append((s, gi, w.ids))
    ntok = sum(len(x) for x in ours_ids)
    nbytes = sum(len(s.encode()) for s in recs)
    if bad:
        s, g, w = bad[0]
        k = next((i for i, (a, b) in enumerate(zip(g, w)) if a != b), min(len(g), len(w)))
        report(False, f"encode {name}", f"{len(bad)}/{len(recs)} records differ; first {s[:200]!r}\n"
               f"  at token {k}: ours {g[max(0, k - 3):k + 5]} hf {w[max(0, k - 3):k + 5]}")
    else:
        report(True, f"encode {name}", f"{len(recs)} records, {nbytes} bytes, {ntok} tokens identical")
    back = [unesc(b) for b in cli_raw_decode(tok_cli, ours_path, ours_ids)]
    # A vocabulary may lack some bytes (SmolLM2 has no token for 0x04, 0x06,
    # ...); tokenizers drops them, so there decode must equal tokenizers' own.
    bad, lossy = [], 0
    for s, b, w in zip(recs, back, want):
        if s == b:
            continue
        if b == hf.decode(w.ids, skip_special_tokens=False):
            lossy += 1
        else:
            bad.append((s, b))
    report(not bad, f"decode(encode(s)) == s {name}",
           f"{len(bad)} records differ; first {bad[0][0][:120]!r} -> {bad[0][1][:120]!r}" if bad else
           f"{len(recs)} records" + (f" ({lossy} come back as tokenizers' own decode does, not as s: "
                                      "whitespace eaten by lstrip/rstrip or bytes missing from the vocabulary)"
                                     if lossy else ""))


def unesc(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s) and s[i + 1] in "n\\":
            out.append("\n" if s[i + 1] == "n" else "\\")
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def cli_raw_decode(tok_cli, path, ids_list):
    return cli(tok_cli, "decode", path, [" ".join(map(str, ids)) for ids in ids_list])


def byte_decoder():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def check_pieces(tok_cli, name, ours_path, hf_pre, recs):
    dec = byte_decoder()
    got = cli(tok_cli, "pieces", ours_path, [esc(s) for s in recs])
    bad = 0
    first = None
    for s, g in zip(recs, got):
        want = [bytes(dec[c] for c in piece).hex() for piece, _ in hf_pre.pre_tokenize_str(s)]
        if g.split() != want:
            bad += 1
            if first is None:
                gs = g.split()
                k = next((i for i, (a, b) in enumerate(zip(gs, want)) if a != b), 0)
                first = (f"{s[:80]!r}: ours {[bytes.fromhex(x).decode('utf-8', 'replace') for x in gs[k:k + 4]]} "
                         f"hf {[bytes.fromhex(x).decode('utf-8', 'replace') for x in want[k:k + 4]]}")
    report(bad == 0, f"pieces {name}", f"{bad}/{len(recs)} records differ; first {first}" if bad else
           f"{len(recs)} records")


def llama3_synth(vocabs, recs):
    """A Llama-3-style tokenizer trained here on the test text (no download)."""
    out = os.path.join(vocabs, "llama3-synth")
    path = os.path.join(out, "tokenizer.json")
    if not os.path.exists(path):
        os.makedirs(out, exist_ok=True)
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_PAT), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tok.decoder = decoders.ByteLevel()
        specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|im_start|>"]
        tr = trainers.BpeTrainer(vocab_size=6000, special_tokens=specials, show_progress=False,
                                 initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(gen_text.generate(seed=7, target_bytes=400_000), tr)
        tok.save(path)
        with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
            json.dump({"eos_token": "<|end_of_text|>"}, f)
    return path


ADDED = [("<mask>", dict(lstrip=True, rstrip=True, special=True)),
         ("[X]", dict(single_word=True)),
         ("<sep>", dict(rstrip=True, normalized=False, special=True)),
         ("<cls>", dict(lstrip=True, normalized=True)),
         ("hello world", dict(normalized=False)),
         ("<|endoftext|>x", dict(special=True))]


def gpt2_added(vocabs):
    """GPT-2 plus added tokens exercising lstrip/rstrip/single_word/normalized."""
    from tokenizers import AddedToken
    out = os.path.join(vocabs, "gpt2-added")
    path = os.path.join(out, "tokenizer.json")
    tok = Tokenizer.from_file(os.path.join(vocabs, "gpt2-json", "tokenizer.json"))
    for content, kw in ADDED:
        (tok.add_special_tokens if kw.get("special") else tok.add_tokens)([AddedToken(content, **kw)])
    os.makedirs(out, exist_ok=True)
    tok.save(path)
    return path, tok


def added_records(recs):
    import random
    r = random.Random(5)
    out = []
    for s in recs[:1500]:
        for _ in range(r.randint(1, 4)):
            k = r.randrange(len(s) + 1)
            ws = lambda: r.choice(["", "", " ", "  ", "\t", "\n", " \n ", "\u3000"])
            s = s[:k] + ws() + r.choice(ADDED)[0] + ws() + s[k:]
        out.append(s)
    return out + ["[X]", "a[X]", "[X]b", "a [X] b", "_[X]_", "é[X]", "1[X]", " <mask> ", "x  <mask>  <mask>  y",
                  "<sep>  <sep>", "<|endoftext|>x", "<|endoftext|>xx", "hello worlds", "hello  world"]


def write_arrays(vocabs):
    """SmolLM2 as the arrays tokenizer_from_arrays takes (what a GGUF reader hands over)."""
    out = os.path.join(vocabs, "smollm2-arrays")
    if os.path.exists(os.path.join(out, "pre.txt")):
        return out
    os.makedirs(out, exist_ok=True)
    import gguf
    r = gguf.GGUFReader(os.path.join(vocabs, "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    strs = lambda k: [bytes(r.fields[k].parts[i]).decode() for i in r.fields[k].data]
    f = r.fields["tokenizer.ggml.token_type"]
    with open(os.path.join(out, "tokens.txt"), "w", encoding="utf-8") as fo:
        fo.writelines(esc(t) + "\n" for t in strs("tokenizer.ggml.tokens"))
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as fo:
        fo.writelines(m + "\n" for m in strs("tokenizer.ggml.merges"))
    with open(os.path.join(out, "types.txt"), "w") as fo:
        fo.writelines(f"{int(f.parts[i][0])}\n" for i in f.data)
    eos = r.fields["tokenizer.ggml.eos_token_id"]
    with open(os.path.join(out, "eos.txt"), "w") as fo:
        fo.write(f"{int(eos.parts[eos.data[0]][0])}\n")
    with open(os.path.join(out, "pre.txt"), "w") as fo:
        fo.write(bytes(r.fields["tokenizer.ggml.pre"].parts[r.fields["tokenizer.ggml.pre"].data[0]]).decode() + "\n")
    return out


def check_info(tok_cli, name, path, expect):
    p = subprocess.run([tok_cli, "info", path], capture_output=True, text=True)
    info = dict(l.rsplit(" ", 1) for l in p.stdout.splitlines())
    bad = {k: (info.get(k), v) for k, v in expect.items() if info.get(k) != str(v)}
    report(p.returncode == 0 and not bad, f"info {name}", f"mismatch (ours, want): {bad}" if bad else
           ", ".join(f"{k}={v}" for k, v in expect.items()))


def main():
    tok_cli, vocabs = sys.argv[1], sys.argv[2]
    recs = gen_text.generate()
    sweep = gen_text.unicode_sweep()
    gpt2_hf = Tokenizer.from_file(os.path.join(vocabs, "gpt2-json", "tokenizer.json"))
    smol_hf = Tokenizer.from_file(os.path.join(vocabs, "smollm2", "tokenizer.json"))
    llama_path = llama3_synth(vocabs, recs)
    llama_hf = Tokenizer.from_file(llama_path)
    arrays = write_arrays(vocabs)

    check_info(tok_cli, "gpt2", os.path.join(vocabs, "gpt2"),
               {"vocab_size": 50257, "eos_id": 50256, "id <|endoftext|>": 50256, "id Ġthe": 262})
    check_info(tok_cli, "gpt2 explicit vocab.json path", os.path.join(vocabs, "gpt2", "vocab.json"),
               {"vocab_size": 50257, "eos_id": 50256, "id <|endoftext|>": 50256})
    check_info(tok_cli, "smollm2", os.path.join(vocabs, "smollm2"),
               {"vocab_size": 49152, "eos_id": 2, "id <|im_start|>": 1, "id <|im_end|>": 2})
    check_info(tok_cli, "smollm2 arrays", "arrays:" + arrays, {"vocab_size": 49152, "eos_id": 2, "id <|im_start|>": 1})

    check_encode(tok_cli, "gpt2 vocab.json+merges.txt", os.path.join(vocabs, "gpt2"), gpt2_hf, recs)
    check_encode(tok_cli, "gpt2 tokenizer.json", os.path.join(vocabs, "gpt2-json", "tokenizer.json"), gpt2_hf, recs)
    check_encode(tok_cli, "smollm2 tokenizer.json", os.path.join(vocabs, "smollm2"), smol_hf, recs)
    check_encode(tok_cli, "smollm2 from arrays (GGUF metadata)", "arrays:" + arrays, smol_hf, recs)
    check_encode(tok_cli, "llama3-style (trained here)", llama_path, llama_hf, recs)

    added_path, added_hf = gpt2_added(vocabs)
    check_encode(tok_cli, "gpt2 + lstrip/rstrip/single_word added tokens", added_path, added_hf, added_records(recs))

    check_pieces(tok_cli, "gpt2 unicode sweep", os.path.join(vocabs, "gpt2"), gpt2_hf.pre_tokenizer, sweep)
    check_pieces(tok_cli, "smollm2 unicode sweep", os.path.join(vocabs, "smollm2"), smol_hf.pre_tokenizer, sweep)
    check_pieces(tok_cli, "llama3 unicode sweep", llama_path, llama_hf.pre_tokenizer, sweep)
    check_encode(tok_cli, "smollm2 unicode sweep", os.path.join(vocabs, "smollm2"), smol_hf, sweep[::7])

    npass = sum(results)
    print(f"{npass} passed, {len(results) - npass} failed")
    sys.exit(0 if npass == len(results) else 1)


if __name__ == "__main__":
    main()
