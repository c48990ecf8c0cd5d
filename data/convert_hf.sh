#!/usr/bin/env bash
# convert_hf.sh IN.jsonl [OUT.jsonl]: a Hugging Face preference set exported to JSONL -> repo's text
# pairs, one {"prompt": ..., "chosen": "answer", "rejected": "answer"} per line (stdout without OUT).
#
#   datasets:  load_dataset("HuggingFaceH4/ultrafeedback_binarized", split="train_prefs").to_json("uf.jsonl")
#   here:      data/convert_hf.sh uf.jsonl uf_pairs.jsonl && ./repo prepare --model DIR --data uf_pairs.jsonl --out uf.bin
#
# Reads the layouts `repo` itself reads (so `repo train --data uf.jsonl` works without converting):
#   prompt: a string or a list of {role, content} messages; chosen / rejected: a string or a whole
#   conversation whose last message is the answer (UltraFeedback, TRL conversational sets); without
#   prompt, the messages before chosen's answer are the prompt. It also reads Anthropic HH-RLHF's raw
#   text ("\n\nHuman: ...\n\nAssistant: ..."), which `repo` does not. Other keys (scores, ids) are dropped.
# Needs jq (Debian package jq). Output is written under a temporary name and renamed into place.
set -euo pipefail
in=${1:?usage: convert_hf.sh IN.jsonl [OUT.jsonl]}
out=${2:-}
command -v jq >/dev/null || { echo "convert_hf.sh: needs jq (apt-get install jq)" >&2; exit 1; }
read -r -d '' prog <<'JQ' || true
def hh: [scan("\n\n(Human|Assistant):[ ]?((?:(?!\n\n(?:Human|Assistant):)[\\s\\S])*)")
         | {role: (if .[0] == "Human" then "user" else "assistant" end), content: .[1]}];
def conv: if type == "string" and test("^\n\nHuman:") then hh else . end;
def answer: if type == "array" then (.[-1].content) else . end;
(.chosen | conv) as $c | (.rejected | conv) as $r
| {prompt: (.prompt // (if ($c | type) == "array" and ($c | length) > 1 then $c[:-1]
                        else error("no prompt, and chosen holds no conversation before its answer") end)),
   chosen: ($c | answer), rejected: ($r | answer)}
JQ
if [ -z "$out" ]; then exec jq -c "$prog" "$in"; fi
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
jq -c "$prog" "$in" > "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "wrote $out: $(wc -l < "$out") pairs" >&2
