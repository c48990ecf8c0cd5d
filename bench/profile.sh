#!/usr/bin/env bash
# Where a training step's time goes: `perf record` of a few RePO steps of ./repo, cycles by function
# (OpenMP's outlined bodies folded into their function, the GEMM micro-kernel into matmul), as a table.
# A benchmark, not a test; needs perf (linux-perf) and permission to use it.
#   bench/profile.sh [gpt2|smollm2] [PAIRS] [PROMPT_LEN] [RESPONSE_LEN] [STEPS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
shape=${1:-gpt2}; pairs=${2:-2}; P=${3:-64}; R=${4:-64}; steps=${5:-4}; threads=${6:-$(nproc)}
command -v perf > /dev/null || { echo "bench/profile.sh: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
. bench/lib.sh
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
make --no-print-directory repo > /dev/null
bench_model "$shape" "$W"
bench_pairs "$W" $((pairs * steps)) "$P" "$R" "$W/pairs.jsonl"
# the final save is in the profile too, as its own row
perf record -q -F 999 -o "$W/perf.data" ./repo train --model "$W/model" --data "$W/pairs.jsonl" --out "$W/out" \
    --loss repo --gamma 0.5 --lr 1e-6 --batch-pairs "$pairs" --steps "$steps" --no-shuffle --no-progress \
    --warmup-steps 0 --max-len $((P + R)) --threads "$threads" > /dev/null 2>&1
echo "$shape, $pairs pairs x ($P + $R) tokens, $steps steps, $threads threads; $(machine_line)"
perf report -i "$W/perf.data" --no-children --sort dso,symbol -g none --stdio 2> /dev/null | awk '
    /^#/ || !/%/ { next }
    {   pct = $1; sub("%", "", pct); dso = $2; sym = $4
        for (i = 5; i <= NF; i++) if ($i != "-") sym = sym " " $i
        sub(/\._omp_fn\.[0-9]+/, "", sym); sub(/ +-.*$/, "", sym)
        if (sym ~ /^(micro_kernel|gemm_tile|pack_|matmul_)/) sym = "matmul (matmul.c: packing, micro-kernel)"
        else if (sym ~ /^att_/) sym = "attention tiles (att_gemm)"
        else if (dso ~ /libgomp/) sym = "OpenMP runtime (fork, barriers, waiting)"
        else if (dso ~ /kernel/) sym = "kernel (page faults, file writes)"
        else if (dso ~ /libm\./) sym = "libm (tanhf, expf: GELU, SwiGLU, softmax)"
        else if (dso ~ /libc\./) sym = "libc (memset, memcpy)"
        else if (sym ~ /^checkpoint_|^safetensors|^load|^save/) sym = "loading and saving the model"
        total[sym] += pct }
    END { for (s in total) printf "%6.1f%%  %s\n", total[s], s }' | sort -rn | awk '$1 + 0 >= 0.3'
