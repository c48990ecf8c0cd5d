#!/usr/bin/env bash
# make policy: rebuilds everything the main job ships, from scratch (about 7 minutes on 2 cores):
#   data/arith/policy/          a 3-layer GPT-2 trained by our own SFT on additions in which the
#                               carry out of the ones place is dropped 60% of the time
#   data/arith/test_prompts.jsonl   500 held-out prompts
#   data/arith/pairs.jsonl      on-policy pairs: 4 samples per training prompt, best vs worst by the verifier
# Bit-for-bit reproduction needs the same thread count (the gradient norm is a parallel sum).
set -euo pipefail
cd "$(dirname "$0")/../.."
A=data/arith; W=out/arith-policy-build
rm -rf "$W"; mkdir -p "$W"
$A/arith sft --n 20000 --seed 1 --error-rate 0.6 > "$W/sft.jsonl"
$A/arith prompts --split test --n 500 --seed 99 > "$W/test_prompts.jsonl"
$A/arith prompts --n 4000 --seed 7 > "$W/train_prompts.jsonl"
./repo init --config $A/config.json --out "$W/init" --seed 1
./repo train --model "$W/init" --data "$W/sft.jsonl" --out "$W/sft" --loss sft --lr 2e-3 --batch-pairs 64 \
    --epochs 4 --warmup-steps 50 --weight-decay 0.01 --log "$W/sft.log.jsonl" --no-progress | tail -n 3
./repo sample --model "$W/sft" --prompts "$W/train_prompts.jsonl" --n 4 --temperature 1 --max-new 6 --seed 1 --out "$W/samples.jsonl"
$A/arith score --samples "$W/samples.jsonl"
$A/arith pairs --samples "$W/samples.jsonl" --out "$W/pairs.jsonl"
# replace the shipped files only once everything above has succeeded
rm -rf $A/policy.new && cp -r "$W/sft" $A/policy.new && rm -rf $A/policy && mv $A/policy.new $A/policy
cp "$W/pairs.jsonl" $A/pairs.jsonl
cp "$W/test_prompts.jsonl" $A/test_prompts.jsonl
echo "rebuilt $A/policy, $A/pairs.jsonl, $A/test_prompts.jsonl"
