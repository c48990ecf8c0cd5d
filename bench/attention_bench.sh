#!/usr/bin/env bash
# The attention alone (bench/attention_bench.c): tiled against the reference, SmolLM2's and GPT-2's head
# shapes, one sequence pair (B = 2), T from 256 to 2048. A benchmark: the machine may be shared and noisy.
#   bench/attention_bench.sh [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-5}
make --no-print-directory gguf.o >/dev/null
B=bench/attention_bench
${CC:-gcc} -O3 -march=native -ffast-math -fno-finite-math-only -fopenmp -Wno-unused-function -o $B $B.c \
    $(sed -n 's/^SOURCES *= *//p' Makefile | tr ' ' '\n' | grep -v '^repo.c$') gguf.o -lcjson -lpcre2-8 -lm
echo "SmolLM2-135M heads"; ./$B 2 9 3 64 "$reps" 256 512 1024 2048
echo "GPT-2 heads";        ./$B 2 12 12 64 "$reps" 256 512 1024 2048
