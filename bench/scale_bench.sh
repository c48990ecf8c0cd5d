#!/usr/bin/env bash
# Data parallel on this machine: the same RePO run as 1 process x 1 thread, 2 MPI processes x 1
# thread (mpirun -np 2 ./repo_mpi), and 1 process x 2 threads, in one run, repeated ROUNDS times in
# turn. Prints each configuration's tokens/s (median over its steps after the first, then min / median
# / max over the rounds) and the ratios. A benchmark, not a test.
#   bench/scale_bench.sh [gpt2|smollm2] [PAIRS] [PROMPT_LEN] [RESPONSE_LEN] [STEPS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
shape=${1:-gpt2}; pairs=${2:-4}; P=${3:-64}; R=${4:-64}; steps=${5:-4}; rounds=${6:-3}
. bench/lib.sh
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
make --no-print-directory repo repo_mpi >/dev/null
bench_model "$shape" "$W"
bench_pairs "$W" $((pairs * steps)) "$P" "$R" "$W/pairs.jsonl"
TRAIN=(train --model "$W/model" --data "$W/pairs.jsonl" --loss repo --gamma 0.5 --lr 1e-6 --batch-pairs "$pairs"
       --steps "$steps" --no-shuffle --no-progress --warmup-steps 0 --max-len $((P + R)))
run() { # NAME LAUNCHER... -- FLAGS...: one run's median tokens/s after the first step
    shift
    local launch=()
    while [ "$1" != -- ]; do launch+=("$1"); shift; done
    shift
    rm -rf "$W/out" "$W/log"
    "${launch[@]}" "${TRAIN[@]}" "$@" --out "$W/out" --log "$W/log" > /dev/null
    log_tokens_per_s "$W/log"
}
names=("1 process x 1 thread" "2 processes x 1 thread (MPI)" "1 process x 2 threads (OpenMP)")
for r in $(seq "$rounds"); do
    run a ./repo -- --threads 1 >> "$W/a"
    run b mpirun --allow-run-as-root --oversubscribe -np 2 ./repo_mpi -- --threads 1 >> "$W/b"
    run c ./repo -- --threads 2 >> "$W/c"
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
