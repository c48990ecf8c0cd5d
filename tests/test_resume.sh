#!/usr/bin/env bash
# Nothing lost: a training run killed with SIGKILL at random moments (during steps and during saves)
# and continued with --resume, again and again, ends with a model byte-identical to the uninterrupted
# run's, and the same log rows; SIGINT saves a checkpoint and exits; --resume refuses another command
# or other data, starts over when --out holds no checkpoint, and does nothing after the end.
set -u
cd "$(dirname "$0")/.."
REPO=${REPO:-./repo}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
pass=0; fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
A=data/arith
head -n 400 $A/pairs.jsonl > "$W/pairs.jsonl"
sed -n 401,460p $A/pairs.jsonl > "$W/eval.jsonl"
# the log rows without their timing
rows() { sed 's/, "tokens_per_s": [0-9.]*//' "$1"; }

# case NAME FLAGS...: the uninterrupted run, then the same run killed at random moments and resumed
case_resume() {
    local name=$1; shift
    local flags=("--model" "$A/policy" "--data" "$W/pairs.jsonl" "--no-progress" "$@")
    "$REPO" train "${flags[@]}" --out "$W/$name.ref" --log "$W/$name.ref.log" --margins "$W/$name.ref.margins" > /dev/null 2>&1 \
        || { bad "$name: uninterrupted run" "exit $?"; return; }
    local out=$W/$name.out kills=0 runs=0 rc=1
    # each run is killed at a random moment after it logged 1 to 4 more steps (so the run progresses
    # whatever the machine's speed), which lands in steps and in saves alike; the last run finishes
    while [ $runs -lt 12 ]; do
        runs=$((runs + 1))
        local before; before=$(cat "$W/$name.log" 2>/dev/null | wc -l)
        "$REPO" train "${flags[@]}" --out "$out" --log "$W/$name.log" --margins "$W/$name.margins" --resume \
            > "$W/$name.stdout" 2>&1 &
        local pid=$!
        if [ $kills -lt 8 ]; then
            local want=$((before + 1 + RANDOM % 4)) waited=0
            while kill -0 $pid 2>/dev/null && [ "$(cat "$W/$name.log" 2>/dev/null | wc -l)" -lt $want ] && [ $waited -lt 3000 ]; do
                sleep 0.01; waited=$((waited + 1))
            done
            sleep "0.$((RANDOM % 200))"
            if kill -9 $pid 2>/dev/null; then kills=$((kills + 1)); fi
        fi
        { wait $pid; } 2>/dev/null; rc=$?
        if [ $rc -eq 0 ]; then break; fi
    done
    if [ $rc -ne 0 ]; then bad "$name" "did not finish in $runs runs (last exit $rc: $(tail -n 2 "$W/$name.stdout"))"; return; fi
    if cmp -s "$W/$name.ref/model.safetensors" "$out/model.safetensors"; then
        ok "$name: killed $kills times, resumed, model byte-identical to the uninterrupted run's"
    else bad "$name" "model differs after $kills kills"; fi
    if [ "$(rows "$W/$name.ref.log")" = "$(rows "$W/$name.log")" ]; then ok "$name: the log has the uninterrupted run's rows"
    else bad "$name: log" "$(diff <(rows "$W/$name.ref.log") <(rows "$W/$name.log") | head -n 4 | tr '\n' ';')"; fi
    if cmp -s "$W/$name.ref.margins" "$W/$name.margins"; then ok "$name: the margins file is the same"
    else bad "$name: margins" "differ"; fi
    if [ -z "$(ls "$W" | grep -E "^$name\.out\.(tmp|old)\.")" ]; then ok "$name: no temporaries left"
    else bad "$name: temporaries left" "$(ls "$W" | grep -E "^$name\.out\.(tmp|old)\.")"; fi
}

case_resume repo --loss repo --gamma 1.0 --gamma-end 0.2 --lr 2e-4 --batch-pairs 16 --epochs 2 --save-every 2 \
    --eval-data "$W/eval.jsonl" --eval-every 10
