#!/usr/bin/env python3
"""Llama-family round trips through Hugging Face, and sharded checkpoints.

    python tests/test_llama_roundtrip.py [GOLDEN_LLAMA_DIR]     (default tests/golden_llama)

For each of a few golden cases (untied/tied heads, Llama with biases, Qwen2, Mistral):
1. ./repo train ... $(args.txt with --steps 2) --out OUT
2. ./repo eval --model OUT --data DATA --out EVAL.jsonl
3. <Arch>ForCausalLM.from_pretrained(OUT): no missing or unexpected tensors (a tied head may be
   absent), and its summed response log-probs per pair (float64) match eval's chosen_logp /
   rejected_logp to 1e-4 relative.
Then, sharded checkpoints: the case's model split into two shards + model.safetensors.index.json
(BF16 in one shard) must give exactly the eval output of the same tensors in one file; an index
that puts a tensor in the wrong shard must be refused naming the index.
And ./repo init on a Llama config.json must write a model that from_pretrained loads completely.
Prints PASS/FAIL lines and "N passed, M failed"; exit status 1 on any failure.
"""
import json
import os
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference as R  # noqa: E402
import llama_reference as LR  # noqa: E402

REPO = R.REPO
CASES = ["repo_l_gqa2", "dpo_l_gqa3", "simpo_l_bias3_micro", "dpo_qwen2", "ipo_mistral"]
res, run = R.Tally(), R.run


def hf_logps(model_dir, pairs):
    """summed response log-probs per pair under from_pretrained(model_dir), float64"""
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    mcls = LR.HF[cfg["model_type"]][1]
    m, info = mcls.from_pretrained(model_dir, output_loading_info=True, torch_dtype=torch.float64)
    missing = [k for k in info["missing_keys"] if not (k == "lm_head.weight" and cfg.get("tie_word_embeddings"))]
    problems = missing + info["unexpected_keys"] + info["mismatched_keys"] + info["error_msgs"]
    m.eval()
    out = []
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # see llama_reference.Model.forward
    try:
        with torch.no_grad():
            for pr, c, r in pairs:
                s = []
                for resp in (c, r):
                    ids = torch.tensor(pr + resp)
                    h = m.model(ids[None]).last_hidden_state
                    lp = torch.log_softmax(m.lm_head(h)[0, :-1], -1).gather(1, ids[1:, None])[:, 0]
                    s.append(lp[len(pr) - 1:].sum().item())
                out.append(s)
    finally:
        torch.set_default_dtype(prev)
    return out, problems


def roundtrip(case_dir, tmp):
    name = os.path.basename(os.path.normpath(case_dir))
    args = open(os.path.join(case_dir, "args.txt")).read().split()
    args[args.index("--steps") + 1] = "2"
    data = os.path.join(case_dir, "data.jsonl")
    out, ev = os.path.join(tmp, name + "_out"), os.path.join(tmp, name + "_eval.jsonl")
    rc, _, err = run([REPO, "train", "--model", os.path.join(case_dir, "model"), "--data", data, "--out", out] + args)
    if not res(rc == 0, f"{name} train --out", err):
        return
    a = R.parse_args_str(" ".join(args))
    ml = ["--max-len", str(a["max_len"])] if a["max_len"] else []
    rc, _, err = run([REPO, "eval", "--model", out, "--data", data, "--out", ev] + ml)
    if not res(rc == 0, f"{name} eval", err):
        return
    cfg = json.load(open(os.path.join(out, "config.json")))
    max_len = a["max_len"] or min(512, cfg["max_position_embeddings"])
    mpl = a["max_prompt_len"] or max_len // 2
    pairs = [R.truncate(p["prompt_ids"], p["chosen_ids"], p["rejected_ids"], max_len, mpl)
             for p in map(json.loads, open(data))]
    want, problems = hf_logps(out, pairs)
    res(not problems, f"{name} from_pretrained loads every tensor", "; ".join(map(str, problems[:4])))
    got = [json.loads(l) for l in open(ev)]
    bad = []
    for i, ((wc, wr), g) in enumerate(zip(want, got)):
        for k, w in (("chosen_logp", wc), ("rejected_logp", wr)):
            if not abs(g[k] - w) <= 1e-4 * max(1.0, abs(w)):
                bad.append(f"pair {i} {k} {g[k]} vs transformers {w}")
    if len(got) != len(want):
        bad.append(f"{len(got)} eval lines for {len(want)} pairs")
    res(not bad, f"{name} eval matches transformers on the trained model", "; ".join(bad[:3]))


def sharded(case_dir, tmp):
    name = os.path.basename(os.path.normpath(case_dir))
    src = os.path.join(case_dir, "model")
    tensors = R.st_load(os.path.join(src, "model.safetensors"))
    names = list(tensors)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    single, split = os.path.join(tmp, name + "_single"), os.path.join(tmp, name + "_sharded")
    for d in (single, split):
        os.makedirs(d)
        with open(os.path.join(d, "config.json"), "w") as f:
            f.write(open(os.path.join(src, "config.json")).read())
    # the same values both ways: shard 1 stored as BF16, so round the single file's copy to BF16 too
    bf = lambda a: (torch.from_numpy(a.copy()).to(torch.bfloat16).to(torch.float32).numpy())  # noqa: E731
    vals = {n: (bf(tensors[n][1]) if n in shards["model-00001-of-00002.safetensors"] else tensors[n][1]) for n in names}
    R.st_save(os.path.join(single, "model.safetensors"), [(n, vals[n]) for n in names])
    for i, (fn, ns) in enumerate(shards.items()):
        R.st_save(os.path.join(split, fn), [(n, tensors[n][1]) for n in ns], "BF16" if i == 0 else "F32")
    index = {"metadata": {"total_size": 0}, "weight_map": {n: fn for fn, ns in shards.items() for n in ns}}
    with open(os.path.join(split, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
    data = os.path.join(case_dir, "data.jsonl")
    outs = []
    for d in (single, split):
        ev = d + "_eval.jsonl"
        rc, _, err = run([REPO, "eval", "--model", d, "--data", data, "--out", ev])
        if not res(rc == 0, f"{name} eval on {os.path.basename(d)}", err):
            return
        outs.append(open(ev).read())
    res(outs[0] == outs[1], f"{name} sharded checkpoint gives the single file's results", "eval outputs differ")
    # a tensor the index places in the wrong shard
    index["weight_map"][names[0]] = "model-00002-of-00002.safetensors"
    with open(os.path.join(split, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f)
    rc, _, err = run([REPO, "eval", "--model", split, "--data", data])
    res(rc != 0 and "model.safetensors.index.json" in err and names[0] in err,
        f"{name} index naming the wrong shard is refused", f"exit {rc}: {err}")


def init_loads(tmp):
    cfg = LR.make_config("l_gqa2")
    path = os.path.join(tmp, "init_config.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    out = os.path.join(tmp, "init_model")
    rc, _, err = run([REPO, "init", "--config", path, "--out", out])
    if not res(rc == 0, "init a Llama model", err):
        return
    _, problems = hf_logps(out, [([1, 2], [3], [4])])
    res(not problems, "init's Llama model loads in transformers completely", "; ".join(map(str, problems[:4])))


def main():
    golden = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "golden_llama")
    if R.repo_built(res):
        with tempfile.TemporaryDirectory(prefix="repo_llama_roundtrip_") as tmp:
            for c in CASES:
                roundtrip(os.path.join(golden, c), tmp)
            sharded(os.path.join(golden, "repo_l_gqa2"), tmp)
            init_loads(tmp)
    return res.summary()


if __name__ == "__main__":
    sys.exit(main())
