#!/usr/bin/env bash
# GPU tests for ./repo_cuda (repo.cu). Without a GPU: "skipped: no GPU" and "0 passed, 0 failed".
#
#   bash tests/gpu/test_gpu.sh            (from anywhere; needs ./repo, ./repo_cuda, tests/compare built)
#
# 1. fp32: every golden case (tests/golden, tests/golden_llama) through tests/run_golden.sh with
#    REPO=./repo_cuda, the CPU's tolerances (log 1e-5 + 1e-4|b|, gradients 1e-4 relative L2 per tensor,
#    parameters 1e-3 of the distance moved).
# 2. poisoned buffers: the same with REPO_CUDA_POISON=1 (every activation and gradient scratch buffer
#    NaN before each forward / backward: an element some kernel forgot to write turns the outputs NaN).
# 3. shapes the goldens do not reach (they have T <= 32 and head sizes <= 8): random GPT-2 and Llama
#    models with T up to ~100 (several 32-wide attention tiles), head sizes 64 and 80 (the 32-wide
#    chunks of the head dimension, one partial), GQA, untied head with biases, micro-batches of varying T;
#    ./repo_cuda fp32 against ./repo: log (compare --log) and first-step gradients (--st, 1e-4), plain
#    and poisoned.
# 4. eval (forward only, no gradient buffers): ./repo_cuda eval against ./repo eval.
# 5. tf32 and bf16 against ./repo (fp32) on a few cases with smooth losses (no ReLU filter or hinge a
#    rounding error could flip): first-step gradients (--st --rtol) and step-1 log values.
#    Tolerances (relative L2 per gradient tensor; log values |a-b| <= rtol (|b| + 1)):
#      tf32 2e-2: TF32 keeps 10 mantissa bits, so each matmul operand is rounded by up to 2^-11 = 4.9e-4
#                 (typical ~1.5e-4); a first-step gradient goes through ~2(L+1) matmuls in series
#                 forward and back plus the vocabulary softmax, so a few 1e-3 is the expected error;
#                 2e-2 leaves ~5-10x headroom. A wrong kernel gives O(1) errors.
#      bf16 1e-1: bf16 keeps 8 bits, rounding up to 2^-9 = 2e-3 per operand, 4x TF32's; the same chain
#                 gives ~1e-2; 1e-1 leaves the same headroom and still sits 10x below a real bug.
#    (Parameters after 3 AdamW steps are not compared here: Adam normalizes each gradient element, so an
#    element whose true gradient is near zero moves by ~lr in a direction set by rounding.)
# Ends with "N passed, M failed"; exits non-zero on any failure.
set -u
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
# REPO_CUDA_BIN: the binary under test (default ./repo_cuda); TEST_GPU_FORCE=1 runs without nvidia-smi
# (a dry run of this script with a stand-in binary)
CUDA_BIN=${REPO_CUDA_BIN:-./repo_cuda}
if [ -z "${TEST_GPU_FORCE:-}" ] && { ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q "GPU"; }; then
    echo "skipped: no GPU"
    echo "0 passed, 0 failed"
    exit 0
fi
for f in ./repo "$CUDA_BIN" ./tests/compare; do
    [ -x "$f" ] || { echo "FAIL $f is not built (make repo repo_cuda tests/compare)"; echo "0 passed, 1 failed"; exit 1; }