case_resume dpo --loss dpo --beta 0.1 --lr 1e-4 --batch-pairs 16 --micro-batch-pairs 8 --epochs 2 --save-every 1

# SIGINT: the step finishes, a checkpoint is written, exit 130; --resume then finishes the same run
F=(--model $A/policy --data "$W/pairs.jsonl" --no-progress --loss repo --lr 1e-4 --batch-pairs 8)
"$REPO" train "${F[@]}" --epochs 3 --out "$W/int.ref" > /dev/null 2>&1
"$REPO" train "${F[@]}" --epochs 3 --out "$W/int" > "$W/int.stdout" 2>&1 &
pid=$!
for i in $(seq 3000); do grep -q "^step" "$W/int.stdout" && break; sleep 0.01; done
kill -INT $pid; wait $pid; rc=$?
if [ $rc -eq 130 ] && grep -q "interrupted after step" "$W/int.stdout" && [ -f "$W/int/optimizer.safetensors" ]; then
    ok "SIGINT: checkpoint written, exit 130 ($(grep -o 'interrupted after step [0-9]*' "$W/int.stdout"))"
else bad "SIGINT" "exit $rc, $(tail -n 1 "$W/int.stdout")"; fi
"$REPO" train "${F[@]}" --epochs 3 --out "$W/int" --resume > /dev/null 2>&1
if cmp -s "$W/int.ref/model.safetensors" "$W/int/model.safetensors"; then ok "SIGINT then --resume: byte-identical"
else bad "SIGINT then --resume" "model differs"; fi

# --resume refusals and the trivial cases
expect() { # NAME PATTERN CMD...: the output (stdout + stderr) matches PATTERN
    local name=$1 pattern=$2; shift 2
    local out; out=$("$@" 2>&1)
    if echo "$out" | grep -qE -- "$pattern"; then ok "$name"; else bad "$name" "$(echo "$out" | tail -n 2 | tr '\n' ';')"; fi
}
cp "$W/pairs.jsonl" "$W/data.jsonl"
G=(--model $A/policy --data "$W/data.jsonl" --no-progress --loss repo --batch-pairs 8 --steps 40 --save-every 5 --out "$W/part")
"$REPO" train "${G[@]}" --lr 1e-4 > /dev/null 2>&1 &
pid=$!
for i in $(seq 3000); do [ -f "$W/part/trainer_state.json" ] && break; sleep 0.01; done
kill -9 $pid 2>/dev/null; { wait $pid; } 2>/dev/null
if [ -f "$W/part/trainer_state.json" ]; then
    expect "--resume with another --lr is refused, naming it" "error: --resume: --lr is 2e-4 here but 1e-4" \
        "$REPO" train "${G[@]}" --lr 2e-4 --resume
    expect "--resume without a flag of the checkpoint's is refused" "error: --resume: the checkpoint .* was run with --lr" \
        "$REPO" train "${G[@]}" --resume
    expect "--resume with an extra flag is refused" "error: --resume: --no-shuffle is given here but not in the checkpoint" \
        "$REPO" train "${G[@]}" --lr 1e-4 --no-shuffle --resume
    sed -n 2,401p $A/pairs.jsonl > "$W/data.jsonl" # the same path, other pairs
    expect "--resume with other data is refused" "error: --resume: --data .* holds other pairs" \
        "$REPO" train "${G[@]}" --lr 1e-4 --resume
else bad "partial run" "no checkpoint after 30 s"; fi
expect "--resume without a checkpoint starts from the beginning" "holds no checkpoint yet; starting from the beginning" \
    "$REPO" train "${F[@]}" --steps 3 --out "$W/fresh" --resume
expect "--resume after the end does nothing" "is finished .*nothing to do" "$REPO" train "${F[@]}" --steps 3 --out "$W/fresh" --resume
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
