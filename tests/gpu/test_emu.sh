#!/usr/bin/env bash
# repo.cu without a GPU: tests/gpu/emu/cuda_emu.h stands in for the CUDA runtime and cuBLAS (every CUDA
# thread a fiber, blocks one at a time, __syncthreads and warp shuffles as barriers, cuBLAS as loops
# with TF32 / bf16 rounding of the operands, cudaMalloc'd memory filled with NaN). The kernels'
# indexing, grids, strides, barriers and the cuBLAS argument mapping are exercised by the goldens;
# speed, races between blocks and real cuBLAS are not. Builds tests/gpu/emu/repo_emu, then runs
# tests/gpu/test_gpu.sh's checks against it (GOLDEN_ONLY=1: only the goldens, ~2 minutes on 2 cores).
set -u
cd "$(dirname "$0")/../.." || exit 2
E=tests/gpu/emu
CXX=${CXX:-g++}
build() {
    python3 $E/make_emu.py repo.cu $E/repo_emu.cpp &&
    for f in $(sed -n 's/^SOURCES *= *//p' Makefile | tr ' ' '\n' | grep -v '^repo.c$'); do
        ${CC:-gcc} -O2 -fopenmp -c -o "$E/${f%.c}.o" "$f" || return 1
    done &&
    make --no-print-directory gguf.o >/dev/null &&
    $CXX -O2 -std=c++17 -fopenmp -I$E -I. -w -c -o $E/repo_emu.o $E/repo_emu.cpp &&
    $CXX -fopenmp -o $E/repo_emu $E/repo_emu.o $(sed -n 's/^SOURCES *= *//p' Makefile | tr ' ' '\n' | grep -v '^repo.c$' | sed "s|^\(.*\)\.c$|$E/\1.o|") gguf.o -lcjson -lpcre2-8 -lm
}
if ! build; then echo "FAIL building the emulated repo.cu"; echo "0 passed, 1 failed"; exit 1; fi
make --no-print-directory repo tests/compare >/dev/null || { echo "FAIL make repo tests/compare"; echo "0 passed, 1 failed"; exit 1; }
if [ -n "${GOLDEN_ONLY:-}" ]; then
    pass=0; fail=0
    for g in tests/golden tests/golden_llama; do
        out=$(REPO=$E/repo_emu REPO_CUDA_POISON=1 bash tests/run_golden.sh $g)
        echo "$out" | grep '^FAIL'
        line=$(echo "$out" | tail -n 1); echo "$g: $line"
        pass=$((pass + $(echo "$line" | cut -d' ' -f1))); fail=$((fail + $(echo "$line" | cut -d' ' -f3)))
    done
    echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]
else
    TEST_GPU_FORCE=1 REPO_CUDA_BIN=$E/repo_emu bash tests/gpu/test_gpu.sh
fi
