#!/usr/bin/env bash
# One RePO training step on the GPU: ./repo_cuda against PyTorch (transformers' model + the RePO loss,
# bench/gpu_bench_torch.py) on the same GPU, same model file, same pairs, in each precision.
# Shapes: GPT-2 124M and SmolLM2-135M (random weights from ./repo init), 8 pairs x (256 prompt +
# 256 response) tokens = 16 sequences of 512 per step. Prints tokens/s (median of the steps after the
# first), step time, peak GPU memory, model FLOPs utilization, and repo_cuda's time per phase
# (REPO_CUDA_PROFILE=1: CUDA events around every phase, synchronized, in a separate run).
#
#   bench/gpu_bench.sh                 (needs ./repo, ./repo_cuda; make repo cuda)
#   env: SHAPES="gpt2 smollm2" PRECISIONS="fp32 tf32 bf16" PAIRS=8 P=256 R=256 STEPS=5
#        TORCH_RUNS (default fp32:eager,tf32:eager,bf16:eager; "none" skips PyTorch)
#        TORCH_COMPILE_SHAPES (default gpt2: bf16 under torch.compile too; compiling the 30-layer
#        SmolLM2 takes minutes of the run's budget) TORCH_TIMEOUT (seconds per shape, default 150)
#        PEAK_TFLOPS="fp32 tf32 bf16" dense peaks for MFU (default: from the GPU's name)
#
# MFU = model FLOPs / step time / peak, model FLOPs = 3 x forward (forward + backward), forward =
# 2 x every linear layer's weights x B T tokens + 4 T (NH hd) per token and layer for q k^T and P v
# (the full T x T products, as computed; PaLM's convention) + 2 C V per response row (the head runs
# at response rows only, in repo and in the PyTorch peer alike).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
SHAPES=${SHAPES:-gpt2 smollm2}; PRECISIONS=${PRECISIONS:-fp32 tf32 bf16}
PAIRS=${PAIRS:-8}; P=${P:-256}; R=${R:-256}; STEPS=${STEPS:-5}
TORCH_RUNS=${TORCH_RUNS:-fp32:eager,tf32:eager,bf16:eager}
TORCH_COMPILE_SHAPES=${TORCH_COMPILE_SHAPES:-gpt2}; TORCH_TIMEOUT=${TORCH_TIMEOUT:-150}
PY=${PYTHON:-python3}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
RES="$W/results.jsonl"; : >"$RES"
for f in ./repo ./repo_cuda; do [ -x "$f" ] || { echo "gpu_bench: $f is not built (make repo cuda)"; exit 2; }; done
if ! nvidia-smi -L >/dev/null 2>&1; then echo "gpu_bench: no GPU (nvidia-smi -L failed)"; exit 2; fi
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
echo "GPU: $GPU"

# PyTorch: use it if it imports, else try PyPI once, else go on without it
have_torch() { "$PY" -c "import torch, transformers; assert torch.cuda.is_available()" >/dev/null 2>&1; }
if [ "$TORCH_RUNS" != none ] && ! have_torch; then
    echo "PyTorch/transformers missing for $PY: trying pip install torch transformers (90 s at most)"
    timeout 90 "$PY" -m pip install -q --timeout 15 --retries 1 torch transformers 2>&1 | tail -n 2
    have_torch || { echo "PyTorch unavailable: comparing nothing, repo_cuda only"; TORCH_RUNS=none; }
fi
[ "$TORCH_RUNS" != none ] && "$PY" -c "import torch, transformers; print('PyTorch', torch.__version__, 'transformers', transformers.__version__)"

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

