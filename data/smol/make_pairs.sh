#!/usr/bin/env bash
# make smol-pairs: rebuilds what `make smol` ships, from SmolLM2-135M-Instruct's own samples:
#   data/smol/test_prompts.jsonl   200 held-out prompts (questions no training prompt contains)
#   data/smol/pairs.jsonl          on-policy pairs: 4 samples at temperature 0.8 per training prompt,
#                                  scored by the verifier; a sample that keeps to the word limit (chosen)
#                                  against one that does not (rejected); prompts whose samples all
#                                  agree are dropped
# The samples are the same on any machine that computes the same floats (same CPU kind and build).
set -euo pipefail
cd "$(dirname "$0")/../.."
S=data/smol; W=${OUT:-out/smol-pairs-build}
source $S/config.sh
rm -rf "$W"; mkdir -p "$W"
t0=$(date +%s)
$S/smol prompts --split test --n 200 --seed 2 > "$W/test_prompts.jsonl"
$S/smol prompts --split train --n 800 --seed 1 > "$W/train_prompts.jsonl"
./repo sample --model $MODEL --prompts "$W/train_prompts.jsonl" --n 4 --temperature 0.8 --max-new $MAX_NEW --seed 1 \
    --out "$W/samples.jsonl"
$S/smol score --samples "$W/samples.jsonl" --model $MODEL
$S/smol pairs --samples "$W/samples.jsonl" --model $MODEL --out "$W/pairs.jsonl"
# replace the shipped files only once everything above has succeeded
cp "$W/pairs.jsonl" $S/pairs.jsonl
cp "$W/test_prompts.jsonl" $S/test_prompts.jsonl
echo "rebuilt $S/pairs.jsonl, $S/test_prompts.jsonl in $(( $(date +%s) - t0 )) s"
