#!/usr/bin/env python3
"""Independent PyTorch reference for the RePO trainer (repo.c) and its golden files.

    python tests/reference.py gen OUTDIR          # write every case into OUTDIR/<case>/
    python tests/reference.py check GOLDEN_DIR    # regenerate into a temp dir, compare
    python tests/reference.py gen OUTDIR --fp32   # (diagnostic) same, computed in float32

Each case directory holds the inputs (model/config.json, model/model.safetensors,
data.jsonl, args.txt) and the expected outputs of
    ./repo train --model CASE/model --data CASE/data.jsonl --out OUT --log LOG \
                 --save-grads GRADS $(cat CASE/args.txt)
namely expected_log.jsonl, expected_grads.safetensors (raw first-step gradients)
and expected_params.safetensors (parameters after the last step).

The reference is written from the spec, not from repo.c.  It computes in float64
(starting from the float32 / f16 / bf16 values stored in the model file), so the
golden values are the exact answer and the tolerances in compare.c measure the
C trainer's float32 error only.  The forward pass is transformers.GPT2LMHeadModel;
a plain-PyTorch GPT-2 forward (below) is checked against it to 1e-5 and is used
instead when transformers cannot be imported.

All randomness comes from numpy.random.RandomState / random.Random with fixed
seeds (both streams are stable across versions), so inputs are byte-identical
on every machine.

Coverage of the cases (CASES below): repo, simpo, dpo, ipo, sft each on at least two
model shapes (1-3 layers, n_embd 8-24, 1-4 heads, vocab 50-200, n_positions 32-64, LN eps 1e-5
and 1e-6); one-token responses; odd lengths; sequences of 230-315 tokens (simpo_long_s5, n_positions
320: several tiles of the tiled attention on the CPU and the GPU); a repo batch where exactly some pairs are filtered
at step 1 (gamma picked between two initial margins); linear and cosine gamma schedules; linear
and cosine lr schedules with and without warmup; --micro-batch-pairs not dividing and dividing
--batch-pairs; truncation with the default and an explicit --max-prompt-len (long prompt cut,
short prompt kept with both responses cut); a partial last batch followed by the wrap into the
next epoch; gradient clipping that triggers at some steps and not at others, clipping enabled but
never triggered, and clipping off; model files with attn.bias / attn.masked_bias buffers and an
lm_head.weight, without the "transformer." prefix, and stored as BF16 and as F16.  The rest of the
paper's table (slic, cpo, orpo, rdpo, repo++, dpo-repo, dpo-repo++) has one case each, two for repo++
and dpo-repo: a repo++ batch with one pair filtered at step 1 (in a micro-batch of its own, so that
micro-batch skips its backward pass), and a dpo-repo batch with one pair filtered at step 2 (dpo-repo
cannot filter at step 1: h = s - r = 0 for every pair there).  The slic case has the hinge active for
some pairs and not others at every step; every hyper-parameter flag is written to args.txt.
Generation rejects (and moves to the next seed) any input where a float32 trainer could flip a
discontinuous quantity: |M - gamma| < 1e-3, |M| < 1e-4, a kink argument (ReLU / min(., 0) / hinge)
within 1e-3 of 0, a grad norm within 2% of the clip threshold, or a step whose gradient is exactly
zero; and any input that is ill-conditioned in float32 (the same reference run in float32 must land
within a tenth of compare.c's tolerances; a gradient entry that is by chance ~1e-9 makes Adam's first
step amplify float32 noise into an O(lr) move).  Hand checks on every generation: DPO
step-1 loss = log 2, IPO step-1 loss = 1/(4 beta^2), R-DPO step-1 loss = mean softplus(alpha (n_c - n_r)),
dpo-repo step-1 loss = gamma, dpo-repo++ step-1 loss = softplus(gamma), SFT loss = -chosen_logp = mean
over pairs of HF's own labels-loss (response-token NLL), repo/simpo losses recomputed from the logged
margins, every step's loss recomputed from the per-pair log-probs with a second (plain-math) writing of
each objective, the step-1 autograd derivatives of each pair loss w.r.t. s_c, s_r against central
differences of that second writing, and the truncation rule re-derived pair by pair.
"""
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

# torch's OpenMP pool spins by default; on a machine busy with other work (a parallel `make test`)
# the spinning threads fight for the cores and the tiny float64 kernels here run ~100x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as F

try:
    import transformers  # noqa: F401  (presence test)
    from transformers import GPT2Config, GPT2LMHeadModel
    HAVE_HF = True
except Exception:  # pragma: no cover - fallback path
    HAVE_HF = False

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
HERE = os.path.dirname(os.path.abspath(__file__))
NAME, CTX_KEY = "reference.py", "n_positions"   # this model family (see this_family)

# ----------------------------------------------------------------------------
# tolerances (shared with compare.c; see the comments there for the reasoning)
LOG_ATOL, LOG_RTOL = 1e-5, 1e-4
GRAD_RTOL = 1e-4
PARAM_RTOL = 1e-3
# `check` compares a fresh float64 regeneration with the committed goldens: both are the same float64
# computation, differing only by BLAS summation order (~1e-15) and float32 storage (1 ulp, 6e-8), so it
# uses tolerances 100x tighter than compare.c's; a hand-edited value cannot eat into the C's margin.
CHECK_LOG_ATOL, CHECK_LOG_RTOL, CHECK_GRAD_RTOL, CHECK_PARAM_RTOL = 1e-9, 1e-7, 1e-6, 1e-5
LOG_KEYS = ["step", "loss", "gamma", "lr", "margin_mean", "margin_std", "acc",
            "filtered_frac", "chosen_logp", "rejected_logp", "grad_norm"]

# ----------------------------------------------------------------------------
# minimal safetensors reader / writer (numpy); independent of the safetensors package

_ST_NP = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
          "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}


def st_load(path):
    """-> dict name -> (dtype_str, np.float32 array or raw array)"""
    with open(path, "rb") as f:
        b = f.read()
    (hlen,) = struct.unpack("<Q", b[:8])
    header = json.loads(b[8:8 + hlen])
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        s, e = info["data_offsets"]
        raw = b[base + s:base + e]
        dt = info["dtype"]
        shape = info["shape"]
        if dt == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32).reshape(shape)
        else:
            arr = np.frombuffer(raw, dtype=np.dtype(_ST_NP[dt]).newbyteorder("<")).reshape(shape)
        if dt in ("F16", "BF16", "F32", "F64"):
            arr = arr.astype(np.float32)
        out[name] = (dt, np.array(arr))
    return out


def st_save(path, tensors, dtype="F32"):
    """tensors: list of (name, np array float); stored as dtype (F32/F16/BF16), in order."""
    header, chunks, off = {}, [], 0
    for name, arr in tensors:
        a = np.asarray(arr, dtype=np.float32)
        dt = dtype if a.dtype.kind == "f" else "F32"
        if dt == "F32":
            raw = a.astype("<f4").tobytes()
        elif dt == "F16":
            raw = a.astype("<f2").tobytes()
        elif dt == "BF16":
            raw = torch.from_numpy(a.copy()).to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            raise ValueError(dt)
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)


# ----------------------------------------------------------------------------
# parameter naming

def param_names(n_layer):
    names = ["transformer.wte.weight", "transformer.wpe.weight"]
    for i in range(n_layer):
        p = f"transformer.h.{i}."
        names += [p + "ln_1.weight", p + "ln_1.bias", p + "attn.c_attn.weight", p + "attn.c_attn.bias",
                  p + "attn.c_proj.weight", p + "attn.c_proj.bias", p + "ln_2.weight", p + "ln_2.bias",
                  p + "mlp.c_fc.weight", p + "mlp.c_fc.bias", p + "mlp.c_proj.weight", p + "mlp.c_proj.bias"]
    names += ["transformer.ln_f.weight", "transformer.ln_f.bias"]
    return names


