#!/usr/bin/env bash
# Data parallel: `mpirun -np 2 ./repo_mpi train --threads 1` gives the log rows and the final model of
# `./repo train --threads 1` with the same global batch, within float32 reduction-order tolerance
# (tests/compare's golden tolerances): RePO with filtered pairs in the batch, DPO (reference log-probs
# scored once, each process its share), a batch that does not split evenly, micro-batches, held-out
# eval metrics; only rank 0 writes.
set -u
cd "$(dirname "$0")/.."
if ! command -v mpirun >/dev/null || ! command -v mpicc >/dev/null; then
    echo "skipped: no MPI (tests/install_deps.sh installs openmpi-bin and libopenmpi-dev)"; echo "0 passed, 0 failed"; exit 0
fi
# ONE and TWO: the single-process and the MPI program (tests/gpu/test_nccl.sh passes ./repo_cuda and ./repo_cuda_mpi)
ONE=${ONE:-./repo}; TWO=${TWO:-./repo_mpi}
if [ "$ONE" = ./repo ]; then
    make --no-print-directory repo repo_mpi tests/compare >/dev/null || { echo "FAIL build"; echo "0 passed, 1 failed"; exit 1; }
fi
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
pass=0; fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
MPIRUN=(mpirun --allow-run-as-root --oversubscribe -np 2)
A=data/arith
head -n 90 $A/pairs.jsonl > "$W/pairs.jsonl"
sed -n 91,110p $A/pairs.jsonl > "$W/eval.jsonl"

case_mpi() { # NAME FLAGS...
    local name=$1; shift
    local flags=(--model $A/policy --data "$W/pairs.jsonl" --threads 1 --no-progress "$@")
    $ONE train "${flags[@]}" --out "$W/$name.one" --log "$W/$name.one.log" > "$W/$name.one.stdout" 2>&1 \
        || { bad "$name" "$ONE train failed: $(tail -n 1 "$W/$name.one.stdout")"; return; }
    "${MPIRUN[@]}" $TWO train "${flags[@]}" --out "$W/$name.two" --log "$W/$name.two.log" > "$W/$name.two.stdout" 2>&1 \
        || { bad "$name" "mpirun failed: $(tail -n 2 "$W/$name.two.stdout" | tr '\n' ';')"; return; }
    local r
    if r=$(tests/compare -q --log "$W/$name.two.log" "$W/$name.one.log"); then ok "$name: log rows equal ($(echo "$r" | tail -n 1))"
    else bad "$name: log" "$(echo "$r" | head -n 3 | tr '\n' ';')"; fi
    if [ "$(wc -l < "$W/$name.two.log")" -eq "$(wc -l < "$W/$name.one.log")" ]; then ok "$name: one log row per step (rank 0 writes)"
    else bad "$name: log rows" "$(wc -l < "$W/$name.two.log") vs $(wc -l < "$W/$name.one.log")"; fi
    if r=$(tests/compare -q --params "$W/$name.two/model.safetensors" "$W/$name.one/model.safetensors" $A/policy/model.safetensors); then
        ok "$name: final model equal ($(echo "$r" | tail -n 1))"
    else bad "$name: model" "$(echo "$r" | head -n 3 | tr '\n' ';')"; fi
    if grep -q "processes: 2" "$W/$name.two.stdout"; then ok "$name: two processes took part"; else bad "$name" "not run on 2 processes"; fi
}

# gamma 0.3 at lr 1e-3: most pairs are filtered after the first steps, some are not
case_mpi repo_filtered --loss repo --gamma 0.3 --lr 1e-3 --batch-pairs 12 --steps 5 --warmup-steps 1
if grep -qE '"filtered_frac": 0\.[0-9]*[1-9]' "$W/repo_filtered.one.log"; then ok "repo_filtered: batches mix filtered and unfiltered pairs"
else bad "repo_filtered" "no batch with 0 < filtered_frac < 1"; fi
case_mpi dpo --loss dpo --beta 0.1 --lr 5e-4 --batch-pairs 10 --steps 4
case_mpi uneven_micro --loss simpo --gamma 0.5 --beta 2.5 --lr 5e-4 --batch-pairs 7 --micro-batch-pairs 2 --steps 4 \
    --eval-data "$W/eval.jsonl" --eval-every 2 --weight-decay 0.1
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
