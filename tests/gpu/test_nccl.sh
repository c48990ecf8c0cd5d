#!/usr/bin/env bash
# Two GPUs, one per MPI process, gradients summed with NCCL: mpirun -np 2 ./repo_cuda_mpi equals
# ./repo_cuda on one GPU (the checks of tests/test_mpi.sh). Skipped where fewer than two GPUs exist.
cd "$(dirname "$0")/../.." || exit 2
n=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
if [ "${n:-0}" -lt 2 ]; then echo "skipped: NCCL data parallel needs two GPUs (found ${n:-0})"; echo "0 passed, 0 failed"; exit 0; fi
make --no-print-directory cuda cuda-mpi tests/compare >/dev/null || { echo "FAIL make cuda cuda-mpi"; echo "0 passed, 1 failed"; exit 1; }
ONE=./repo_cuda TWO=./repo_cuda_mpi bash tests/test_mpi.sh