def param_shapes(cfg):
    V, P, E, L = cfg["vocab_size"], cfg["n_positions"], cfg["n_embd"], cfg["n_layer"]
    H4 = cfg.get("n_inner") or 4 * E
    sh = {"transformer.wte.weight": (V, E), "transformer.wpe.weight": (P, E),
          "transformer.ln_f.weight": (E,), "transformer.ln_f.bias": (E,)}
    for i in range(L):
        p = f"transformer.h.{i}."
        sh.update({p + "ln_1.weight": (E,), p + "ln_1.bias": (E,), p + "attn.c_attn.weight": (E, 3 * E),
                   p + "attn.c_attn.bias": (3 * E,), p + "attn.c_proj.weight": (E, E), p + "attn.c_proj.bias": (E,),
                   p + "ln_2.weight": (E,), p + "ln_2.bias": (E,), p + "mlp.c_fc.weight": (E, H4),
                   p + "mlp.c_fc.bias": (H4,), p + "mlp.c_proj.weight": (H4, E), p + "mlp.c_proj.bias": (E,)})
    return sh


def load_model_params(model_dir):
    """Read config.json + model.safetensors the way a loader should: accept names with or
    without the 'transformer.' prefix, ignore attn.bias / attn.masked_bias buffers and a
    (tied) lm_head.weight, convert F16/BF16 to float32.  -> (cfg, {canonical name: np.float32})"""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    raw = st_load(os.path.join(model_dir, "model.safetensors"))
    shapes = param_shapes(cfg)
    out = {}
    for name in param_names(cfg["n_layer"]):
        short = name[len("transformer."):]
        key = name if name in raw else short
        if key not in raw:
            raise KeyError(f"{model_dir}: missing tensor {name}")
        arr = raw[key][1]
        assert tuple(arr.shape) == tuple(shapes[name]), (name, arr.shape, shapes[name])
        out[name] = arr.astype(np.float32)
    return cfg, out


# ----------------------------------------------------------------------------
# forward passes

def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def plain_forward(P, cfg, ids):
    """Plain GPT-2 forward. P: dict canonical name -> tensor. ids: LongTensor [T]. -> logits [T, V]"""
    E, nh, eps = cfg["n_embd"], cfg["n_head"], cfg["layer_norm_epsilon"]
    T = ids.shape[0]
    hd = E // nh
    x = P["transformer.wte.weight"][ids] + P["transformer.wpe.weight"][:T]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        h = F.layer_norm(x, (E,), P[p + "ln_1.weight"], P[p + "ln_1.bias"], eps)
        qkv = h @ P[p + "attn.c_attn.weight"] + P[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(E, dim=-1)
        q, k, v = (t.view(T, nh, hd).transpose(0, 1) for t in (q, k, v))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(0, 1).reshape(T, E)
        x = x + y @ P[p + "attn.c_proj.weight"] + P[p + "attn.c_proj.bias"]
        h = F.layer_norm(x, (E,), P[p + "ln_2.weight"], P[p + "ln_2.bias"], eps)
        h = gelu_new(h @ P[p + "mlp.c_fc.weight"] + P[p + "mlp.c_fc.bias"])
        x = x + h @ P[p + "mlp.c_proj.weight"] + P[p + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (E,), P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], eps)
    return x @ P["transformer.wte.weight"].t()


class Model:
    """Holds the trainable parameters (canonical order) and a forward(ids) -> logits."""

    def __init__(self, cfg, np_params, dtype, use_hf=None):
        self.cfg = cfg
        if use_hf is None:
            use_hf = HAVE_HF
        self.names = param_names(cfg["n_layer"])
        if use_hf:
            hcfg = GPT2Config(**{k: v for k, v in cfg.items() if k not in ("architectures", "model_type")})
            hcfg.attn_pdrop = hcfg.resid_pdrop = hcfg.embd_pdrop = 0.0
            m = GPT2LMHeadModel(hcfg)
            sd = {n: torch.from_numpy(np_params[n].copy()) for n in self.names}
            missing, unexpected = m.load_state_dict(sd, strict=False)
            assert not unexpected, unexpected
            assert all(("lm_head" in k or k.endswith("attn.bias") or k.endswith("masked_bias")) for k in missing), missing
            m = m.to(dtype)
            m.train()  # dropout probabilities are 0
            named = dict(m.named_parameters())
            assert set(named) == set(self.names), set(named) ^ set(self.names)
            assert m.lm_head.weight is m.transformer.wte.weight
            self.P = {n: named[n] for n in self.names}
            self._hf_model = m
            self._fwd = lambda ids: m(ids[None]).logits[0]
        else:
            self.P = {n: torch.tensor(np_params[n], dtype=dtype, requires_grad=True) for n in self.names}
            self._fwd = lambda ids: plain_forward(self.P, cfg, ids)
        self.params = [self.P[n] for n in self.names]

    def forward(self, ids):
        return self._fwd(ids)


def check_plain_vs_hf(cfg, np_params, seqs):
    """Plain forward must match HF's logits to 1e-5 (float32) and 1e-10 (float64)."""
    if not HAVE_HF:
        return
    for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-10)):
        m = Model(cfg, np_params, dtype, use_hf=True)
        P = {n: torch.tensor(np_params[n], dtype=dtype) for n in m.names}
        with torch.no_grad():
            for s in seqs:
                ids = torch.tensor(s, dtype=torch.long)
                a = m.forward(ids)
                b = plain_forward(P, cfg, ids)
                err = (a - b).abs().max().item()
                assert err <= tol, f"plain forward differs from HF by {err} ({dtype})"


# ----------------------------------------------------------------------------
# data, truncation, schedules, losses

def truncate(prompt, chosen, rejected, max_len, max_prompt_len):
    if len(prompt) + max(len(chosen), len(rejected)) <= max_len:
        return prompt, chosen, rejected
    keep = min(len(prompt), max_prompt_len)
    prompt = prompt[len(prompt) - keep:]
    room = max_len - len(prompt)
    return prompt, chosen[:room], rejected[:room]


def lr_at(s, N, lr, sched, W):
    if s < W:
        return lr * (s + 1) / W
    p = (s - W) / max(1, N - W)
    if sched == "constant":
        return lr
    if sched == "linear":
        return lr * (1 - p)
    if sched == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * p))
    raise ValueError(sched)


def gamma_at(s, N, g0, g1, sched):
    p = 0.0 if N == 1 else s / (N - 1)
    if sched == "constant":
        return g0
    if sched == "linear":
        return g0 + (g1 - g0) * p
    if sched == "cosine":
        return g1 + (g0 - g1) * 0.5 * (1 + math.cos(math.pi * p))
    raise ValueError(sched)


def batch_indices(step, n_pairs, B):
    """--no-shuffle: epochs in file order; a last partial batch is used as is."""
    per_epoch = (n_pairs + B - 1) // B
    k = step % per_epoch
    return list(range(k * B, min((k + 1) * B, n_pairs)))


def seq_logp(model, prompt, resp):
    """-> (sum of response-token log-probs, n response tokens)"""
    ids = torch.tensor(prompt + resp, dtype=torch.long)
    logits = model.forward(ids)
    lp = torch.log_softmax(logits[:-1], dim=-1)
    tok = lp.gather(1, ids[1:, None])[:, 0]
    P = len(prompt)
    return tok[P - 1:].sum(), len(resp)


