"""PyTorch peer for bench/cpu_bench.sh: the same RePO training step on the CPU with
transformers' model, on the same model file and pairs. Prints tokens/s per step and peak RSS."""
import json, resource, sys, time
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

model_dir, data, batch_pairs, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)
model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-6, weight_decay=0.0)
pairs = [json.loads(l) for l in open(data)]


def seq_logps(prompts, responses):
    """summed response log-probs and lengths, sequences right-padded into one batch"""
    seqs = [p + r for p, r in zip(prompts, responses)]
    T = max(len(s) for s in seqs)
    ids = torch.tensor([s + [0] * (T - len(s)) for s in seqs])
    logp = F.log_softmax(model(ids).logits[:, :-1].float(), -1)
    target = ids[:, 1:]
    mask = torch.zeros_like(target, dtype=torch.bool)
    for b, (p, r) in enumerate(zip(prompts, responses)):
        mask[b, len(p) - 1:len(p) - 1 + len(r)] = True
    tok = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1) * mask
    return tok.sum(-1), mask.sum(-1)


for step in range(steps):
    batch = [pairs[(step * batch_pairs + i) % len(pairs)] for i in range(batch_pairs)]
    t0 = time.time()
    P = [b["prompt_ids"] for b in batch]
    s, n = seq_logps(P + P, [b["chosen_ids"] for b in batch] + [b["rejected_ids"] for b in batch])
    ell = s / n
    M = ell[:batch_pairs] - ell[batch_pairs:]
    loss = F.relu(0.5 - M).mean()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    dt = time.time() - t0
    tokens = sum(2 * len(b["prompt_ids"]) + len(b["chosen_ids"]) + len(b["rejected_ids"]) for b in batch)
    print(json.dumps({"step": step + 1, "loss": loss.item(), "tokens_per_s": tokens / dt}))
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "threads": torch.get_num_threads()}))
