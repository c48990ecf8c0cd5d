#!/usr/bin/env bash
# --recompute keeps only each block's input and rebuilds the block in backward, and computes the
# output head in chunks (3 rows here): every GPT-2 and Llama golden must still pass through it.
cd "$(dirname "$0")/.." || exit 2
pass=0; fail=0
for g in tests/golden tests/golden_llama; do
    out=$(REPO=tests/recompute_wrapper.sh bash tests/run_golden.sh $g)
    echo "$out" | grep '^FAIL'
    line=$(echo "$out" | tail -n 1); echo "$g: $line"
    pass=$((pass + $(echo "$line" | cut -d' ' -f1))); fail=$((fail + $(echo "$line" | cut -d' ' -f3)))
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
