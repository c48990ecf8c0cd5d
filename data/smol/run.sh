#!/usr/bin/env bash
# make smol: a real pretrained model learns from its own preference pairs. SmolLM2-135M-Instruct
# is asked short factual questions with a word limit ("What is the capital of Kenya? Answer in at
# most 3 words.") and mostly answers in a full sentence; the shipped pairs are its own samples, one
# that is right within the limit against one that is not (data/smol/make_pairs.sh). RePO with the
# paper's large-to-small gamma schedule (1.0 -> 0.2) trains on them; greedy answers to held-out
# questions are scored before and after by the verifier (data/smol/smol.c).
#   SEED=S          the seed that orders the batches (default 42)
#   SEEDS="1 2 3"   one training per seed (the answers before training are the same for all), then
#                   the gain's mean ± std over the seeds
#   SMOL_QUICK=1    CI's short version (tests/test_smol.sh): the first QUICK_PROMPTS held-out prompts
#                   and the first QUICK_PAIRS pairs
# Exits non-zero if a seed's held-out accuracy after training is not above the accuracy before.
set -euo pipefail
cd "$(dirname "$0")/../.."
S=data/smol; OUT=${OUT:-out/smol}; SEEDS=${SEEDS:-${SEED:-42}}
source $S/config.sh
rm -rf "$OUT"; mkdir -p "$OUT"
PROMPTS=$S/test_prompts.jsonl; PAIRS=$S/pairs.jsonl
if [ "${SMOL_QUICK:-0}" = 1 ]; then
    head -n "${QUICK_PROMPTS:-48}" $S/test_prompts.jsonl > "$OUT/test_prompts.jsonl"; PROMPTS=$OUT/test_prompts.jsonl
    head -n "${QUICK_PAIRS:-48}" $S/pairs.jsonl > "$OUT/pairs.jsonl"; PAIRS=$OUT/pairs.jsonl
fi
N=$(wc -l < "$PROMPTS")
greedy() { # greedy answers to the held-out prompts, scored by the verifier
    ./repo sample --model "$1" --prompts "$PROMPTS" --temperature 0 --max-new $MAX_NEW $THREADS --out "$2"
    $S/smol score --samples "$2" --model "$1"
}
acc() { echo "$1" | sed -n 's/.*greedy (first sample) accuracy \([0-9.]*\).*/\1/p'; }
# the mean filtered fraction (M >= gamma) over log lines FROM..TO
frac() { awk -v from="$2" -v to="$3" '{ match($0, /"filtered_frac": *[-0-9.eE+]+/); v = substr($0, RSTART, RLENGTH); sub(/.*: */, "", v);
         if (NR >= from && NR <= to) { s += v; k++ } } END { printf "%.1f%%", 100 * s / k }' "$1"; }
t0=$(date +%s)
echo "== SmolLM2-135M-Instruct before training (greedy answers to $N held-out prompts)"
before=$(greedy $MODEL "$OUT/greedy_before.jsonl"); echo "$before"
X=$(acc "$before"); gains=""; worse=""
for seed in $SEEDS; do
    d=$OUT; [ "$SEEDS" = "$seed" ] || d=$OUT/seed$seed
    mkdir -p "$d"; t=$(date +%s)
    echo "== RePO, seed $seed: $(wc -l < "$PAIRS") on-policy pairs (its own samples: right within the limit vs not), gamma 1.0 -> 0.2"
    ./repo train --model $MODEL --data "$PAIRS" --out "$d/model" --loss repo --gamma 1.0 --gamma-end 0.2 \
        $TRAIN $THREADS --seed "$seed" --log "$d/log.jsonl" --margins "$d/margins.jsonl"
    echo "== after training (seed $seed)"
    after=$(greedy "$d/model" "$d/greedy_after.jsonl"); echo "$after"
    Y=$(acc "$after")
    n=$(wc -l < "$d/log.jsonl"); w=$(( n / 6 > 0 ? n / 6 : 1 )) # a sixth of the steps: 3 of 18
    echo
    echo "held-out greedy accuracy: $X -> $Y ($N prompts)"
    echo "filtered pairs (M >= gamma): $(frac "$d/log.jsonl" 1 $w) in the first $w steps -> $(frac "$d/log.jsonl" $((n - w + 1)) $n) in the last $w"
    echo "seed $seed took $(( $(date +%s) - t )) s (training and the answers after it)"
    echo "files: $d/model (trained model), $d/log.jsonl (per-step log), $d/margins.jsonl (margins),"
    echo "       $d/greedy_after.jsonl, $OUT/greedy_before.jsonl (answers; ./repo decode --model $d/model shows them)"
    gains="$gains $(awk -v a="$Y" -v b="$X" 'BEGIN { print a - b }')"
    awk -v b="$X" -v a="$Y" 'BEGIN { exit !(a > b) }' || worse="$worse $seed"
done
if [ "$SEEDS" != "${SEEDS%% *}" ]; then # several seeds: the gain's spread
    echo
    echo "$gains" | awk '{ for (i = 1; i <= NF; i++) { s += $i; q += $i * $i } m = s / NF; sd = NF > 1 ? sqrt((q - NF * m * m) / (NF - 1)) : 0
        printf "held-out gain over %d seeds: %+.4f ± %.4f (mean ± sample std; per seed:%s); %s\n", NF, m, sd, $0,
               (m - sd > 0 ? "larger than its spread" : "NOT larger than its spread") }'
fi
echo "took $(( $(date +%s) - t0 )) s"
[ -z "$worse" ] || { echo "repo: error: held-out accuracy did not improve (seeds:$worse; $X before)" >&2; exit 1; }
