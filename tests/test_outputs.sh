#!/usr/bin/env bash
# Outputs and flags: no output may overwrite an input or a non-regular file, a directory that is not
# one of repo's outputs is never replaced, every flag out of range is refused by name, and every
# refusal comes before anything is trained or written (no output, no temporary left behind).
set -u
cd "$(dirname "$0")/.."
REPO=${REPO:-./repo}
PY=${PY:-python3}
W=$(mktemp -d); trap 'chmod -R u+w "$W"; rm -rf "$W"' EXIT
pass=0; fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
# refused NAME PATTERN CMD...: non-zero exit, a one-line error matching PATTERN, no temporaries left in $W
refused() {
    local name=$1 pattern=$2; shift 2
    "$@" > "$W/stdout" 2> "$W/stderr"
    local rc=$? n; n=$(grep -c . "$W/stderr")
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qE -- "$pattern" "$W/stderr" && [ "$n" -eq 1 ] \
        && [ -z "$(find "$W" -name '*.tmp.*')" ]; then ok "$name: $(head -c 160 "$W/stderr")"
    else bad "$name" "exit $rc, $n lines: $(head -c 300 "$W/stderr")"; fi
}
A=data/arith
cp -r $A/policy "$W/model"
head -n 20 $A/pairs.jsonl > "$W/pairs.jsonl"
T=(train --model "$W/model" --data "$W/pairs.jsonl" --steps 1 --batch-pairs 2 --no-progress)
sum() { md5sum "$W/model/model.safetensors" "$W/pairs.jsonl" | cut -d' ' -f1 | tr '\n' ' '; }
before=$(sum)

# --- outputs that are inputs
refused "--log naming the data file" "--log .*pairs.jsonl is one of the inputs" $REPO "${T[@]}" --out "$W/o1" --log "$W/pairs.jsonl"
refused "--margins naming the model's weights" "--margins .* is one of the inputs" $REPO "${T[@]}" --out "$W/o1" --margins "$W/model/model.safetensors"
refused "--save-grads onto the input model's weights" "--save-grads .* is one of the inputs" $REPO "${T[@]}" --out "$W/o1" --save-grads "$W/model/model.safetensors"
refused "--out the model directory" "--out .*model (exists and is not one of repo's outputs|is one of the inputs)" $REPO "${T[@]}" --out "$W/model"
mkdir -p "$W/o2"; cp -r "$A/policy" "$W/o2/m"; echo '{}' > "$W/o2/trainer_state.json"
refused "--out holding the model" "--out .*o2 holds the input" $REPO train --model "$W/o2/m" --data "$W/pairs.jsonl" --steps 1 --out "$W/o2"
refused "eval --out naming the data file" "--out .*pairs.jsonl is one of the inputs" $REPO eval --model "$W/model" --data "$W/pairs.jsonl" --out "$W/pairs.jsonl"
refused "prepare --out naming the data file" "--out .*pairs.jsonl is one of the inputs" $REPO prepare --model "$W/model" --data "$W/pairs.jsonl" --out "$W/pairs.jsonl"
head -n 3 $A/test_prompts.jsonl > "$W/prompts.jsonl"
refused "sample --out naming the prompts" "--out .*prompts.jsonl is one of the inputs" $REPO sample --model "$W/model" --prompts "$W/prompts.jsonl" --out "$W/prompts.jsonl"
if [ "$(sum)" = "$before" ]; then ok "the inputs are unchanged"; else bad "inputs" "changed"; fi

# --- outputs that are not regular files or not ours
refused "--out a character device" "--out /dev/null exists and is not a directory" $REPO "${T[@]}" --out /dev/null
refused "--log a character device" "--log /dev/null exists and is not a regular file" $REPO "${T[@]}" --out "$W/o3" --log /dev/null
ln -s "$W/elsewhere" "$W/link"
refused "--out a symbolic link" "--out .*link is a symbolic link" $REPO "${T[@]}" --out "$W/link"
touch "$W/target.jsonl"; ln -s "$W/target.jsonl" "$W/loglink"
refused "--log a symbolic link" "--log .*loglink is a symbolic link" $REPO "${T[@]}" --out "$W/o3" --log "$W/loglink"
mkdir -p "$W/mine"; echo keep > "$W/mine/notes.txt"
refused "--out a directory that is not repo's output" "--out .*mine exists and is not one of repo's outputs" $REPO "${T[@]}" --out "$W/mine"
if [ "$(cat "$W/mine/notes.txt")" = keep ]; then ok "that directory is untouched"; else bad "user directory" "changed"; fi
mkdir -p "$W/ro"; chmod a-w "$W/ro"
if [ "$(id -u)" -ne 0 ]; then
    refused "--out in a read-only directory" "--out .*ro/out: .*(denied|read-only)" $REPO "${T[@]}" --out "$W/ro/out"
