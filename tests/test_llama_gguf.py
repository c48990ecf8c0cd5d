#!/usr/bin/env python3
"""--model FILE.gguf: a Llama GGUF gives the same results as the Hugging Face checkpoint it came from.

    python tests/test_llama_gguf.py [GOLDEN_LLAMA_DIR]     (default tests/golden_llama)

For three golden cases (Llama untied GQA-2, tied GQA-3 with rope_theta 500000, Qwen2 with q/k/v
biases) the checkpoint is written as GGUF the way llama.cpp's convert_hf_to_gguf.py does (Llama's
attn_q / attn_k rows permuted, llama.* / qwen2.* metadata, no output.weight when tied), in F32 and
in F16, and
1. ./repo eval and ./repo sample on the GGUF print exactly what they print for the safetensors
   checkpoint holding the same values;
2. ./repo train --model FILE.gguf --out OUT writes exactly the model.safetensors that training
   from the checkpoint writes, plus a config.json with which LlamaForCausalLM.from_pretrained(OUT)
   loads every tensor and agrees with ./repo eval on OUT (1e-4 relative);
3. a GGUF with rope scaling is refused, naming it;
4. when SmolLM2-135M-Instruct's Q4_1 GGUF is at hand ($SMOLLM2_GGUF, default the cache of
   tests/gguf/fetch_smollm2.sh), ./repo eval on it agrees with transformers holding the gguf
   package's dequantization of the same file (otherwise a "skipped" line, not a PASS).
The binary: $REPO_GGUF_BIN if set, else ./repo (built with make).
Prints PASS/FAIL lines and "N passed, M failed"; exit status 1 on any failure.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import gguf  # noqa: E402
import reference as R  # noqa: E402
import llama_reference as LR  # noqa: E402
import test_llama_roundtrip as RT  # noqa: E402

res, run = R.Tally(), R.run


def permute(w, n_head):
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute"""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


GGUF_NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
              "lm_head.weight": "output.weight"}
BLOCK = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
         "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
         "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}


def gguf_name(hf):
    if hf in GGUF_NAMES:
        return GGUF_NAMES[hf]
    parts = hf.split(".")  # model.layers.N.<module...>.weight
    return f"blk.{parts[2]}.{BLOCK['.'.join(parts[3:-1])]}.{parts[-1]}"


