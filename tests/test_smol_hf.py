#!/usr/bin/env python3
"""make smol's pieces against independent references.

    .venv/bin/python tests/test_smol_hf.py

With SmolLM2-135M-Instruct's Q4_1 GGUF (models/, else $SMOLLM2_GGUF, else fetched by
tests/gguf/fetch_smollm2.sh):
1. ./repo train --model FILE.gguf on data/smol/pairs.jsonl for 3 RePO steps, --out OUT; then
   LlamaForCausalLM.from_pretrained(OUT) in float32, decoding greedily, gives exactly the token ids
   of ./repo sample --model OUT --temperature 0 on the first 20 held-out prompts
   (data/smol/test_prompts.jsonl, up to 16 new tokens, stopping after <|im_end|>). A position where
   transformers' top two logits are within 1e-3 is a float32 tie: the comparison of that prompt
   ends there and the tie is printed (none is allowed to go unexplained).
2. The verifier (data/smol/smol score) gives the accuracy that this file's own rule gives on
   transformers' answers decoded by Hugging Face tokenizers (OUT/tokenizer.json): ended by
   <|im_end|>, 1..limit words, an accepted answer among its words (the answers are the task's
   data, from test_prompts.jsonl; the decoding, counting and matching are this file's).
3. Every shipped pair's chosen answer passes that rule and its rejected answer does not; the
   generator's held-out and training questions are disjoint, the shipped held-out prompts are
   distinct and held out, the pairs' questions are training questions.
Prints PASS/FAIL lines and "N passed, M failed"; exit status 1 on any failure.
"""
import json
import os
import re
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
try:  # the references; without them there is nothing to compare against
    import torch
    from tokenizers import Tokenizer
    from transformers import LlamaForCausalLM
except ImportError as e:
    print(f"skipped: {e.name} is not installed (bash tests/install_deps.sh test installs it)")
    print("0 passed, 0 failed")
    sys.exit(0)
import reference as R  # noqa: E402
from test_gguf_tokenizer import find_gguf  # noqa: E402

REPO, run, res = R.REPO, R.run, R.Tally()
SMOL = os.path.join(ROOT, "data", "smol")
VERIFIER = os.path.join(SMOL, "smol")
N_PROMPTS, MAX_NEW, TIE = 20, 16, 1e-3
LIMIT = re.compile(r"Answer in at most (\d+) words\.")


def n_words(text):
    """words as the task counts them: runs of non-space (C isspace) characters with an ASCII letter or digit"""
    return sum(1 for w in re.findall(r"[^ \t\n\v\f\r]+", text) if re.search(r"[A-Za-z0-9]", w))


def normalized(text):
    """lower-case ASCII letters and digits, one space apart (bytes: other characters only separate)"""
    return " ".join(w.decode() for w in re.findall(rb"[a-z0-9]+", text.encode().lower()))


def follows(tok, ids, prompt_ids, answers, end_of_turn):
    """the task's rule: the answer ended with <|im_end|>, has 1..limit words and holds an accepted answer"""
    if not ids or ids[-1] != end_of_turn:
        return False
    limit = int(LIMIT.search(tok.decode(prompt_ids, skip_special_tokens=False)).group(1))
    answer = tok.decode(ids[:-1], skip_special_tokens=False)
    padded = f" {normalized(answer)} "
    return 1 <= n_words(answer) <= limit and any(f" {a} " in padded for a in answers.split("|"))


def hf_greedy(model, prompt, eos):
    """-> (tokens, tie): argmax decoding with the key/value cache; stops at a float32 tie (top two within TIE)"""
    out, past = [], None
    x = torch.tensor([prompt])
    with torch.no_grad():
        for step in range(MAX_NEW):
            o = model(input_ids=x, past_key_values=past, use_cache=True)
            past, logits = o.past_key_values, o.logits[0, -1]
            top = torch.topk(logits, 2)
            if (top.values[0] - top.values[1]).item() < TIE:
                return out, (step, (top.values[0] - top.values[1]).item())
            tok = int(top.indices[0])
            out.append(tok)
            if tok == eos:
                break
            x = torch.tensor([[tok]])
    return out, None


