#!/usr/bin/env bash
# make smol's pieces, without PyTorch (tests/test_smol_hf.py checks them against transformers):
# 1. the verifier (data/smol/smol) on hand-written answers whose verdicts are written here;
# 2. the shipped held-out prompts are what the generator gives now, distinct, and no training
#    prompt or shipped pair asks one of their questions;
# 3. the pair recipe (make smol-pairs) on a few prompts twice gives the same bytes;
# 4. SMOL_QUICK=1 make smol: its result line, and a held-out gain (it exits non-zero without one).
# Prints PASS/FAIL lines and "N passed, M failed". Skips (0 passed) without the SmolLM2 GGUF.
set -u
cd "$(dirname "$0")/.."
pass=0; fail=0
check() { # check WHAT CMD...: PASS if CMD succeeds
    local what=$1; shift
    if "$@"; then echo "PASS $what"; pass=$((pass + 1)); else echo "FAIL $what"; fail=$((fail + 1)); fi
}
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit; }
MODEL=${SMOL_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
if [ ! -f "$MODEL" ]; then
    MODEL=$(bash tests/gguf/fetch_smollm2.sh "$HOME/.cache/repo-tests/smollm2" 2>/dev/null | tail -n 1)
    [ -f "$MODEL" ] || { echo "skipped: the SmolLM2 GGUF (models/ empty and tests/gguf/fetch_smollm2.sh failed)"; finish; }
fi
export SMOL_MODEL=$MODEL
make --no-print-directory repo data/smol/smol > /dev/null || { echo "FAIL make repo data/smol/smol"; fail=1; finish; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
V=data/smol/smol

# ---- 1. the verifier: a prompt's ids and answers as chat-template ids (lines joined by "\n", id 198)
ids() { printf '%s\n' "$@" | ./repo encode --model "$MODEL" | paste -sd' ' | sed 's/ /,/g'; } # ids LINE...: all lines' ids
NL=198; EOT=$(echo '<|im_end|>' | ./repo encode --model "$MODEL")
prompt_ids() { echo "$(ids '<|im_start|>user'),$NL,$(ids "$1"),$EOT,$NL,$(ids '<|im_start|>assistant'),$NL"; }
answer() { local a; a=$(ids "$1"); [ "${2:-end}" = end ] && a="$a,$EOT"; echo "[$a]"; } # answer TEXT [open]
kenya=$(prompt_ids "What is the capital of Kenya? Answer in at most 3 words.")
hot=$(prompt_ids "What is the opposite of hot? Answer in at most 5 words.")
# verdicts: right and within 3 words; right, 2 words; 4 words; never ended; wrong city; upper case;
# a longer word is not the answer; "**" is no word
cat > "$T/samples.jsonl" <<EOF
{"prompt_ids": [$kenya], "samples": [$(answer "Nairobi."), $(answer "Nairobi, Kenya."), $(answer "The capital is Nairobi."), $(answer "Nairobi." open), $(answer "Mombasa."), $(answer "NAIROBI!"), $(answer "Nairobis."), $(answer "** Nairobi **")]}
{"prompt_ids": [$hot], "samples": [$(answer "The opposite of hot is cold."), $(answer "Warm.")]}
EOF
out=$($V score --samples "$T/samples.jsonl" --model "$MODEL" 2>&1)
check "verifier: 4 of the 10 hand-written answers right within their limit, the first of each prompt 1 of 2" \
    grep -q 'prompts 2 | greedy (first sample) accuracy 0.5000 | all 10 samples accuracy 0.4000' <<< "$out"
$V pairs --samples "$T/samples.jsonl" --model "$MODEL" --out "$T/pairs.jsonl" > "$T/pairs.out" 2>&1
check "verifier: one pair, the first right answer against the first wrong one; the prompt with no right answer dropped" \
    python3 -c 'import json, sys
p = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(not (len(p) == 1 and p[0]["chosen_text"] == "Nairobi.<|im_end|>" and p[0]["rejected_text"] == "The capital is Nairobi.<|im_end|>"
              and p[0]["limit"] == 3 and p[0]["answers"] == "nairobi"))' "$T/pairs.jsonl"
echo "{\"prompt_ids\": [$(prompt_ids "What is the capital of Atlantis? Answer in at most 3 words.")], \"samples\": [[$EOT]]}" > "$T/foreign.jsonl"
$V score --samples "$T/foreign.jsonl" --model "$MODEL" > "$T/foreign.out" 2>&1; rc=$?
check "verifier: a question that is not the task's is refused with one line naming the file and line" \
    test $rc -ne 0 -a "$(wc -l < "$T/foreign.out")" -eq 1 -a -n "$(grep "foreign.jsonl:1: .*not one of the task's questions" "$T/foreign.out")"

# ---- 2. the shipped held-out prompts and pairs against the generator
$V prompts --split test --n 200 --seed 2 > "$T/test.jsonl"
check "data/smol/test_prompts.jsonl is what the generator gives now (smol prompts --split test --n 200 --seed 2)" \
    cmp -s "$T/test.jsonl" data/smol/test_prompts.jsonl
$V prompts --split train > "$T/train_all.jsonl"
$V prompts --split test > "$T/test_all.jsonl"
check "held-out prompts distinct; no training prompt of the generator nor shipped pair asks a held-out question" \
    python3 -c 'import json, re, sys
q = lambda t: re.split(r" Answer in at most \d+ words\.", t)[0]
load = lambda f: [json.loads(l) for l in open(f)]
shipped = [r["prompt"] for r in load(sys.argv[1])]
test = {q(r["prompt"]) for r in load(sys.argv[3])}
train = {q(r["prompt"]) for r in load(sys.argv[2])}
pairs = {q(p["prompt_text"].split("<|im_start|>user\n")[1]) for p in load(sys.argv[4])}
ok = len(set(shipped)) == len(shipped) == 200 and {q(t) for t in shipped} <= test and test and train and not test & train
ok = ok and pairs and pairs <= train
print(f"  {len(test)} held-out questions, {len(train)} training questions, the pairs ask {len(pairs)}")
sys.exit(not ok)' data/smol/test_prompts.jsonl "$T/train_all.jsonl" "$T/test_all.jsonl" data/smol/pairs.jsonl

# ---- 3. the recipe is deterministic: two trials on 8 training prompts (4 samples each at T 0.8)
shipped=$(cat data/smol/pairs.jsonl data/smol/test_prompts.jsonl | cksum)
for k in 1 2; do OUT="$T/pairs$k" SMOL_PAIRS_CHECK=8 bash data/smol/make_pairs.sh > "$T/pairs$k.out" 2>&1; done
same_trials() { [ -s "$T/pairs1/samples.jsonl" ] && cmp -s "$T/pairs1/samples.jsonl" "$T/pairs2/samples.jsonl" &&
                cmp -s "$T/pairs1/pairs.jsonl" "$T/pairs2/pairs.jsonl"; }
check "make smol-pairs on 8 prompts twice: the same samples and pairs, byte for byte" same_trials
check "  ... and the shipped files untouched by a trial" test "$shipped" = "$(cat data/smol/pairs.jsonl data/smol/test_prompts.jsonl | cksum)"

# ---- 4. the short make smol
OUT="$T/smol" SMOL_QUICK=1 bash data/smol/run.sh > "$T/smol.out" 2>&1; rc=$?
tail -n 8 "$T/smol.out" | sed 's/^/  /'
check "SMOL_QUICK=1 make smol: 'held-out greedy accuracy: X -> Y (N prompts)' with Y > X (exit 0)" \
    test $rc -eq 0 -a -n "$(grep -E '^held-out greedy accuracy: [0-9.]+ -> [0-9.]+ \([0-9]+ prompts\)$' "$T/smol.out")"
finish