def log1mexp(x):
    """log(1 - e^x) for x < 0, accurate at both ends (Maechler 2012): log(-expm1(x)) for x > -log 2,
    log1p(-exp(x)) below."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def pair_loss(kind, s_c, n_c, s_r, n_r, gamma, beta, ref, lam=None, delta=None, alpha=None):
    """Per-pair loss as a torch expression of the summed log-probs; autograd supplies the gradient."""
    l_c, l_r = s_c / n_c, s_r / n_r
    M = l_c - l_r
    if kind == "repo":
        return torch.relu(gamma - M)
    if kind == "simpo":
        return F.softplus(-beta * (M - gamma))           # -log sigmoid(beta (M - gamma))
    if kind == "dpo":
        r_c, r_r = ref
        return F.softplus(-beta * ((s_c - r_c) - (s_r - r_r)))
    if kind == "ipo":
        r_c, r_r = ref
        return ((s_c - r_c) / n_c - (s_r - r_r) / n_r - 1.0 / (2 * beta)) ** 2
    if kind == "sft":
        return -l_c
    if kind == "slic":
        return torch.clamp(delta - s_c + s_r, min=0.0) - lam * s_c
    if kind == "cpo":
        return -F.logsigmoid(beta * s_c - beta * s_r) - lam * s_c
    if kind == "orpo":
        odds_c, odds_r = l_c - log1mexp(l_c), l_r - log1mexp(l_r)
        return -l_c - lam * F.logsigmoid(odds_c - odds_r)
    if kind == "rdpo":
        r_c, r_r = ref
        return -F.logsigmoid(beta * (s_c - r_c) - beta * (s_r - r_r) - alpha * (n_c - n_r))
    if kind == "repo++":
        return -F.logsigmoid(torch.clamp(beta * (M - gamma), max=0.0))
    if kind == "dpo-repo":
        r_c, r_r = ref
        return torch.relu(gamma - ((s_c - r_c) - (s_r - r_r)))
    if kind == "dpo-repo++":
        r_c, r_r = ref
        return -F.logsigmoid(torch.clamp(beta * ((s_c - r_c) - (s_r - r_r)) - gamma, max=0.0))
    raise ValueError(kind)


def pair_loss_np(kind, s_c, n_c, s_r, n_r, gamma, beta, ref, lam=None, delta=None, alpha=None):
    """The same losses written again in plain math on floats (for the hand checks)."""
    sp = lambda x: math.log1p(math.exp(-abs(x))) + max(x, 0.0)       # softplus = -log sigmoid(-x)
    M = s_c / n_c - s_r / n_r
    h = (s_c - ref[0]) - (s_r - ref[1]) if ref is not None else None
    odds = lambda l: l - math.log(1.0 - math.exp(l))
    return {"repo": lambda: max(gamma - M, 0.0),
            "simpo": lambda: sp(-beta * (M - gamma)),
            "dpo": lambda: sp(-beta * h),
            "ipo": lambda: ((s_c - ref[0]) / n_c - (s_r - ref[1]) / n_r - 0.5 / beta) ** 2,
            "sft": lambda: -s_c / n_c,
            "slic": lambda: max(0.0, delta - s_c + s_r) - lam * s_c,
            "cpo": lambda: sp(-beta * (s_c - s_r)) - lam * s_c,
            "orpo": lambda: -s_c / n_c + lam * sp(-(odds(s_c / n_c) - odds(s_r / n_r))),
            "rdpo": lambda: sp(-(beta * h - alpha * (n_c - n_r))),
            "repo++": lambda: sp(-min(beta * (M - gamma), 0.0)),
            "dpo-repo": lambda: max(gamma - h, 0.0),
            "dpo-repo++": lambda: sp(-min(beta * h - gamma, 0.0))}[kind]()


def kink_args(kind, s_c, n_c, s_r, n_r, gamma, beta, ref, lam=None, delta=None, alpha=None):
    """The arguments of the loss's non-smooth points (ReLU / min(., 0)) for one pair; a float32 trainer
    may land on either side of a kink when its argument is within rounding of 0."""
    M = s_c / n_c - s_r / n_r
    h = (s_c - ref[0]) - (s_r - ref[1]) if ref is not None else None
    return {"repo": lambda: [gamma - M], "repo++": lambda: [beta * (M - gamma)],
            "slic": lambda: [delta - s_c + s_r], "dpo-repo": lambda: [gamma - h],
            "dpo-repo++": lambda: [beta * h - gamma]}.get(kind, lambda: [])()


def pair_filtered(kind, s_c, n_c, s_r, n_r, gamma, beta, ref, **hp):
    """Is the pair filtered (zero loss gradient) by a filtering objective?"""
    k = kink_args(kind, s_c, n_c, s_r, n_r, gamma, beta, ref, **hp)
    return {"repo": lambda: k[0] <= 0, "dpo-repo": lambda: k[0] <= 0,
            "repo++": lambda: k[0] >= 0, "dpo-repo++": lambda: k[0] >= 0}[kind]()


# ----------------------------------------------------------------------------
# argument handling (the subset of ./repo train flags the cases use)

DEFAULTS = dict(loss="repo", gamma=0.5, gamma_end=None, gamma_schedule="constant", beta=2.0, lr=5e-3,
                lambda_=None, delta=None, alpha=None,
                lr_schedule="constant", warmup_steps=0, weight_decay=0.1, grad_clip=0.0, batch_pairs=4,
                micro_batch_pairs=None, steps=3, max_len=None, max_prompt_len=None, seed=1, no_shuffle=True)


# which hyper-parameters each loss reads (./repo refuses the others); which score a frozen reference
USES_GAMMA = ("repo", "simpo", "repo++", "dpo-repo", "dpo-repo++")
USES_BETA = ("simpo", "dpo", "ipo", "cpo", "rdpo", "repo++", "dpo-repo++")
USES_LAMBDA = ("slic", "cpo", "orpo")
USES_DELTA = ("slic",)
USES_ALPHA = ("rdpo",)
NEEDS_REF = ("dpo", "ipo", "rdpo", "dpo-repo", "dpo-repo++")
FILTERING = ("repo", "repo++", "dpo-repo", "dpo-repo++")


def hp_of(a):
    """--lambda / --delta / --alpha as pair_loss keywords"""
    return dict(lam=a.get("lambda_"), delta=a.get("delta"), alpha=a.get("alpha"))


def args_to_str(a):
    """./repo refuses flags the chosen loss does not read (--gamma* for dpo/ipo/sft, --beta for
    repo/sft), so only the relevant ones are written; every relevant one is written explicitly."""
    parts = [f"--loss {a['loss']}"]
    for k in ("gamma", "gamma_end", "beta", "lambda_", "delta", "alpha", "lr", "weight_decay", "grad_clip"):
        if k.startswith("gamma") and a["loss"] not in USES_GAMMA:
            continue
        if k == "beta" and a["loss"] not in USES_BETA:
            continue
        if k == "lambda_" and a["loss"] not in USES_LAMBDA:
            continue
        if k == "delta" and a["loss"] not in USES_DELTA:
            continue
        if k == "alpha" and a["loss"] not in USES_ALPHA:
            continue
        if k in ("lambda_", "delta", "alpha"):
            assert a.get(k) is not None, f"--loss {a['loss']}: give --{k.rstrip('_')} explicitly"
        if a.get(k) is not None:
            parts.append(f"--{k.rstrip('_').replace('_', '-')} {a[k]!r}")
    for k in ("gamma_schedule", "lr_schedule"):
        if k.startswith("gamma") and a["loss"] not in USES_GAMMA:
            continue
        parts.append(f"--{k.replace('_', '-')} {a[k]}")
    for k in ("warmup_steps", "batch_pairs", "micro_batch_pairs", "steps", "max_len", "max_prompt_len", "seed"):
        if a.get(k) is not None:
            parts.append(f"--{k.replace('_', '-')} {a[k]}")
    parts.append("--no-shuffle")
    return " ".join(parts)


def parse_args_str(s):
    """Inverse of args_to_str: the reference trains from what args.txt says."""
    toks = s.split()
    a = dict(DEFAULTS)
    i = 0
    while i < len(toks):
        t = toks[i]
        assert t.startswith("--"), t
        k = t[2:].replace("-", "_")
        k = "lambda_" if k == "lambda" else k
        assert k in DEFAULTS, t
        if k == "no_shuffle":
            a[k] = True
            i += 1
            continue
        v = toks[i + 1]
        i += 2
        if k in ("loss", "gamma_schedule", "lr_schedule"):
            a[k] = v
        elif k in ("warmup_steps", "batch_pairs", "micro_batch_pairs", "steps", "max_len", "max_prompt_len", "seed"):
            a[k] = int(v)
        else:
            a[k] = float(v)
    if a["loss"] not in USES_GAMMA:
        # losses without a margin target log gamma = 0 (and filtered_frac = fraction with M >= 0)
        a["gamma"], a["gamma_end"], a["gamma_schedule"] = 0.0, None, "constant"
    return a


# ----------------------------------------------------------------------------
# training (the reference)

def read_pairs(data_path, a, n_ctx):
    """data.jsonl -> [(prompt, chosen, rejected)] truncated as ./repo does; --max-len defaults to n_ctx.
    -> (pairs, max_len)"""
    pairs = [json.loads(l) for l in open(data_path) if l.strip()]
    max_len = a["max_len"] if a["max_len"] is not None else n_ctx
    mpl = a["max_prompt_len"] if a["max_prompt_len"] is not None else max_len // 2
    return [truncate(p["prompt_ids"], p["chosen_ids"], p["rejected_ids"], max_len, mpl) for p in pairs], max_len


def fit(model, data, a):
    """The training loop (any model family): model has .names, .params (same order) and .forward(ids)."""
    N, B = a["steps"], a["batch_pairs"]
    g0 = a["gamma"]
    g1 = a["gamma_end"] if a["gamma_end"] is not None else g0
    beta = a["beta"]

    # frozen reference log-probs (dpo, ipo, rdpo, dpo-repo, dpo-repo++), computed once with the initial weights
    ref = None
    if a["loss"] in NEEDS_REF:
        with torch.no_grad():
            ref = [(seq_logp(model, pr, c)[0].item(), seq_logp(model, pr, r)[0].item()) for pr, c, r in data]

    decay = [p for p in model.params if p.dim() == 2]
    no_decay = [p for p in model.params if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a["lr"], betas=(0.9, 0.999), eps=1e-8)
    log, grads0, margins_seen, pair_stats = [], None, [], []
    for s in range(N):
        lr = lr_at(s, N, a["lr"], a["lr_schedule"], a["warmup_steps"])
        gamma = gamma_at(s, N, g0, g1, a["gamma_schedule"])
        idx = batch_indices(s, len(data), B)
        opt.zero_grad(set_to_none=False)
        losses, Ms, lcs, lrs, stats = [], [], [], [], []
        for i in idx:
            pr, c, r = data[i]
            s_c, n_c = seq_logp(model, pr, c)
            s_r, n_r = seq_logp(model, pr, r)
            losses.append(pair_loss(a["loss"], s_c, n_c, s_r, n_r, gamma, beta, ref[i] if ref else None, **hp_of(a)))
            stats.append((s_c.item(), n_c, s_r.item(), n_r, ref[i] if ref else None))
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
        pair_stats.append(stats)
    final = {n: p.detach().double().numpy().copy() for n, p in zip(model.names, model.params)}
    # pair_stats[step] = [(s_c, n_c, s_r, n_r, (r_c, r_r) or None) per pair of that step's batch]
    return dict(log=log, grads0=grads0, final=final, margins=margins_seen, data=data, ref=ref,
                pair_stats=pair_stats)


def train(model_dir, data_path, a, dtype=torch.float64, use_hf=None):
    cfg, np0 = load_model_params(model_dir)
    data, max_len = read_pairs(data_path, a, cfg["n_positions"])
    for pr, c, r in data:
        assert len(pr) >= 1 and len(c) >= 1 and len(r) >= 1
        assert len(pr) + max(len(c), len(r)) <= min(max_len, cfg["n_positions"])
    return dict(fit(Model(cfg, np0, dtype, use_hf), data, a), cfg=cfg)


# ----------------------------------------------------------------------------
# case definitions

SHAPES = {
    # name: (n_layer, n_embd, n_head, vocab, n_positions, ln_eps)
    "s1": (1, 8, 1, 50, 32, 1e-5),
    "s2": (2, 24, 4, 150, 64, 1e-5),
    "s3": (3, 24, 3, 200, 64, 1e-5),
    "s4": (2, 16, 2, 97, 48, 1e-6),
    "s5": (2, 24, 2, 61, 320, 1e-5),   # long sequences: several attention tiles (CPU 64, GPU 16 rows), head size 12
}

# storage: prefix (True: names start with transformer.), dtype, extra (attn.bias buffers + lm_head)
CASES = [
    # name, shape, storage, data spec, args
    dict(name="repo_s1", shape="s1", data=dict(n=8, plen=(1, 5), rlen=(1, 4), one_tok=True),
         args=dict(loss="repo", gamma=0.3, batch_pairs=4, grad_clip="on")),
    dict(name="repo_s2_partial_filter", shape="s2", data=dict(n=6, plen=(2, 7), rlen=(1, 7)),
         args=dict(loss="repo", gamma="auto_partial", gamma_schedule="linear",
                   lr_schedule="cosine", warmup_steps=1, batch_pairs=6, grad_clip="off")),
    dict(name="repo_s3", shape="s3", data=dict(n=4, plen=(3, 9), rlen=(2, 9)),
         args=dict(loss="repo", gamma=1.0, batch_pairs=4, grad_clip="on")),
    dict(name="repo_micro", shape="s4", data=dict(n=8, plen=(1, 6), rlen=(1, 6)),
         args=dict(loss="repo", gamma=1.0, batch_pairs=4, micro_batch_pairs=3, grad_clip="never")),
    dict(name="repo_trunc", shape="s4", data=dict(n=6, plen=(1, 9), rlen=(1, 9), long=True),
         args=dict(loss="repo", gamma=1.0, batch_pairs=3, max_len=10, grad_clip="on")),
    dict(name="repo_partial_batch", shape="s1", prefix=False, data=dict(n=5, plen=(1, 4), rlen=(1, 5)),
         args=dict(loss="repo", gamma=1.0, batch_pairs=2, steps=4, lr_schedule="linear", grad_clip="off")),
    dict(name="simpo_s1", shape="s1", prefix=False, data=dict(n=6, plen=(1, 5), rlen=(1, 5), one_tok=True),
         args=dict(loss="simpo", gamma=0.5, beta=2.0, batch_pairs=3, grad_clip="on")),
    dict(name="simpo_s2_micro", shape="s2", data=dict(n=5, plen=(2, 6), rlen=(1, 6)),
         args=dict(loss="simpo", gamma=0.8, gamma_end=0.2, gamma_schedule="cosine", beta=2.5, batch_pairs=5,
                   micro_batch_pairs=2, lr_schedule="cosine", warmup_steps=2, grad_clip="off")),
    dict(name="dpo_s1", shape="s1", dtype="BF16", data=dict(n=6, plen=(1, 5), rlen=(1, 5)),
         args=dict(loss="dpo", beta=0.5, batch_pairs=3, grad_clip="on")),
    dict(name="dpo_s4", shape="s4", extra=True, data=dict(n=4, plen=(2, 7), rlen=(1, 7), one_tok=True),
         args=dict(loss="dpo", beta=0.1, batch_pairs=4, grad_clip="never")),
    dict(name="ipo_s1", shape="s1", data=dict(n=6, plen=(1, 5), rlen=(1, 5)),
         args=dict(loss="ipo", beta=0.5, batch_pairs=3, grad_clip="off")),
    dict(name="ipo_s4", shape="s4", dtype="F16", data=dict(n=4, plen=(1, 6), rlen=(1, 7)),
         args=dict(loss="ipo", beta=2.0, batch_pairs=4, grad_clip="on")),
    dict(name="sft_s1", shape="s1", data=dict(n=6, plen=(1, 5), rlen=(1, 5), one_tok=True),
         args=dict(loss="sft", batch_pairs=3, grad_clip="never", lr_schedule="linear", warmup_steps=1)),
    dict(name="sft_trunc_prompt_len", shape="s1", data=dict(n=6, plen=(1, 9), rlen=(1, 9), long=True),
         args=dict(loss="sft", batch_pairs=3, max_len=8, max_prompt_len=3, grad_clip="off")),
    dict(name="sft_s2", shape="s2", data=dict(n=4, plen=(2, 7), rlen=(1, 7)),
         args=dict(loss="sft", batch_pairs=4, grad_clip="on")),
    # the rest of the paper's table of objectives
    dict(name="slic_s2", shape="s2", data=dict(n=4, plen=(2, 7), rlen=(1, 7)),
         args=dict(loss="slic", delta=14.0, lambda_=0.1, batch_pairs=4, grad_clip="on")),
    dict(name="cpo_s1_micro", shape="s1", data=dict(n=6, plen=(1, 5), rlen=(1, 5), one_tok=True),
         args=dict(loss="cpo", beta=0.2, lambda_=0.5, batch_pairs=3, micro_batch_pairs=2, grad_clip="on")),
    dict(name="orpo_s4", shape="s4", dtype="F16", data=dict(n=4, plen=(1, 6), rlen=(1, 7)),
         args=dict(loss="orpo", lambda_=0.5, batch_pairs=4, grad_clip="on")),
    dict(name="rdpo_s1", shape="s1", dtype="BF16", data=dict(n=6, plen=(1, 5), rlen=(1, 5)),
         args=dict(loss="rdpo", beta=0.5, alpha=0.2, batch_pairs=3, grad_clip="on")),
    dict(name="repo_pp_s1", shape="s1", prefix=False, data=dict(n=8, plen=(1, 5), rlen=(1, 4), one_tok=True),
         args=dict(loss="repo++", gamma=0.5, beta=2.0, batch_pairs=4, grad_clip="on")),
    # one pair filtered at step 1, in a micro-batch of its own (that micro-batch has no backward pass)
    dict(name="repo_pp_s2_partial_filter", shape="s2", data=dict(n=6, plen=(2, 7), rlen=(1, 7)),
         args=dict(loss="repo++", gamma="auto_partial", gamma_schedule="cosine", beta=2.5, batch_pairs=6,
                   micro_batch_pairs=1, lr_schedule="linear", grad_clip="on")),
    dict(name="dpo_repo_s4", shape="s4", extra=True, data=dict(n=4, plen=(2, 7), rlen=(1, 7), one_tok=True),
         args=dict(loss="dpo-repo", gamma=6.0, batch_pairs=4, grad_clip="on")),
    # h = 0 for every pair at step 1, so dpo-repo cannot filter there: one pair filtered at step 2
    dict(name="dpo_repo_s2_partial_filter", shape="s2", partial_step=2, probe_gamma=1.0,
         data=dict(n=6, plen=(2, 7), rlen=(1, 7)),
         args=dict(loss="dpo-repo", gamma="auto_partial", batch_pairs=6, micro_batch_pairs=4, grad_clip="on")),
    dict(name="dpo_repo_pp_s3", shape="s3", data=dict(n=4, plen=(3, 9), rlen=(2, 9)),
         args=dict(loss="dpo-repo++", gamma=2.0, beta=0.1, batch_pairs=4, grad_clip="on")),
    # sequences of 230-315 tokens (odd lengths, one-token responses): the tiled attention over several tiles
    dict(name="simpo_long_s5", shape="s5", data=dict(n=4, plen=(230, 290), rlen=(1, 25), one_tok=True),
         args=dict(loss="simpo", gamma=0.5, beta=2.0, batch_pairs=2, steps=2, grad_clip="on")),
]


def make_config(shape):
    L, E, H, V, Pn, eps = SHAPES[shape]
    return {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.0,
            "bos_token_id": V - 1, "embd_pdrop": 0.0, "eos_token_id": V - 1, "initializer_range": 0.02,
            "layer_norm_epsilon": eps, "model_type": "gpt2", "n_ctx": Pn, "n_embd": E, "n_head": H,
            "n_inner": None, "n_layer": L, "n_positions": Pn, "reorder_and_upcast_attn": False,
            "resid_pdrop": 0.0, "scale_attn_by_inverse_layer_idx": False, "scale_attn_weights": True,
            "tie_word_embeddings": True, "use_cache": True, "vocab_size": V}


def make_weights(cfg, seed):
    """HF-like init (normal weights, LN near identity) but with larger std so margins are O(0.1-1)."""
    def init(n):
        if n.endswith("wte.weight"):
            return 0.0, 0.3
        if n.endswith("wpe.weight"):
            return 0.0, 0.1
        if "ln_" in n and n.endswith("weight"):
            return 1.0, 0.1
        return (0.0, 0.05) if n.endswith("bias") else (0.0, 0.15)
    return random_weights(param_shapes(cfg), seed, init)


def random_weights(shapes, seed, init):
    """{name: float32 array of shapes[name]}, mean + std * N(0, 1) drawn from one RandomState(seed) in
    shapes' order; init(name) -> (mean, std)"""
    rs = np.random.RandomState(seed)
    out = {}
    for n, sh in shapes.items():
        mean, std = init(n)
        a = rs.standard_normal(sh) * std
        out[n] = (a + mean if mean else a).astype(np.float32)
    return out


