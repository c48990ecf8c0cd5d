#!/usr/bin/env bash
# make test's GPU suite: builds ./repo_cuda (compile and link only: needs nvcc, not a GPU), then runs
# tests/gpu/test_gpu.sh, which prints "skipped: no GPU" where there is none. Ends "N passed, M failed".
set -u
cd "$(dirname "$0")/../.." || exit 2
pass=0; fail=0
if command -v "${NVCC:-nvcc}" >/dev/null 2>&1; then
    log=$(mktemp)
    if make --no-print-directory cuda >"$log" 2>&1; then echo "PASS make cuda (repo.cu compiles and links, sm_80 + sm_90)"; pass=1
    else echo "FAIL make cuda"; tail -n 20 "$log"; fail=1; fi
    if command -v mpicc >/dev/null 2>&1; then
        if make --no-print-directory cuda-mpi >"$log" 2>&1; then echo "PASS make cuda-mpi (repo.cu with MPI + NCCL compiles and links)"; pass=$((pass + 1))
        else echo "FAIL make cuda-mpi"; tail -n 20 "$log"; fail=$((fail + 1)); fi
    fi
    rm -f "$log"
else
    echo "skipped: make cuda (no nvcc)"
fi
if [ -x ./repo_cuda ]; then
    out=$(bash tests/gpu/test_gpu.sh 2>&1); rc=$?
    echo "$out"
    line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -n "$line" ]; then
        pass=$((pass + $(echo "$line" | cut -d' ' -f1))); fail=$((fail + $(echo "$line" | cut -d' ' -f3)))
    fi
    [ "$rc" -ne 0 ] && [ -z "$line" ] && fail=$((fail + 1))
fi
out=$(bash tests/gpu/test_nccl.sh 2>&1); echo "$out"
line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
if [ -n "$line" ]; then pass=$((pass + $(echo "$line" | cut -d' ' -f1))); fail=$((fail + $(echo "$line" | cut -d' ' -f3))); fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
