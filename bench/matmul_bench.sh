#!/usr/bin/env bash
# matmul.c against OpenBLAS cblas_sgemm (Debian libopenblas-dev), every product of a training step's
# linear layers, same shape, same threads, same run (bench/matmul_bench.c), at 1 thread and at all:
#   1. this machine's best build (-march=native) against OpenBLAS's best kernels for this CPU;
#   2. the AVX2+FMA build (AVX-512 off) against OpenBLAS's Haswell kernels: an AVX2-only machine;
#   3. both at all threads with a busy process competing for a core.
# A benchmark, not a test. OpenBLAS picks its best kernels only without OPENBLAS_CORETYPE /
# OPENBLAS_L2_SIZE overrides, so they are unset for these commands.
#   bench/matmul_bench.sh [SECONDS_PER_MEASUREMENT] [all|layers]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-1}; shapes=${2:-all}
if ! [ -e /usr/include/x86_64-linux-gnu/cblas.h ] && ! [ -e /usr/include/cblas.h ]; then
    apt-get install -y libopenblas-dev > /dev/null
fi
CC=${CC:-gcc}
W=$(mktemp -d); trap 'rm -rf "$W"; [ -n "${busy:-}" ] && kill "$busy" 2> /dev/null || true' EXIT
FLAGS="-O3 -ffast-math -fno-finite-math-only -fopenmp"
$CC $FLAGS -march=native -o "$W/bench_native" bench/matmul_bench.c matmul.c -lopenblas
$CC $FLAGS -march=native -mno-avx512f -o "$W/bench_avx2" bench/matmul_bench.c matmul.c -lopenblas
all=$(nproc)
# (OpenBLAS's idle threads keep yield-spinning a while after each call, into our next one: left as it is)
blas() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"; }
echo "== $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $all cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== 1. native build vs OpenBLAS's own choice of kernels"
blas "$W/bench_native" --threads "1,$all" --seconds "$seconds" --shapes "$shapes"
echo "== 2. AVX2 build vs OpenBLAS's Haswell (AVX2) kernels"
blas OPENBLAS_CORETYPE=Haswell "$W/bench_avx2" --threads "1,$all" --seconds "$seconds" --shapes "$shapes"
echo "== 3. $all threads, with a busy process competing for a core"
sh -c 'while :; do :; done' & busy=$!
blas "$W/bench_native" --threads "$all" --seconds "$seconds" --shapes "$shapes"
kill "$busy"; busy=
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