def make_data(cfg, spec, seed):
    rnd = random.Random(seed)
    V = cfg["vocab_size"]
    pairs = []
    for i in range(spec["n"]):
        pl = rnd.randint(*spec["plen"])
        lc, lr = rnd.randint(*spec["rlen"]), rnd.randint(*spec["rlen"])
        if spec.get("one_tok") and i < 2:
            lc, lr = (1, 1) if i == 0 else (1, rnd.randint(2, 4))
        if spec.get("long") and i % 2 == 0:   # long prompt (cut to max_len/2) and long chosen
            pl, lc, lr = rnd.randint(6, 9), rnd.randint(5, 9), rnd.randint(1, 3)
        if spec.get("long") and i == 3:       # short prompt kept whole, both responses cut
            pl, lc, lr = 2, 9, 10
        ids = lambda k: [rnd.randrange(V) for _ in range(k)]
        pairs.append({"prompt_ids": ids(pl), "chosen_ids": ids(lc), "rejected_ids": ids(lr)})
    return pairs


def write_model_dir(d, cfg, items, dtype):
    """d/config.json and d/model.safetensors holding items [(name, array)] stored as dtype"""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    st_save(os.path.join(d, "model.safetensors"), items, dtype)


def write_model(d, cfg, w, case):
    names = param_names(cfg["n_layer"])
    items = []
    for n in names:
        key = n if case.get("prefix", True) else n[len("transformer."):]
        items.append((key, w[n]))
        if case.get("extra") and n.endswith("attn.c_attn.weight"):
            Pn = cfg["n_positions"]
            items.append((key.replace("c_attn.weight", "bias"), np.tril(np.ones((1, 1, Pn, Pn), np.float32))))
            items.append((key.replace("c_attn.weight", "masked_bias"), np.array(-1e4, np.float32)))
    if case.get("extra"):
        items.append(("lm_head.weight", w["transformer.wte.weight"]))
    write_model_dir(d, cfg, items, case.get("dtype", "F32"))


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def write_log(path, log):
    with open(path, "w") as f:
        for r in log:
            f.write(json.dumps({k: r[k] for k in LOG_KEYS}) + "\n")


