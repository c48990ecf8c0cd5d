#!/usr/bin/env bash
# Bad input: every broken model file or data line gives a one-line error naming the file
# and the tensor or line, a non-zero exit, and leaves no output behind.
# Corrupted files are made with the Python standard library (no third-party packages).
set -u
cd "$(dirname "$0")/.."
REPO=${REPO:-./repo}
PY=${PY:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0; fail=0

# expect_error NAME PATTERN CMD...: non-zero exit, stderr matches PATTERN, no $work/out left
expect_error() {
    local name=$1 pattern=$2; shift 2
    rm -rf "$work/out"
    "$@" >"$work/stdout" 2>"$work/stderr"
    local rc=$?
    local msg; msg=$(grep -m1 'error' "$work/stderr")
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qE -- "$pattern" "$work/stderr" && [ ! -e "$work/out" ] \
       && [ -z "$(ls "$work" | grep '\.tmp\.')" ]; then
        echo "PASS $name: $msg"; pass=$((pass + 1))
    else
        echo "FAIL $name: exit $rc, stderr: $(head -c 300 "$work/stderr"), out exists: $([ -e "$work/out" ] && echo yes || echo no)"
        fail=$((fail + 1))
    fi
}

$REPO init --config data/arith/config.json --out "$work/model" --seed 3 >/dev/null || { echo "FAIL init"; exit 1; }
M=$work/model
printf '{"prompt_ids": [1, 2], "chosen_ids": [3], "rejected_ids": [4, 5]}\n' > "$work/good.jsonl"
train() { $REPO train --steps 1 --batch-pairs 1 --out "$work/out" "$@"; }

# --- model files
mkmodel() { # mkmodel NAME PYTHON-SNIPPET: copy the model and apply a change to its header/bytes
    local d=$work/$1; rm -rf "$d"; cp -r "$M" "$d"
    "$PY" - "$d/model.safetensors" "$2" <<'EOF'
import json, struct, sys
path, change = sys.argv[1], sys.argv[2]
raw = open(path, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
exec(change)
if globals().get('REPACK'): # a valid file again: the data of the tensors left, packed in offset order
    packed = b''
    for name, e in sorted((kv for kv in header.items() if kv[0] != '__metadata__'), key=lambda kv: kv[1]['data_offsets']):
        b, end = e['data_offsets']
        e['data_offsets'] = [len(packed), len(packed) + end - b]
        packed += data[b:end]
    data = packed
h = json.dumps(header).encode()
open(path, 'wb').write(struct.pack('<Q', len(h)) + h + data if 'RAW' not in globals() else RAW)
EOF
    echo "$d"
}
# bad_model NAME PYTHON-SNIPPET TEST PATTERN: training on mkmodel NAME's copy must fail with PATTERN
bad_model() { local d; d=$(mkmodel "$1" "$2"); expect_error "$3" "$4" train --model "$d" --data "$work/good.jsonl"; }
C=$(sed -n 's/.*"n_embd": *\([0-9]*\).*/\1/p' "$M/config.json")
bad_model missing 'del header["transformer.h.1.mlp.c_fc.bias"]; REPACK = 1' \
    "missing tensor" "model.safetensors: tensor transformer.h.1.mlp.c_fc.bias is missing"
bad_model shape 'header["transformer.ln_f.weight"]["shape"] = [header["transformer.ln_f.weight"]["shape"][0] // 2, 2]' \
    "wrong shape" "model.safetensors: tensor transformer.ln_f.weight has shape \[$((C / 2)), 2\], expected \[$C\]"
bad_model bytes 'header["transformer.ln_f.weight"]["shape"] = [7]' \
    "shape and byte span disagree" "model.safetensors: tensor transformer.ln_f.weight: F32 shape holds 28 bytes but data_offsets span"
bad_model offsets 'data = data[:len(data) // 2]' \
    "offsets past the end of the file" "model.safetensors: tensor .* data_offsets .* outside the data section"
bad_model header_long 'RAW = struct.pack("<Q", len(raw) * 2) + raw[8:]' \
    "header longer than the file" "model.safetensors: header length [0-9]+ is longer than the file"
bad_model dtype 'header["transformer.wpe.weight"]["dtype"] = "I32"' \
    "unknown dtype" "model.safetensors: tensor transformer.wpe.weight: unsupported dtype I32"
bad_model short 'RAW = raw[:5]' \
    "file shorter than a header" "model.safetensors: file is 5 bytes"
bad_model notjson 'RAW = raw[:8] + b"{not json" + raw[17:]' \
    "header not JSON" "model.safetensors: header is not a JSON object"
bad_model nan 'RAW = raw[:8 + n] + struct.pack("<f", float("nan")) + data[4:]' \
    "NaN weight" "model.safetensors: tensor .*: element 0 is NaN"
# the name again, last, on wte's bytes: safetensors keeps the last entry, and then wpe's own bytes are a gap
bad_model dup 'h = raw[8:8 + n].rstrip()[:-1] + b", \"transformer.wpe.weight\": " + json.dumps(header["transformer.wte.weight"]).encode() + b"}"; RAW = struct.pack("<Q", len(h)) + h + data' \
    "a tensor given twice in the header, on other bytes" "model.safetensors: tensor transformer.* data_offsets .* (overlap|gap)"
mkdir -p "$work/dirmodel" && cp "$M/config.json" "$work/dirmodel/" && mkdir "$work/dirmodel/model.safetensors"
expect_error "model.safetensors is a directory" "dirmodel/model.safetensors: is a directory" train --model "$work/dirmodel" --data "$work/good.jsonl"
d=$work/bigcfg; rm -rf "$d"; cp -r "$M" "$d"; sed -i 's/"n_layer": *[0-9]*/"n_layer": 4294967298/' "$d/config.json"
expect_error "n_layer beyond int32" 'config.json: "n_layer" is 4294967298, not an integer that fits in 32 bits' train --model "$d" --data "$work/good.jsonl"
d=$work/dupcfg; rm -rf "$d"; cp -r "$M" "$d"; sed -i 's/^{/{"n_layer": 999999, /' "$d/config.json"
if $REPO eval --model "$d" --data "$work/good.jsonl" >/dev/null 2>&1; then echo "PASS a key given twice in config.json: the last counts, as in transformers"; pass=$((pass + 1))
else echo "FAIL a key given twice in config.json: the first was read"; fail=$((fail + 1)); fi
d=$work/noconfig; rm -rf "$d"; cp -r "$M" "$d"; rm "$d/config.json"
expect_error "missing config.json" "noconfig/config.json: cannot open" train --model "$d" --data "$work/good.jsonl"
d=$work/badtype; rm -rf "$d"; cp -r "$M" "$d"; sed -i 's/"gpt2"/"bert"/' "$d/config.json"
expect_error "unsupported model_type" "config.json: model_type \"bert\" is not supported" train --model "$d" --data "$work/good.jsonl"

# --- data files
bad() { printf '%s\n' "$@" > "$work/bad.jsonl"; }
bad '{"prompt_ids": [1], "chosen_ids": [2], "rejected_ids": [3]}' '{"prompt_ids": [1], "chosen_ids": [2], "rejected_ids": [3]'
expect_error "malformed JSON" "bad.jsonl:2: not a JSON object" train --model "$M" --data "$work/bad.jsonl"
bad '{"prompt_ids": [1], "chosen_ids": [], "rejected_ids": [3]}'
expect_error "empty response" "bad.jsonl:1: \"chosen_ids\" is empty" train --model "$M" --data "$work/bad.jsonl"
bad '{"prompt_ids": [1], "chosen_ids": [2], "rejected_ids": [3]}' '' '{"prompt_ids": [], "chosen_ids": [2], "rejected_ids": [3]}'
expect_error "empty prompt (line count skips blank lines correctly)" "bad.jsonl:3: \"prompt_ids\" is empty" train --model "$M" --data "$work/bad.jsonl"
bad '{"prompt_ids": [1], "chosen_ids": [2, 257], "rejected_ids": [3]}'
expect_error "id >= vocab size" "bad.jsonl:1: \"chosen_ids\"\[1\] = 257 is outside the vocabulary \[0, 257\)" train --model "$M" --data "$work/bad.jsonl"
bad '{"prompt_ids": [1], "chosen_ids": [2], "rejected_ids": [-1]}'
expect_error "negative id" "bad.jsonl:1: \"rejected_ids\"\[0\] = -1 is outside" train --model "$M" --data "$work/bad.jsonl"
bad '{"prompt_ids": [1], "chosen_ids": [2.5], "rejected_ids": [3]}'
expect_error "non-integer id" "bad.jsonl:1: \"chosen_ids\"\[0\] is not an integer" train --model "$M" --data "$work/bad.jsonl"
bad '{"prompt_ids": [1], "chosen_ids": [2]}'
expect_error "missing field" "bad.jsonl:1: missing \"rejected_ids\"" train --model "$M" --data "$work/bad.jsonl"
expect_error "missing data file" "nothere.jsonl: cannot open" train --model "$M" --data "$work/nothere.jsonl"
mkdir -p "$work/adir"
expect_error "data file is a directory" "adir: is a directory" train --model "$M" --data "$work/adir"
printf '%s\n' '{"prompt_ids": [1], "chosen_ids": [2], "rejected_ids": [3]} {"prompt_ids": [4], "chosen_ids": [5], "rejected_ids": [6]}' > "$work/bad.jsonl"
expect_error "two objects on one JSONL line" "bad.jsonl:1: not a JSON object: .*trailing data" train --model "$M" --data "$work/bad.jsonl"
printf '{"prompt_ids": [1], "chosen_ids": [2], "rejected_ids": [3]}\n{"prompt_ids": [1],\0 "chosen_ids": [2], "rejected_ids": [3]}\n' > "$work/bad.jsonl"
expect_error "NUL byte inside a JSONL line" "bad.jsonl:2: not a JSON object: .*NUL byte" train --model "$M" --data "$work/bad.jsonl"
# data from a pipe: streamed, never seeked
for how in "/dev/stdin" "<(cat $work/good.jsonl)"; do
    rm -rf "$work/out"
    if bash -c "cat '$work/good.jsonl' | $REPO train --steps 1 --batch-pairs 1 --out '$work/out' --model '$M' --data $how" >/dev/null 2>"$work/stderr" && [ -f "$work/out/model.safetensors" ]; then
        echo "PASS data from a pipe: --data $how"; pass=$((pass + 1))
    else echo "FAIL data from a pipe: --data $how: $(head -c 300 "$work/stderr")"; fail=$((fail + 1)); fi
done

# --- flags
expect_error "unknown loss" "unknown loss \"nope\"" train --model "$M" --data "$work/good.jsonl" --loss nope
expect_error "flag the loss does not use" "--loss dpo does not use gamma" train --model "$M" --data "$work/good.jsonl" --loss dpo --gamma 0.3
expect_error "beta on repo" "--loss repo does not use beta" train --model "$M" --data "$work/good.jsonl" --loss repo --beta 2
expect_error "max-len beyond positions" "--max-len 64 exceeds the model's 32 positions" train --model "$M" --data "$work/good.jsonl" --max-len 64
expect_error "not a number" "--lr: \"fast\" is not a number" train --model "$M" --data "$work/good.jsonl" --lr fast

# --- NaN stops the run and keeps the last good parameters (an lr of 1e30 blows up the second step)
rm -rf "$work/out"
$REPO train --model "$M" --data data/arith/pairs.jsonl --out "$work/out" --steps 5 --batch-pairs 4 --lr 1e30 \
    --lr-schedule constant --warmup-steps 0 --grad-clip 0 >"$work/stdout" 2>"$work/stderr"
rc=$?
if [ $rc -ne 0 ] && grep -q "not finite" "$work/stderr" && [ -f "$work/out/model.safetensors" ] \
   && "$PY" - "$work/out/model.safetensors" <<'EOF'
import json, struct, sys, array, math
raw = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', raw[:8])[0]
a = array.array('f'); a.frombytes(raw[8 + n:])
sys.exit(0 if all(math.isfinite(x) for x in a) else 1)
EOF
then echo "PASS NaN stops the run and keeps finite parameters: $(grep -m1 error "$work/stderr" | cut -c1-150)"; pass=$((pass + 1))
else echo "FAIL NaN handling: exit $rc, $(cat "$work/stderr")"; fail=$((fail + 1)); fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
