#!/usr/bin/env python3
"""Expected values for the exercises' focused checks (make check-exercise NAME=X), from PyTorch.

    python tests/exercises/expected.py gen [DIR]     write DIR/<exercise>.json (default tests/exercises/expected)
    python tests/exercises/expected.py check [DIR]   regenerate (in memory) and compare with the files in DIR

Written from the math in README.md and docs/exercises/*.md, not from repo.c: every expected output is
torch autograd, torch.optim.AdamW or a formula from the README, in float64, on inputs that are exactly
representable in float32 where the C function takes floats. Inputs come from numpy's RandomState with
fixed seeds (a stable stream), so they are identical on every machine. tests/exercises/check.c reads
the files and never computes an expected value itself.

Each file: {"exercise": NAME, "cases": [...]}, one case per line; a case holds its inputs, its expected
outputs and a "note" (what it is for, shown when it fails). Backward exercises get "prefill_*" values:
the C functions accumulate (+=) into their gradient buffers, so expected = prefill + gradient.
"""
import json
import math
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # tiny kernels: don't let torch's pool spin on a busy machine
import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIR = os.path.join(HERE, "expected")
# `check`: a fresh float64 regeneration against the committed files. Inputs must be identical; outputs
# may differ by summation order (~1e-15), far inside check.c's tolerances.
CHECK_RTOL, CHECK_ATOL = 1e-10, 1e-13


def f32(a):
    """float32-representable values as a list of Python floats (exact doubles)"""
    return [float(x) for x in np.asarray(a, dtype=np.float32).reshape(-1)]