fi
refused "init onto an existing path" "--out .* exists already" $REPO init --config $A/config.json --out "$W/model"
refused "init with a bad config (named) leaves no temporary" "pairs.jsonl: invalid JSON .* trailing data" $REPO init --config "$W/pairs.jsonl" --out "$W/o4"
printf '{"model_type": "gpt2", "vocab_size": 257, "n_embd": 8, "n_layer": 4294967298, "n_head": 2, "n_positions": 16}' > "$W/huge.json"
refused "init with n_layer beyond int32" "huge.json: .*n_layer" $REPO init --config "$W/huge.json" --out "$W/o4"
printf '{"model_type": "gpt2", "vocab_size": 257, "n_embd": 2097152, "n_layer": 65536, "n_head": 2, "n_positions": 16}' > "$W/big.json"
refused "init with sizes beyond the bounds" "big.json: .* out of range" $REPO init --config "$W/big.json" --out "$W/o4"

# --- flags out of range, or given to a command that does not take them
refused "--threads 0" "--threads: 0 is out of range" $REPO "${T[@]}" --out "$W/o5" --threads 0
refused "--max-len 0" "--max-len: 0 is out of range" $REPO "${T[@]}" --out "$W/o5" --max-len 0
refused "--save-every -1" "--save-every: -1 is out of range" $REPO "${T[@]}" --out "$W/o5" --save-every -1
refused "--lr 1e39 (finite as a double, not as a float)" "--lr: 1e39 is out of range" $REPO "${T[@]}" --out "$W/o5" --lr 1e39
refused "--batch-pairs 2.5" "--batch-pairs: \"2.5\" is not an integer" $REPO train --model "$W/model" --data "$W/pairs.jsonl" --out "$W/o5" --batch-pairs 2.5
refused "--epochs 2000000000" "--epochs: 2000000000 is out of range" $REPO train --model "$W/model" --data "$W/pairs.jsonl" --epochs 2000000000 --batch-pairs 1 --out "$W/o5"
refused "a flag given twice" "--lr is given twice" $REPO "${T[@]}" --out "$W/o5" --lr 1e-4 --lr 1e-5
refused "--micro-batch-pairs above --batch-pairs" "--micro-batch-pairs 4 exceeds --batch-pairs 2" $REPO "${T[@]}" --out "$W/o5" --micro-batch-pairs 4
refused "a train flag given to eval" "--lr is not an option of eval" $REPO eval --model "$W/model" --data "$W/pairs.jsonl" --lr 1e-5
refused "sample --n 0" "--n: 0 is out of range" $REPO sample --model "$W/model" --prompts "$W/prompts.jsonl" --n 0
refused "sample --max-new -1" "--max-new: -1 is out of range" $REPO sample --model "$W/model" --prompts "$W/prompts.jsonl" --max-new -1
refused "sample --top-p 0" "--top-p: 0 is out of range" $REPO sample --model "$W/model" --prompts "$W/prompts.jsonl" --top-p 0
$PY -c "import json; print(json.dumps({'prompt_ids': [1] * 40}))" > "$W/long.jsonl"
refused "a prompt longer than the context" "prompt 1 has 40 tokens: no room for a new token in the model's 32 positions" $REPO sample --model "$W/model" --prompts "$W/long.jsonl"
refused "--eval-every without --eval-data" "--eval-every needs --eval-data" $REPO "${T[@]}" --out "$W/o5" --eval-every 2

# --- an update that would make parameters non-finite is not applied (weight decay 1e10 at lr 1e30)
$REPO train --model "$W/model" --data "$W/pairs.jsonl" --batch-pairs 2 --no-progress --steps 3 --out "$W/o6" --lr 1e30 --weight-decay 1e10 --grad-clip 0 --warmup-steps 0 > "$W/stdout" 2> "$W/stderr"
rc=$?
if [ $rc -ne 0 ] && grep -q "would make [0-9]* parameters non-finite" "$W/stderr" && "$PY" - "$W/o6/model.safetensors" "$W/model/model.safetensors" <<'EOF'
import json, struct, sys, array, math
def load(p):
    raw = open(p, 'rb').read(); n = struct.unpack('<Q', raw[:8])[0]
    h = json.loads(raw[8:8 + n]); h.pop('__metadata__', None)
    out = {}
    for k, v in h.items():
        a = array.array('f'); a.frombytes(raw[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]]); out[k] = a
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
finite = all(math.isfinite(x) for t in a.values() for x in t)
same = all(list(a[k]) == list(b.get(k, b.get(k.replace('transformer.', ''), []))) for k in a)
sys.exit(0 if finite and same else 1)
EOF
then ok "a non-finite update is refused and --out keeps the last good (here: the initial) parameters"
else bad "non-finite update" "exit $rc: $(head -c 300 "$W/stderr")"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
