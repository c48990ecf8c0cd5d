#!/usr/bin/env python3
"""Llama-family inputs ./repo must refuse with a one-line error naming the problem (stdlib only).

    python3 tests/test_llama_errors.py      (REPO=./repo_noomp ... for another binary)

Each case edits a copy of a golden Llama model (config.json or the files) and expects a non-zero
exit whose last stderr line contains the given text. Prints PASS/FAIL lines and
"N passed, M failed"; exit status 1 on any failure.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.environ.get("REPO", os.path.join(os.path.dirname(HERE), "repo"))
GOLDEN = os.path.join(HERE, "golden_llama")
npass = nfail = 0


def res(ok, what, detail=""):
    global npass, nfail
    npass, nfail = npass + bool(ok), nfail + (not ok)
    print(f"PASS {what}" if ok else f"FAIL {what}: {detail}")


def expect_error(what, want, args):
    p = subprocess.run([REPO] + args, capture_output=True, text=True)
    last = (p.stderr.strip().splitlines() or [""])[-1]
    res(p.returncode != 0 and want in last and last.startswith("repo: error: "), what,
        f"exit {p.returncode}, stderr: {last!r}, wanted {want!r}")


def model_copy(tmp, case, name, config_change=None):
    d = os.path.join(tmp, name)
    shutil.copytree(os.path.join(GOLDEN, case, "model"), d)
    if config_change:
        cfg = json.load(open(os.path.join(d, "config.json")))
        cfg.update(config_change)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f)
    return d


def main():
    data = os.path.join(GOLDEN, "repo_l_gqa2", "data.jsonl")
    with tempfile.TemporaryDirectory(prefix="repo_llama_errors_") as tmp:
        ev = lambda d, *extra: ["eval", "--model", d, "--data", data] + list(extra)  # noqa: E731
        for what, change, want in [
            ("rope_scaling linear", {"rope_scaling": {"type": "linear", "factor": 2.0}}, 'rope_scaling "linear" is not supported'),
            ("rope_scaling llama3", {"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, 'rope_scaling "llama3" is not supported'),
            ("unknown model_type", {"model_type": "gemma"}, 'model_type "gemma" is not supported'),
            ("hidden_act", {"hidden_act": "gelu"}, 'hidden_act "gelu" is not supported'),
            ("kv heads do not divide heads", {"num_key_value_heads": 3}, "is not a multiple of num_key_value_heads 3"),
            ("odd head_dim", {"head_dim": 5}, "head_dim 5 must be positive and even"),
            ("missing hidden_size", {"hidden_size": None}, 'missing "hidden_size"'),
        ]:
            expect_error(f"config: {what}", want, ev(model_copy(tmp, "repo_l_gqa2", what.replace(" ", "_"), change)))
        d = model_copy(tmp, "ipo_mistral", "window", {"sliding_window": 16})
        expect_error("mistral sliding_window shorter than --max-len", "exceeds the model's sliding_window 16",
                     ev(d, "--max-len", "32"))
        d = model_copy(tmp, "repo_l_gqa2", "tied_missing_head", {"tie_word_embeddings": True})
        p = subprocess.run([REPO] + ev(d), capture_output=True, text=True)
        res(p.returncode == 0 and "ignoring unexpected tensor lm_head.weight" not in p.stderr,
            "tied config ignores a stored lm_head.weight", p.stderr.strip()[-200:])
        d = model_copy(tmp, "dpo_l_gqa3", "untied_no_head", {"tie_word_embeddings": False})
        expect_error("untied config without lm_head.weight", "tensor lm_head.weight is missing", ev(d))
        d = model_copy(tmp, "repo_l_gqa2", "no_weights")
        os.remove(os.path.join(d, "model.safetensors"))
        expect_error("no weights file", "neither model.safetensors nor model.safetensors.index.json", ev(d))
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors"}}, f)
        expect_error("index naming a missing shard", "shard", ev(d))
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"weight_map": {"model.embed_tokens.weight": "../model.safetensors"}}, f)
        expect_error("index naming a path outside the directory", "is not a file name", ev(d))
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            f.write("{}")
        expect_error("index without weight_map", 'needs a "weight_map" object', ev(d))
    print(f"{npass} passed, {nfail} failed")
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
