#!/usr/bin/env bash
# One RePO training step on the CPU: ./repo against PyTorch (transformers' model, same pairs, same
# model file, same threads) in the same run. Prints tokens/s (median of the steps after the first),
# peak resident memory, and the ratios. A benchmark, not a test: the machine is shared and noisy.
#   bench/cpu_bench.sh [gpt2|smollm2] [PAIRS] [PROMPT_LEN] [RESPONSE_LEN] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
shape=${1:-gpt2}; pairs=${2:-2}; P=${3:-128}; R=${4:-128}; steps=${5:-4}
PY=${PYTHON:-$PWD/.venv/bin/python}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
make --no-print-directory repo >/dev/null
if [ "$shape" = gpt2 ]; then
    printf '{"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12, "layer_norm_epsilon": 1e-05, "activation_function": "gelu_new", "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}\n' > "$W/config.json"
else
    printf '{"model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "max_position_embeddings": 8192, "rms_norm_eps": 1e-05, "rope_theta": 100000, "hidden_act": "silu", "tie_word_embeddings": true}\n' > "$W/config.json"
fi
./repo init --config "$W/config.json" --out "$W/model" --seed 1 >/dev/null
V=$(sed -n 's/.*"vocab_size": *\([0-9]*\).*/\1/p' "$W/config.json")
awk -v n=$((pairs * steps)) -v P="$P" -v R="$R" -v V="$V" 'function ids(k,   s, i) { s = ""; for (i = 0; i < k; i++) s = s (i ? "," : "") int(rand() * V); return "[" s "]" }
    BEGIN { srand(1); for (j = 0; j < n; j++) printf "{\"prompt_ids\": %s, \"chosen_ids\": %s, \"rejected_ids\": %s}\n", ids(P), ids(R), ids(R) }' > "$W/pairs.jsonl"
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
/usr/bin/time -v ./repo train --model "$W/model" --data "$W/pairs.jsonl" --out "$W/out" --loss repo --gamma 0.5 --lr 1e-6 \
    --batch-pairs "$pairs" --steps "$steps" --no-shuffle --no-progress --warmup-steps 0 --log "$W/c.log" > /dev/null 2> "$W/c.time"
c_tps=$(sed -n 's/.*"tokens_per_s": *\([0-9.]*\).*/\1/p' "$W/c.log" | tail -n +2 | median)
c_rss=$(awk '/Maximum resident/ { printf "%.0f", $NF / 1024 }' "$W/c.time")
# OpenBLAS picks its AVX-512 kernels only without this machine's core-type overrides
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=$(nproc) "$PY" bench/cpu_bench_torch.py "$W/model" "$W/pairs.jsonl" "$pairs" "$steps" > "$W/t.log"
t_tps=$(grep '"step"' "$W/t.log" | sed -n 's/.*"tokens_per_s": *\([0-9.]*\).*/\1/p' | tail -n +2 | median)
t_rss=$(sed -n 's/.*"peak_rss_mb": *\([0-9.]*\).*/\1/p' "$W/t.log")
printf "%s, %d pairs x (%d prompt + %d response) tokens, %d cores\n" "$shape" "$pairs" "$P" "$R" "$(nproc)"
printf "%-28s %12s %14s\n" "" "tokens/s" "peak RSS (MB)"
printf "%-28s %12.0f %14.0f\n" "repo (C, OpenMP)" "$c_tps" "$c_rss"
printf "%-28s %12.0f %14.0f\n" "PyTorch $("$PY" -c 'import torch; print(torch.__version__)') eager" "$t_tps" "$t_rss"
awk -v c="$c_tps" -v t="$t_tps" -v cr="$c_rss" -v tr="$t_rss" 'BEGIN { printf "repo / PyTorch: %.2fx the speed, %.2fx the memory\n", c / t, cr / tr }'