for shape in $SHAPES; do
    D="$W/$shape"; mkdir -p "$D"
    if [ "$shape" = gpt2 ]; then
        printf '{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12, "layer_norm_epsilon": 1e-05, "activation_function": "gelu_new", "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}\n' >"$D/config.json"
    else
        printf '{"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "max_position_embeddings": 8192, "rms_norm_eps": 1e-05, "rope_theta": 100000, "hidden_act": "silu", "tie_word_embeddings": true, "attention_dropout": 0.0}\n' >"$D/config.json"
    fi
    ./repo init --config "$D/config.json" --out "$D/model" --seed 1 >/dev/null || { echo "init $shape failed"; continue; }
    V=$(sed -n 's/.*"vocab_size": *\([0-9]*\).*/\1/p' "$D/config.json")
    awk -v n=$((PAIRS * STEPS)) -v P="$P" -v R="$R" -v V="$V" 'function ids(k,   s, i) { s = ""; for (i = 0; i < k; i++) s = s (i ? "," : "") int(rand() * V); return "[" s "]" }
        BEGIN { srand(1); for (j = 0; j < n; j++) printf "{\"prompt_ids\": %s, \"chosen_ids\": %s, \"rejected_ids\": %s}\n", ids(P), ids(R), ids(R) }' >"$D/pairs.jsonl"
    ARGS=(--model "$D/model" --data "$D/pairs.jsonl" --loss repo --gamma 10 --lr 1e-6 --batch-pairs "$PAIRS"
          --no-shuffle --no-progress --warmup-steps 0 --max-len $((P + R)) --max-prompt-len "$P")
    for prec in $PRECISIONS; do
        echo "--- $shape repo_cuda $prec"
        rm -rf "$D/out" "$D/log.jsonl"
        if ./repo_cuda train "${ARGS[@]}" --out "$D/out" --steps "$STEPS" --log "$D/log.jsonl" --precision "$prec" \
                >"$D/stdout" 2>"$D/stderr"; then
            tps=$(sed -n 's/.*"tokens_per_s": *\([0-9.]*\).*/\1/p' "$D/log.jsonl" | tail -n +2 | median)
            mem=$(sed -n 's/.*precision [a-z0-9]*, \([0-9.]*\) MiB on the GPU.*/\1/p' "$D/stderr" | head -n 1)
            loss=$(sed -n 's/.*"loss": *\([-0-9.e+]*\).*/\1/p' "$D/log.jsonl" | head -n 1)
            # the profiled run: phases timed with CUDA events; memory in use on the device at exit
            rm -rf "$D/out"
            REPO_CUDA_PROFILE=1 ./repo_cuda train "${ARGS[@]}" --out "$D/out" --steps 2 --precision "$prec" \
                >/dev/null 2>"$D/prof" || echo "profiled run failed: $(tail -n 2 "$D/prof")"
            used=$(sed -n 's/.*device in use \([0-9.]*\) MiB.*/\1/p' "$D/prof" | head -n 1)
            grep '^  phase' "$D/prof" | sed "s/^  phase/  $shape $prec:/"
            printf '{"shape": "%s", "impl": "repo_cuda", "precision": "%s", "tokens_per_s": %s, "peak_mem_mib": %s, "device_used_mib": %s, "loss_step1": %s}\n' \
                "$shape" "$prec" "${tps:-0}" "${mem:-0}" "${used:-0}" "${loss:-0}" >>"$RES"
        else
            echo "repo_cuda $prec failed: $(tail -n 3 "$D/stderr" | tr '\n' ' ')"
            printf '{"shape": "%s", "impl": "repo_cuda", "precision": "%s", "error": "failed"}\n' "$shape" "$prec" >>"$RES"
        fi
    done
    if [ "$TORCH_RUNS" != none ]; then
        runs=$TORCH_RUNS
        case " $TORCH_COMPILE_SHAPES " in *" $shape "*) runs="$runs,bf16:compile" ;; esac
        echo "--- $shape PyTorch $runs"
        timeout "$TORCH_TIMEOUT" "$PY" bench/gpu_bench_torch.py "$D/model" "$D/pairs.jsonl" "$PAIRS" "$STEPS" "$runs" \
            >"$D/torch.jsonl" 2>"$D/torch.err" || echo "PyTorch exited $?: $(grep -v Warning "$D/torch.err" | tail -n 3 | tr '\n' ' ')"
        grep '"precision"' "$D/torch.jsonl" | sed "s/^{/{\"shape\": \"$shape\", \"impl\": \"pytorch\", /" >>"$RES"
        grep '"error"' "$D/torch.jsonl" | head -n 3
    fi
    rm -rf "$D/model" "$D/out"
