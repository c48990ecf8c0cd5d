#!/usr/bin/env bash
# make run: the main job on the embedded default. The shipped policy answers "a+b=" and drops
# the carry out of the ones place more often than not; RePO on its own samples, with the paper's
# large-to-small gamma schedule (1.0 -> 0.2), teaches it to prefer the right sum.
set -euo pipefail
cd "$(dirname "$0")/../.."
A=data/arith; OUT=${OUT:-out/arith}; SEED=${SEED:-42}
rm -rf "$OUT"; mkdir -p "$OUT"
greedy() { # greedy answers to the held-out prompts, scored by the verifier
    ./repo sample --model "$1" --prompts $A/test_prompts.jsonl --temperature 0 --max-new 6 --out "$2"
    $A/arith score --samples "$2"
}
t0=$(date +%s)
echo "== the policy before training (greedy answers to $(wc -l < $A/test_prompts.jsonl) held-out prompts)"
before=$(greedy $A/policy "$OUT/greedy_before.jsonl"); echo "$before"
echo "== RePO: $(wc -l < $A/pairs.jsonl) on-policy pairs (best vs worst of 4 samples per prompt), gamma 1.0 -> 0.2"
./repo train --model $A/policy --data $A/pairs.jsonl --out "$OUT/model" --loss repo --gamma 1.0 --gamma-end 0.2 \
    --lr 2e-5 --batch-pairs 32 --epochs 1 --warmup-steps 10 --seed "$SEED" \
    --log "$OUT/log.jsonl" --margins "$OUT/margins.jsonl"
echo "== the policy after training"
after=$(greedy "$OUT/model" "$OUT/greedy_after.jsonl"); echo "$after"
echo "== margins over training (the emergent curriculum)"
$A/plot_margins.sh "$OUT/margins.jsonl" "$OUT/margins.png"
frac() { awk -v from="$1" -v to="$2" '{ match($0, /"filtered_frac": *[-0-9.eE+]+/); v = substr($0, RSTART, RLENGTH); sub(/.*: */, "", v);
         if (NR >= from && NR <= to) { s += v; k++ } } END { printf "%.1f%%", 100 * s / k }' "$OUT/log.jsonl"; }
n=$(wc -l < "$OUT/log.jsonl"); w=$(( n / 10 > 0 ? n / 10 : 1 ))
exact() { echo "$1" | sed 's/.*greedy (first sample) exact \([0-9.]*\).*/\1/'; }
echo
echo "held-out greedy accuracy: $(exact "$before") -> $(exact "$after")  ($(wc -l < $A/test_prompts.jsonl) prompts)"
echo "filtered pairs (M >= gamma): $(frac 1 $w) in the first $w steps -> $(frac $((n - w + 1)) $n) in the last $w"
echo "files: $OUT/model (trained model), $OUT/log.jsonl (per-step log), $OUT/margins.jsonl and"
echo "       $OUT/margins.png (margin histograms), $OUT/greedy_{before,after}.jsonl (answers)"
echo "took $(( $(date +%s) - t0 )) s"
# the claim of the main job, checked: CI runs make run
awk -v b="$(exact "$before")" -v a="$(exact "$after")" 'BEGIN { exit !(a > b) }' || {
    echo "repo: error: held-out accuracy did not improve ($(exact "$before") -> $(exact "$after"))" >&2; exit 1; }
