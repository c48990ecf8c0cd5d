#!/usr/bin/env bash
# Long sequences on the CPU: peak RSS and tokens/s of one RePO step against the sequence length T,
# for ./repo without and with --recompute and for PyTorch eager (transformers' model, which keeps its
# (B, heads, T, T) attention weights), in the same run. SmolLM2-135M shape, 1 pair of prompt T/2 and
# responses T/2 (every sequence exactly T, --max-len T). Beside ./repo's peak it prints the analytic
# figure train prints (parameters, gradients, two moments, stored activations). A benchmark, not a test.
#   bench/memory_bench.sh [STEPS] [T...]       (defaults: 2 steps; T 256 512 1024 2048)
# PyTorch runs only where its attention weights fit: T <= TORCH_MAX_T (default 1024).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
steps=${1:-2}; shift || true
lengths=${*:-256 512 1024 2048}
PY=${PYTHON:-$PWD/.venv/bin/python}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
make --no-print-directory repo > /dev/null
echo "== $(machine_line)"
bench_model smollm2 "$W"
printf "%6s  %-46s %-46s %-22s\n" T "repo: peak RSS MB (analytic) tokens/s" "repo --recompute: peak RSS MB (analytic) tok/s" "PyTorch: RSS MB tok/s"
for T in $lengths; do
    bench_pairs "$W" "$steps" $((T / 2)) $((T - T / 2)) "$W/pairs.jsonl"
    cells=()
    for mode in "" --recompute; do
        rm -rf "$W/out" "$W/log"
        /usr/bin/time -v ./repo train --model "$W/model" --data "$W/pairs.jsonl" --out "$W/out" --loss repo --gamma 0.5 \
            --lr 1e-6 --batch-pairs 1 --steps "$steps" --no-shuffle --no-progress --warmup-steps 0 --max-len "$T" \
            --log "$W/log" $mode > "$W/out.txt" 2> "$W/time.txt"
        if grep -q truncated "$W/out.txt"; then echo "refused: ./repo truncated pairs at T $T" >&2; exit 1; fi
        cells+=("$(printf "%8.0f (%7.1f) %8.1f" "$(awk '/Maximum resident/ { print $NF / 1024 }' "$W/time.txt")" \
            "$(sed -n 's/^memory (analytic):.* \([0-9.]*\) MB in all$/\1/p' "$W/out.txt")" "$(log_tokens_per_s "$W/log")")")
    done
    torch="not run"
    if [ "$T" -le "${TORCH_MAX_T:-1024}" ] && [ -x "$PY" ]; then
        blas OMP_NUM_THREADS="$(nproc)" "$PY" bench/cpu_bench_torch.py "$W/model" "$W/pairs.jsonl" 1 "$steps" > "$W/t.log"
        v=$(grep '"step"' "$W/t.log" | sed -n 's/.*"tokens_per_s": *\([0-9.]*\).*/\1/p')
        [ "$(echo "$v" | wc -l)" -gt 1 ] && v=$(echo "$v" | tail -n +2 | median)
        torch=$(printf "%8.0f %8.1f" "$(sed -n 's/.*"peak_rss_mb": *\([0-9.]*\).*/\1/p' "$W/t.log")" "$v")
    fi
    printf "%6d  %-46s %-46s %-22s\n" "$T" "${cells[0]}" "${cells[1]}" "$torch"
done
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
