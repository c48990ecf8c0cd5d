"""PyTorch peer for bench/gpu_bench.sh: the same RePO training step on the GPU with transformers'
model, on the same model file and pairs, in each precision (fp32: no TF32; tf32: TF32 matmuls;
bf16: autocast to bfloat16 with fp32 master weights and AdamW state), eager and torch.compile.
As repo does, the vocabulary projection runs at the response positions only.

    python3 bench/gpu_bench_torch.py MODEL_DIR PAIRS.jsonl BATCH_PAIRS STEPS RUNS
    RUNS: comma-separated precision:mode, e.g. fp32:eager,tf32:eager,bf16:eager,bf16:compile

Prints one JSON line per run: tokens_per_s (median of the steps after the first two), step_ms,
peak_mem_mib (torch.cuda.max_memory_allocated), or an error."""
import json, os, statistics, sys, time, traceback
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

model_dir, data, batch_pairs, steps, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
pairs = [json.loads(l) for l in open(data)]
dev = torch.device(os.environ.get("BENCH_DEVICE", "cuda"))  # cpu: a dry run of this script
cuda = dev.type == "cuda"
sync = torch.cuda.synchronize if cuda else (lambda: None)


def make_batch(batch):
    """ids (B, T) right-padded, chosen/rejected interleaved as repo does; response rows and targets"""
    seqs, rows, targets, seq_of_row = [], [], [], []
    for p in batch:
        for resp in (p["chosen_ids"], p["rejected_ids"]):
            seqs.append(p["prompt_ids"] + resp)
    T = max(len(s) for s in seqs)
    for b, p in enumerate(batch):
        for k, resp in enumerate((p["chosen_ids"], p["rejected_ids"])):
            P = len(p["prompt_ids"])
            for j in range(len(resp)):
                rows.append((2 * b + k) * T + P - 1 + j); targets.append(resp[j]); seq_of_row.append(2 * b + k)
    ids = torch.tensor([s + [0] * (T - len(s)) for s in seqs], device=dev)
    n = torch.tensor([len(p[k]) for p in batch for k in ("chosen_ids", "rejected_ids")], device=dev, dtype=torch.float32)
    return (ids, torch.tensor(rows, device=dev), torch.tensor(targets, device=dev),
            torch.tensor(seq_of_row, device=dev), n, sum(len(s) for s in seqs))


def run(precision, mode):
    if cuda: torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
    model = AutoModelForCausalLM.from_pretrained(model_dir).to(dev, torch.float32)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, weight_decay=0.0, **({"fused": True} if cuda else {}))
    base, head = model.base_model, model.lm_head
    gamma = 10.0  # no pair is filtered: every step runs the backward pass, as in repo's runs here

    def loss_fn(ids, rows, targets, seq_of_row, n):
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            h = base(input_ids=ids).last_hidden_state            # (B, T, C), final norm applied
            h = h.reshape(-1, h.shape[-1]).index_select(0, rows)  # (R, C): the response positions
            logits = head(h).float()                              # (R, V)
        logp = torch.log_softmax(logits, -1).gather(-1, targets[:, None]).squeeze(-1)
        s = torch.zeros(ids.shape[0], device=dev).index_add(0, seq_of_row, logp)
        ell = s / n                                               # mean response log-prob per sequence
        M = ell[0::2] - ell[1::2]
        return F.relu(gamma - M).mean()

    fn = torch.compile(loss_fn) if mode == "compile" else loss_fn
    times, tokens, loss1 = [], 0, None
    for step in range(steps):
        batch = [pairs[(step * batch_pairs + i) % len(pairs)] for i in range(batch_pairs)]
        ids, rows, targets, seq_of_row, n, tokens = make_batch(batch)
        sync()
        t0 = time.perf_counter()
        loss = fn(ids, rows, targets, seq_of_row, n)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sync()
        times.append(time.perf_counter() - t0)
        if loss1 is None: loss1 = loss.item()
    dt = statistics.median(times[2:] if len(times) > 2 else times)
    out = {"precision": precision, "mode": mode, "tokens_per_s": tokens / dt, "step_ms": dt * 1e3,
           "peak_mem_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else 0, "loss_step1": loss1}
    del model, opt
    return out


print(json.dumps({"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0) if cuda else "cpu"}), flush=True)
for spec in runs.split(","):
    precision, mode = spec.split(":")
    try:
        print(json.dumps(run(precision, mode)), flush=True)
    except Exception as e:  # e.g. torch.compile unavailable: report, go on with the next run
        traceback.print_exc(file=sys.stderr)
        print(json.dumps({"precision": precision, "mode": mode, "error": f"{type(e).__name__}: {e}"[:300]}), flush=True)
