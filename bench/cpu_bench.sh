#!/usr/bin/env bash
# One RePO training step on the CPU: ./repo against PyTorch eager (transformers' model, the same model
# file, the same pairs, the same threads) in the same run, ROUNDS times in turn. A benchmark, not a test:
# the machine may be shared and noisy, so every figure is min / median / max over the rounds, and the
# ratios are taken round by round.
#   bench/cpu_bench.sh [both|gpt2|smollm2] [ROUNDS] [STEPS]
# Shapes: GPT-2 124M at 2 pairs x (64 prompt + 64 response) tokens, SmolLM2-135M at 2 pairs x (128 + 128).
# For each shape and round it runs: ours at all cores, PyTorch at all cores, ours at 1 thread, and both
# again with a busy process competing for a core. It reports
#   - tokens/s (median of the steps after the first) and model GFLOP/s: the step's matrix products as
#     the model defines them (linear layers and attention forward x 3, the head at response rows x 3),
#     the same count for both, so PyTorch's extra head rows at prompt positions are not credited;
#   - that against the machine's sgemm peak, measured in the same run (OpenBLAS on 2048^3, 1 and all
#     threads, bench/matmul_bench.c);
#   - peak RSS (/usr/bin/time) against the analytic figure ./repo train prints (parameters, gradients,
#     two moments, stored activations);
#   - all cores / 1 thread, and how much of its speed each keeps with a core taken by another process.
# Every pair must fit: ./repo runs with --max-len = prompt + response, and the script stops if it
# reports any truncation (a comparison of unequal sequences is not reported).
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-both}; rounds=${2:-3}; steps=${3:-4}
. bench/lib.sh
PY=${PYTHON:-$PWD/.venv/bin/python}
W=$(mktemp -d); busy=
trap 'rm -rf "$W"; [ -n "$busy" ] && kill "$busy" 2> /dev/null || true' EXIT
make --no-print-directory repo > /dev/null
all=$(nproc)
echo "== $(machine_line)"
echo "== ./repo: gcc $(gcc -dumpversion), make's flags (-O3 -march=native ...); PyTorch $("$PY" -c 'import torch; print(torch.__version__)') eager, $(OMP_NUM_THREADS=$all "$PY" -c 'import torch; print(torch.get_num_threads())') threads (OMP_NUM_THREADS=$all)"