def f64(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def t64(lst, shape=None):
    t = torch.tensor(lst, dtype=torch.float64)
    return t.reshape(shape) if shape is not None else t


# ----------------------------------------------------------------------------
# the pair losses: inputs s_c, s_r (summed response log-probs), n_c, n_r (lengths), ref_c, ref_r
# (the frozen reference model's sums), gamma, beta; outputs the loss and dL/ds_c, dL/ds_r

def pair_loss(name, c):
    s_c = torch.tensor(c["s_c"], dtype=torch.float64, requires_grad=True)
    s_r = torch.tensor(c["s_r"], dtype=torch.float64, requires_grad=True)
    M = s_c / c["n_c"] - s_r / c["n_r"]
    if name == "loss_repo":        # ReLU(gamma - M); torch's relu has gradient 0 at 0: M = gamma is filtered
        L = torch.relu(c["gamma"] - M)
    elif name == "loss_simpo":     # -log sigmoid(beta (M - gamma))
        L = -F.logsigmoid(c["beta"] * (M - c["gamma"]))
    elif name == "loss_dpo":       # -log sigmoid(beta [(s_c - r_c) - (s_r - r_r)])
        L = -F.logsigmoid(c["beta"] * ((s_c - c["ref_c"]) - (s_r - c["ref_r"])))
    L.backward()
    return {"loss": L.item(), "d_sc": s_c.grad.item(), "d_sr": s_r.grad.item()}


def loss_case(rng, name, note, **kw):
    n_c, n_r = int(rng.randint(1, 41)), int(rng.randint(1, 41))
    c = {"s_c": float(-rng.uniform(0.05, 3.0) * n_c), "s_r": float(-rng.uniform(0.05, 3.0) * n_r),
         "n_c": n_c, "n_r": n_r, "ref_c": 0.0, "ref_r": 0.0, "gamma": 0.0, "beta": 0.0}
    if name in ("loss_repo", "loss_simpo"):
        c["gamma"] = float(rng.choice([0.0, 0.1, 0.2, 0.5, 1.0, 1.5]))
    if name in ("loss_simpo", "loss_dpo"):
        c["beta"] = float(rng.choice([0.1, 0.5, 1.0, 2.5, 10.0]))
    if name == "loss_dpo":
        c["ref_c"] = float(c["s_c"] + rng.normal(0, 3))
        c["ref_r"] = float(c["s_r"] + rng.normal(0, 3))
    c.update(kw)
    c["note"] = note
    c.update(pair_loss(name, c))
    return c


def gen_loss_repo():
    rng = np.random.RandomState(101)
    cases = [loss_case(rng, "loss_repo", "a random pair") for _ in range(24)]
    # dyadic log-probs and power-of-two lengths: M is exact in any order of operations
    cases += [
        loss_case(rng, "loss_repo", "the kink: M = gamma exactly, a filtered pair (zero loss, zero gradient)",
                  s_c=-1.5, n_c=2, s_r=-5.0, n_r=4, gamma=0.5),
        loss_case(rng, "loss_repo", "the kink at gamma = 0: M = 0 exactly is filtered",
                  s_c=-3.0, n_c=4, s_r=-6.0, n_r=8, gamma=0.0),
        loss_case(rng, "loss_repo", "M a hair below gamma: still active, full gradient",
                  s_c=-1.5, n_c=2, s_r=-5.0, n_r=4, gamma=0.5 + 1e-9),
        loss_case(rng, "loss_repo", "M above gamma: filtered", s_c=-2.0, n_c=4, s_r=-24.0, n_r=8, gamma=0.5),
        loss_case(rng, "loss_repo", "M far below gamma, chosen worse than rejected", s_c=-40.0, n_c=8, s_r=-2.0, n_r=4, gamma=1.0),
        loss_case(rng, "loss_repo", "one-token responses", s_c=-0.75, n_c=1, s_r=-1.25, n_r=1, gamma=1.0),
        loss_case(rng, "loss_repo", "different lengths: the gradient divides by each response's own length",
                  s_c=-12.0, n_c=3, s_r=-35.0, n_r=7, gamma=2.0),
        loss_case(rng, "loss_repo", "a negative gamma", s_c=-6.0, n_c=2, s_r=-4.0, n_r=2, gamma=-0.5),
    ]
    return cases


def gen_loss_simpo():
    rng = np.random.RandomState(102)
    cases = [loss_case(rng, "loss_simpo", "a random pair") for _ in range(24)]
    cases += [
        loss_case(rng, "loss_simpo", "M = gamma: loss log 2, dL/dM = -beta/2", s_c=-1.5, n_c=2, s_r=-5.0, n_r=4, gamma=0.5, beta=2.5),
        loss_case(rng, "loss_simpo", "beta (M - gamma) = -800: log(1 + exp(800)) overflows; the loss is 800",
                  s_c=-1.5, n_c=2, s_r=-1.8, n_r=4, gamma=0.5, beta=1000.0),
        loss_case(rng, "loss_simpo", "beta (M - gamma) = +800: loss and gradient underflow to 0, not NaN",
                  s_c=-1.5, n_c=2, s_r=-8.2, n_r=4, gamma=0.5, beta=1000.0),
        loss_case(rng, "loss_simpo", "beta (M - gamma) = -40: the gradient is -beta / n_c to 1e-17",
                  s_c=-3.0, n_c=2, s_r=-2.0, n_r=2, gamma=0.5, beta=40.0),
        loss_case(rng, "loss_simpo", "M above gamma: SimPO does not filter, a small gradient remains",
                  s_c=-2.0, n_c=4, s_r=-24.0, n_r=8, gamma=0.5, beta=2.5),
        loss_case(rng, "loss_simpo", "different lengths", s_c=-12.0, n_c=3, s_r=-35.0, n_r=7, gamma=1.0, beta=2.0),
    ]
    return cases


def gen_loss_dpo():
    rng = np.random.RandomState(103)
    cases = [loss_case(rng, "loss_dpo", "a random pair") for _ in range(24)]
    cases += [
        loss_case(rng, "loss_dpo", "the first step: policy = reference, loss log 2, dL/ds = -/+ beta/2",
                  s_c=-17.25, n_c=9, s_r=-21.5, n_r=12, ref_c=-17.25, ref_r=-21.5, beta=0.1),
        loss_case(rng, "loss_dpo", "beta x = -900: log(1 + exp(900)) overflows; the loss is 900",
                  s_c=-1000.0, n_c=30, s_r=-100.0, n_r=30, ref_c=-100.0, ref_r=-100.0, beta=1.0),
        loss_case(rng, "loss_dpo", "beta x = +900: loss and gradient underflow to 0, not NaN",
                  s_c=-100.0, n_c=30, s_r=-1000.0, n_r=30, ref_c=-100.0, ref_r=-100.0, beta=1.0),
        loss_case(rng, "loss_dpo", "summed, not mean, log-probs: the lengths play no part",
                  s_c=-10.0, n_c=1, s_r=-30.0, n_r=40, ref_c=-12.0, ref_r=-25.0, beta=0.5),
    ]
    return cases


# ----------------------------------------------------------------------------
# margin: per-token log-probs at the response positions -> per-sequence sums -> M per pair

def gen_margin():
    rng = np.random.RandomState(104)
    cases = []
    specs = [  # (pairs, longest response, order, note)
        (1, 6, "batch", "one pair"),
        (3, 12, "batch", "three pairs, responses of different lengths"),
        (4, 1, "batch", "one-token responses"),
        (2, 40, "shuffled", "response positions in no particular order: sum by resp_seq, not by position"),
        (8, 30, "batch", "a batch of 8 pairs, ~240 positions: sums in double"),
        (2, 9, "batch", "the chosen response much longer than the rejected one"),
    ]
    for n_pairs, longest, order, note in specs:
        B, V = 2 * n_pairs, 13
        n_prompt = [int(rng.randint(1, 8)) for _ in range(B)]
        n_resp = [int(rng.randint(1, longest + 1)) for _ in range(B)]
        if note.startswith("the chosen"):
            n_resp = [longest, 1, longest - 2, 2]
        T = max(p + n for p, n in zip(n_prompt, n_resp))
        # the model's per-token log-probs of the next token, at every position, and the response mask
        logits = torch.tensor(rng.normal(0, 2, size=(B, T, V)), dtype=torch.float64)
        targets = torch.tensor(rng.randint(0, V, size=(B, T)))
        logp_all = torch.log_softmax(logits, -1).gather(-1, targets[..., None])[..., 0]
        logp_all = t64(f32(logp_all), (B, T))   # the C trainer's logp are float32
        mask = torch.zeros(B, T, dtype=torch.float64)
        for b in range(B):   # position t predicts token t + 1: the response is predicted at P-1 .. P+n-2
            mask[b, n_prompt[b] - 1:n_prompt[b] - 1 + n_resp[b]] = 1
        seq_logp = (logp_all * mask).sum(-1)
        ell = seq_logp / mask.sum(-1)
        M = ell[0::2] - ell[1::2]
        # the trainer's list of response positions: logp[r] belongs to sequence resp_seq[r]
        rows = [(b, t) for b in range(B) for t in range(T) if mask[b, t] > 0]
        if order == "shuffled":
            rows = [rows[i] for i in rng.permutation(len(rows))]
        cases.append({"note": note, "B": B, "R": len(rows),
                      "logp": [float(logp_all[b, t]) for b, t in rows], "resp_seq": [b for b, _ in rows],
                      "n_resp": n_resp, "seq_logp": f64(seq_logp), "M": f64(M)})
    return cases


# ----------------------------------------------------------------------------
# gamma_at: README "Schedules": p = s / (N - 1) (0 when N = 1); linear g0 + (g1 - g0) p;
# cosine g1 + (g0 - g1) (1 + cos(pi p)) / 2; constant g0

def gamma_formula(s, N, g0, g1, kind):
    p = s / (N - 1) if N > 1 else 0.0
    if kind == "linear":
        return g0 + (g1 - g0) * p
    if kind == "cosine":
        return g1 + (g0 - g1) * (1 + math.cos(math.pi * p)) / 2
    return g0


def gen_gamma_schedule():
    cases = []
    for kind in ("constant", "linear", "cosine"):
        for g0, g1 in ((1.0, 0.2), (0.2, 1.0), (0.5, 0.5), (0.0, -1.0)):
            for N in (1, 2, 5, 51):
                for s in sorted({0, 1, N // 2, N - 2, N - 1}):
                    if not 0 <= s < N:
                        continue
                    note = "the first step: gamma" if s == 0 else "the last step: gamma-end" if s == N - 1 else "a middle step"
                    if N == 1:
                        note = "a run of one step: p = 0, gamma"
                    if kind == "constant":
                        note += " (constant: always gamma)"
                    cases.append({"note": note, "s": s, "n_steps": N, "g0": g0, "g1": g1, "kind": kind,
                                  "gamma": gamma_formula(s, N, g0, g1, kind)})
    return cases


# ----------------------------------------------------------------------------
# adamw_update: torch.optim.AdamW (betas 0.9, 0.999, eps 1e-8) with two parameter groups, the first
# n_decay elements (matrices) with weight_decay and the rest (biases, norm gains) without

def adamw_case(note, params, grads, m, v, n_decay, lr, wd, t, nan_at=()):
    p32, g32, m32, v32 = f32(params), f32(grads), f32(m), f32(v)
    c = {"note": note, "n": len(p32), "n_decay": n_decay, "lr": f32([lr])[0], "weight_decay": f32([wd])[0], "t": t,
         "params": p32, "grads": g32, "m": m32, "v": v32, "nan_grads_at": list(nan_at)}
    P = torch.tensor(p32, dtype=torch.float64)
    G = torch.tensor(g32, dtype=torch.float64)
    for i in nan_at:
        G[i] = float("nan")
    groups, state = [], []
    for lo, hi, decay in ((0, n_decay, c["weight_decay"]), (n_decay, len(p32), 0.0)):
        if hi > lo:
            w = torch.nn.Parameter(P[lo:hi].clone())
            w.grad = G[lo:hi].clone()
            groups.append({"params": [w], "weight_decay": decay})
            state.append((w, lo, hi))
    opt = torch.optim.AdamW(groups, lr=c["lr"], betas=(0.9, 0.999), eps=1e-8)
    for w, lo, hi in state:   # the moments after t - 1 steps
        opt.state[w] = {"step": torch.tensor(float(t - 1)),
                        "exp_avg": torch.tensor(m32[lo:hi], dtype=torch.float64),
                        "exp_avg_sq": torch.tensor(v32[lo:hi], dtype=torch.float64)}
    opt.step()
    new_p = torch.cat([w.detach() for w, _, _ in state])
    new_m = torch.cat([opt.state[w]["exp_avg"] for w, _, _ in state])
    new_v = torch.cat([opt.state[w]["exp_avg_sq"] for w, _, _ in state])
    # the contract beyond torch: an update that makes any parameter non-finite (in float32) is refused,
    # the parameters keep their values, and the return value counts the non-finite ones
    bad = int((~torch.isfinite(new_p.float())).sum())
    c["n_bad"] = bad
    c["params_after"] = p32 if bad else f64(new_p)
    if not bad:
        c["m_after"], c["v_after"] = f64(new_m), f64(new_v)
    return c


def gen_adamw():
    rng = np.random.RandomState(105)
    cases = []

    def rnd(n, scale):
        return rng.normal(0, scale, size=n)

    n = 12
    zeros = np.zeros(n)
    cases.append(adamw_case("t = 1: bias correction makes the first step lr * sign(g) (plus decay)",
                            rnd(n, 0.5), rnd(n, 1e-2), zeros, zeros, 8, 1e-2, 0.1, 1))
    cases.append(adamw_case("t = 1 without weight decay", rnd(n, 0.5), rnd(n, 1.0), zeros, zeros, 8, 1e-3, 0.0, 1))
    cases.append(adamw_case("t = 2, moments from step 1", rnd(n, 0.5), rnd(n, 0.1), rnd(n, 0.01),
                            np.abs(rnd(n, 1e-4)), 8, 1e-2, 0.1, 2))
    cases.append(adamw_case("t = 10", rnd(n, 0.5), rnd(n, 0.1), rnd(n, 0.03), np.abs(rnd(n, 1e-3)), 8, 5e-3, 0.5, 10))
    cases.append(adamw_case("t = 1000: the bias corrections are ~1 (0.9^1000 underflows)", rnd(n, 0.5), rnd(n, 0.1),
                            rnd(n, 0.05), np.abs(rnd(n, 1e-2)), 8, 1e-2, 0.1, 1000))
    cases.append(adamw_case("weight decay on the matrices only: the first 4 of 12 (n_decay = 4)", rnd(n, 1.0),
                            rnd(n, 0.1), rnd(n, 0.02), np.abs(rnd(n, 1e-3)), 4, 0.1, 0.5, 3))
    cases.append(adamw_case("n_decay = 0: no tensor decays", rnd(n, 1.0), rnd(n, 0.1), zeros, zeros, 0, 1e-2, 0.5, 1))
    cases.append(adamw_case("n_decay = n: every element decays", rnd(n, 1.0), rnd(n, 0.1), zeros, zeros, n, 1e-2, 0.5, 1))
    g = rnd(n, 1.0)
    g[[1, 5, 9]] = 0.0
    g[[2, 6]] = 1e-10
    cases.append(adamw_case("zero and tiny (1e-10) gradients: eps = 1e-8 is added to sqrt(v-hat), outside the sqrt",
                            rnd(n, 0.5), g, rnd(n, 0.01), np.abs(rnd(n, 1e-6)), 8, 1e-2, 0.1, 5))
    cases.append(adamw_case("lr = 0: the parameters stay, the moments still move", rnd(n, 0.5), rnd(n, 0.1), rnd(n, 0.01),
                            np.abs(rnd(n, 1e-4)), 8, 0.0, 0.1, 4))
    cases.append(adamw_case("a buffer of one element", rnd(1, 0.5), rnd(1, 0.1), zeros[:1], zeros[:1], 1, 1e-2, 0.1, 1))
    cases.append(adamw_case("a larger buffer (300 elements, 200 decayed)", rnd(300, 0.5), rnd(300, 0.1), rnd(300, 0.01),
                            np.abs(rnd(300, 1e-4)), 200, 1e-3, 0.01, 7))
    cases.append(adamw_case("a NaN gradient: the update is refused, every parameter keeps its value, the return value counts 1",
                            rnd(n, 0.5), rnd(n, 0.1), zeros, zeros, 8, 1e-2, 0.1, 1, nan_at=(3,)))
    return cases


# ----------------------------------------------------------------------------
# the backward passes: torch autograd of sum(out * dout) for the layer's forward

def prefill(rng, n):
    return f32(rng.uniform(-1, 1, size=n))


def gen_layernorm_backward():
    rng = np.random.RandomState(106)
    cases = []
    specs = [(1, 1, 1e-5, "C = 1: x - mean is 0, so dinp is 0"), (1, 6, 1e-5, "one row"), (3, 5, 1e-5, "a few rows"),
             (4, 16, 1e-6, "eps 1e-6"), (2, 64, 1e-5, "64 channels"), (5, 8, 1e-5, "a constant row (variance 0) and a zero row of dout"),
             (3, 7, 1e-5, "inputs far from 0 (offset 20, scale 3)")]
    for N, C, eps, note in specs:
        x = rng.normal(0, 1, size=(N, C))
        if "offset" in note:
            x = 20 + 3 * x
        if "constant" in note:
            x[1, :] = 0.75
        inp = t64(f32(x), (N, C)).requires_grad_()
        w = t64(f32(rng.normal(1, 0.5, size=C))).requires_grad_()
        b = t64(f32(rng.normal(0, 0.5, size=C))).requires_grad_()
        dout_np = rng.normal(0, 1, size=(N, C))
        if "zero row" in note:
            dout_np[3, :] = 0
        dout = t64(f32(dout_np), (N, C))
        out = F.layer_norm(inp, (C,), w, b, eps)
        (out * dout).sum().backward()
        mean = inp.detach().mean(-1)
        rstd = 1 / torch.sqrt(inp.detach().var(-1, unbiased=False) + eps)
        pre = [prefill(rng, N * C), prefill(rng, C), prefill(rng, C)]
        cases.append({"note": note, "N": N, "C": C, "eps": eps, "inp": f64(inp), "w": f64(w), "b": f64(b),
                      "mean": f32(mean), "rstd": f32(rstd), "dout": f64(dout),
                      "prefill_dinp": pre[0], "prefill_dw": pre[1], "prefill_db": pre[2],
                      "dinp": f64(t64(pre[0]) + inp.grad.reshape(-1)), "dw": f64(t64(pre[1]) + w.grad),
                      "db": f64(t64(pre[2]) + b.grad)})
    return cases


def gen_matmul_backward():
    rng = np.random.RandomState(107)
    cases = []
    specs = [(1, 1, 1, True, "N = C = OC = 1"), (4, 3, 5, True, "a small product"), (7, 16, 9, True, "rows 0 and 3 of dout are zero (filtered pairs, prompt positions)"),
             (6, 8, 40, False, "no bias (dbias is NULL: the output head)"), (5, 12, 7, True, "dout all zero: nothing changes"),
             (13, 33, 17, True, "odd sizes")]
    for N, C, OC, bias, note in specs:
        inp = t64(f32(rng.normal(0, 1, size=(N, C))), (N, C)).requires_grad_()
        W = t64(f32(rng.normal(0, 0.5, size=(OC, C))), (OC, C)).requires_grad_()
        bvec = t64(f32(rng.normal(0, 0.5, size=OC))).requires_grad_()
        d = rng.normal(0, 1, size=(N, OC))
        if "zero (filtered" in note:
            d[[0, 3], :] = 0
        if "all zero" in note:
            d[:] = 0
        dout = t64(f32(d), (N, OC))
        out = inp @ W.T + (bvec if bias else 0)
        (out * dout).sum().backward()
        pre = [prefill(rng, N * C), prefill(rng, OC * C), prefill(rng, OC) if bias else []]
        c = {"note": note, "N": N, "C": C, "OC": OC, "has_bias": bias, "inp": f64(inp), "weight": f64(W),
             "dout": f64(dout), "prefill_dinp": pre[0], "prefill_dweight": pre[1], "prefill_dbias": pre[2],
             "dinp": f64(t64(pre[0]) + inp.grad.reshape(-1)), "dweight": f64(t64(pre[1]) + W.grad.reshape(-1)),
             "dbias": f64(t64(pre[2]) + bvec.grad) if bias else []}
        cases.append(c)
    return cases


def attention_reference(qkv, B, T, NH, NKV, hd):
    """causal softmax attention; query head h reads key/value head h // (NH / NKV). -> out, P"""
    q, k, v = qkv.reshape(B, T, NH + 2 * NKV, hd).split([NH, NKV, NKV], dim=2)
    group = NH // NKV
    k = k.repeat_interleave(group, dim=2)   # (B, T, NH, hd): query heads g*group .. share kv head g
    v = v.repeat_interleave(group, dim=2)
    q, k, v = (x.transpose(1, 2) for x in (q, k, v))   # (B, NH, T, hd)
    scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    P = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)
    out = (P @ v).transpose(1, 2).reshape(B, T, NH * hd)
    return out, P


def gen_attention_backward():
    rng = np.random.RandomState(108)
    cases = []
    specs = [(1, 1, 1, 1, 1, 1.0, "T = 1, one head of size 1: P = 1"), (2, 1, 4, 2, 3, 1.0, "T = 1 with GQA (2 query heads per kv head)"),
             (2, 5, 4, 4, 3, 1.0, "multi-head attention (NKV = NH)"), (2, 5, 4, 2, 3, 1.0, "GQA: 2 query heads per kv head"),
             (1, 7, 6, 2, 4, 1.0, "GQA: 3 query heads per kv head"), (2, 6, 3, 1, 2, 1.0, "multi-query attention (NKV = 1)"),
             (2, 6, 4, 2, 8, 1.0, "sequence 0's dout is zero (its pair was filtered)"),
             (1, 9, 2, 1, 4, 3.0, "large scores: peaked probabilities")]
    for B, T, NH, NKV, hd, scale, note in specs:
        D = (NH + 2 * NKV) * hd
        qkv = t64(f32(rng.normal(0, scale, size=(B, T, D))), (B, T, D)).requires_grad_()
        d = rng.normal(0, 1, size=(B, T, NH * hd))
        if "filtered" in note:
            d[0] = 0
        dout = t64(f32(d), (B, T, NH * hd))
        out, P = attention_reference(qkv, B, T, NH, NKV, hd)
        (out * dout).sum().backward()
        pre = prefill(rng, B * T * D)
        cases.append({"note": note, "B": B, "T": T, "NH": NH, "NKV": NKV, "hd": hd, "qkv": f64(qkv),
                      "att": f32(P.detach()), "dout": f64(dout), "prefill_dqkv": pre,
                      "dqkv": f64(t64(pre) + qkv.grad.reshape(-1))})
    return cases


def gen_logprob_backward():
    rng = np.random.RandomState(109)
    cases = []
    specs = [(1, 1, "V = 1: log-prob 0 whatever the logit, gradient 0"), (3, 7, "a few rows"), (5, 50, "V = 50"),
             (4, 11, "rows 1 and 2 have dlogp = 0 (filtered pairs)"), (3, 20, "logits near +-100: use lse, don't exponentiate the logits")]
    for R, V, note in specs:
        z = rng.normal(0, 2, size=(R, V))
        if "100" in note:
            z = z + rng.choice([-100.0, 100.0], size=(R, 1))
            z[:, 0] += 8
        logits = t64(f32(z), (R, V)).requires_grad_()
        targets = [int(x) for x in rng.randint(0, V, size=R)]
        g = rng.normal(0, 1, size=R) / 10
        if "filtered" in note:
            g[[1, 2]] = 0
        dlogp = t64(f32(g))
        logp = torch.log_softmax(logits, -1)[torch.arange(R), torch.tensor(targets)]
        (logp * dlogp).sum().backward()
        cases.append({"note": note, "R": R, "V": V, "logits": f64(logits), "targets": targets, "dlogp": f64(dlogp),
                      "lse": f32(torch.logsumexp(logits.detach(), -1)), "dlogits": f64(logits.grad)})
    return cases


EXERCISES = {"loss_repo": gen_loss_repo, "loss_simpo": gen_loss_simpo, "loss_dpo": gen_loss_dpo, "margin": gen_margin,
             "gamma_schedule": gen_gamma_schedule, "adamw": gen_adamw, "layernorm_backward": gen_layernorm_backward,
             "matmul_backward": gen_matmul_backward, "attention_backward": gen_attention_backward,
             "logprob_backward": gen_logprob_backward}


def write(path, name, cases):
    with open(path + ".tmp", "w") as f:
        f.write('{"exercise": %s, "cases": [\n' % json.dumps(name))
        f.write(",\n".join(json.dumps(c, allow_nan=False) for c in cases))
        f.write("\n]}\n")
    os.replace(path + ".tmp", path)


def gen(outdir):
    os.makedirs(outdir, exist_ok=True)
    for name, fn in EXERCISES.items():
        cases = fn()
        write(os.path.join(outdir, name + ".json"), name, cases)
        print("wrote %s: %d cases" % (os.path.join(outdir, name + ".json"), len(cases)))


def same(a, b, where, diffs):
    """inputs must be identical, float outputs equal to CHECK_RTOL"""
    if isinstance(a, dict):
        if not isinstance(b, dict) or sorted(a) != sorted(b):
            diffs.append("%s: keys differ" % where)
            return
        for k in a:
            same(a[k], b[k], where + "." + k, diffs)
    elif isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            diffs.append("%s: lengths differ" % where)
            return
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, "%s[%d]" % (where, i), diffs)
    elif isinstance(a, float) and isinstance(b, float):
        if abs(a - b) > CHECK_ATOL + CHECK_RTOL * abs(b):
            diffs.append("%s: committed %r, regenerated %r" % (where, b, a))
    elif a != b:
        diffs.append("%s: committed %r, regenerated %r" % (where, b, a))


def check(golden):
    passed = failed = 0
    for name, fn in EXERCISES.items():
        path = os.path.join(golden, name + ".json")
        fresh = {"exercise": name, "cases": json.loads(json.dumps(fn()))}
        try:
            with open(path) as f:
                committed = json.load(f)
        except (OSError, ValueError) as e:
            print("FAIL %s: cannot read it: %s" % (path, e))
            failed += 1
            continue
        diffs = []
        same(fresh, committed, name, diffs)
        if diffs:
            print("FAIL %s: %d values differ from a fresh PyTorch regeneration, e.g. %s" % (path, len(diffs), diffs[0]))
            failed += 1
        else:
            print("PASS %s: %d cases equal a fresh PyTorch regeneration" % (path, len(fresh["cases"])))
            passed += 1
    for name in sorted(set(f[:-5] for f in os.listdir(golden) if f.endswith(".json")) - set(EXERCISES)):
        print("FAIL %s.json: no generator writes it (a stale file)" % os.path.join(golden, name))
        failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return failed == 0


def main(argv):
    if not argv or argv[0] not in ("gen", "check"):
        print(__doc__)
        return 2
    d = argv[1] if len(argv) > 1 else DEFAULT_DIR
    if argv[0] == "gen":
        gen(d)
        return 0
    return 0 if check(d) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