def fmt_float(x):
    return float(f"{x:.4g}")


def this_family():
    """This module as a model family for build_case / cmd_gen / cmd_check / main, which take the family's
    module (tests/llama_reference.py passes itself) and use its NAME, CASES, CTX_KEY, make_config,
    make_weights, write_model, load_model_params, tensor_names, train, hand_checks, check_plain_vs_hf
    and float32_conditioning (None: not applied)."""
    return sys.modules[__name__]


def tensor_names(cfg):
    """the expected_*.safetensors tensors, in order"""
    return param_names(cfg["n_layer"])


def build_case(case, root, dtype=torch.float64, verbose=True, fam=None):
    """Write inputs + expected outputs of one case of model family fam (default GPT-2) into root/<name>;
    returns the training result."""
    fam = fam or this_family()
    cdir = os.path.join(root, case["name"])
    if os.path.exists(cdir):
        shutil.rmtree(cdir)
    cfg = fam.make_config(case["shape"])
    base_seed = sum(map(ord, case["name"]))
    a = dict(DEFAULTS)
    a.update({k: v for k, v in case["args"].items() if k not in ("gamma", "grad_clip")})
    for attempt in range(30):
        seed = base_seed * 100 + attempt
        w = fam.make_weights(cfg, seed)
        pairs = make_data(cfg, case["data"], seed)
        fam.write_model(os.path.join(cdir, "model"), cfg, w, case)
        write_jsonl(os.path.join(cdir, "data.jsonl"), pairs)
        mdir, dpath = os.path.join(cdir, "model"), os.path.join(cdir, "data.jsonl")
        # pass 1: no clipping, to size the clip threshold and (optionally) choose gamma
        g = case["args"].get("gamma", 0.0)
        # auto_partial: gamma chosen so that the batch of step `partial_step` (default 1) has exactly one
        # pair filtered.  The probe's gamma must leave every pair active before that step (repo/repo++:
        # 0.0 at step 1; dpo-repo: any gamma > 0, as h = s - r = 0 for every pair at step 1, so that
        # step's gradient does not depend on gamma and no dpo-repo pair can be filtered at step 1).
        pstep = case.get("partial_step", 1)
        probe = dict(a, gamma=(case.get("probe_gamma", 0.0) if g == "auto_partial" else g), grad_clip=0.0)
        if g == "auto_partial":
            assert pstep == 1 or a["gamma_schedule"] == "constant"
            probe["gamma_end"] = None
            probe["steps"] = pstep
        r = fam.train(mdir, dpath, probe, dtype)
        if g == "auto_partial":
            # gamma between the two largest margins of that step (M for repo / repo++, h_c - h_r for
            # dpo-repo); with a gamma schedule, gamma_end = gamma + 1.5 so that the others stay active
            if a["loss"] in ("repo", "repo++"):
                Ms = sorted(r["margins"][pstep - 1][1])
            else:
                assert a["loss"] == "dpo-repo", a["loss"]
                Ms = sorted((sc - rf[0]) - (sr - rf[1]) for sc, _, sr, _, rf in r["pair_stats"][pstep - 1])
            g = fmt_float(0.5 * (Ms[-2] + Ms[-1]))
            if a["gamma_schedule"] != "constant":
                a["gamma_end"] = fmt_float(g + 1.5)
            probe = dict(a, gamma=g, grad_clip=0.0)
            r = fam.train(mdir, dpath, probe, dtype)
        norms = [e["grad_norm"] for e in r["log"]]
        clip = case["args"]["grad_clip"]
        # "on": triggers at some steps and not at others (if every step were clipped, Adam's invariance
        # to a constant gradient scale would hide the clipping entirely); "never": enabled but above
        # every norm; "off": disabled (0)
        C = {"off": 0.0, "on": fmt_float(math.sqrt(min(norms) * max(norms))),
             "never": fmt_float(3.0 * max(norms))}[clip]
        a2 = dict(a, gamma=g, grad_clip=C)
        args_str = args_to_str(a2)
        a3 = parse_args_str(args_str)
        r = fam.train(mdir, dpath, a3, dtype)
        ok, why = validate(case, a3, r)
        if ok and dtype == torch.float64 and fam.float32_conditioning:
            ok, why = fam.float32_conditioning(mdir, dpath, a3, r)
        if ok:
            break
        if verbose:
            print(f"  {case['name']}: attempt {attempt} rejected: {why}", file=sys.stderr)
    else:
        raise RuntimeError(f"{case['name']}: no acceptable seed")
    with open(os.path.join(cdir, "args.txt"), "w") as f:
        f.write(args_str + "\n")
    write_log(os.path.join(cdir, "expected_log.jsonl"), r["log"])
    names = fam.tensor_names(cfg)
    st_save(os.path.join(cdir, "expected_grads.safetensors"), [(n, r["grads0"][n]) for n in names])
    st_save(os.path.join(cdir, "expected_params.safetensors"), [(n, r["final"][n]) for n in names])
    fam.hand_checks(case, a3, r, mdir)
    if verbose:
        l0 = r["log"][0]
        print(f"{case['name']}: attempt {attempt} args: {args_str}\n   step1 loss {l0['loss']:.6f} margin "
              f"{l0['margin_mean']:+.4f}±{l0['margin_std']:.4f} acc {l0['acc']:.2f} filt {l0['filtered_frac']:.2f}"
              f" gn {[round(e['grad_norm'], 4) for e in r['log']]}", file=sys.stderr)
    return r