spread() { sort -g "$1" | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%8.2f [%.2f %.2f]", m, v[1], v[NR] }'; }

# the machine's sgemm peak, now: OpenBLAS on a 2048^3 product at 1 and at all threads
if [ -e /usr/include/x86_64-linux-gnu/cblas.h ] || [ -e /usr/include/cblas.h ]; then
    gcc -O3 -march=native -ffast-math -fno-finite-math-only -fopenmp -o "$W/matmul_bench" bench/matmul_bench.c matmul.c -lopenblas
    blas "$W/matmul_bench" --shapes peak --threads "1,$all" --seconds 2 > "$W/peak.txt"
    pk() { awk -v n="$1" -v f="$2" '$1 == "peak-gflops" && $3 == n { print $f }' "$W/peak.txt"; }
    peak1=$(pk 1 7); peakN=$(pk "$all" 7)
    echo "== sgemm peak (OpenBLAS, 2048^3): $peak1 GFLOP/s at 1 thread, $peakN at $all (ours on the same product: $(pk 1 5), $(pk "$all" 5))"
else
    peak1=0; peakN=0; echo "== no OpenBLAS headers (apt-get install libopenblas-dev): the peak is not measured"
fi

# ours: one run's median tokens/s after the first step into $1, peak RSS (MB) into $2, analytic MB into $3
run_ours() {
    local tps=$1 rss=$2 ana=$3; shift 3
    rm -rf "$W/out" "$W/c.log"
    /usr/bin/time -v ./repo train --model "$W/model" --data "$W/pairs.jsonl" --out "$W/out" --loss repo --gamma 0.5 \
        --lr 1e-6 --batch-pairs "$pairs" --steps "$steps" --no-shuffle --no-progress --warmup-steps 0 \
        --max-len $((P + R)) --log "$W/c.log" "$@" > "$W/c.out" 2> "$W/c.time"
    if grep -q truncated "$W/c.out"; then echo "refused: ./repo truncated pairs ($(grep truncated "$W/c.out"))"; exit 1; fi
    log_tokens_per_s "$W/c.log" >> "$tps"
    awk '/Maximum resident/ { printf "%.0f\n", $NF / 1024 }' "$W/c.time" >> "$rss"
    sed -n 's/^memory (analytic):.* \([0-9.]*\) MB in all$/\1/p' "$W/c.out" >> "$ana"
}
run_torch() { # tokens/s into $1, peak RSS into $2
    blas OMP_NUM_THREADS="$all" "$PY" bench/cpu_bench_torch.py "$W/model" "$W/pairs.jsonl" "$pairs" "$steps" > "$W/t.log"
    grep '"step"' "$W/t.log" | sed -n 's/.*"tokens_per_s": *\([0-9.]*\).*/\1/p' | tail -n +2 | median >> "$1"
    sed -n 's/.*"peak_rss_mb": *\([0-9.]*\).*/\1/p' "$W/t.log" | awk '{ printf "%.0f\n", $1 }' >> "$2"
}

bench_shape() {
    shape=$1
    if [ "$shape" = gpt2 ]; then
        pairs=2; P=64; R=64
        # per layer: qkv, proj, fc, fc.proj = 12 C^2 weights; heads x head size = C
        flops_awk='BEGIN { C = 768; L = 12; V = 50257; lin = 12 * C * C; att = C }'
    else
        pairs=2; P=128; R=128
        # per layer: q|k|v = C (C + 2 * 3 * 64), o = C^2, gate|up = 2 C H, down = H C
        flops_awk='BEGIN { C = 576; L = 30; V = 49152; lin = C * (C + 2 * 3 * 64) + C * C + 3 * C * 1536; att = C }'
    fi
    bench_model "$shape" "$W"
    bench_pairs "$W" $((pairs * steps)) "$P" "$R" "$W/pairs.jsonl"
    # model GFLOP per step: forward 2 flops per weight per token, backward 4; causal attention forward
    # 2 products of T^2/2 x head size per head (backward 4); the head at the R response rows only
    gflop=$(awk -v S=$((2 * pairs)) -v T=$((P + R)) -v R="$R" "$flops_awk"' BEGIN {
        N = S * T; f = 6 * N * lin * L + 6 * S * R * C * V + 3 * 2 * S * T * T * att * L; printf "%.1f", f / 1e9 }')
    tokens=$((2 * pairs * (P + R)))
    rm -f "$W"/r_*
    for r in $(seq "$rounds"); do
        run_ours "$W/r_ours" "$W/r_ours_rss" "$W/r_ana"
        run_torch "$W/r_torch" "$W/r_torch_rss"
        run_ours "$W/r_ours1" "$W/r_ours1_rss" "$W/r_ana" --threads 1
        sh -c 'while :; do :; done' & busy=$!
        run_ours "$W/r_ours_busy" "$W/r_x" "$W/r_x"
        run_torch "$W/r_torch_busy" "$W/r_x"
        kill "$busy"; wait "$busy" 2> /dev/null || true; busy=
        # round-by-round ratios
        paste -d' ' <(tail -n 1 "$W/r_ours") <(tail -n 1 "$W/r_torch") | awk '{ print $1 / $2 }' >> "$W/r_speed"
        paste -d' ' <(tail -n 1 "$W/r_ours") <(tail -n 1 "$W/r_ours1") | awk '{ print $1 / $2 }' >> "$W/r_scale"
        paste -d' ' <(tail -n 1 "$W/r_ours_busy") <(tail -n 1 "$W/r_ours") | awk '{ print $1 / $2 }' >> "$W/r_keep_ours"
        paste -d' ' <(tail -n 1 "$W/r_torch_busy") <(tail -n 1 "$W/r_torch") | awk '{ print $1 / $2 }' >> "$W/r_keep_torch"
        paste -d' ' <(tail -n 1 "$W/r_ours_busy") <(tail -n 1 "$W/r_torch_busy") | awk '{ print $1 / $2 }' >> "$W/r_speed_busy"
    done
    echo
    printf "%s, %d pairs x (%d prompt + %d response) tokens = %d tokens and %s model GFLOP a step; %d rounds of %d steps\n" \
        "$shape" "$pairs" "$P" "$R" "$tokens" "$gflop" "$rounds" "$steps"
    printf "%-34s %26s %12s %14s %14s\n" "median [min max] over rounds" "tokens/s" "GFLOP/s" "of sgemm peak" "peak RSS MB"
    row() { # NAME TPS_FILE RSS_FILE PEAK
        local m; m=$(median < "$2")
        printf "%-34s %s %12.1f %13.0f%% %14s\n" "$1" "$(spread "$2")" "$(awk -v t="$m" -v g="$gflop" -v n="$tokens" 'BEGIN { print t * g / n }')" \
            "$(awk -v t="$m" -v g="$gflop" -v n="$tokens" -v p="$4" 'BEGIN { print (p > 0 ? 100 * t * g / n / p : 0) }')" "${3:+$(median < "$3")}"
    }
    row "repo, $all threads" "$W/r_ours" "$W/r_ours_rss" "$peakN"
    row "PyTorch eager, $all threads" "$W/r_torch" "$W/r_torch_rss" "$peakN"
    row "repo, 1 thread" "$W/r_ours1" "$W/r_ours1_rss" "$peak1"
    row "repo, $all threads, a core busy" "$W/r_ours_busy" "" "$peakN"
    row "PyTorch, $all threads, a core busy" "$W/r_torch_busy" "" "$peakN"
    printf "%-34s %s\n" "repo / PyTorch (quiet)" "$(spread "$W/r_speed")"
    printf "%-34s %s\n" "repo / PyTorch (a core busy)" "$(spread "$W/r_speed_busy")"
    printf "%-34s %s\n" "repo $all threads / 1 thread" "$(spread "$W/r_scale")"
    printf "%-34s %s\n" "speed kept with a core busy: repo" "$(spread "$W/r_keep_ours")"
    printf "%-34s %s\n" "                          PyTorch" "$(spread "$W/r_keep_torch")"
    printf "%-34s %s MB analytic; peak RSS / analytic %.2f\n" "repo memory" "$(median < "$W/r_ana")" \
        "$(awk -v a="$(median < "$W/r_ana")" -v r="$(median < "$W/r_ours_rss")" 'BEGIN { print r / a }')"
}

case "$which" in
    both) bench_shape gpt2; bench_shape smollm2 ;;
    gpt2|smollm2) bench_shape "$which" ;;
    *) echo "usage: bench/cpu_bench.sh [both|gpt2|smollm2] [ROUNDS] [STEPS]" >&2; exit 2 ;;
esac
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
