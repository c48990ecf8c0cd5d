#!/usr/bin/env bash
# Run ./repo train on every golden case and compare log, first-step gradients and final
# parameters with the files written by tests/reference.py (tolerances: see tests/compare.c).
#
#   tests/run_golden.sh [GOLDEN_DIR]        (default tests/golden; run from the repo root)
#   REPO=./repo_noomp tests/run_golden.sh   (another binary)
#
# Prints "PASS <case> <what>" / "FAIL <case> <what>: detail" and finally "N passed, M failed";
# exits non-zero if anything failed.
set -u
GOLDEN=$(cd "${1:-$(dirname "$0")/golden}" && pwd) || exit 2
REPO=$(realpath "${REPO:-$(dirname "$0")/../repo}")
cd "$(dirname "$0")/.." || exit 2
COMPARE=tests/compare

if [ ! -x "$REPO" ]; then echo "run_golden: $REPO not built (make repo)" >&2; exit 2; fi
if [ ! -x "$COMPARE" ] || [ tests/compare.c -nt "$COMPARE" ] || [ io.c -nt "$COMPARE" ]; then
    ${CC:-gcc} -O2 -o "$COMPARE" tests/compare.c io.c -lcjson -lm || { echo "run_golden: cannot build $COMPARE" >&2; exit 2; }
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0; fail=0
ok()  { echo "PASS $1 $2"; pass=$((pass + 1)); }
bad() { echo "FAIL $1 $2: $3"; fail=$((fail + 1)); }

# $1 case, $2 what, rest: compare arguments
check() {
    local c=$1 what=$2; shift 2
    local out
    if out=$("$COMPARE" -q "$@" 2>&1); then ok "$c" "$what"
    else bad "$c" "$what" "$(echo "$out" | grep -v ' passed, ' | head -n 4 | tr '\n' ';' | sed 's/;$//')"; fi
}

n_cases=0
for dir in "$GOLDEN"/*/; do
    c=$(basename "$dir")
    [ -f "$dir/args.txt" ] || continue
    n_cases=$((n_cases + 1))
    W="$TMP/$c"; mkdir -p "$W"
    # shellcheck disable=SC2046
    "$REPO" train --model "$dir/model" --data "$dir/data.jsonl" --out "$W/out" --log "$W/log.jsonl" \
        --save-grads "$W/grads.safetensors" $(cat "$dir/args.txt") >"$W/stdout" 2>"$W/stderr"
    rc=$?
    if [ $rc -ne 0 ]; then
        bad "$c" train "exit status $rc: $(tail -n 3 "$W/stderr" | tr '\n' ';')"
        continue
    fi
    ok "$c" train
    check "$c" log --log "$W/log.jsonl" "$dir/expected_log.jsonl"
    check "$c" grads --st "$W/grads.safetensors" "$dir/expected_grads.safetensors"
    check "$c" params --params "$W/out/model.safetensors" "$dir/expected_params.safetensors" "$dir/model/model.safetensors"
    if cmp -s "$W/out/config.json" "$dir/model/config.json"; then ok "$c" config
    else bad "$c" config "out/config.json differs from the input config.json"; fi
done
if [ "$n_cases" -eq 0 ]; then bad "$GOLDEN" cases "no golden cases found"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