def validate(case, a, r):
    """Reject inputs whose expected outputs sit on a discontinuity (ReLU kink, acc / filtered_frac
    thresholds, clip threshold), where float32 noise in the C trainer could legitimately flip them."""
    if any(e["grad_norm"] == 0 for e in r["log"]):
        return False, "a step with zero gradient (every pair filtered)"
    for s, (gamma, Ms) in enumerate(r["margins"]):
        for M in Ms:
            if abs(M - gamma) < 1e-3:
                return False, f"step {s+1}: |M - gamma| = {abs(M - gamma):.2e}"
            if abs(M) < 1e-4:
                return False, f"step {s+1}: |M| = {abs(M):.2e}"
    C = a["grad_clip"]
    if C > 0:
        for e in r["log"]:
            if abs(e["grad_norm"] / C - 1) < 0.02:
                return False, f"grad_norm {e['grad_norm']} too close to clip {C}"
    if case["args"]["grad_clip"] == "on":
        gns = [e["grad_norm"] for e in r["log"]]
        if not (any(g > C for g in gns) and any(g < C for g in gns)):
            return False, f"clip {C} does not separate the grad norms {gns}"
    if a["loss"] == "repo":
        f0 = r["log"][0]["filtered_frac"]
        if f0 >= 1.0:
            return False, "every pair filtered at step 1"
        if case["args"].get("gamma") == "auto_partial" and not (0 < f0 < 1):
            return False, "auto_partial gamma does not filter a strict subset"
    # every kink (ReLU / min(., 0) argument) of every pair at every step at least 1e-3 away from 0
    # (runs that do not record per-pair statistics, like tests/llama_reference.py's, rely on the margin checks above)
    for s, (st, e) in enumerate(zip(r.get("pair_stats", []), r["log"])):
        for sc, nc, sr, nr, rf in st:
            for k in kink_args(a["loss"], sc, nc, sr, nr, e["gamma"], a["beta"], rf, **hp_of(a)):
                if abs(k) < 1e-3:
                    return False, f"step {s+1}: kink argument {k:.2e}"
    if a["loss"] in FILTERING and a["loss"] != "repo":
        for s, (st, e) in enumerate(zip(r.get("pair_stats", []), r["log"])):
            nf = sum(pair_filtered(a["loss"], sc, nc, sr, nr, e["gamma"], a["beta"], rf, **hp_of(a))
                     for sc, nc, sr, nr, rf in st)
            if nf == len(st):
                return False, f"step {s+1}: every pair filtered"
            if case["args"].get("gamma") == "auto_partial" and s + 1 == case.get("partial_step", 1) and nf == 0:
                return False, f"auto_partial gamma filters no pair at step {s+1}"
    return True, ""


