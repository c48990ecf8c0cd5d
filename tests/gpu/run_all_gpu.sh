#!/usr/bin/env bash
# Everything that needs the GPU, in one call (about 8 minutes on an H100): build, tests/gpu/test_gpu.sh,
# bench/gpu_bench.sh. The log goes to $OUT/gpu_run.log where OUT is set (the device tool), else ./gpu_run.log.
# Where `make` fails on the GPU machine (no libcjson/libpcre2 headers there), the binaries and
# libraries prepared by tests/gpu/pack_gpu.sh in .gpubin/ are used.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
LOG=${OUT:-.}/gpu_run.log
exec > >(tee "$LOG") 2>&1
echo "run_all_gpu: $(date -u)"; nvidia-smi 2>&1 | head -n 15
[ -d .gpubin/lib ] && export LD_LIBRARY_PATH=$PWD/.gpubin/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# cuBLAS 13 from the CUDA toolkit or from PyTorch's wheels, if the loader does not know it
if ! ldconfig -p 2>/dev/null | grep -q 'libcublas.so.13 '; then
    d=$(find /usr/local /opt /usr/lib -name 'libcublas.so.13' 2>/dev/null | head -n 1)
    [ -n "$d" ] && export LD_LIBRARY_PATH=$(dirname "$d"):${LD_LIBRARY_PATH:-} && echo "cuBLAS: $d"
fi
t0=$(date +%s)
if ! make --no-print-directory repo repo_cuda tests/compare 2>&1 | tail -n 5 || ! ./repo_cuda --help >/dev/null 2>&1; then
    if [ -x .gpubin/repo_cuda ]; then
        echo "build failed here: using the binaries from tests/gpu/pack_gpu.sh (.gpubin)"
        cp .gpubin/repo ./repo; cp .gpubin/repo_cuda ./repo_cuda; cp .gpubin/compare tests/compare
        touch ./repo ./repo_cuda tests/compare
    else echo "build failed and there is no .gpubin (run tests/gpu/pack_gpu.sh and carry .gpubin)"; fi
fi
ldd ./repo_cuda | grep -i 'not found' && echo "run_all_gpu: missing libraries"
echo "build: $(($(date +%s) - t0)) s"
t0=$(date +%s)
timeout 220 bash tests/gpu/test_gpu.sh; rc=$?
echo "tests: $(($(date +%s) - t0)) s, exit $rc"
t0=$(date +%s)
timeout 330 bash bench/gpu_bench.sh; rc=$?
echo "bench: $(($(date +%s) - t0)) s, exit $rc"
