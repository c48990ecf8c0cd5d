#!/usr/bin/env bash
# Text preference data (data.c): text pairs and chat templates, `repo prepare`'s binary pair files,
# encode / decode, the converter. Prints PASS/FAIL lines and "N passed, M failed".
#
# Part 1 needs only python3's standard library (and jq for the converter): a handmade byte-level
# tokenizer.json and a tiny GPT-2 with its vocabulary. Text and prepared data train identically, bad
# lines give FILE:LINE errors and leave no output, --skip-bad counts, broken pair files are refused.
# Part 2 needs $PYTHON with Hugging Face `tokenizers` (tests/install_deps.sh test) and the GPT-2
# vocabulary of tests/tokenizer/fetch_vocabs.sh (downloaded once into $TOK_VOCABS_DIR): our ids
# against HF's for plain, chatml and llama3 (templates rendered by hand in tests/text_data_ref.py),
# SmolLM2's tokenizer from its GGUF file when cached, and a GPT-2-vocabulary model trained on text.
set -u
cd "$(dirname "$0")/.."
REPO=${REPO:-./repo}
PYTHON=${PYTHON:-.venv/bin/python}
VOCABS=${TOK_VOCABS_DIR:-.cache/tokenizer-vocabs}
REF="python3 tests/text_data_ref.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0; fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
no() { echo "FAIL $1${2:+: $2}"; fail=$((fail + 1)); }
# check NAME CMD...: passes when CMD succeeds
check() {
    local name=$1; shift
    if "$@" >"$work/check.out" 2>&1; then ok "$name"; else no "$name" "$(head -c 400 "$work/check.out")"; fi
}
# expect_error NAME PATTERN CMD...: non-zero exit, stderr matches PATTERN, $work/out* not left behind
expect_error() {
    local name=$1 pattern=$2; shift 2
    rm -rf "$work"/out*
    "$@" >"$work/stdout" 2>"$work/stderr"
    local rc=$?
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qE -- "$pattern" "$work/stderr" \
       && [ -z "$(ls "$work" | grep -E '^out|\.tmp\.')" ]; then
        ok "$name: $(grep -m1 error "$work/stderr")"
    else
        no "$name" "exit $rc, stderr: $(head -c 300 "$work/stderr"), left: $(ls "$work" | grep -E '^out|\.tmp\.' | tr '\n' ' ')"
    fi
}
mkmodel() { # mkmodel DIR VOCAB TOKENIZER_DIR: a tiny random GPT-2 with the tokenizer's files beside it
    sed "s/\"vocab_size\": 0/\"vocab_size\": $2/" > "$work/cfg.json" <<'EOF'
{"model_type": "gpt2", "vocab_size": 0, "n_positions": 256, "n_embd": 32, "n_layer": 2, "n_head": 2,
 "layer_norm_epsilon": 1e-05, "activation_function": "gelu_new", "eos_token_id": 0}
EOF
    $REPO init --config "$work/cfg.json" --out "$1" --seed 5 >/dev/null && cp "$3"/* "$1"/
}
train() { $REPO train --steps 3 --batch-pairs 4 --lr 1e-3 --no-progress "$@" >/dev/null; }
same_logs() { $REF logs "$1" "$2"; }

# ---------------------------------------------------------------------------- part 1
V=$($REF minitok "$work/tok") || { no "handmade tokenizer"; echo "$pass passed, $fail failed"; exit 1; }
M=$work/model
mkmodel "$M" "$V" "$work/tok" || { no "init model"; echo "$pass passed, $fail failed"; exit 1; }
D=data/sample_chat.jsonl

# text and prepared data: same pairs, same training run, eval and samples
check "prepare the sample (chatml chosen by default: the tokenizer has <|im_start|>)" \
    $REPO prepare --model "$M" --data $D --out "$work/pairs.bin"
check "the binary file reads back (python struct): 20 pairs, vocabulary $V" \
    bash -c "$REF readbin '$work/pairs.bin' '$work/pairs_ids.jsonl' | grep -qx $V && [ \$(wc -l < '$work/pairs_ids.jsonl') = 20 ]"
check "the chatml prompt starts <|im_start|>user and every response ends <|im_end|>" python3 -c "
import json
im_start, im_end = $V - 2, $V - 1
for l in open('$work/pairs_ids.jsonl'):
    p = json.loads(l)
    assert p['prompt_ids'][0] == im_start and p['chosen_ids'][-1] == im_end and p['rejected_ids'][-1] == im_end, p"
train --model "$M" --data $D --out "$work/m_text" --log "$work/log_text.jsonl"
train --model "$M" --data "$work/pairs.bin" --out "$work/m_bin" --log "$work/log_bin.jsonl"
train --model "$M" --data "$work/pairs_ids.jsonl" --out "$work/m_ids" --log "$work/log_ids.jsonl"
check "train: text JSONL and prepared file give identical logs" same_logs "$work/log_text.jsonl" "$work/log_bin.jsonl"
check "train: text JSONL and the same ids as *_ids JSONL give identical logs" same_logs "$work/log_text.jsonl" "$work/log_ids.jsonl"
check "train: identical trained models" cmp "$work/m_text/model.safetensors" "$work/m_bin/model.safetensors"
$REPO eval --model "$M" --data $D --out "$work/eval_text.jsonl" >/dev/null
$REPO eval --model "$M" --data "$work/pairs.bin" --out "$work/eval_bin.jsonl" >/dev/null
check "eval: text and prepared give identical scores" cmp "$work/eval_text.jsonl" "$work/eval_bin.jsonl"
$REPO sample --model "$M" --prompts $D --temperature 0 --max-new 4 --out "$work/s_text.jsonl"
$REPO sample --model "$M" --prompts "$work/pairs.bin" --temperature 0 --max-new 4 --out "$work/s_bin.jsonl"
check "sample --prompts: text and prepared give identical samples" cmp "$work/s_text.jsonl" "$work/s_bin.jsonl"
check "sample --prompts: prompts equal the pairs' prompts" python3 -c "
import json
a = [json.loads(l)['prompt_ids'] for l in open('$work/s_text.jsonl')]
b = [json.loads(l)['prompt_ids'] for l in open('$work/pairs_ids.jsonl')]
assert a == b and len(a) == 20"
$REPO prepare --model "$M" --data $D --out "$work/plain.bin" --chat-template plain >/dev/null
$REF readbin "$work/plain.bin" "$work/plain_ids.jsonl" >/dev/null
check "plain template: responses end with the tokenizer's EOS" python3 -c "
import json
assert all(json.loads(l)[k][-1] == $V - 3 for l in open('$work/plain_ids.jsonl') for k in ('chosen_ids', 'rejected_ids'))"
check "plain template: string prompts verbatim, messages' contents joined by blank lines" bash -c "
    python3 -c \"
import json
for l in open('$work/plain_ids.jsonl'): print(' '.join(map(str, json.loads(l)['prompt_ids'])))\" |
    $REPO decode --tokenizer '$work/tok' > '$work/plain_prompts.txt'
    python3 -c \"
import json
want = []
for l in open('$D'):
    x = json.loads(l); p = x.get('prompt')
    want.append(p if isinstance(p, str) else '\\\\n\\\\n'.join(m['content'] for m in (p or x['chosen'][:-1])))
got = open('$work/plain_prompts.txt').read()
assert got == ''.join(w + '\\\\n' for w in want), (got[:300], want[:3])\""

# the converter: its output reads as the original does
if command -v jq >/dev/null; then
    data/convert_hf.sh $D "$work/conv.jsonl" 2>/dev/null
    check "convert_hf.sh writes the sample as 20 lines with string answers" python3 -c "
import json
lines = [json.loads(l) for l in open('$work/conv.jsonl')]
assert len(lines) == 20 and all(isinstance(x[k], str) for x in lines for k in ('chosen', 'rejected')), lines[:1]
assert all(set(x) == {'prompt', 'chosen', 'rejected'} for x in lines)"
    for t in chatml plain; do
        $REPO prepare --model "$M" --data "$work/conv.jsonl" --out "$work/conv_$t.bin" --chat-template $t >/dev/null
        $REPO prepare --model "$M" --data $D --out "$work/orig_$t.bin" --chat-template $t >/dev/null
        check "convert_hf.sh: converted and original give the same ids ($t)" cmp "$work/conv_$t.bin" "$work/orig_$t.bin"
    done
    printf '%s\n' '{"chosen": "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: A joke?\n\nAssistant: Knock knock.", "rejected": "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: A joke?\n\nAssistant: No."}' > "$work/hh.jsonl"
    printf '%s\n' '{"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "A joke?"}], "chosen": "Knock knock.", "rejected": "No."}' > "$work/hh_want.jsonl"
    data/convert_hf.sh "$work/hh.jsonl" "$work/hh_conv.jsonl" 2>/dev/null
    check "convert_hf.sh: HH-RLHF raw text becomes messages" bash -c "
        $REPO prepare --model '$M' --data '$work/hh_conv.jsonl' --out '$work/hh1.bin' && $REPO prepare --model '$M' --data '$work/hh_want.jsonl' --out '$work/hh2.bin' && cmp '$work/hh1.bin' '$work/hh2.bin'"
else
    no "convert_hf.sh" "jq is not installed (tests/install_deps.sh installs it)"
fi

# bad lines: FILE:LINE, no output left behind
good='{"prompt": "a", "chosen": "b", "rejected": "c"}'
bad() { printf '%s\n' "$good" "$@" > "$work/bad.jsonl"; }
both() { # both NAME PATTERN: prepare and train each refuse bad.jsonl
    expect_error "prepare: $1" "bad.jsonl:$2" $REPO prepare --model "$M" --data "$work/bad.jsonl" --out "$work/out.bin"
    expect_error "train: $1" "bad.jsonl:$2" $REPO train --model "$M" --data "$work/bad.jsonl" --out "$work/out" --steps 1
}
bad '{"prompt": [{"role": "robot", "content": "hi"}], "chosen": "b", "rejected": "c"}'
both "unknown role" '2: "prompt"\[0\]: unknown role "robot"'
bad '{"prompt": "a", "rejected": "c"}'
both "missing chosen" '2: missing "chosen"'
bad '{"prompt": "a", "chosen": "b"}'
both "missing rejected" '2: missing "rejected"'
bad '{"chosen": "b", "rejected": "c"}'
both "no prompt and no conversation" '2: missing "prompt"'
bad '{"prompt": [{"role": "user"}], "chosen": "b", "rejected": "c"}'
both "message without content" '2: "prompt"\[0\]: missing "content"'
bad '{"prompt": [{"role": "user", "content": ["x"]}], "chosen": "b", "rejected": "c"}'
both "non-string content" '2: "prompt"\[0\]: "content" is not a string'
bad '{"prompt": "a", "chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": 7}], "rejected": "c"}'
both "non-string answer content" '2: "chosen"\[1\]: "content" is not a string'
bad '{"prompt": "a", "chosen": 5, "rejected": "c"}'
both "chosen neither string nor messages" '2: "chosen" must be a string or a list of messages'
bad '{"prompt": "a", "chosen": "b", "rejected": ""}'
both "empty response" '2: the answer in "rejected" is empty'
bad '{"prompt": "a", "chosen": [{"role": "user", "content": "a"}], "rejected": "c"}'
both "conversation not ending with the assistant" '2: the last message of "chosen" is the user'"'"'s'
bad '{"chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "rejected": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "c"}]}'
both "chosen and rejected conversations differ" '2: no "prompt", and "chosen" and "rejected" differ'
bad '' '{"prompt": "a", "chosen": "b", "rejected": "c"'
both "not JSON (blank lines counted)" '3: not a JSON object'
bad '{"prompt": "", "chosen": "b", "rejected": "c"}'
expect_error "prepare: plain prompt that tokenizes to nothing" 'bad.jsonl:2: the prompt tokenizes to nothing' \
    $REPO prepare --model "$M" --data "$work/bad.jsonl" --out "$work/out.bin" --chat-template plain
bad '{"prompt_ids": [1], "chosen_ids": [2], "rejected_ids": [999999]}'
both "ids lines mixed with text lines keep their checks" '2: "rejected_ids"\[0\] = 999999 is outside the vocabulary'
expect_error "unknown template" 'unknown template "zephyr"' \
    $REPO prepare --model "$M" --data $D --out "$work/out.bin" --chat-template zephyr
expect_error "llama3 template needs its tokens" 'llama3: the tokenizer has no <\|eot_id\|> token' \
    $REPO prepare --model "$M" --data $D --out "$work/out.bin" --chat-template llama3
mkdir -p "$work/notok" && cp "$M/config.json" "$M/model.safetensors" "$work/notok/"
expect_error "text without a tokenizer" 'notok.*(tokenizer|vocab)' \
    $REPO train --model "$work/notok" --data $D --out "$work/out" --steps 1
check "id lines need no tokenizer" $REPO eval --model "$work/notok" --data "$work/pairs_ids.jsonl"
check "a model without a tokenizer reads text with --tokenizer" $REPO eval --model "$work/notok" --data $D --tokenizer "$work/tok"

# --skip-bad: the good lines are kept, the rest counted per reason
{
    echo "$good"
    echo '{"prompt": [{"role": "robot", "content": "hi"}], "chosen": "b", "rejected": "c"}'
    echo '{"prompt": [{"role": "bot", "content": "hi"}], "chosen": "b", "rejected": "c"}'
    echo '{"prompt": "a", "chosen": "b"}'
    echo "$good"
    echo 'not json'
    echo '{"prompt": "a", "chosen": "", "rejected": "c"}'
    echo '{"prompt": [{"role": "user", "content": 1}], "chosen": "b", "rejected": "c"}'
    echo "$good"
} > "$work/skip.jsonl"
$REPO prepare --model "$M" --data "$work/skip.jsonl" --out "$work/skip.bin" --skip-bad >/dev/null 2>"$work/skip.err"
check "--skip-bad keeps the 3 good pairs" bash -c "$REF readbin '$work/skip.bin' /dev/stdout | tail -n +1 | grep -c prompt_ids | grep -qx 3"
check "--skip-bad counts per reason" grep -q "skipped 6 of 9 lines of .*skip.jsonl (--skip-bad): 1 not a JSON object, 1 missing field, 1 not a string / wrong type, 2 unknown role, 1 empty" "$work/skip.err"
printf '%s\n' '{"prompt": "a", "chosen": "b"}' > "$work/allbad.jsonl"
expect_error "--skip-bad with nothing left" 'allbad.jsonl: no preference pairs' \
    $REPO prepare --model "$M" --data "$work/allbad.jsonl" --out "$work/out.bin" --skip-bad

# broken pair files
python3 - "$work" <<'EOF'
import struct, sys
w = sys.argv[1]
b = open(w + "/pairs.bin", "rb").read()
open(w + "/trunc.bin", "wb").write(b[:-6])
open(w + "/trunc_header.bin", "wb").write(b[:20])
open(w + "/trunc_magic.bin", "wb").write(b[:5])
open(w + "/foreign.bin", "wb").write(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
open(w + "/version.bin", "wb").write(b[:8] + struct.pack("<I", 7) + b[12:])
open(w + "/count.bin", "wb").write(b[:16] + struct.pack("<Q", 19) + b[24:])
n_pairs, n_ids = struct.unpack_from("<QQ", b, 16)
open(w + "/count2.bin", "wb").write(b[:16] + struct.pack("<QQ", n_pairs + 1, n_ids - 3) + b[32:])
n_ids = struct.unpack_from("<Q", b, 24)[0]
# lengths that disagree with the header while the total size still fits: pair 1 claims one more prompt id
p = bytearray(b); struct.pack_into("<i", p, 32, struct.unpack_from("<i", b, 32)[0] + 1); struct.pack_into("<i", p, 36, struct.unpack_from("<i", b, 36)[0] - 1)
open(w + "/lens.bin", "wb").write(bytes(p))
p = bytearray(b); struct.pack_into("<i", p, 36, 0)
open(w + "/zero.bin", "wb").write(bytes(p))
EOF
rej() { expect_error "$1" "$2" $REPO train --model "$M" --data "$work/$3" --out "$work/out" --steps 1; }
rej "truncated pair file" "trunc.bin: the header counts 20 pairs and [0-9]+ ids \([0-9]+ bytes\), but the file has [0-9]+ bytes \(truncated\?\)" trunc.bin
rej "truncated header" "trunc_header.bin: truncated REPOPAIR file: 20 bytes" trunc_header.bin
rej "truncated inside the magic" "trunc_magic.bin: truncated REPOPAIR file: 5 bytes" trunc_magic.bin
rej "foreign file" "foreign.bin: neither JSONL nor a REPOPAIR pair file" foreign.bin
rej "unknown version" "version.bin: REPOPAIR version 7 is not supported" version.bin
rej "pair count that does not add up" "count.bin: the header counts 19 pairs" count.bin
rej "pair and id counts that add up to the size but not to the lengths" "count2.bin: pair 20: its lengths run past the [0-9]+ ids the header counts" count2.bin
rej "zero-length response" "zero.bin: pair 1: length 0" zero.bin
check "lengths shifted within a pair still read (same total)" $REPO eval --model "$M" --data "$work/lens.bin"
mkmodel "$work/model2" $((V + 1)) "$work/tok"
expect_error "vocabulary of another model" "pairs.bin: prepared for a vocabulary of $V tokens, but the model has $((V + 1))" \
    $REPO train --model "$work/model2" --data "$work/pairs.bin" --out "$work/out" --steps 1
expect_error "sample refuses it too" "pairs.bin: prepared for a vocabulary of $V tokens" \
    $REPO sample --model "$work/model2" --prompts "$work/pairs.bin" --out "$work/out.jsonl"
check "prepare is atomic: no temporary files left" bash -c "! ls '$work' | grep -q '\.tmp\.'"

# encode | decode
printf 'the cat sat\n\nünïcödé ✓ <|im_start|>user\n  two  spaces, tabs\tand 123\n' > "$work/lines.txt"
check "encode | decode gives the lines back" bash -c "$REPO encode --model '$M' < '$work/lines.txt' | $REPO decode --tokenizer '$work/tok' | cmp - '$work/lines.txt'"
check "encode: one line of ids per line, special tokens as one id" bash -c "
    $REPO encode --tokenizer '$work/tok' < '$work/lines.txt' > '$work/ids.txt' && [ \$(wc -l < '$work/ids.txt') = 4 ] && [ -z \"\$(sed -n 2p '$work/ids.txt')\" ] && sed -n 3p '$work/ids.txt' | grep -qw $((V - 2))"
expect_error "decode: an id outside the vocabulary" "stdin:2: id $V is outside the vocabulary" \
    bash -c "printf '1 2\n3 $V\n' | $REPO decode --model '$M'"
expect_error "decode: not an id" 'stdin:1: "x" is not a token id' bash -c "echo '1 x' | $REPO decode --model '$M'"

# ---------------------------------------------------------------------------- part 2
if ! "$PYTHON" -c "import tokenizers" 2>/dev/null; then
    echo "skipped: Hugging Face comparisons ($PYTHON has no tokenizers; run tests/install_deps.sh test)"
else
    PYTHON="$PYTHON" bash tests/tokenizer/fetch_vocabs.sh "$VOCABS" >/dev/null 2>&1 || true
    if [ ! -s "$VOCABS/gpt2/vocab.json" ]; then
        no "GPT-2 vocabulary" "tests/tokenizer/fetch_vocabs.sh $VOCABS failed"
    else
        HREF="$PYTHON tests/text_data_ref.py"
        VC=$($HREF mktok "$VOCABS/gpt2" "$work/chattok")
        check "GPT-2 vocabulary + chat tokens: tokenizer.json written by HF" [ "$VC" = 50263 ]
        G=$work/gpt2model
        mkmodel "$G" 50257 "$VOCABS/gpt2"
        # templates rendered by hand in Python, tokenized by HF, against ours (through prepare's file)
        hf_case() { # NAME TEMPLATE EOS HF_TOKENIZER_JSON PREPARE_ARGS...
            local name=$1 t=$2 eos=$3 tj=$4; shift 4
            rm -f "$work/ours.jsonl" "$work/hf.jsonl"
            $REPO prepare --data $D --out "$work/hf_case.bin" "$@" >/dev/null \
              && $REF readbin "$work/hf_case.bin" "$work/ours.jsonl" >/dev/null \
              && $HREF expect "$tj" "$t" "$eos" $D "$work/hf.jsonl"
            check "ids equal HF tokenizers': $name" cmp "$work/ours.jsonl" "$work/hf.jsonl"
        }
        hf_case "plain, GPT-2 vocab.json + merges.txt of the model directory" plain '<|endoftext|>' \
            "$VOCABS/gpt2-json/tokenizer.json" --model "$G" --chat-template plain
        hf_case "plain is the default without <|im_start|>" plain '<|endoftext|>' "$VOCABS/gpt2-json/tokenizer.json" --model "$G"
        hf_case "chatml, GPT-2 + chat tokens" chatml '<|im_end|>' "$work/chattok/tokenizer.json" --tokenizer "$work/chattok" --chat-template chatml
        hf_case "llama3, GPT-2 + chat tokens" llama3 '<|eot_id|>' "$work/chattok/tokenizer.json" --tokenizer "$work/chattok" --chat-template llama3
        smol=$VOCABS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
        if [ -s "$smol" ] && [ -s "$VOCABS/smollm2/tokenizer.json" ]; then
            hf_case "chatml by default, SmolLM2's tokenizer from its GGUF metadata" chatml '<|im_end|>' "$VOCABS/smollm2/tokenizer.json" --model "$smol"
        fi
        printf '%s\n' "Hello world" "  leading spaces and trailing  " "ünïcödé ✓ 中文 🙂" "it's 3.14 <|endoftext|> ok" "" "tabs	and	newlines? no" > "$work/hf_lines.txt"
        check "encode: ids equal HF tokenizers' (GPT-2)" bash -c "
            $REPO encode --model '$G' < '$work/hf_lines.txt' > '$work/a.txt' && $HREF encode '$VOCABS/gpt2-json/tokenizer.json' < '$work/hf_lines.txt' > '$work/b.txt' && cmp '$work/a.txt' '$work/b.txt'"
        check "encode | decode round trip (GPT-2)" bash -c "$REPO encode --model '$G' < '$work/hf_lines.txt' | $REPO decode --model '$G' | cmp - '$work/hf_lines.txt'"
        $REPO prepare --model "$G" --data $D --out "$work/g.bin" >/dev/null
        train --model "$G" --data $D --out "$work/g_text" --log "$work/g_text.jsonl"
        train --model "$G" --data "$work/g.bin" --out "$work/g_bin" --log "$work/g_bin.jsonl"
        check "train (GPT-2 vocabulary): text JSONL and prepared file give identical logs" same_logs "$work/g_text.jsonl" "$work/g_bin.jsonl"
    fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