def float32_conditioning(mdir, dpath, a, r):
    """Reject ill-conditioned inputs: the same reference run in float32 must land within a tenth of
    compare.c's tolerances.  What this catches: a gradient entry that is not exactly zero but nearly
    so (|g| ~ 1e-9 by chance cancellation), below float32 noise (~1e-7); Adam's first step
    lr * g / (|g| + 1e-8) turns that noise into an O(lr) move of either sign, which then shifts every
    later margin.  (Exactly-zero entries, e.g. unused wpe rows, stay zero in float32 and are harmless.)"""
    r32 = train(mdir, dpath, a, torch.float32)
    logerr = max(abs(x[k] - y[k]) / (LOG_ATOL + LOG_RTOL * abs(y[k]))
                 for x, y in zip(r32["log"], r["log"]) for k in LOG_KEYS)
    gerr = max(rel_l2(r32["grads0"][n], r["grads0"][n]) for n in r["grads0"])
    _, I = load_model_params(mdir)
    perr = max(param_err(n, r32["final"][n], r["final"][n], I[n])[0] for n in r["final"])
    if logerr > 0.1 or gerr > GRAD_RTOL / 10 or perr > PARAM_RTOL / 10:
        return False, f"ill-conditioned in float32: log err/tol {logerr:.3g}, grads {gerr:.2e}, params {perr:.2e}"
    return True, ""


def check_step1_losses(a, l0):
    """step 1's loss in closed form: DPO log 2, IPO 1/(4 beta^2), SFT -chosen_logp"""
    if a["loss"] == "dpo":
        assert abs(l0["loss"] - math.log(2)) < 1e-12, l0["loss"]
    if a["loss"] == "ipo":
        assert abs(l0["loss"] - (1 / (2 * a["beta"])) ** 2) < 1e-12, l0["loss"]
    if a["loss"] == "sft":
        assert abs(l0["loss"] + l0["chosen_logp"]) < 1e-12


def hand_checks(case, a, r, mdir):
    """Checks of the reference against hand reasoning / an independent computation."""
    l0 = r["log"][0]
    check_step1_losses(a, l0)
    for e, (gamma, Ms) in zip(r["log"], r["margins"]):
        Mn = np.array(Ms)
        if a["loss"] == "repo":
            assert abs(e["loss"] - np.maximum(gamma - Mn, 0).mean()) < 1e-12
        if a["loss"] == "simpo":
            assert abs(e["loss"] - np.mean(np.log1p(np.exp(-a["beta"] * (Mn - gamma))))) < 1e-12
        assert abs(e["margin_mean"] - (e["chosen_logp"] - e["rejected_logp"])) < 1e-12
    # closed forms at step 1, where the policy is the reference (h = s - r = 0 for every pair)
    st0 = r["pair_stats"][0]
    if a["loss"] == "rdpo":
        want = np.mean([math.log1p(math.exp(a["alpha"] * (nc - nr))) for _, nc, _, nr, _ in st0])
        assert abs(l0["loss"] - want) < 1e-12, (l0["loss"], want)
    if a["loss"] == "dpo-repo":
        assert l0["gamma"] > 0 and abs(l0["loss"] - l0["gamma"]) < 1e-12, l0
    if a["loss"] == "dpo-repo++":
        assert l0["gamma"] > 0 and abs(l0["loss"] - math.log1p(math.exp(l0["gamma"]))) < 1e-12, l0
    # every step's batch loss = mean of the losses written again in plain math (pair_loss_np), and at
    # step 1 torch's derivatives of each pair loss w.r.t. s_c, s_r = central differences of pair_loss_np
    hp = hp_of(a)
    for s, (st, e) in enumerate(zip(r["pair_stats"], r["log"])):
        want = np.mean([pair_loss_np(a["loss"], sc, nc, sr, nr, e["gamma"], a["beta"], rf, **hp)
                        for sc, nc, sr, nr, rf in st])
        assert abs(e["loss"] - want) < 1e-12 * max(1.0, abs(want)), (s + 1, e["loss"], want)
        if s > 0:
            continue
        for sc, nc, sr, nr, rf in st:
            tc = torch.tensor(sc, dtype=torch.float64, requires_grad=True)
            tr = torch.tensor(sr, dtype=torch.float64, requires_grad=True)
            pair_loss(a["loss"], tc, nc, tr, nr, e["gamma"], a["beta"], rf, **hp).backward()
            fd_eps = 1e-5
            f = lambda x, y: pair_loss_np(a["loss"], x, nc, y, nr, e["gamma"], a["beta"], rf, **hp)
            dc = (f(sc + fd_eps, sr) - f(sc - fd_eps, sr)) / (2 * fd_eps)
            dr = (f(sc, sr + fd_eps) - f(sc, sr - fd_eps)) / (2 * fd_eps)
            grad = lambda t: 0.0 if t.grad is None else t.grad.item()   # sft does not read s_r
            for got, fd in ((grad(tc), dc), (grad(tr), dr)):
                assert abs(got - fd) < 1e-7 * max(1.0, abs(fd)), (a["loss"], got, fd)
    # step 1 per-token log-probs: independent computation with HF's own labels-loss
    # (mean NLL over response tokens, prompt labels = -100) == -chosen_logp, for every pair
    if HAVE_HF:
        cfg, np0 = load_model_params(mdir)
        m = Model(cfg, np0, torch.float64, use_hf=True)
        idx = batch_indices(0, len(r["data"]), a["batch_pairs"])
        lc = []
        with torch.no_grad():
            for i in idx:
                pr, c, _ = r["data"][i]
                ids = torch.tensor([pr + c])
                labels = ids.clone()
                labels[0, :len(pr)] = -100
                loss = m._hf_model(ids, labels=labels).loss
                lc.append(-loss.item())
        assert abs(np.mean(lc) - l0["chosen_logp"]) < 1e-10, (np.mean(lc), l0["chosen_logp"])
    # truncation by hand for the truncation case
    if a.get("max_len") is not None:
        raw = [json.loads(l) for l in open(os.path.join(os.path.dirname(mdir), "data.jsonl"))]
        mpl = a["max_prompt_len"] if a["max_prompt_len"] is not None else a["max_len"] // 2
        n_cut = 0
        for p, (pr, c, rj) in zip(raw, r["data"]):
            P0, C0, R0 = p["prompt_ids"], p["chosen_ids"], p["rejected_ids"]
            if len(P0) + max(len(C0), len(R0)) <= a["max_len"]:
                assert (pr, c, rj) == (P0, C0, R0)
                continue
            n_cut += 1
            assert pr == P0[-min(len(P0), mpl):]
            assert c == C0[:a["max_len"] - len(pr)] and rj == R0[:a["max_len"] - len(pr)]
            assert len(pr) + max(len(c), len(rj)) <= a["max_len"]
        assert n_cut >= 3, "truncation case must truncate"


# ----------------------------------------------------------------------------
# comparison (numpy mirror of compare.c)

def rel_l2(a, b):
    nb = float(np.linalg.norm(b.astype(np.float64)))
    d = float(np.linalg.norm(a.astype(np.float64) - b.astype(np.float64)))
    return d / nb if nb > 0 else d


def cmp_log(a_path, b_path, atol=LOG_ATOL, rtol=LOG_RTOL):
    A = [json.loads(l) for l in open(a_path) if l.strip()]
    B = [json.loads(l) for l in open(b_path) if l.strip()]
    bad = []
    if len(A) != len(B):
        bad.append(f"{len(A)} log lines, expected {len(B)}")
    for i, (x, y) in enumerate(zip(A, B)):
        for k in LOG_KEYS:
            if k not in x:
                bad.append(f"step {i+1} {k}: missing")
            elif not abs(x[k] - y[k]) <= atol + rtol * abs(y[k]):
                bad.append(f"step {i+1} {k}: {x[k]!r} vs {y[k]!r}")
    return bad


