#!/usr/bin/env bash
# train --eval-data / --eval-every log held-out metrics (eval_*) that equal `./repo eval` on the model
# as it was at that step: the final model, and the --snapshot-every copies (OUT-stepS).
set -u
cd "$(dirname "$0")/.."
REPO=${REPO:-./repo}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
pass=0; fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
A=data/arith
head -n 200 $A/pairs.jsonl > "$W/train.jsonl"
sed -n 1001,1040p $A/pairs.jsonl > "$W/eval.jsonl"
$REPO train --model $A/policy --data "$W/train.jsonl" --out "$W/out" --loss repo --gamma 0.6 --lr 1e-3 --batch-pairs 16 \
    --steps 12 --eval-data "$W/eval.jsonl" --eval-every 4 --snapshot-every 4 --log "$W/log.jsonl" --no-progress > "$W/stdout" 2>&1 \
    || { echo "FAIL train: $(tail -n 2 "$W/stdout")"; echo "0 passed, 1 failed"; exit 1; }
steps=$(grep -o '"step": [0-9]*, "eval_loss"' "$W/log.jsonl" | grep -o '[0-9]*' | tr '\n' ' ')
if [ "$steps" = "0 4 8 12 " ]; then ok "eval rows at steps 0, 4, 8 and the last, 12"; else bad "eval steps" "$steps"; fi
if grep -q "^eval step 12 | loss" "$W/stdout"; then ok "eval metrics on the terminal"; else bad "terminal" "no eval line"; fi
# the log's eval row of step S (6 decimals as eval prints them) against ./repo eval on the model of step S
check() { # STEP MODEL
    local row; row=$(grep "\"step\": $1, \"eval_loss\"" "$W/log.jsonl")
    local e; e=$($REPO eval --model "$2" --data "$W/eval.jsonl")
    local mine; mine=$(echo "$row" | awk '{ for (k = 1; k <= NF; k++) { gsub(/[{},"]/, "", $k) }
        match($0, /eval_margin_mean: [-0-9.e+]+/); m = substr($0, RSTART + 18, RLENGTH - 18)
        match($0, /eval_acc: [-0-9.e+]+/); a = substr($0, RSTART + 10, RLENGTH - 10)
        match($0, /eval_chosen_logp: [-0-9.e+]+/); c = substr($0, RSTART + 18, RLENGTH - 18)
        match($0, /eval_rejected_logp: [-0-9.e+]+/); r = substr($0, RSTART + 20, RLENGTH - 20)
        printf "margin_mean %.6f | acc %.4f | chosen_logp %.6f | rejected_logp %.6f", m, a, c, r }')
    if echo "$e" | grep -qF -- "$mine"; then ok "step $1: the logged eval metrics equal ./repo eval ($mine)"
    else bad "step $1" "log: $mine; eval: $e"; fi
}
check 12 "$W/out"
check 4 "$W/out-step4"
check 8 "$W/out-step8"
if [ ! -e "$W/out-step12" ]; then ok "no snapshot at the last step (--out is that model)"; else bad "snapshot" "out-step12 exists"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
