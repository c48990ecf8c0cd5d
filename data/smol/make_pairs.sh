#!/usr/bin/env bash
# make smol-pairs: rebuilds what `make smol` ships, from SmolLM2-135M-Instruct's own samples:
#   data/smol/test_prompts.jsonl   200 held-out prompts (questions no training prompt contains)
#   data/smol/pairs.jsonl          on-policy pairs: 4 samples at temperature 0.8 for each of 400 training prompts,
#                                  scored by the verifier; a sample that answers right within the word
#                                  limit (chosen) against one that does not (rejected); prompts whose
#                                  samples all agree are dropped
# The samples are the same on any machine that computes the same floats (same CPU kind, build and
# thread count: data/smol/config.sh). SMOL_PAIRS_CHECK=N: a trial on the first N training prompts,
# left in $OUT (default out/smol-pairs-build), the shipped files untouched (tests/test_smol.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
S=data/smol; W=${OUT:-out/smol-pairs-build}
source $S/config.sh
rm -rf "$W"; mkdir -p "$W"
t0=$(date +%s)
$S/smol prompts --split test --n 200 --seed 2 > "$W/test_prompts.jsonl"
N_TRAIN=${SMOL_PAIRS_CHECK:-400}
$S/smol prompts --split train --n 400 --seed 1 > "$W/train_prompts_all.jsonl"
head -n "$N_TRAIN" "$W/train_prompts_all.jsonl" > "$W/train_prompts.jsonl"
./repo sample --model $MODEL --prompts "$W/train_prompts.jsonl" --n 4 $THREADS --temperature 0.8 --max-new $MAX_NEW --seed 1 \
    --out "$W/samples.jsonl"
$S/smol score --samples "$W/samples.jsonl" --model $MODEL
$S/smol pairs --samples "$W/samples.jsonl" --model $MODEL --out "$W/pairs.jsonl"
[ -n "${SMOL_PAIRS_CHECK:-}" ] && { echo "trial on $N_TRAIN prompts: $W/pairs.jsonl"; exit 0; }
# replace the shipped files only once everything above has succeeded
cp "$W/pairs.jsonl" $S/pairs.jsonl
cp "$W/test_prompts.jsonl" $S/test_prompts.jsonl
echo "rebuilt $S/pairs.jsonl, $S/test_prompts.jsonl in $(( $(date +%s) - t0 )) s"
