#!/usr/bin/env bash
# make smol: a real pretrained model learns from its own preference pairs. SmolLM2-135M-Instruct
# is asked everyday questions with a word limit ("Answer in at most 5 words.") and mostly answers
# in a full sentence or more; the shipped pairs are its own samples, one that keeps to the limit
# against one that does not (data/smol/make_pairs.sh). RePO with the paper's large-to-small gamma
# schedule (1.0 -> 0.2) trains on them; greedy answers to held-out questions are scored before
# and after by the verifier (data/smol/smol.c).
#   SMOL_QUICK=1   CI's short version: the first 64 held-out prompts and the first 96 pairs
#   SEED=S         the seed that orders the batches (default 42)
set -euo pipefail
cd "$(dirname "$0")/../.."
S=data/smol; OUT=${OUT:-out/smol}; SEED=${SEED:-42}
source $S/config.sh
rm -rf "$OUT"; mkdir -p "$OUT"
PROMPTS=$S/test_prompts.jsonl; PAIRS=$S/pairs.jsonl
if [ "${SMOL_QUICK:-0}" = 1 ]; then
    head -n 64 $S/test_prompts.jsonl > "$OUT/test_prompts.jsonl"; PROMPTS=$OUT/test_prompts.jsonl
    head -n 96 $S/pairs.jsonl > "$OUT/pairs.jsonl"; PAIRS=$OUT/pairs.jsonl
fi
greedy() { # greedy answers to the held-out prompts, scored by the verifier
    ./repo sample --model "$1" --prompts "$PROMPTS" --temperature 0 --max-new $MAX_NEW --out "$2"
    $S/smol score --samples "$2" --model "$1"
}
t0=$(date +%s)
echo "== SmolLM2-135M-Instruct before training (greedy answers to $(wc -l < "$PROMPTS") held-out prompts)"
before=$(greedy $MODEL "$OUT/greedy_before.jsonl"); echo "$before"
echo "== RePO: $(wc -l < "$PAIRS") on-policy pairs (its own samples: within the limit vs not), gamma 1.0 -> 0.2"
./repo train --model $MODEL --data "$PAIRS" --out "$OUT/model" --loss repo --gamma 1.0 --gamma-end 0.2 \
    $TRAIN --seed "$SEED" \
    --log "$OUT/log.jsonl" --margins "$OUT/margins.jsonl"
echo "== after training"
after=$(greedy "$OUT/model" "$OUT/greedy_after.jsonl"); echo "$after"
frac() { awk -v from="$1" -v to="$2" '{ match($0, /"filtered_frac": *[-0-9.eE+]+/); v = substr($0, RSTART, RLENGTH); sub(/.*: */, "", v);
         if (NR >= from && NR <= to) { s += v; k++ } } END { printf "%.1f%%", 100 * s / k }' "$OUT/log.jsonl"; }
n=$(wc -l < "$OUT/log.jsonl"); w=$(( n / 10 > 0 ? n / 10 : 1 ))
acc() { echo "$1" | sed -n 's/.*greedy (first sample) accuracy \([0-9.]*\).*/\1/p'; }
echo
echo "held-out greedy accuracy: $(acc "$before") -> $(acc "$after") ($(wc -l < "$PROMPTS") prompts)"
echo "filtered pairs (M >= gamma): $(frac 1 $w) in the first $w steps -> $(frac $((n - w + 1)) $n) in the last $w"
echo "files: $OUT/model (trained model), $OUT/log.jsonl (per-step log), $OUT/margins.jsonl (margins),"
echo "       $OUT/greedy_{before,after}.jsonl (answers; ./repo decode --model $OUT/model shows them)"
echo "took $(( $(date +%s) - t0 )) s"
# the claim, checked: CI runs SMOL_QUICK=1 make smol
awk -v b="$(acc "$before")" -v a="$(acc "$after")" 'BEGIN { exit !(a > b) }' || {
    echo "repo: error: held-out accuracy did not improve ($(acc "$before") -> $(acc "$after"))" >&2; exit 1; }
