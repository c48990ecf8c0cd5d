#!/usr/bin/env bash
# Prepares .gpubin/ for a GPU machine that cannot build (no libcjson/libpcre2 headers, no network):
# portable builds (no -march=native) of ./repo, ./repo_cuda and tests/compare, and the two shared
# libraries they need besides cuBLAS (which the GPU machine's CUDA or PyTorch install provides).
# tests/gpu/run_all_gpu.sh uses them when `make` fails there. .gpubin/ is git-ignored locally
# (.git/info/exclude); carry it to the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .gpubin; mkdir -p .gpubin/lib
grep -qx '/.gpubin/' .git/info/exclude 2>/dev/null || echo '/.gpubin/' >>.git/info/exclude
make --no-print-directory gguf.o repo_cuda >/dev/null
SRC=$(sed -n 's/^SOURCES *= *//p' Makefile)
${CC:-gcc} -O3 -ffast-math -fno-finite-math-only -fopenmp -o .gpubin/repo $SRC gguf.o -lcjson -lpcre2-8 -lm
${CC:-gcc} -O2 -o .gpubin/compare tests/compare.c io.c -lcjson -lm
cp repo_cuda .gpubin/repo_cuda
for lib in libcjson.so.1 libpcre2-8.so.0; do cp -L "$(ldd .gpubin/repo | awk -v l=$lib '$1 == l { print $3 }')" .gpubin/lib/; done
du -sh .gpubin
