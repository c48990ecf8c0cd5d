#!/usr/bin/env bash
# Data parallel on this machine: the same RePO run as 1 process x 1 thread, 2 MPI processes x 1
# thread (mpirun -np 2 ./repo_mpi), and 1 process x 2 threads, in one run, repeated ROUNDS times in
# turn. Prints each configuration's tokens/s (median over its steps after the first, then min / median
# / max over the rounds) and the ratios. A benchmark, not a test.
#   bench/scale_bench.sh [gpt2|smollm2] [PAIRS] [PROMPT_LEN] [RESPONSE_LEN] [STEPS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
shape=${1:-gpt2}; pairs=${2:-4}; P=${3:-64}; R=${4:-64}; steps=${5:-4}; rounds=${6:-3}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
make --no-print-directory repo repo_mpi >/dev/null
if [ "$shape" = gpt2 ]; then
    printf '{"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12, "layer_norm_epsilon": 1e-05, "activation_function": "gelu_new"}\n' > "$W/config.json"
else
    printf '{"model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "max_position_embeddings": 8192, "rms_norm_eps": 1e-05, "rope_theta": 100000, "hidden_act": "silu", "tie_word_embeddings": true}\n' > "$W/config.json"
fi
./repo init --config "$W/config.json" --out "$W/model" --seed 1 >/dev/null
V=$(sed -n 's/.*"vocab_size": *\([0-9]*\).*/\1/p' "$W/config.json")
awk -v n=$((pairs * steps)) -v P="$P" -v R="$R" -v V="$V" 'function ids(k,   s, i) { s = ""; for (i = 0; i < k; i++) s = s (i ? "," : "") int(rand() * V); return "[" s "]" }
    BEGIN { srand(1); for (j = 0; j < n; j++) printf "{\"prompt_ids\": %s, \"chosen_ids\": %s, \"rejected_ids\": %s}\n", ids(P), ids(R), ids(R) }' > "$W/pairs.jsonl"
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
TRAIN=(train --model "$W/model" --data "$W/pairs.jsonl" --loss repo --gamma 0.5 --lr 1e-6 --batch-pairs "$pairs"
       --steps "$steps" --no-shuffle --no-progress --warmup-steps 0 --max-len $((P + R)))
run() { # NAME CMD...: one run's median tokens/s after the first step
    rm -rf "$W/out" "$W/log"
    "$@" "${TRAIN[@]}" --out "$W/out" --log "$W/log" > /dev/null
    sed -n 's/.*"tokens_per_s": *\([0-9.]*\).*/\1/p' "$W/log" | tail -n +2 | median
}
names=("1 process x 1 thread" "2 processes x 1 thread (MPI)" "1 process x 2 threads (OpenMP)")
for r in $(seq "$rounds"); do
    run a ./repo --threads 1 >> "$W/a"
    run b mpirun --allow-run-as-root --oversubscribe -np 2 ./repo_mpi --threads 1 >> "$W/b"
    run c ./repo --threads 2 >> "$W/c"
done
printf "%s, %d pairs x (%d + %d) tokens, %d steps, %d rounds, %s\n" "$shape" "$pairs" "$P" "$R" "$steps" "$rounds" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(grep -q avx512f /proc/cpuinfo && echo AVX-512 || echo AVX2)"
printf "%-34s %10s %10s %10s\n" "tokens/s" min median max
i=0
for f in a b c; do
    printf "%-34s %10.0f %10.0f %10.0f\n" "${names[$i]}" "$(sort -g "$W/$f" | head -1)" "$(median < "$W/$f")" "$(sort -g "$W/$f" | tail -1)"
    i=$((i + 1))
done
awk -v a="$(median < "$W/a")" -v b="$(median < "$W/b")" -v c="$(median < "$W/c")" \
    'BEGIN { printf "2 MPI processes / 1: %.2fx;  2 OpenMP threads / 1: %.2fx;  MPI / OpenMP: %.2fx\n", b / a, c / a, b / c }'
