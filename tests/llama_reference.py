#!/usr/bin/env python3
"""PyTorch reference for repo.c's Llama family (llama, mistral, qwen2) and its golden files.

    python tests/llama_reference.py gen OUTDIR          # write every case into OUTDIR/<case>/
    python tests/llama_reference.py check GOLDEN_DIR    # regenerate into a temp dir, compare

Same case format as tests/reference.py (GPT-2), so `tests/run_golden.sh tests/golden_llama`
checks ./repo against these files: model/config.json + model/model.safetensors, data.jsonl,
args.txt, expected_log.jsonl, expected_grads.safetensors (raw first-step gradients, named as
in the model file), expected_params.safetensors (after the last step).

The forward pass is transformers' LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM in
float64 (plain_forward for head_dim != hidden/heads, which 4.38 cannot build) (note: transformers 4.38 computes RoPE angles, RMSNorm and the attention softmax in
float32 even then, as repo.c does; the head is applied here so the logits stay float64). A plain-PyTorch float64 forward, written from the papers'
formulas (RMSNorm, rotate-half RoPE, GQA, SwiGLU), is checked against it on every case.
The losses, schedules, AdamW groups, batching, training loop, case building and validation, and the
gen / check commands are tests/reference.py's (its --fp32 / fp32-error diagnostics work here too).
Needs transformers (no fallback): run with .venv/bin/python (tests/install_deps.sh test makes it).
"""
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference as R  # noqa: E402
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,  # noqa: E402
                          Qwen2Config, Qwen2ForCausalLM)

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
NAME, CTX_KEY = "llama_reference.py", "max_position_embeddings"   # as a model family of reference.py
HF = {"llama": (LlamaConfig, LlamaForCausalLM), "mistral": (MistralConfig, MistralForCausalLM),
      "qwen2": (Qwen2Config, Qwen2ForCausalLM)}

# ----------------------------------------------------------------------------
# model: config, parameter names and shapes, HF and plain forwards


