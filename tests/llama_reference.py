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
The losses, schedules, AdamW groups, batching and the case validation are tests/reference.py's.
Needs transformers (no fallback): run with /opt/refenv/bin/python or .venv/bin/python.
"""
import json
import math
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference as R  # noqa: E402
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,  # noqa: E402
                          Qwen2Config, Qwen2ForCausalLM)

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
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

def seq_logp(model, prompt, resp):
    ids = torch.tensor(prompt + resp, dtype=torch.long)
    lp = torch.log_softmax(model.forward(ids)[:-1], dim=-1)
    tok = lp.gather(1, ids[1:, None])[:, 0]
    return tok[len(prompt) - 1:].sum(), len(resp)


def train(model_dir, data_path, a, dtype=torch.float64):
    cfg, np0 = load_model_params(model_dir)
    pairs = [json.loads(l) for l in open(data_path) if l.strip()]
    max_len = a["max_len"] if a["max_len"] is not None else min(512, cfg["max_position_embeddings"])
    mpl = a["max_prompt_len"] if a["max_prompt_len"] is not None else max_len // 2
    data = [R.truncate(p["prompt_ids"], p["chosen_ids"], p["rejected_ids"], max_len, mpl) for p in pairs]
    model = make_model(cfg, np0, dtype)
    N, B = a["steps"], a["batch_pairs"]
    g0 = a["gamma"]
    g1 = a["gamma_end"] if a["gamma_end"] is not None else g0
    ref = None
    if a["loss"] in ("dpo", "ipo"):
        with torch.no_grad():
            ref = [(seq_logp(model, pr, c)[0].item(), seq_logp(model, pr, r)[0].item()) for pr, c, r in data]
    decay = [p for p in model.params if p.dim() == 2]
    no_decay = [p for p in model.params if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a["lr"], betas=(0.9, 0.999), eps=1e-8)
    log, grads0, margins_seen = [], None, []
    for s in range(N):
        lr = R.lr_at(s, N, a["lr"], a["lr_schedule"], a["warmup_steps"])
        gamma = R.gamma_at(s, N, g0, g1, a["gamma_schedule"])
        idx = R.batch_indices(s, len(data), B)
        opt.zero_grad(set_to_none=False)
        losses, Ms, lcs, lrs = [], [], [], []
        for i in idx:
            pr, c, r = data[i]
            s_c, n_c = seq_logp(model, pr, c)
            s_r, n_r = seq_logp(model, pr, r)
            losses.append(R.pair_loss(a["loss"], s_c, n_c, s_r, n_r, gamma, a["beta"], ref[i] if ref else None))
            lcs.append((s_c / n_c).item())
            lrs.append((s_r / n_r).item())
            Ms.append(lcs[-1] - lrs[-1])
        loss = torch.stack(losses).sum() / len(idx)
        loss.backward()
        if s == 0:
            grads0 = {n: p.grad.detach().double().numpy().copy() for n, p in zip(model.names, model.params)}
        if a["grad_clip"] > 0:
            gn = torch.nn.utils.clip_grad_norm_(model.params, a["grad_clip"]).item()
        else:
            gn = math.sqrt(sum((p.grad.double() ** 2).sum().item() for p in model.params))
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        Mn = np.array(Ms)
        log.append(dict(step=s + 1, loss=loss.item(), gamma=gamma, lr=lr, margin_mean=float(Mn.mean()),
                        margin_std=float(Mn.std()), acc=float((Mn > 0).mean()),
                        filtered_frac=float((Mn >= gamma).mean()), chosen_logp=float(np.mean(lcs)),
                        rejected_logp=float(np.mean(lrs)), grad_norm=gn))
        margins_seen.append((gamma, Ms))
    final = {n: p.detach().double().numpy().copy() for n, p in zip(model.names, model.params)}
    return dict(cfg=cfg, log=log, grads0=grads0, final=final, margins=margins_seen, data=data, ref=ref)


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
    rs = np.random.RandomState(seed)
    out = {}
    for n, sh in param_shapes(cfg).items():
        if n.endswith("embed_tokens.weight") or n == "lm_head.weight":
            a = rs.standard_normal(sh) * 0.3
        elif n.endswith("norm.weight"):
            a = 1.0 + 0.1 * rs.standard_normal(sh)
        elif n.endswith("bias"):
            a = 0.05 * rs.standard_normal(sh)
        else:
            a = rs.standard_normal(sh) * 0.15
        out[n] = a.astype(np.float32)
    return out


def write_model(d, cfg, w, case):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    R.st_save(os.path.join(d, "model.safetensors"), list(w.items()), case.get("dtype", "F32"))


def build_case(case, root, verbose=True):
    """tests/reference.py's build_case for this model family."""
    cdir = os.path.join(root, case["name"])
    if os.path.exists(cdir):
        shutil.rmtree(cdir)
    cfg = make_config(case["shape"])
    base_seed = sum(map(ord, case["name"]))
    a = dict(R.DEFAULTS)
    a.update({k: v for k, v in case["args"].items() if k not in ("gamma", "grad_clip")})
    mdir, dpath = os.path.join(cdir, "model"), os.path.join(cdir, "data.jsonl")
    for attempt in range(30):
        seed = base_seed * 100 + attempt
        write_model(mdir, cfg, make_weights(cfg, seed), case)
        R.write_jsonl(dpath, R.make_data({"vocab_size": cfg["vocab_size"]}, case["data"], seed))
        g = case["args"].get("gamma", 0.0)
        probe = dict(a, gamma=(0.0 if g == "auto_partial" else g), grad_clip=0.0)
        if g == "auto_partial":
            probe.update(gamma_end=None, steps=1)
        r = train(mdir, dpath, probe)
        if g == "auto_partial":
            Ms = sorted(r["margins"][0][1])
            g = R.fmt_float(0.5 * (Ms[-2] + Ms[-1]))
            a["gamma_end"] = R.fmt_float(g + 1.5)
            r = train(mdir, dpath, dict(a, gamma=g, grad_clip=0.0))
        norms = [e["grad_norm"] for e in r["log"]]
        clip = {"off": 0.0, "on": R.fmt_float(math.sqrt(min(norms) * max(norms))),
                "never": R.fmt_float(3.0 * max(norms))}[case["args"]["grad_clip"]]
        args_str = R.args_to_str(dict(a, gamma=g, grad_clip=clip))
        a3 = R.parse_args_str(args_str)
        r = train(mdir, dpath, a3)
        ok, why = R.validate(case, a3, r)
        if ok:
            break
        if verbose:
            print(f"  {case['name']}: attempt {attempt} rejected: {why}", file=sys.stderr)
    else:
        raise RuntimeError(f"{case['name']}: no acceptable seed")
    with open(os.path.join(cdir, "args.txt"), "w") as f:
        f.write(args_str + "\n")
    R.write_log(os.path.join(cdir, "expected_log.jsonl"), r["log"])
    names = list(param_shapes(cfg))
    R.st_save(os.path.join(cdir, "expected_grads.safetensors"), [(n, r["grads0"][n]) for n in names])
    R.st_save(os.path.join(cdir, "expected_params.safetensors"), [(n, r["final"][n]) for n in names])
    hand_checks(a3, r, mdir)
    if verbose:
        l0 = r["log"][0]
        print(f"{case['name']}: attempt {attempt} args: {args_str}\n   step1 loss {l0['loss']:.6f} margin "
              f"{l0['margin_mean']:+.4f}±{l0['margin_std']:.4f} acc {l0['acc']:.2f} filt {l0['filtered_frac']:.2f}"
              f" gn {[round(e['grad_norm'], 4) for e in r['log']]}", file=sys.stderr)
    return r