def write_gguf(path, cfg, tensors, dtype, rope_scaling=None):
    arch = "qwen2" if cfg["model_type"] == "qwen2" else "llama"  # llama.cpp writes Mistral as llama
    w = gguf.GGUFWriter(path, arch)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_rope_dimension_count(cfg["hidden_size"] // cfg["num_attention_heads"])
    w.add_vocab_size(cfg["vocab_size"])
    w.add_eos_token_id(cfg["eos_token_id"])
    if rope_scaling:
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(2.0)
    for n, a in tensors.items():
        if arch == "qwen2":  # convert_hf_to_gguf.py permutes q / k rows for LlamaModel only
            pass
        elif n.endswith("q_proj.weight"):
            a = permute(a, cfg["num_attention_heads"])
        elif n.endswith("k_proj.weight"):
            a = permute(a, cfg["num_key_value_heads"])
        # llama.cpp keeps 1-D tensors (norms) in F32
        w.add_tensor(gguf_name(n), a.astype(np.float16 if dtype == "F16" and a.ndim == 2 else np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def check_case(repo, case_dir, tmp):
    name = os.path.basename(os.path.normpath(case_dir))
    cfg = json.load(open(os.path.join(case_dir, "model", "config.json")))
    tensors = {n: a for n, (_, a) in R.st_load(os.path.join(case_dir, "model", "model.safetensors")).items()}
    data = os.path.join(case_dir, "data.jsonl")
    args = open(os.path.join(case_dir, "args.txt")).read().split()
    for dtype in ("F32", "F16"):
        tag = f"{name} {dtype}"
        g = os.path.join(tmp, f"{name}_{dtype}.gguf")
        write_gguf(g, cfg, tensors, dtype)
        # the safetensors checkpoint with the same values (2-D tensors rounded to F16 like the GGUF)
        st_dir = os.path.join(tmp, f"{name}_{dtype}_st")
        os.makedirs(st_dir)
        with open(os.path.join(st_dir, "config.json"), "w") as f:
            json.dump(cfg, f)
        vals = [(n, a.astype(np.float16).astype(np.float32) if dtype == "F16" and a.ndim == 2 else a)
                for n, a in tensors.items()]
        R.st_save(os.path.join(st_dir, "model.safetensors"), vals)
        outs = []
        for m in (g, st_dir):
            rc, out, err = run([repo, "eval", "--model", m, "--data", data])
            if not res(rc == 0, f"{tag} eval --model {os.path.basename(m)}", err):
                return
            outs.append(out)
        res(outs[0] == outs[1], f"{tag} eval on the GGUF equals eval on the checkpoint", f"{outs[0]!r} vs {outs[1]!r}")
        samples = []
        for m in (g, st_dir):  # sampling (eos from tokenizer.ggml.eos_token_id vs config.json)
            rc, out, err = run([repo, "sample", "--model", m, "--prompts", data, "--n", "2", "--max-new", "20",
                                "--temperature", "0.7", "--seed", "3"])
            if not res(rc == 0, f"{tag} sample --model {os.path.basename(m)}", err):
                return
            samples.append(out)
        res(samples[0] == samples[1], f"{tag} sample on the GGUF equals sample on the checkpoint", "outputs differ")
        trained = []
        for m, o in ((g, g + "_out"), (st_dir, st_dir + "_out")):
            rc, _, err = run([repo, "train", "--model", m, "--data", data, "--out", o] + args)
            if not res(rc == 0, f"{tag} train --model {os.path.basename(m)}", err):
                return
            trained.append(open(os.path.join(o, "model.safetensors"), "rb").read())
        res(trained[0] == trained[1], f"{tag} training from the GGUF writes the same model.safetensors", "bytes differ")
    # the trained GGUF model loads in transformers (config.json written by ./repo) and agrees with eval
    out = g + "_out"
    ev = os.path.join(tmp, name + "_gguf_eval.jsonl")
    rc, _, err = run([repo, "eval", "--model", out, "--data", data, "--out", ev])
    if not res(rc == 0, f"{name} eval on the model trained from GGUF", err):
        return
    pairs = [(p["prompt_ids"], p["chosen_ids"], p["rejected_ids"]) for p in map(json.loads, open(data))]
    want, problems = RT.hf_logps(out, pairs)
    res(not problems, f"{name} from_pretrained loads the model trained from GGUF", "; ".join(map(str, problems[:4])))
    got = [json.loads(l) for l in open(ev)]
    bad = [f"pair {i}: {g_['chosen_logp']}, {g_['rejected_logp']} vs {wc}, {wr}" for i, ((wc, wr), g_) in
           enumerate(zip(want, got)) if not (abs(g_["chosen_logp"] - wc) <= 1e-4 * max(1, abs(wc)) and
                                             abs(g_["rejected_logp"] - wr) <= 1e-4 * max(1, abs(wr)))]
    res(not bad and len(got) == len(want), f"{name} transformers agrees with eval on it", "; ".join(bad[:3]))
    # rope scaling is refused
    bad_g = os.path.join(tmp, name + "_scaled.gguf")
    write_gguf(bad_g, cfg, tensors, "F32", rope_scaling=True)
    rc, _, err = run([repo, "eval", "--model", bad_g, "--data", data])
    res(rc != 0 and "rope scaling" in err and "linear" in err, f"{name} GGUF with rope scaling is refused", f"exit {rc}: {err}")


def check_smollm2(repo, path, tmp):
    """A real llama.cpp file (SmolLM2-135M-Instruct, Q4_1 + Q8_0, GQA 9/3, tied, rope_theta 1e5):
    ./repo eval on it against LlamaForCausalLM holding the gguf package's dequantization of the file,
    attn_q / attn_k un-permuted here, summed log-probs to 1e-4 relative."""
    r = gguf.GGUFReader(path)
    meta = {k: f.contents() for k, f in r.fields.items() if k.startswith("llama.")}
    cfg = {"model_type": "llama", "hidden_size": meta["llama.embedding_length"],
           "intermediate_size": meta["llama.feed_forward_length"], "num_hidden_layers": meta["llama.block_count"],
           "num_attention_heads": meta["llama.attention.head_count"],
           "num_key_value_heads": meta["llama.attention.head_count_kv"],
           "rms_norm_eps": meta["llama.attention.layer_norm_rms_epsilon"], "rope_theta": meta["llama.rope.freq_base"],
           "max_position_embeddings": meta["llama.context_length"], "vocab_size": meta["llama.vocab_size"],
           "tie_word_embeddings": True, "hidden_act": "silu"}
    hf_of = {gguf_name(n): n for n in LR.param_shapes(cfg)}
    params = {}
    for t in r.tensors:
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        n = hf_of[t.name]
        w = w.reshape(LR.param_shapes(cfg)[n])
        for suffix, heads in (("q_proj.weight", cfg["num_attention_heads"]), ("k_proj.weight", cfg["num_key_value_heads"])):
            if n.endswith(suffix):  # inverse of permute()
                w = w.reshape(heads, w.shape[0] // heads // 2, 2, w.shape[1]).swapaxes(1, 2).reshape(w.shape)
        params[n] = w
    rng = np.random.RandomState(7)
    pairs = [{"prompt_ids": rng.randint(0, cfg["vocab_size"], rng.randint(3, 12)).tolist(),
              "chosen_ids": rng.randint(0, cfg["vocab_size"], rng.randint(1, 10)).tolist(),
              "rejected_ids": rng.randint(0, cfg["vocab_size"], rng.randint(1, 10)).tolist()} for _ in range(4)]
    data, ev = os.path.join(tmp, "smollm2.jsonl"), os.path.join(tmp, "smollm2_eval.jsonl")
    R.write_jsonl(data, pairs)
    rc, _, err = run([repo, "eval", "--model", path, "--data", data, "--out", ev])
    if not res(rc == 0, "SmolLM2 GGUF eval", err):
        return
    model = LR.Model(cfg, params, torch.float64)
    bad = []
    with torch.no_grad():
        for i, (p, g) in enumerate(zip(pairs, map(json.loads, open(ev)))):
            for k, resp in (("chosen_logp", p["chosen_ids"]), ("rejected_logp", p["rejected_ids"])):
                want = R.seq_logp(model, p["prompt_ids"], resp)[0].item()
                if not abs(g[k] - want) <= 1e-4 * max(1.0, abs(want)):
                    bad.append(f"pair {i} {k}: {g[k]} vs {want}")
    res(not bad, "SmolLM2 GGUF eval matches transformers on the dequantized weights", "; ".join(bad[:3]))

    # sample: greedy answer to a simple question, as text (printed) and as ids against a float64
    # greedy decode of the same weights; the first 20 tokens must agree
    question = "What is the capital of France?"
    rc, out, err = run([repo, "sample", "--model", path, "--prompt", question, "--temperature", "0", "--max-new", "20"])
    if res(rc == 0, "SmolLM2 sample --prompt", err):
        print(f"  SmolLM2 answers {question!r}: {out.strip()!r}")
    pq = os.path.join(tmp, "question.jsonl")
    R.write_jsonl(pq, [{"prompt": question}])
    rc, out, err = run([repo, "sample", "--model", path, "--prompts", pq, "--temperature", "0", "--max-new", "20"])
    if not res(rc == 0, "SmolLM2 sample --prompts (chatml)", err):
        return
    line = json.loads(out)
    ids, ours = list(line["prompt_ids"]), line["samples"][0]
    want = []
    with torch.no_grad():
        for _ in range(len(ours)):
            nxt = int(model.forward(torch.tensor(ids + want))[-1].argmax())
            want.append(nxt)
    res(ours == want, f"SmolLM2 greedy tokens equal a float64 PyTorch greedy decode ({len(ours)} tokens)",
        f"ours {ours} vs {want}")


def main():
    golden = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "golden_llama")
    with tempfile.TemporaryDirectory(prefix="repo_llama_gguf_") as tmp:
        repo = os.environ.get("REPO_GGUF_BIN")
        if not repo:
            repo = os.path.join(ROOT, "repo")
            p = subprocess.run(["make", "-C", ROOT, "repo"], capture_output=True, text=True)
            res(p.returncode == 0, "build ./repo (make repo)", p.stderr[-500:])
        if os.access(repo, os.X_OK):
            for c in ("repo_l_gqa2", "dpo_l_gqa3", "dpo_qwen2"):
                check_case(repo, os.path.join(golden, c), tmp)
            smol = os.environ.get("SMOLLM2_GGUF", os.path.expanduser(
                "~/.cache/repo-tests/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
            if os.path.exists(smol):
                check_smollm2(repo, smol, tmp)
            else:
                print(f"skipped: the SmolLM2 GGUF check ({smol} absent; tests/gguf/fetch_smollm2.sh fetches it)")
    return res.summary()


if __name__ == "__main__":
    sys.exit(main())
