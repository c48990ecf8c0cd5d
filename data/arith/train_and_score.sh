#!/usr/bin/env bash
# train_and_score.sh DIR SNAPSHOT_EVERY TRAIN_FLAGS...: one run of `make experiments`.
# Trains the shipped policy on the shipped pairs with TRAIN_FLAGS on one thread (so the numbers do
# not depend on the machine's core count), logs every step (log.jsonl) and every pair's margin
# (margins.jsonl), and scores the greedy answers to the held-out prompts: score.txt is the
# verifier's line, score.tsv its fields: exact, exact with carry, exact without carry, no-carry
# answers 10 too large. With SNAPSHOT_EVERY > 0 it also scores the model every that many steps:
# curve.tsv has one line per scored step, the step then the same fields.
# The run is built in DIR.tmp and renamed to DIR when complete, so an existing DIR is a finished
# run and is skipped (make experiments resumes where it stopped).
set -euo pipefail
cd "$(dirname "$0")/../.."
A=data/arith; REPO=${REPO:-./repo}
d=$1; snap=$2; shift 2
[ -d "$d" ] && exit 0
t=$d.tmp; rm -rf "$t"; mkdir -p "$t"
# score MODEL: the verifier's fields as "exact carry plain plus10"
score() {
    "$REPO" sample --model "$1" --prompts $A/test_prompts.jsonl --temperature 0 --max-new 6 --threads 1 \
        --out "$t/greedy.jsonl" > /dev/null
    $A/arith score --samples "$t/greedy.jsonl" > "$t/score.txt"
    sed 's/.*greedy (first sample) exact \([0-9.]*\).*with carry \([0-9.]*\).*without \([0-9.]*\) (.*10 too many \([0-9.]*\).*/\1\t\2\t\3\t\4/' "$t/score.txt"
}
snap_flags=(); [ "$snap" -gt 0 ] && snap_flags=(--snapshot-every "$snap")
"$REPO" train --model $A/policy --data $A/pairs.jsonl --out "$t/model" --threads 1 --no-progress \
    --log "$t/log.jsonl" --margins "$t/margins.jsonl" "${snap_flags[@]}" "$@" > "$t/train.out"
steps=$(wc -l < "$t/log.jsonl")
if [ "$snap" -gt 0 ]; then
    for ((s = snap; s < steps; s += snap)); do
        printf "%d\t%s\n" "$s" "$(score "$t/model-step$s")" >> "$t/curve.tsv"
        rm -rf "$t/model-step$s"
    done
fi
final=$(score "$t/model"); echo "$final" > "$t/score.tsv"
[ "$snap" -gt 0 ] && printf "%d\t%s\n" "$steps" "$final" >> "$t/curve.tsv"
rm -rf "$t/model" "$t/greedy.jsonl"
echo "$*" > "$t/flags.txt"
mv "$t" "$d"
echo "$d: $(cut -f1 <<< "$final")"