def check_model(gguf, tmp):
    out = os.path.join(tmp, "model")
    rc, _, err = run([REPO, "train", "--model", gguf, "--data", os.path.join(SMOL, "pairs.jsonl"), "--out", out,
                      "--loss", "repo", "--gamma", "1.0", "--gamma-end", "0.2", "--lr", "2e-5", "--batch-pairs", "4",
                      "--steps", "3", "--warmup-steps", "1", "--no-progress", "--log", os.path.join(tmp, "log.jsonl")])
    if not res(rc == 0, "3 RePO steps from the GGUF on data/smol/pairs.jsonl, saved", err):
        return
    log = [json.loads(line) for line in open(os.path.join(tmp, "log.jsonl"))]
    res(all(s["grad_norm"] > 0 for s in log), "the steps had gradients (the saved model is not the GGUF's)",
        str([s["grad_norm"] for s in log]))
    prompts = os.path.join(tmp, "prompts.jsonl")
    with open(os.path.join(SMOL, "test_prompts.jsonl")) as f, open(prompts, "w") as g:
        g.writelines(f.readlines()[:N_PROMPTS])
    answers = [json.loads(line)["answers"] for line in open(prompts)]
    samples = os.path.join(tmp, "samples.jsonl")
    rc, _, err = run([REPO, "sample", "--model", out, "--prompts", prompts, "--temperature", "0",
                      "--max-new", str(MAX_NEW), "--out", samples])
    if not res(rc == 0, "./repo sample on the saved model", err):
        return
    rows = [json.loads(line) for line in open(samples)]
    cfg = json.load(open(os.path.join(out, "config.json")))
    model = LlamaForCausalLM.from_pretrained(out, torch_dtype=torch.float32).eval()
    eos = cfg["eos_token_id"]
    bad, ties, n_tokens, hf_answers = [], [], 0, []
    for i, row in enumerate(rows):
        ours = row["samples"][0]
        want, tie = hf_greedy(model, row["prompt_ids"], eos)
        hf_answers.append(want)
        if tie is not None:
            ties.append(f"prompt {i}: top two within {tie[1]:.2e} at new token {tie[0]}")
            ours = ours[:len(want)]
        if ours != want:
            bad.append(f"prompt {i}: ours {row['samples'][0]} vs transformers {want}")
        n_tokens += len(want)
    for t in ties:
        print(f"note: float32 tie, comparison of that prompt stops there: {t}")
    res(not bad and n_tokens > 0, f"transformers' greedy answers equal ./repo sample's on {len(rows)} held-out prompts "
        f"({n_tokens} tokens, {len(ties)} ties)", "; ".join(bad[:3]))

    # 2. the verifier against this file's word counting, on transformers' answers
    tok = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
    end_of_turn = tok.token_to_id("<|im_end|>")
    hf_samples = os.path.join(tmp, "hf_samples.jsonl")
    with open(hf_samples, "w") as f:
        for a, r in zip(hf_answers, rows):
            f.write(json.dumps({"prompt_ids": r["prompt_ids"], "samples": [a]}) + "\n")
    rc, score, err = run([VERIFIER, "score", "--samples", hf_samples, "--model", out])
    if not res(rc == 0, "smol score on transformers' answers", err):
        return
    m = re.search(r"greedy \(first sample\) accuracy ([0-9.]+)", score)
    ok = [follows(tok, a, r["prompt_ids"], ans, end_of_turn) for a, r, ans in zip(hf_answers, rows, answers)]
    want = sum(ok) / len(ok)
    res(m is not None and abs(float(m.group(1)) - want) < 1e-9,
        f"smol score's accuracy on transformers' answers equals this file's count ({sum(ok)} of {len(ok)})",
        f"{score.strip()} vs {want}")


def check_pairs(tmp):
    pairs = [json.loads(line) for line in open(os.path.join(SMOL, "pairs.jsonl"))]
    tok_file = os.path.join(tmp, "model", "tokenizer.json")
    if not res(os.path.exists(tok_file), "a tokenizer.json to check the shipped pairs with", "the training above failed"):
        return
    tok = Tokenizer.from_file(tok_file)
    end_of_turn = tok.token_to_id("<|im_end|>")
    wrong = []
    for p in pairs:
        prompt = tok.decode(p["prompt_ids"], skip_special_tokens=False)
        limit = int(LIMIT.search(prompt).group(1))
        if prompt != p["prompt_text"] or limit != p["limit"]:
            wrong.append(f"pair {p['id']}: prompt text or limit")
        if not follows(tok, p["chosen_ids"], p["prompt_ids"], p["answers"], end_of_turn) or \
                follows(tok, p["rejected_ids"], p["prompt_ids"], p["answers"], end_of_turn):
            wrong.append(f"pair {p['id']}: {p['chosen_text']!r} / {p['rejected_text']!r} (limit {limit})")
    res(pairs and not wrong, f"{len(pairs)} shipped pairs: every chosen answer keeps to its limit, every rejected one does not",
        "; ".join(wrong[:3]))
    question = lambda text: LIMIT.split(text)[0].strip()  # noqa: E731
    test = [json.loads(line)["prompt"] for line in open(os.path.join(SMOL, "test_prompts.jsonl"))]
    pair_questions = {question(p["prompt_text"].split("<|im_start|>user\n")[1]) for p in pairs}
    split = {}
    for name in ("train", "test"):
        rc, out, err = run([VERIFIER, "prompts", "--split", name, "--seed", "1"])
        split[name] = {question(json.loads(line)["prompt"]) for line in out.splitlines()}
    res(len(set(test)) == len(test) and {question(t) for t in test} <= split["test"],
        f"{len(test)} distinct held-out prompts, all from the held-out split")
    res(split["test"] and pair_questions <= split["train"] and not split["test"] & split["train"],
        f"the {len(split['test'])} held-out questions are none of the {len(split['train'])} training questions; "
        f"the pairs' {len(pair_questions)} questions are training questions", str(sorted(split["test"] & split["train"])[:3]))


def main():
    if not R.repo_built(res):
        return res.summary()
    if not os.access(VERIFIER, os.X_OK):
        res(False, "data/smol/smol built", "run make data/smol/smol")
        return res.summary()
    gguf = find_gguf()
    if not gguf:
        print("skipped: SmolLM2 GGUF (models/ empty and tests/gguf/fetch_smollm2.sh failed)")
        return res.summary()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="repo_smol_") as tmp:
        check_model(gguf, tmp)
        check_pairs(tmp)
    return res.summary()


if __name__ == "__main__":
    sys.exit(main())
