#!/usr/bin/env bash
# make test-asan: ./repo_asan (AddressSanitizer + UBSan, -fno-sanitize-recover: the first report ends
# the run) through the bad-input suite, the text-data suite and every golden. Any sanitizer report
# (written under a private log directory, so none can hide in a suite's captured stderr) is a failure.
# Leak checking is off: repo, like llm.c, frees nothing at exit, and die() exits where it stands.
set -u
cd "$(dirname "$0")/.." || exit 2
make --no-print-directory repo_asan >/dev/null || { echo "FAIL build repo_asan"; echo "0 passed, 1 failed"; exit 1; }
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:log_path=$logs/asan"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$logs/ubsan"
export REPO=./repo_asan
pass=0; fail=0
suite() { # suite NAME CMD...: adds the suite's "N passed, M failed"
    local name=$1; shift
    local start=$SECONDS out
    out=$("$@" 2>&1)
    local line; line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    echo "$out" | grep '^FAIL'
    if [ -z "$line" ]; then echo "FAIL $name: no result line"; fail=$((fail + 1)); return; fi
    echo "$name under ASan/UBSan: $line ($((SECONDS - start)) s)"
    pass=$((pass + $(echo "$line" | cut -d' ' -f1))); fail=$((fail + $(echo "$line" | cut -d' ' -f3)))
}
suite "bad input" bash tests/test_errors.sh
suite "text data" env PYTHON="${PYTHON:-.venv/bin/python}" bash tests/test_text_data.sh
suite "GPT-2 goldens" bash tests/run_golden.sh tests/golden
suite "Llama goldens" bash tests/run_golden.sh tests/golden_llama
reports=$(ls "$logs" 2>/dev/null)
if [ -n "$reports" ]; then
    for r in $reports; do echo "FAIL sanitizer report $r: $(grep -m1 -E 'ERROR|runtime error' "$logs/$r")"; fail=$((fail + 1)); done
else
    echo "PASS no ASan or UBSan report in any run"; pass=$((pass + 1))
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