def hand_checks(a, r, mdir):
    l0 = r["log"][0]
    if a["loss"] == "dpo":
        assert abs(l0["loss"] - math.log(2)) < 1e-12, l0["loss"]
    if a["loss"] == "ipo":
        assert abs(l0["loss"] - (1 / (2 * a["beta"])) ** 2) < 1e-12, l0["loss"]
    if a["loss"] == "sft":
        assert abs(l0["loss"] + l0["chosen_logp"]) < 1e-12
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


# ----------------------------------------------------------------------------
# commands

def cmd_gen(outdir, verbose=True):
    os.makedirs(outdir, exist_ok=True)
    for case in CASES:
        build_case(case, outdir, verbose)
        cdir = os.path.join(outdir, case["name"])
        cfg, np0 = load_model_params(os.path.join(cdir, "model"))
        seqs = [p["prompt_ids"] + p["chosen_ids"] for p in (json.loads(l) for l in open(os.path.join(cdir, "data.jsonl")))]
        if not needs_plain(cfg):
            check_plain_vs_hf(cfg, np0, [s[:cfg["max_position_embeddings"]] for s in seqs[:3]])
    with open(os.path.join(outdir, "README"), "w") as f:
        f.write("Generated by tests/llama_reference.py gen; do not edit by hand "
                "(tests/llama_reference.py check verifies these files).\n")


def cmd_check(golden):
    tmp = tempfile.mkdtemp(prefix="repo_llama_golden_check_")
    npass = nfail = 0

    def res(ok, case, what, detail=""):
        nonlocal npass, nfail
        npass, nfail = npass + bool(ok), nfail + (not ok)
        print(f"PASS {case} {what}" if ok else f"FAIL {case} {what}: {detail}")

    try:
        cmd_gen(tmp, verbose=False)
        want = sorted(c["name"] for c in CASES)
        have = sorted(d for d in os.listdir(golden) if os.path.isdir(os.path.join(golden, d)))
        for extra in sorted(set(have) - set(want)):
            res(False, extra, "case", "not produced by llama_reference.py (stale?)")
        for name in want:
            g, t = os.path.join(golden, name), os.path.join(tmp, name)
            if name not in have:
                res(False, name, "case", "missing from golden dir")
                continue
            for f in ("model/config.json", "model/model.safetensors", "data.jsonl", "args.txt"):
                pa, pb = os.path.join(g, f), os.path.join(t, f)
                same = os.path.exists(pa) and open(pa, "rb").read() == open(pb, "rb").read()
                res(same, name, f"input {f}", "differs from regenerated")
            bad = R.cmp_log(os.path.join(g, "expected_log.jsonl"), os.path.join(t, "expected_log.jsonl"),
                            R.CHECK_LOG_ATOL, R.CHECK_LOG_RTOL)
            res(not bad, name, "log", "; ".join(bad[:4]))
            bad, _ = R.cmp_st(os.path.join(g, "expected_grads.safetensors"),
                              os.path.join(t, "expected_grads.safetensors"), R.CHECK_GRAD_RTOL)
            res(not bad, name, "grads", "; ".join(bad[:4]))
            bad, _ = R.cmp_st(os.path.join(g, "expected_params.safetensors"),
                              os.path.join(t, "expected_params.safetensors"), R.CHECK_PARAM_RTOL,
                              os.path.join(t, "model", "model.safetensors"))
            res(not bad, name, "params", "; ".join(bad[:4]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{npass} passed, {nfail} failed")
    return 1 if nfail else 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "gen":
        cmd_gen(argv[1])
        return 0
    if len(argv) >= 2 and argv[0] == "check":
        return cmd_check(argv[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
