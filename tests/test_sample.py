#!/usr/bin/env python3
"""./repo sample (prompt forward + key/value-cache decoding) against greedy decoding in PyTorch.

    python tests/test_sample.py

On golden models (GPT-2 from tests/golden, Llama / Qwen2 / Mistral from tests/golden_llama):
./repo sample --temperature 0 --n 2 --max-new 12 must produce, for every prompt, the tokens that
argmax over the full float64 forward (transformers) produces one step at a time, stopping after
eos_token_id. Steps where the reference's top two logits are within 1e-4 (a float32 tie) end the
comparison for that prompt. The two samples per prompt must be identical (greedy).
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
CASES = ["golden/repo_s3", "golden/repo_micro", "golden_llama/repo_l_gqa2", "golden_llama/dpo_l_gqa3",
         "golden_llama/simpo_l_bias3_micro", "golden_llama/dpo_qwen2", "golden_llama/ipo_mistral"]
MAX_NEW = 12
res = R.Tally()


def reference_model(model_dir):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    if cfg["model_type"] == "gpt2":
        cfg, P = R.load_model_params(model_dir)
        return cfg, R.Model(cfg, P, torch.float64)
    cfg, P = LR.load_model_params(model_dir)
    return cfg, LR.Model(cfg, P, torch.float64)


def greedy(model, prompt, eos):
    """-> (tokens, reliable): argmax decoding; reliable False once the top two are within 1e-4"""
    ids, out = list(prompt), []
    with torch.no_grad():
        for _ in range(MAX_NEW):
            logits = model.forward(torch.tensor(ids))[-1]
            top = torch.topk(logits, 2)
            if (top.values[0] - top.values[1]).item() < 1e-4:
                return out, False
            tok = int(top.indices[0])
            out.append(tok)
            ids.append(tok)
            if tok == eos:
                break
    return out, True


def main():
    built = R.repo_built(res)
    with tempfile.TemporaryDirectory(prefix="repo_sample_") as tmp:
        for case in CASES if built else []:
            d = os.path.join(HERE, case)
            name = os.path.basename(case)
            out = os.path.join(tmp, name + ".jsonl")
            rc, _, err = R.run([REPO, "sample", "--model", os.path.join(d, "model"), "--prompts",
                                os.path.join(d, "data.jsonl"), "--n", "2", "--max-new", str(MAX_NEW),
                                "--temperature", "0", "--out", out])
            if rc != 0:
                res(False, f"{name} sample", err)
                continue
            cfg, model = reference_model(os.path.join(d, "model"))
            eos = cfg.get("eos_token_id", -1)
            bad, n_tokens = [], 0
            for i, line in enumerate(open(out)):
                row = json.loads(line)
                got = row["samples"]
                if got[0] != got[1]:
                    bad.append(f"prompt {i}: greedy samples differ")
                want, reliable = greedy(model, row["prompt_ids"], eos)
                cmp = got[0][:len(want)] if not reliable else got[0]
                if cmp != want:
                    bad.append(f"prompt {i}: {got[0]} vs {want}")
                n_tokens += len(want)
            res(not bad and n_tokens > 0, f"{name} greedy samples ({n_tokens} tokens) match the float64 reference",
                "; ".join(bad[:3]))
    return res.summary()


if __name__ == "__main__":
    sys.exit(main())
