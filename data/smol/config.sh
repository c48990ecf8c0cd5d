# the settings `make smol`, data/smol/experiments.sh and tests share (sourced, not run)
MODEL=${SMOL_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}  # SMOL_MODEL: that file elsewhere
MAX_NEW=16          # new tokens per answer: a limit of at most 7 words fits well inside
# three epochs over the 48 shipped pairs (18 steps); the loss's own flags come on top
TRAIN="--lr 2e-5 --batch-pairs 8 --epochs 3 --warmup-steps 3"
# OpenMP threads: the shipped pairs were sampled with 2 (a sum split otherwise may round differently)
THREADS="--threads ${SMOL_THREADS:-2}"
# SMOL_QUICK=1 (CI's make smol, tests/test_smol.sh): two epochs (12 steps) on 48 held-out prompts
QUICK_TRAIN="--lr 2e-5 --batch-pairs 8 --epochs 2 --warmup-steps 2"
if [ "${SMOL_QUICK:-0}" = 1 ]; then TRAIN=$QUICK_TRAIN; fi