done
PY=${PYTHON:-python3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0; fail=0
ok()  { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

# a suite that prints "N passed, M failed": add its counts
suite() {
    local name=$1; shift
    echo "=== $name"
    local log="$TMP/suite.log"
    "$@" >"$log" 2>&1
    grep -E '^FAIL' "$log" | head -n 20
    local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -z "$line" ]; then bad "$name: no result line"; tail -n 5 "$log"; return; fi
    echo "$line"
    pass=$((pass + $(echo "$line" | cut -d' ' -f1))); fail=$((fail + $(echo "$line" | cut -d' ' -f3)))
}

nvidia-smi -L 2>/dev/null

# 1, 2: the goldens, plain and poisoned
suite "GPT-2 goldens, ./repo_cuda fp32" env REPO="$CUDA_BIN" bash tests/run_golden.sh tests/golden
suite "Llama goldens, ./repo_cuda fp32" env REPO="$CUDA_BIN" bash tests/run_golden.sh tests/golden_llama
# poisoned: a subset that reaches every kernel and path (micro-batches, reference scoring, GQA, biases,
# untied head, Qwen2, head size 6, truncation); POISON_ALL=1 takes every case (twice the GPU starts)
mkdir -p "$TMP/poison_gpt2" "$TMP/poison_llama"
for c in repo_s1 simpo_s2_micro dpo_s1 repo_partial_batch sft_trunc_prompt_len; do ln -s "$ROOT/tests/golden/$c" "$TMP/poison_gpt2/$c"; done
for c in repo_l_gqa2 simpo_l_bias3_micro dpo_qwen2 repo_l_headdim6 ipo_mistral sft_l_bias3; do ln -s "$ROOT/tests/golden_llama/$c" "$TMP/poison_llama/$c"; done
if [ -n "${POISON_ALL:-}" ]; then P_GPT2=tests/golden; P_LLAMA=tests/golden_llama; else P_GPT2="$TMP/poison_gpt2"; P_LLAMA="$TMP/poison_llama"; fi
suite "GPT-2 goldens, poisoned buffers" env REPO="$CUDA_BIN" REPO_CUDA_POISON=1 bash tests/run_golden.sh "$P_GPT2"
suite "Llama goldens, poisoned buffers" env REPO="$CUDA_BIN" REPO_CUDA_POISON=1 bash tests/run_golden.sh "$P_LLAMA"

# compare_logs A B RTOL [STEP]: every numeric key, |a-b| <= rtol (|b| + 1), but tokens_per_s and the step
# functions of the margins (acc, filtered_frac: a margin within rounding error of 0 or gamma flips them)
compare_logs() {
    "$PY" - "$@" <<'EOF'
import json, sys
a_path, b_path, rtol = sys.argv[1], sys.argv[2], float(sys.argv[3])
only = int(sys.argv[4]) if len(sys.argv) > 4 else 0
A = [json.loads(l) for l in open(a_path) if l.strip()]
B = [json.loads(l) for l in open(b_path) if l.strip()]
bad = []
if len(A) != len(B): bad.append(f"{len(A)} lines vs {len(B)}")
worst = 0.0
for a, b in zip(A, B):
    if only and b["step"] != only: continue
    for k, v in b.items():
        if k in ("tokens_per_s", "acc", "filtered_frac") or not isinstance(v, (int, float)): continue
        err = abs(a.get(k, float("nan")) - v) / (abs(v) + 1)
        worst = max(worst, err) if err == err else float("inf")
        if not err <= rtol: bad.append(f"step {b['step']} {k}: {a.get(k)} vs {v}")
print(("FAIL " + "; ".join(bad[:4])) if bad else f"PASS worst {worst:.2e} (tol {rtol:g})")
sys.exit(1 if bad else 0)
EOF
}

# run_pair NAME MODEL DATA "ARGS" PREC GRAD_RTOL LOG_RTOL LOGSTEP [ENV...]: ./repo_cuda --precision PREC vs ./repo
run_pair() {
    local name=$1 model=$2 data=$3 args=$4 prec=$5 grtol=$6 lrtol=$7 step=$8; shift 8
    local W="$TMP/$name"; mkdir -p "$W"
    if [ ! -f "$W/cpu.log" ]; then
        # shellcheck disable=SC2086
        ./repo train --model "$model" --data "$data" --out "$W/cpu_out" --log "$W/cpu.log" \
            --save-grads "$W/cpu_grads.safetensors" --no-progress $args >"$W/cpu.stdout" 2>&1 ||
            { bad "$name: ./repo failed: $(tail -n 2 "$W/cpu.stdout" | tr '\n' ' ')"; return; }
    fi
    rm -rf "$W/gpu_out" "$W/gpu.log"
    # shellcheck disable=SC2086
    if ! env "$@" "$CUDA_BIN" train --model "$model" --data "$data" --out "$W/gpu_out" --log "$W/gpu.log" \
            --save-grads "$W/gpu_grads.safetensors" --no-progress --precision "$prec" $args >"$W/gpu.stdout" 2>&1; then
        bad "$name $prec: ./repo_cuda failed: $(tail -n 2 "$W/gpu.stdout" | tr '\n' ' ')"; return
    fi
    local out worst
    if out=$(./tests/compare --st "$W/gpu_grads.safetensors" "$W/cpu_grads.safetensors" --rtol "$grtol" 2>&1); then
        worst=$(echo "$out" | grep -o 'err [0-9.e+-]*' | cut -d' ' -f2 | sort -g | tail -n 1)
        ok "$name $prec${*:+ $*}: first-step gradients, worst tensor $worst (tol $grtol)"
    else bad "$name $prec${*:+ $*}: gradients: $(echo "$out" | grep FAIL | head -n 3 | tr '\n' ';')"; fi
    if [ "$lrtol" = "exact" ]; then
        if out=$(./tests/compare -q --log "$W/gpu.log" "$W/cpu.log" 2>&1); then ok "$name $prec${*:+ $*}: log (compare --log)"
        else bad "$name $prec${*:+ $*}: log: $(echo "$out" | grep FAIL | head -n 3 | tr '\n' ';')"; fi
    else
        if out=$(compare_logs "$W/gpu.log" "$W/cpu.log" "$lrtol" "$step"); then ok "$name $prec${*:+ $*}: log step $step: $out"
        else bad "$name $prec${*:+ $*}: log step $step: $out"; fi
    fi
}

# 3: larger random models (made with ./repo init) and data of varying lengths
echo "=== larger shapes: ./repo_cuda fp32 against ./repo"
mkdir -p "$TMP/cfg"
cat >"$TMP/cfg/gpt2.json" <<'EOF'
{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": 128, "n_layer": 2, "n_head": 2,
 "n_positions": 128, "vocab_size": 301, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}
EOF
cat >"$TMP/cfg/llama.json" <<'EOF'
{"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 160, "intermediate_size": 272,
 "num_hidden_layers": 2, "num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 80,
 "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false,
 "attention_bias": true, "mlp_bias": true, "vocab_size": 257, "hidden_act": "silu"}
EOF
cat >"$TMP/cfg/llama_tied.json" <<'EOF'
{"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 192, "intermediate_size": 320,
 "num_hidden_layers": 3, "num_attention_heads": 3, "num_key_value_heads": 1,
 "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true,
 "vocab_size": 211, "hidden_act": "silu"}
EOF
"$PY" - "$TMP" <<'EOF'
import json, random, sys
random.seed(7)
for name, V in [("gpt2", 301), ("llama", 257), ("llama_tied", 211)]:
    with open(f"{sys.argv[1]}/{name}.jsonl", "w") as f:
        for i in range(12):  # lengths vary within and across micro-batches: T from ~20 to ~100
            P, c, r = random.randint(3, 45), random.randint(1, 50), random.randint(1, 50)
            ids = lambda n: [random.randrange(V) for _ in range(n)]
            f.write(json.dumps({"prompt_ids": ids(P), "chosen_ids": ids(c), "rejected_ids": ids(r)}) + "\n")
EOF
for m in gpt2 llama llama_tied; do
    ./repo init --config "$TMP/cfg/$m.json" --out "$TMP/model_$m" --seed 3 >/dev/null || bad "init $m"
done
BIG_ARGS="--loss simpo --lr 1e-3 --weight-decay 0.1 --lr-schedule constant --warmup-steps 0 --batch-pairs 6 --micro-batch-pairs 2 --steps 2 --no-shuffle --max-len 110 --max-prompt-len 50"
for m in gpt2 llama llama_tied; do
    run_pair "big_$m" "$TMP/model_$m" "$TMP/$m.jsonl" "$BIG_ARGS" fp32 1e-4 exact 0
    run_pair "big_$m" "$TMP/model_$m" "$TMP/$m.jsonl" "$BIG_ARGS" fp32 1e-4 exact 0 REPO_CUDA_POISON=1
done

# 4: eval
echo "=== eval: ./repo_cuda against ./repo"
for c in tests/golden/dpo_s1 tests/golden_llama/dpo_l_gqa3; do
    ./repo eval --model "$c/model" --data "$c/data.jsonl" --out "$TMP/eval_cpu.jsonl" >/dev/null 2>&1
    if REPO_CUDA_POISON=1 "$CUDA_BIN" eval --model "$c/model" --data "$c/data.jsonl" --out "$TMP/eval_gpu.jsonl" >/dev/null 2>"$TMP/eval.err" &&
       "$PY" - "$TMP/eval_gpu.jsonl" "$TMP/eval_cpu.jsonl" <<'EOF'
import json, sys
A = [json.loads(l) for l in open(sys.argv[1])]; B = [json.loads(l) for l in open(sys.argv[2])]
assert len(A) == len(B) and len(A) > 0
for a, b in zip(A, B):
    for k in b: assert abs(a[k] - b[k]) <= 1e-5 + 1e-4 * abs(b[k]), (k, a[k], b[k])
EOF
    then ok "eval $(basename "$c") (poisoned): per-pair log-probs"
    else bad "eval $(basename "$c"): $(tail -n 2 "$TMP/eval.err" | tr '\n' ' ')"; fi
done

# 5: tf32 and bf16 against the CPU's fp32 (smooth losses only; see the header for the tolerances)
echo "=== tf32 / bf16 against ./repo fp32"
for c in tests/golden/sft_s1 tests/golden/simpo_s1 tests/golden/dpo_s1 tests/golden_llama/simpo_l_mha5 \
         tests/golden_llama/dpo_l_gqa3 tests/golden_llama/sft_qwen2_trunc; do
    args=$(cat "$c/args.txt")
    run_pair "$(basename "$c")" "$c/model" "$c/data.jsonl" "$args" tf32 2e-2 2e-2 1
    run_pair "$(basename "$c")" "$c/model" "$c/data.jsonl" "$args" bf16 1e-1 1e-1 1
done
for m in gpt2 llama; do
    run_pair "big_$m" "$TMP/model_$m" "$TMP/$m.jsonl" "$BIG_ARGS" tf32 2e-2 2e-2 1
    run_pair "big_$m" "$TMP/model_$m" "$TMP/$m.jsonl" "$BIG_ARGS" bf16 1e-1 1e-1 1
done

# the CPU build refuses the GPU precisions
if ./repo train --model tests/golden/sft_s1/model --data tests/golden/sft_s1/data.jsonl --out "$TMP/x" --precision bf16 >/dev/null 2>&1; then
    bad "./repo --precision bf16 should be refused"
else ok "./repo refuses --precision bf16"; fi

echo
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
