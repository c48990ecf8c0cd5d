#!/usr/bin/env python3
"""Tokenizer files written for Hugging Face: tokenizer_write_json / tokenizer_write_config_json.

    .venv/bin/python tests/test_gguf_tokenizer.py

1. SmolLM2-135M-Instruct's Q4_1 GGUF (models/, else $SMOLLM2_GGUF, else fetched by
   tests/gguf/fetch_smollm2.sh into ~/.cache/repo-tests/smollm2): ./repo train --model FILE.gguf
   --out OUT (1 step) writes OUT/tokenizer.json + tokenizer_config.json, and
   a. ./repo eval --model OUT on text pairs prints exactly what --tokenizer FILE.gguf prints;
   b. on ~200 KB of varied text (tests/tokenizer/gen_text.py: digits, scripts, emoji, specials
      like <|im_start|>), tokenizers.Tokenizer.from_file(OUT/tokenizer.json) gives exactly the ids
      of ./repo encode --model OUT and of ./repo encode --tokenizer FILE.gguf (and of SmolLM2's own
      tokenizer.json when tests/tokenizer/fetch_vocabs.sh has cached it);
   c. the pre-tokenizer, decoder and post-processor are spelled as SmolLM2's own file spells them;
   d. transformers' AutoTokenizer.from_pretrained(OUT) loads, finds the EOS (<|im_end|>) and BOS,
      and encodes as ./repo does.
2. GPT-2 (vocab.json + merges.txt cached by tests/tokenizer/fetch_vocabs.sh) and a Llama-3-style
   tokenizer (trained by tests/tokenizer/exact.py's llama3_synth) go through tok_cli write-json:
   HF loads the file and encodes the text to the same ids as our tokenizer and HF's original file;
   the pre-tokenizer is spelled as the original's.
Prints PASS/FAIL lines and "N passed, M failed"; exit status 1 on any failure.
Environment: REPO (default ./repo, built with make repo), CC (default gcc).
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "tokenizer"))
import gen_text  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

REPO = os.environ.get("REPO", os.path.join(ROOT, "repo"))
VOCABS = os.path.join(ROOT, ".cache", "tokenizer-vocabs")
npass = nfail = 0


def res(ok, what, detail=""):
    global npass, nfail
    if ok:
        npass += 1
        print(f"PASS {what}", flush=True)
    else:
        nfail += 1
        print(f"FAIL {what}: {detail}", flush=True)
    return ok


def run(cmd, stdin=None):
    p = subprocess.run(cmd, input=stdin, capture_output=True)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace").strip()


def text_lines():
    """gen_text records cut at newlines (./repo encode reads one line per text), plus specials"""
    lines = []
    for rec in gen_text.generate(seed=31, target_bytes=200_000):
        lines += rec.split("\n")
    lines += ["<|im_start|>user\nWhat is 12345 + 678?<|im_end|>".split("\n")[0],
              "<|im_start|>assistant", "It is 13023.<|im_end|><|endoftext|>", "<|im_end|>x<|im_start|>y",
              "<repo_name>a<file_sep>b<filename>c", "2024-06-11 12:34:56.789 v1.2.3 0x1F 1e-10 ３４５"]
    return lines


def encode_cli(args, lines):
    data = b"".join(s.encode("utf-8", "surrogatepass") + b"\n" for s in lines)
    rc, out, err = run([REPO if args[0] != "tok_cli" else args[1]] + args[2 if args[0] == "tok_cli" else 1:], data)
    if rc != 0:
        raise RuntimeError(f"{' '.join(args)}: {err}")
    got = out.decode().split("\n")[:-1]
    return [[int(x) for x in g.split()] for g in got]


def first_diff(a, b, lines):
    if len(a) != len(b):
        return f"{len(a)} lines vs {len(b)}"
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"line {i} {lines[i][:60]!r}: {x[:12]} vs {y[:12]}"
    return ""


def hf_ids(tok, lines):
    return [e.ids for e in tok.encode_batch(lines, add_special_tokens=False)]


def find_gguf():
    for p in [os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"), os.environ.get("SMOLLM2_GGUF", "")]:
        if p and os.path.exists(p):
            return p
    cache = os.path.expanduser("~/.cache/repo-tests/smollm2")
    p = subprocess.run(["bash", os.path.join(HERE, "gguf", "fetch_smollm2.sh"), cache], capture_output=True,
                       text=True, env=dict(os.environ, PYTHON=os.environ.get("PYTHON", sys.executable)))
    path = p.stdout.strip().splitlines()[-1] if p.returncode == 0 and p.stdout.strip() else ""
    return path if path and os.path.exists(path) else None


def same_spelling(written, original, name):
    for key in ("pre_tokenizer", "decoder", "post_processor"):
        res(written[key] == original[key], f"{name}: {key} spelled as the original tokenizer.json",
            f"{json.dumps(written[key])} vs {json.dumps(original[key])}")


def check_gguf(lines, tmp):
    gguf = find_gguf()
    if not gguf:
        print("skipped: SmolLM2 GGUF (models/ empty and tests/gguf/fetch_smollm2.sh failed)")
        return
    out = os.path.join(tmp, "smol")
    rc, _, err = run([REPO, "train", "--model", gguf, "--data", os.path.join(ROOT, "data", "sample_chat.jsonl"),
                      "--out", out, "--steps", "1", "--batch-pairs", "2"])
    files = [f for f in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json")
             if os.path.exists(os.path.join(out, f))]
    if not res(rc == 0 and len(files) == 4, "train from GGUF writes tokenizer.json + tokenizer_config.json",
               f"exit {rc}: {err}; files {files}"):
        return
    left = [f for f in os.listdir(out) if ".tmp." in f]
    res(not left, "no temporary files left in OUT", str(left))

    data = os.path.join(ROOT, "data", "sample_chat.jsonl")
    rc1, e1, err1 = run([REPO, "eval", "--model", out, "--data", data])
    rc2, e2, err2 = run([REPO, "eval", "--model", out, "--data", data, "--tokenizer", gguf])
    res(rc1 == 0 and rc2 == 0 and e1 == e2 and e1.strip() != b"",
        "eval --model OUT on text pairs == eval --model OUT --tokenizer FILE.gguf",
        f"exit {rc1}/{rc2}: {err1} | {err2} | {e1[-200:]!r} vs {e2[-200:]!r}")

    ours_out = encode_cli(["repo", "encode", "--model", out], lines)
    ours_gguf = encode_cli(["repo", "encode", "--tokenizer", gguf], lines)
    res(ours_out == ours_gguf, f"repo encode --model OUT == --tokenizer FILE.gguf ({len(lines)} lines)",
        first_diff(ours_out, ours_gguf, lines))
    hf = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
    got = hf_ids(hf, lines)
    res(got == ours_gguf, "HF tokenizers on OUT/tokenizer.json == repo encode --tokenizer FILE.gguf",
        first_diff(got, ours_gguf, lines))
    res(sum(map(len, got)) > 40000 and any(1 in g for g in got) and any(2 in g for g in got),
        "the text is long and holds <|im_start|> / <|im_end|>", f"{sum(map(len, got))} ids")

    written = json.load(open(os.path.join(out, "tokenizer.json"), encoding="utf-8"))
    orig_path = os.path.join(VOCABS, "smollm2", "tokenizer.json")
    if os.path.exists(orig_path):
        orig = Tokenizer.from_file(orig_path)
        want = hf_ids(orig, lines)
        res(got == want, "OUT/tokenizer.json == SmolLM2's own tokenizer.json (HF, ids)", first_diff(got, want, lines))
        same_spelling(written, json.load(open(orig_path, encoding="utf-8")), "smollm2")
    else:
        print("skipped: SmolLM2's own tokenizer.json (run tests/tokenizer/fetch_vocabs.sh .cache/tokenizer-vocabs)")
    specials = {a["content"]: a for a in written["added_tokens"]}
    res(all(specials.get(s, {}).get("special") for s in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")),
        "control tokens are special added tokens", str(list(specials)[:5]))

    try:
        from transformers import AutoTokenizer
    except ImportError:
        print("skipped: transformers not installed")
        return
    cfg = json.load(open(os.path.join(out, "config.json")))
    at = AutoTokenizer.from_pretrained(out)
    res(at.eos_token == "<|im_end|>" and at.eos_token_id == cfg.get("eos_token_id") == 2 and
        at.bos_token == "<|im_start|>", "AutoTokenizer.from_pretrained(OUT): EOS <|im_end|> (config's id), BOS",
        f"{at.eos_token!r} {at.eos_token_id} {cfg.get('eos_token_id')} {at.bos_token!r}")
    sub = lines[::25]
    at_ids = [at.encode(s, add_special_tokens=False) for s in sub]
    want = ours_gguf[::25]
    res(at_ids == want, f"AutoTokenizer encodes as repo does ({len(sub)} lines)", first_diff(at_ids, want, sub))


def build_tok_cli(tmp):
    exe = os.path.join(tmp, "tok_cli")
    cc = os.environ.get("CC", "gcc")
    rc, _, err = run([cc, "-O2", "-o", exe, os.path.join(HERE, "tokenizer", "tok_cli.c"),
                      os.path.join(ROOT, "tokenizer.c"), os.path.join(ROOT, "io.c"), "-lpcre2-8", "-lcjson"])
    if not res(rc == 0, "build tok_cli", err):
        return None
    return exe


def check_written(tok_cli, name, src, original_json, lines, tmp):
    out = os.path.join(tmp, name)
    os.makedirs(out, exist_ok=True)
    rc, _, err = run([tok_cli, "write-json", src, out])
    if not res(rc == 0, f"{name}: write-json", err):
        return
    ours = encode_cli(["tok_cli", tok_cli, "encode", src], lines)
    got = hf_ids(Tokenizer.from_file(os.path.join(out, "tokenizer.json")), lines)
    res(got == ours, f"{name}: HF on the written tokenizer.json == our encoder", first_diff(got, ours, lines))
    want = hf_ids(Tokenizer.from_file(original_json), lines)
    res(got == want, f"{name}: written tokenizer.json == the original (HF, ids)", first_diff(got, want, lines))
    written = json.load(open(os.path.join(out, "tokenizer.json"), encoding="utf-8"))
    original = json.load(open(original_json, encoding="utf-8"))
    res(written["pre_tokenizer"] == original["pre_tokenizer"], f"{name}: pre_tokenizer spelled as the original",
        f"{json.dumps(written['pre_tokenizer'])} vs {json.dumps(original['pre_tokenizer'])}")
    rc, again, err = run([tok_cli, "info", out])
    rc0, first, _ = run([tok_cli, "info", src])
    res(rc == 0 and again == first, f"{name}: our loader reads the written files back (vocab, EOS)",
        f"{err} {again!r} vs {first!r}")


def main():
    lines = text_lines()
    with tempfile.TemporaryDirectory() as tmp:
        check_gguf(lines, tmp)
        tok_cli = build_tok_cli(tmp)
        if tok_cli:
            gpt2 = os.path.join(VOCABS, "gpt2")
            if not os.path.exists(os.path.join(gpt2, "merges.txt")):
                run(["bash", os.path.join(HERE, "tokenizer", "fetch_vocabs.sh"), VOCABS])
            if os.path.exists(os.path.join(gpt2, "merges.txt")) and os.path.exists(
                    os.path.join(VOCABS, "gpt2-json", "tokenizer.json")):
                check_written(tok_cli, "gpt2", gpt2, os.path.join(VOCABS, "gpt2-json", "tokenizer.json"), lines, tmp)
                import exact  # noqa: E402  (tests/tokenizer; trains the Llama-3-style vocabulary once)
                l3 = exact.llama3_synth(VOCABS, None)
                check_written(tok_cli, "llama3-style", l3, l3, lines, tmp)
            else:
                print("skipped: GPT-2 vocabulary (tests/tokenizer/fetch_vocabs.sh failed)")
    print(f"{npass} passed, {nfail} failed")
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