def head_dim(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def biases(cfg):
    """-> (q/k/v bias, o_proj bias, mlp bias) as each HF class builds them"""
    t = cfg["model_type"]
    if t == "qwen2":
        return True, False, False
    if t == "mistral":
        return False, False, False
    ab = bool(cfg.get("attention_bias", False))
    return ab, ab, bool(cfg.get("mlp_bias", False))


def param_shapes(cfg):
    """name -> shape, in LlamaForCausalLM.named_parameters() order"""
    V, C, L, H = cfg["vocab_size"], cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
    NH, hd = cfg["num_attention_heads"], head_dim(cfg)
    NKV = cfg.get("num_key_value_heads") or NH
    qkvb, ob, mb = biases(cfg)
    sh = {"model.embed_tokens.weight": (V, C)}
    for i in range(L):
        p = f"model.layers.{i}."
        for n, rows in (("q_proj", NH * hd), ("k_proj", NKV * hd), ("v_proj", NKV * hd)):
            sh[p + f"self_attn.{n}.weight"] = (rows, C)
            if qkvb:
                sh[p + f"self_attn.{n}.bias"] = (rows,)
        sh[p + "self_attn.o_proj.weight"] = (C, NH * hd)
        if ob:
            sh[p + "self_attn.o_proj.bias"] = (C,)
        for n, shape in (("gate_proj", (H, C)), ("up_proj", (H, C)), ("down_proj", (C, H))):
            sh[p + f"mlp.{n}.weight"] = shape
            if mb:
                sh[p + f"mlp.{n}.bias"] = shape[:1]
        sh[p + "input_layernorm.weight"] = (C,)
        sh[p + "post_attention_layernorm.weight"] = (C,)
    sh["model.norm.weight"] = (C,)
    if not cfg.get("tie_word_embeddings", False):
        sh["lm_head.weight"] = (V, C)
    return sh


def load_model_params(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    raw = R.st_load(os.path.join(model_dir, "model.safetensors"))
    out = {}
    for n, shape in param_shapes(cfg).items():
        assert n in raw, f"{model_dir}: missing {n}"
        assert tuple(raw[n][1].shape) == tuple(shape), (n, raw[n][1].shape, shape)
        out[n] = raw[n][1].astype(np.float32)
    return cfg, out


def hf_model(cfg, np_params, dtype):
    ccls, mcls = HF[cfg["model_type"]]
    hcfg = ccls(**{k: v for k, v in cfg.items() if k not in ("architectures", "model_type")})
    m = mcls(hcfg)
    sd = {n: torch.from_numpy(a.copy()) for n, a in np_params.items()}
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert all(k == "lm_head.weight" and hcfg.tie_word_embeddings for k in missing), missing
    m = m.to(dtype)
    m.train()  # attention_dropout is 0
    return m


class Model:
    """The trainable parameters in named_parameters() order and forward(ids) -> logits [T, V]"""

    def __init__(self, cfg, np_params, dtype):
        self.hf, self.dtype = hf_model(cfg, np_params, dtype), dtype
        named = dict(self.hf.named_parameters())
        self.names = list(param_shapes(cfg))
        assert set(named) == set(self.names), set(named) ^ set(self.names)
        if cfg.get("tie_word_embeddings", False):
            assert self.hf.lm_head.weight is self.hf.model.embed_tokens.weight
        self.params = [named[n] for n in self.names]

    def forward(self, ids):
        # the head applied here, not by the HF forward: LlamaForCausalLM casts its logits to float32.
        # Mistral's / Qwen2's 4.38 mask builder fills a default-dtype tensor with finfo(float64).min
        prev = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)
        try:
            return self.hf.lm_head(self.hf.model(ids[None]).last_hidden_state)[0]
        finally:
            torch.set_default_dtype(prev)


class PlainModel:
    """Model's interface over plain_forward: for head_dim != hidden/heads, which transformers 4.38 cannot build"""

    def __init__(self, cfg, np_params, dtype):
        self.cfg, self.names = cfg, list(param_shapes(cfg))
        self.P = {n: torch.tensor(np_params[n], dtype=dtype, requires_grad=True) for n in self.names}
        self.params = [self.P[n] for n in self.names]

    def forward(self, ids):
        return plain_forward(self.P, self.cfg, ids)


def needs_plain(cfg):
    return head_dim(cfg) * cfg["num_attention_heads"] != cfg["hidden_size"]


def make_model(cfg, np_params, dtype):
    return (PlainModel if needs_plain(cfg) else Model)(cfg, np_params, dtype)


def plain_forward(P, cfg, ids):
    """Llama from the formulas, float64 throughout. P: name -> tensor; ids: LongTensor [T]"""
    C, NH, hd, eps = cfg["hidden_size"], cfg["num_attention_heads"], head_dim(cfg), cfg["rms_norm_eps"]
    NKV = cfg.get("num_key_value_heads") or NH
    T = ids.shape[0]
    theta = cfg.get("rope_theta", 10000.0)
    inv_freq = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]       # [T, hd/2]
    cos, sin = ang.cos().repeat(1, 2), ang.sin().repeat(1, 2)                      # emb = cat(freqs, freqs)

    def rms(x, w):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w

    def rope(x):  # x [heads, T, hd]
        x1, x2 = x[..., :hd // 2], x[..., hd // 2:]
        return x * cos + torch.cat((-x2, x1), -1) * sin

    def lin(x, n):
        y = x @ P[n + ".weight"].t()
        return y + P[n + ".bias"] if n + ".bias" in P else y

    x = P["model.embed_tokens.weight"][ids]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms(x, P[p + "input_layernorm.weight"])
        q = rope(lin(h, p + "self_attn.q_proj").view(T, NH, hd).transpose(0, 1))
        k = rope(lin(h, p + "self_attn.k_proj").view(T, NKV, hd).transpose(0, 1))
        v = lin(h, p + "self_attn.v_proj").view(T, NKV, hd).transpose(0, 1)
        k, v = k.repeat_interleave(NH // NKV, 0), v.repeat_interleave(NH // NKV, 0)  # query head h reads kv head h // group
        att = (q @ k.transpose(-1, -2) / math.sqrt(hd)).masked_fill(~mask, float("-inf")).softmax(-1)
        x = x + lin((att @ v).transpose(0, 1).reshape(T, NH * hd), p + "self_attn.o_proj")
        h = rms(x, P[p + "post_attention_layernorm.weight"])
        g = lin(h, p + "mlp.gate_proj")
        x = x + lin(g * torch.sigmoid(g) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = rms(x, P["model.norm.weight"])
    return x @ P.get("lm_head.weight", P["model.embed_tokens.weight"]).t()


def check_plain_vs_hf(cfg, np_params, seqs):
    if needs_plain(cfg):
        return
    m = Model(cfg, np_params, torch.float64)
    P = {n: torch.tensor(a, dtype=torch.float64) for n, a in np_params.items()}
    with torch.no_grad():
        for s in seqs:
            ids = torch.tensor(s, dtype=torch.long)
            err = (m.forward(ids) - plain_forward(P, cfg, ids)).abs().max().item()
            # HF keeps RoPE angles, RMSNorm and softmax in float32: agreement is ~1e-6, not 1e-12
            assert err <= 1e-5, f"plain Llama forward differs from transformers by {err}"


# ----------------------------------------------------------------------------
# training: tests/reference.py's loop over this model

def train(model_dir, data_path, a, dtype=torch.float64):
    cfg, np0 = load_model_params(model_dir)
    data, _ = R.read_pairs(data_path, a, min(512, cfg["max_position_embeddings"]))
    r = R.fit(make_model(cfg, np0, dtype), data, a)
    del r["pair_stats"]  # R.validate keeps to its margin checks for this family
    return dict(r, cfg=cfg)


float32_conditioning = None  # R.build_case's float32 re-run is not applied to this family


# ----------------------------------------------------------------------------
# cases

SHAPES = {
    # name: model_type, layers, hidden, heads, kv heads, intermediate, vocab, positions, eps, rope_theta, tied, extra
    "l_gqa2": ("llama", 2, 16, 4, 2, 24, 61, 48, 1e-6, 10000.0, False, {}),             # 2 q heads per kv head
    "l_gqa3": ("llama", 2, 24, 6, 2, 40, 73, 48, 1e-5, 500000.0, True, {}),             # 3 per kv head, tied
    "l_mha5": ("llama", 1, 20, 5, 5, 32, 53, 32, 1e-6, 10000.0, False, {}),             # odd head count, hd 4
    # 3 heads, 1 kv head, q/k/v/o biases. A k bias's components along RoPE's slowest pair barely rotate, so
    # their true gradient is nearly zero (softmax ignores a constant q.b_k), and Adam scales float32 noise
    # there up to lr-sized steps: theta 10000, not 500000, keeps those gradients above the noise
    "l_bias3": ("llama", 2, 18, 3, 1, 28, 67, 48, 1e-6, 10000.0, True, {"attention_bias": True}),
    # head_dim 6 with 4 heads: attention width 24 != hidden 16 (newer transformers; 4.38 cannot, so the
    # reference for this shape is plain_forward, which is checked against transformers on the others)
    "l_hd6": ("llama", 2, 16, 4, 2, 24, 61, 48, 1e-6, 10000.0, False, {"head_dim": 6}),
    "qwen2": ("qwen2", 2, 16, 4, 2, 24, 59, 48, 1e-6, 10000.0, False, {}),              # q/k/v biases
    "mistral": ("mistral", 2, 16, 4, 1, 24, 57, 48, 1e-5, 10000.0, True, {}),           # sliding_window null
    "l_long": ("llama", 2, 36, 3, 1, 48, 67, 320, 1e-6, 10000.0, False, {}),           # long sequences, hd 12, GQA 3
}

CASES = [
    dict(name="repo_l_gqa2", shape="l_gqa2", data=dict(n=8, plen=(1, 6), rlen=(1, 6), one_tok=True),
         args=dict(loss="repo", gamma=1.0, batch_pairs=4, grad_clip="on")),
    dict(name="repo_l_gqa3_partial", shape="l_gqa3", data=dict(n=6, plen=(2, 7), rlen=(1, 7)),
         args=dict(loss="repo", gamma="auto_partial", gamma_schedule="linear", lr_schedule="cosine",
                   warmup_steps=1, batch_pairs=6, grad_clip="on")),
    dict(name="repo_l_headdim6", shape="l_hd6", data=dict(n=6, plen=(1, 6), rlen=(1, 6)),
         args=dict(loss="repo", gamma=1.0, batch_pairs=3, grad_clip="on")),
    dict(name="simpo_l_mha5", shape="l_mha5", data=dict(n=6, plen=(1, 5), rlen=(1, 5)),
         args=dict(loss="simpo", gamma=0.5, beta=2.0, batch_pairs=3, grad_clip="on")),
    dict(name="simpo_l_bias3_micro", shape="l_bias3", data=dict(n=5, plen=(2, 6), rlen=(1, 6)),
         args=dict(loss="simpo", gamma=0.8, beta=2.5, batch_pairs=5, micro_batch_pairs=2, grad_clip="on")),
    dict(name="dpo_l_gqa3", shape="l_gqa3", dtype="BF16", data=dict(n=6, plen=(1, 5), rlen=(1, 5)),
         args=dict(loss="dpo", beta=0.5, batch_pairs=3, grad_clip="on")),
    dict(name="dpo_qwen2", shape="qwen2", data=dict(n=4, plen=(2, 7), rlen=(1, 7), one_tok=True),
         args=dict(loss="dpo", beta=0.1, batch_pairs=4, grad_clip="on")),
    dict(name="ipo_l_gqa2", shape="l_gqa2", dtype="F16", data=dict(n=4, plen=(1, 6), rlen=(1, 7)),
         args=dict(loss="ipo", beta=2.0, batch_pairs=4, grad_clip="on")),
    dict(name="ipo_mistral", shape="mistral", data=dict(n=6, plen=(1, 5), rlen=(1, 5)),
         args=dict(loss="ipo", beta=0.5, batch_pairs=3, grad_clip="on")),
    dict(name="sft_l_bias3", shape="l_bias3", data=dict(n=6, plen=(1, 5), rlen=(1, 5), one_tok=True),
         args=dict(loss="sft", batch_pairs=3, grad_clip="on", lr_schedule="linear", warmup_steps=1)),
    dict(name="sft_qwen2_trunc", shape="qwen2", data=dict(n=6, plen=(1, 9), rlen=(1, 9), long=True),
         args=dict(loss="sft", batch_pairs=3, max_len=10, grad_clip="on")),
    # sequences of 230-315 tokens (odd lengths, one-token responses) over several attention tiles, 3 query
    # heads per kv head, one pair of the first batch filtered (its sequences skip the attention backward)
    dict(name="repo_l_long_gqa3_partial", shape="l_long", data=dict(n=6, plen=(230, 290), rlen=(1, 25), one_tok=True),
         args=dict(loss="repo", gamma="auto_partial", batch_pairs=3, steps=2, grad_clip="on")),
]


def make_config(shape):
    t, L, C, NH, NKV, H, V, P, eps, theta, tied, extra = SHAPES[shape]
    arch = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM"}[t]
    cfg = {"architectures": [arch], "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
           "hidden_act": "silu", "hidden_size": C, "initializer_range": 0.02, "intermediate_size": H,
           "max_position_embeddings": P, "model_type": t, "num_attention_heads": NH,
           "num_hidden_layers": L, "num_key_value_heads": NKV, "rms_norm_eps": eps, "rope_theta": theta,
           "tie_word_embeddings": tied, "torch_dtype": "float32", "use_cache": True, "vocab_size": V}
    if t == "llama":
        cfg.update(attention_bias=False, pretraining_tp=1, rope_scaling=None)
    if t == "mistral":
        cfg["sliding_window"] = None
    if t == "qwen2":
        cfg.update(use_sliding_window=False, sliding_window=4096, max_window_layers=L)
    cfg.update(extra)
    return cfg


def make_weights(cfg, seed):
    """HF-like layout, larger std than HF's init so margins are O(0.1-1)."""
    def init(n):
        if n.endswith("embed_tokens.weight") or n == "lm_head.weight":
            return 0.0, 0.3
        if n.endswith("norm.weight"):
            return 1.0, 0.1
        return (0.0, 0.05) if n.endswith("bias") else (0.0, 0.15)
    return R.random_weights(param_shapes(cfg), seed, init)


def write_model(d, cfg, w, case):
    R.write_model_dir(d, cfg, list(w.items()), case.get("dtype", "F32"))


def tensor_names(cfg):
    return list(param_shapes(cfg))


def hand_checks(case, a, r, mdir):
    l0 = r["log"][0]
    R.check_step1_losses(a, l0)
    # step-1 chosen log-probs by HF's own labels loss (prompt labels -100; computed from float32 logits)
    cfg, np0 = load_model_params(mdir)
    if needs_plain(cfg):
        return
    m = Model(cfg, np0, torch.float64)
    lc = []
    with torch.no_grad():
        for i in R.batch_indices(0, len(r["data"]), a["batch_pairs"]):
            pr, c, _ = r["data"][i]
            ids = torch.tensor([pr + c])
            labels = ids.clone()
            labels[0, :len(pr)] = -100
            prev = torch.get_default_dtype()
            torch.set_default_dtype(torch.float64)  # see Model.forward
            try:
                lc.append(-m.hf(ids, labels=labels).loss.item())
            finally:
                torch.set_default_dtype(prev)
    assert abs(np.mean(lc) - l0["chosen_logp"]) < 1e-5, (np.mean(lc), l0["chosen_logp"])


if __name__ == "__main__":
    sys.exit(R.main(sys.argv[1:], sys.modules[__name__]))
