#!/usr/bin/env python3
"""Round trip through Hugging Face: a model trained and saved by ./repo must load with
GPT2LMHeadModel.from_pretrained, and ./repo eval must agree with transformers on it.

    python tests/test_hf_roundtrip.py [GOLDEN_CASE_DIR]     (default tests/golden/repo_s3)

1. ./repo train ... $(args.txt with --steps 2) --out OUT        (2 steps on one golden case)
2. ./repo eval --model OUT --data DATA --out EVAL.jsonl
3. GPT2LMHeadModel.from_pretrained(OUT) (nothing but the tied lm_head may be missing),
   summed response log-probs per pair in float64, compared with eval's chosen_logp / rejected_logp
   (<= 1e-4 relative), chosen_len / rejected_len (exact) and margin (= l_c - l_r, 1e-5 + 1e-4 |x|).
4. OUT's parameters against tests/reference.py trained for the same 2 steps (compare.c tolerances).
Prints PASS/FAIL lines and "N passed, M failed"; exit status 1 on any failure.
Without transformers, step 3 uses reference.py's plain GPT-2 forward (and says so).
"""
import json
import os
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference as R  # noqa: E402

REPO = R.REPO
res, run = R.Tally(), R.run


def main():
    case = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "golden", "repo_s3")
    name = os.path.basename(os.path.normpath(case))
    if not R.repo_built(res):
        return res.summary()
    args = open(os.path.join(case, "args.txt")).read().split()
    i = args.index("--steps")
    args[i + 1] = "2"
    data = os.path.join(case, "data.jsonl")
    with tempfile.TemporaryDirectory(prefix="repo_hf_roundtrip_") as tmp:
        out, ev = os.path.join(tmp, "out"), os.path.join(tmp, "eval.jsonl")
        rc, _, err = run([REPO, "train", "--model", os.path.join(case, "model"), "--data", data, "--out", out] + args)
        if not res(rc == 0, f"{name} train 2 steps", f"exit {rc}: {err}"):
            return res.summary()
        rc, _, err = run([REPO, "eval", "--model", out, "--data", data, "--out", ev])
        if not res(rc == 0, f"{name} eval", f"exit {rc}: {err}"):
            return res.summary()
        rows = [json.loads(l) for l in open(ev) if l.strip()]
        pairs = [json.loads(l) for l in open(data) if l.strip()]
        res(len(rows) == len(pairs), f"{name} eval lines", f"{len(rows)} lines for {len(pairs)} pairs")

        # --- load OUT with transformers
        if R.HAVE_HF:
            from transformers import GPT2LMHeadModel
            try:
                m, info = GPT2LMHeadModel.from_pretrained(out, output_loading_info=True)
            except Exception as e:  # noqa: BLE001
                res(False, f"{name} from_pretrained", repr(e))
                return res.summary()
            missing = [k for k in info["missing_keys"] if "lm_head" not in k and not k.endswith("attn.bias")
                       and not k.endswith("masked_bias")]
            res(not missing and not info["unexpected_keys"] and not info["mismatched_keys"],
                f"{name} from_pretrained", f"missing {missing} unexpected {info['unexpected_keys']} "
                f"mismatched {info['mismatched_keys']}")
            m = m.double().eval()
            fwd = lambda ids: m(ids[None]).logits[0]  # noqa: E731
            how = "transformers"
        else:
            cfg, P = R.load_model_params(out)
            Pt = {k: torch.tensor(v, dtype=torch.float64) for k, v in P.items()}
            fwd = lambda ids: R.plain_forward(Pt, cfg, ids)  # noqa: E731
            how = "plain forward (transformers not importable)"
        with open(os.path.join(out, "config.json")) as f:
            n_pos = json.load(f)["n_positions"]
        bad = []
        with torch.no_grad():
            for k, (p, row) in enumerate(zip(pairs, rows)):
                pr, c, r = R.truncate(p["prompt_ids"], p["chosen_ids"], p["rejected_ids"], n_pos, n_pos // 2)
                want = {}
                for side, resp in (("chosen", c), ("rejected", r)):
                    ids = torch.tensor(pr + resp)
                    lp = torch.log_softmax(fwd(ids)[:-1], -1).gather(1, ids[1:, None])[:, 0]
                    want[side + "_logp"] = lp[len(pr) - 1:].sum().item()
                    want[side + "_len"] = len(resp)
                want["margin"] = want["chosen_logp"] / len(c) - want["rejected_logp"] / len(r)
                for key, w in want.items():
                    got = row.get(key)
                    if got is None:
                        bad.append(f"pair {k} {key}: missing")
                    elif key.endswith("_len"):
                        if got != w:
                            bad.append(f"pair {k} {key}: {got} vs {w}")
                    elif key == "margin":
                        if not abs(got - w) <= 1e-5 + 1e-4 * abs(w):
                            bad.append(f"pair {k} margin: {got} vs {w}")
                    elif not abs(got - w) <= 1e-4 * abs(w):
                        bad.append(f"pair {k} {key}: {got} vs {w} (rel {abs(got - w) / abs(w):.2e})")
        res(not bad, f"{name} eval vs {how} ({len(rows)} pairs)", "; ".join(bad[:4]))

        # --- OUT's parameters vs the reference trained for the same 2 steps
        a = R.parse_args_str(" ".join(args))
        r = R.train(os.path.join(case, "model"), data, a, torch.float64)
        names = R.param_names(r["cfg"]["n_layer"])
        exp = os.path.join(tmp, "expected_params.safetensors")
        R.st_save(exp, [(n, r["final"][n]) for n in names])
        bad, worst = R.cmp_st(os.path.join(out, "model.safetensors"), exp, R.PARAM_RTOL,
                              os.path.join(case, "model", "model.safetensors"))
        res(not bad, f"{name} saved params vs reference (2 steps, worst {worst:.1e})", "; ".join(bad[:4]))
    return res.summary()


if __name__ == "__main__":
    sys.exit(main())