done

# the table
GPU="$GPU" PAIRS=$PAIRS P=$P R=$R PEAK_TFLOPS="${PEAK_TFLOPS:-}" python3 - "$RES" <<'EOF'
import json, os, sys
res = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
gpu, pairs, P, R = os.environ["GPU"], int(os.environ["PAIRS"]), int(os.environ["P"]), int(os.environ["R"])
peaks = None  # dense TFLOP/s: fp32 (CUDA cores), tf32 and bf16 (tensor cores)
if os.environ.get("PEAK_TFLOPS"): peaks = dict(zip(["fp32", "tf32", "bf16"], map(float, os.environ["PEAK_TFLOPS"].split())))
elif "H100" in gpu and "PCIe" in gpu: peaks = {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0}
elif "H100" in gpu or "H200" in gpu or "H800" in gpu: peaks = {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4}
elif "A100" in gpu: peaks = {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0}
shapes = {  # L, C, NH, NKV, hd, hidden, V, mlp matrices
    "gpt2": dict(L=12, C=768, NH=12, NKV=12, hd=64, H=3072, V=50257, F=3072),
    "smollm2": dict(L=30, C=576, NH=9, NKV=3, hd=64, H=1536, V=49152, F=3072)}
B, T = 2 * pairs, P + R
def step_flops(s):
    qkv, A = (s["NH"] + 2 * s["NKV"]) * s["hd"], s["NH"] * s["hd"]
    per_token_layer = 2 * (s["C"] * qkv + A * s["C"] + s["C"] * s["F"] + s["H"] * s["C"]) + 4 * T * A
    return 3 * (B * T * s["L"] * per_token_layer + 2 * s["C"] * s["V"] * B * R)
print()
print(f"RePO training step, {pairs} pairs x ({P} prompt + {R} response) tokens = {B * T} tokens per step, on {gpu}")
print(f"MFU against dense peaks {peaks} TFLOP/s" if peaks else "MFU: unknown GPU, set PEAK_TFLOPS")
hdr = f"{'shape':9} {'implementation':22} {'precision':9} {'tokens/s':>10} {'step ms':>9} {'peak MiB':>9} {'MFU':>6} {'loss@1':>9}  vs repo_cuda"
print(hdr); print("-" * len(hdr))
base = {(r["shape"], r["precision"]): r.get("tokens_per_s") for r in res if r["impl"] == "repo_cuda"}
for r in res:
    name = "repo_cuda" if r["impl"] == "repo_cuda" else f"PyTorch {r.get('mode', '')}"
    if "error" in r or not r.get("tokens_per_s"):
        print(f"{r['shape']:9} {name:22} {r['precision']:9} {'error: ' + r.get('error', '?')[:60]}"); continue
    tps = r["tokens_per_s"]; ms = B * T / tps * 1e3
    fl = step_flops(shapes[r["shape"]]) if r["shape"] in shapes else 0
    mfu = f"{100 * fl / (ms / 1e3) / (peaks[r['precision']] * 1e12):5.1f}%" if peaks and fl else "  n/a"
    mem = r.get("peak_mem_mib", 0)
    rel = base.get((r["shape"], r["precision"]))
    rel = f"{tps / rel:5.2f}x" if rel and r["impl"] != "repo_cuda" else ""
    print(f"{r['shape']:9} {name:22} {r['precision']:9} {tps:10.0f} {ms:9.1f} {mem:9.0f} {mfu:>6} {r.get('loss_step1') or 0:9.5f}  {rel}")
print("loss@1: the first step's loss, the same pairs and weights in both (a check that both compute the same thing)")
print("peak MiB: repo_cuda's own cudaMalloc total (model, optimizer state, activations, scratch; not the CUDA")
print("context or cuBLAS workspace); PyTorch: torch.cuda.max_memory_allocated. Device-wide use at exit of the")
print("profiled repo_cuda runs: " + ", ".join(f"{r['shape']} {r['precision']} {r.get('device_used_mib', 0):.0f} MiB"
                                           for r in res if r["impl"] == "repo_cuda" and "error" not in r))
EOF