def param_err(name, a, b, init):
    """Error of trained parameter tensor a against expected b, relative to how far b moved from init:
    ||a - b|| / ||b - init||.  The key slice [E, 2E) of attn.c_attn.bias has an exactly-zero true
    gradient (softmax is invariant to the constant q.b_k added to every score of a query), so float
    rounding noise of ~1e-9 gets normalized by Adam into steps up to ~lr each: in float32 a correct
    trainer moves those entries by O(lr) at random.  They are excluded from the ratio and instead must
    satisfy max|a_k - init_k| <= 2 * max|b - init| over the rest of the tensor (Adam's per-step update of
    a no-decay parameter is bounded by ~lr, so nothing can legitimately move further).
    -> (err, kbias_ok)"""
    a, b, init = (np.asarray(x, np.float64).ravel() for x in (a, b, init))
    keep = np.ones(a.size, bool)
    kb_ok = True
    if name.endswith("attn.c_attn.bias"):
        E = a.size // 3
        keep[E:2 * E] = False
        bound = 2.0 * np.abs(b[keep] - init[keep]).max()
        kb_ok = bool(np.abs(a[~keep] - init[~keep]).max() <= bound)
    den = float(np.linalg.norm(b[keep] - init[keep]))
    return float(np.linalg.norm(a[keep] - b[keep])) / max(den, 1e-30), kb_ok


def cmp_st(a_path, b_path, rtol, init_path=None):
    A = {k: v[1] for k, v in st_load(a_path).items()}
    B = {k: v[1] for k, v in st_load(b_path).items()}
    I = {k: v[1] for k, v in st_load(init_path).items()} if init_path else None
    bad, worst = [], 0.0
    for n, b in B.items():
        if n not in A:
            bad.append(f"{n}: missing")
            continue
        if A[n].shape != b.shape:
            bad.append(f"{n}: shape {A[n].shape} vs {b.shape}")
            continue
        if I is not None:
            i0 = I.get(n, I.get(n[len("transformer."):]))
            e, kb_ok = param_err(n, A[n], b, i0)
            if not kb_ok:
                bad.append(f"{n}: key-bias slice moved too far")
        else:
            e = rel_l2(A[n], b)
        worst = max(worst, e)
        if not e <= rtol:
            bad.append(f"{n}: rel err {e:.3e} > {rtol:g}")
    for n in A:
        if n not in B:
            bad.append(f"{n}: unexpected tensor")
    return bad, worst


# ----------------------------------------------------------------------------
# PASS/FAIL lines (cmd_check and tests/test_*.py) and running the binary under test (tests/test_*.py
# only: the reference never runs it)

REPO = os.environ.get("REPO", os.path.join(os.path.dirname(HERE), "repo"))


class Tally:
    """res = Tally(); res(ok, what, detail) prints "PASS what" or "FAIL what: detail", counts it and
    returns ok; res.summary() prints "N passed, M failed" and returns the exit status (1 on a failure)."""

    def __init__(self):
        self.npass = self.nfail = 0

    def __call__(self, ok, what, detail=""):
        if ok:
            self.npass += 1
            print(f"PASS {what}")
        else:
            self.nfail += 1
            print(f"FAIL {what}: {detail}")
        return ok

    def summary(self):
        print(f"{self.npass} passed, {self.nfail} failed")
        return 1 if self.nfail else 0


def run(cmd):
    """-> (exit status, stdout, last line of stderr)"""
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stdout, (p.stderr.strip().splitlines() or [""])[-1]


def repo_built(res):
    """Is $REPO (default ./repo) executable? A FAIL line through res when not."""
    ok = os.access(REPO, os.X_OK)
    if not ok:
        res(False, "repo binary", f"{REPO} not built (make repo)")
    return ok


# ----------------------------------------------------------------------------
# commands

def cmd_gen(outdir, dtype, verbose=True, fam=None):
    fam = fam or this_family()
    os.makedirs(outdir, exist_ok=True)
    # the plain forward must agree with HF on every case's model (also proves the loader)
    for case in fam.CASES:
        build_case(case, outdir, dtype, verbose, fam)
        cfg, np0 = fam.load_model_params(os.path.join(outdir, case["name"], "model"))
        seqs = [p["prompt_ids"] + p["chosen_ids"] for p in
                (json.loads(l) for l in open(os.path.join(outdir, case["name"], "data.jsonl")))]
        fam.check_plain_vs_hf(cfg, np0, [s[:cfg[fam.CTX_KEY]] for s in seqs[:3]])
    with open(os.path.join(outdir, "README"), "w") as f:
        f.write(f"Generated by tests/{fam.NAME} gen; do not edit by hand "
                f"(tests/{fam.NAME} check verifies these files).\n")


def cmd_check(golden, fam=None):
    fam = fam or this_family()
    tmp = tempfile.mkdtemp(prefix="repo_golden_check_")
    res = Tally()
    try:
        cmd_gen(tmp, torch.float64, verbose=False, fam=fam)
        want = sorted(c["name"] for c in fam.CASES)
        have = sorted(d for d in os.listdir(golden) if os.path.isdir(os.path.join(golden, d)))
        for extra in sorted(set(have) - set(want)):
            res(False, f"{extra} case", f"not produced by {fam.NAME} (stale?)")
        for name in want:
            g, t = os.path.join(golden, name), os.path.join(tmp, name)
            if name not in have:
                res(False, f"{name} case", "missing from golden dir")
                continue
            for f in ("model/config.json", "model/model.safetensors", "data.jsonl", "args.txt"):
                pa, pb = os.path.join(g, f), os.path.join(t, f)
                same = os.path.exists(pa) and open(pa, "rb").read() == open(pb, "rb").read()
                res(same, f"{name} input {f}", "differs from regenerated")
            gt = lambda f: (os.path.join(g, f), os.path.join(t, f))  # noqa: E731
            for what, problems in (
                    ("log", lambda: cmp_log(*gt("expected_log.jsonl"), CHECK_LOG_ATOL, CHECK_LOG_RTOL)),
                    ("grads", lambda: cmp_st(*gt("expected_grads.safetensors"), CHECK_GRAD_RTOL)[0]),
                    ("params", lambda: cmp_st(*gt("expected_params.safetensors"), CHECK_PARAM_RTOL,
                                              os.path.join(t, "model", "model.safetensors"))[0])):
                try:
                    bad = problems()
                    res(not bad, f"{name} {what}", "; ".join(bad[:4]))
                except Exception as e:  # noqa: BLE001
                    res(False, f"{name} {what}", repr(e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return res.summary()


def cmd_fp32_error(golden, fam=None):
    """Diagnostic: how far is a float32 run of the same reference from the float64 goldens?
    This is what a correct float32 C trainer can be expected to reach (used to set tolerances)."""
    fam = fam or this_family()
    for case in fam.CASES:
        cdir = os.path.join(golden, case["name"])
        a = parse_args_str(open(os.path.join(cdir, "args.txt")).read())
        r = fam.train(os.path.join(cdir, "model"), os.path.join(cdir, "data.jsonl"), a, torch.float32)
        exp = [json.loads(l) for l in open(os.path.join(cdir, "expected_log.jsonl"))]
        logerr = max(abs(x[k] - y[k]) / (LOG_ATOL + LOG_RTOL * abs(y[k]))
                     for x, y in zip(r["log"], exp) for k in LOG_KEYS)
        G = {k: v[1] for k, v in st_load(os.path.join(cdir, "expected_grads.safetensors")).items()}
        Pp = {k: v[1] for k, v in st_load(os.path.join(cdir, "expected_params.safetensors")).items()}
        _, I = fam.load_model_params(os.path.join(cdir, "model"))
        gerr = max(rel_l2(r["grads0"][n], G[n]) for n in G)
        perr = max(param_err(n, r["final"][n], Pp[n], I[n])[0] for n in Pp)
        assert all(param_err(n, r["final"][n], Pp[n], I[n])[1] for n in Pp)
        print(f"{case['name']:28s} log err/tol {logerr:.3f}  grad rel {gerr:.2e}  param rel {perr:.2e}")


def main(argv, fam=None):
    fam = fam or this_family()
    if len(argv) >= 2 and argv[0] == "gen":
        dtype = torch.float32 if "--fp32" in argv else torch.float64
        cmd_gen(argv[1], dtype, fam=fam)
        return 0
    if len(argv) >= 2 and argv[0] == "check":
        return cmd_check(argv[1], fam)
    if len(argv) >= 2 and argv[0] == "fp32-error":
        cmd_fp32_error(argv[1], fam)
        return 0
    print(fam.__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
