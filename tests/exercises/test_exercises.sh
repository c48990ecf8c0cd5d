#!/usr/bin/env bash
# The course's exercises stay honest (docs/exercises/README.md). For every exercise of repo.c:
#   - it has its page docs/exercises/NAME.md, its expected values tests/exercises/expected/NAME.json and
#     its check in tests/exercises/check.c (and nothing is there without an exercise);
#   - this checkout's function PASSES its check;
#   - a blank copy (make exercise NAME=X OUT=DIR) compiles as C and as C++ with no warning but unused
#     functions, and FAILS its check there with FAIL lines naming the function.
# Also: make exercise refuses an unknown or missing NAME, a missing OUT, a non-empty OUT and an OUT that
# is a file, with one line and nothing written; the plain-kernel build (-DREPO_REFERENCE_KERNELS, what
# make check-exercise-full runs) passes every golden run, and fails one in the blank attention_backward
# and matmul_backward copies, whose plain ./repo (the tuned kernels) still passes it.
# Prints PASS/FAIL lines and "N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
pass=0; fail=0
ok()  { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
EX="sh tests/exercises/exercise.sh"
WARN="-Wall -Wextra -Wno-unused-parameter -Wno-unused-function -Werror"

names=$($EX names) || { bad "exercise.sh names: the markers in repo.c do not parse"; names=""; }
for required in loss_repo loss_simpo loss_dpo margin gamma_schedule adamw layernorm_backward attention_backward \
                matmul_backward logprob_backward; do
    echo "$names" | grep -qxF "$required" || bad "exercise $required: no EXERCISE marker in repo.c"
done
if make -s tests/exercises/check > "$TMP/build.log" 2>&1; then checked=$(tests/exercises/check --list)
else bad "make tests/exercises/check: $(tail -n 3 "$TMP/build.log" | tr '\n' ';')"; checked=""; fi
for n in $checked; do echo "$names" | grep -qxF "$n" || bad "check.c checks $n, which repo.c does not mark as an exercise"; done
for f in tests/exercises/expected/*.json docs/exercises/*.md; do
    [ -e "$f" ] || continue
    n=$(basename "$f"); n=${n%.*}
    [ "$n" = README ] || echo "$names" | grep -qxF "$n" || bad "$f: no exercise $n in repo.c"
done

# the expected values name the blank copy's failure; the reference passes
for n in $names; do
    missing=""
    [ -s "docs/exercises/$n.md" ] || missing="$missing docs/exercises/$n.md"
    [ -s "tests/exercises/expected/$n.json" ] || missing="$missing tests/exercises/expected/$n.json"
    echo "$checked" | grep -qxF "$n" || missing="$missing (its check in tests/exercises/check.c)"
    if [ -n "$missing" ]; then bad "$n: missing$missing"; continue; fi
    out=$(tests/exercises/check "$n" 2>&1); rc=$?
    if [ $rc -eq 0 ] && echo "$out" | tail -n 1 | grep -Eq '^[1-9][0-9]* passed, 0 failed$'; then ok "$n: repo.c's function passes its check ($(echo "$out" | tail -n 1))"
    else bad "$n: repo.c's function fails its check: $(echo "$out" | grep FAIL | head -n 2 | tr '\n' ';')"; fi

    D=$TMP/$n
    if ! $EX make "$n" "$D" > /dev/null 2> "$TMP/err"; then bad "$n: make exercise failed: $(cat "$TMP/err")"; continue; fi
    regions=$(grep -c "^// EXERCISE $n: " repo.c)
    todos=$(grep -c "// TODO exercise $n: " "$D/repo.c")
    outside() { awk -v n="$1" '$0 ~ "^// EXERCISE " n ": " { skip = 1 } !skip { print } $0 ~ "^// END EXERCISE " n "( |$)" { skip = 0 }' "$2"; }
    if [ "$todos" -eq "$regions" ] && cmp -s <(outside "$n" "$D/repo.c") <(outside "$n" repo.c) && ! cmp -s "$D/repo.c" repo.c &&
       [ -z "$(diff -r -q -x repo.c -x .venv -x '*.o' -x repo -x check . "$D" 2>&1 | grep -v '^Only in \.' )" ]; then
        ok "$n: the blank copy has $todos TODO(s), one per marked function, and differs from the project nowhere else"
    else bad "$n: the blank copy has $todos TODOs for $regions marked functions, or differs outside them"; fi
    if gcc -fsyntax-only -fopenmp $WARN "$D/repo.c" 2> "$TMP/err" && g++ -x c++ -fsyntax-only -fopenmp -Wall -Wno-unused-function -Werror "$D/repo.c" 2>> "$TMP/err"
    then ok "$n: the blank repo.c compiles as C and as C++ (no warnings but unused functions)"
    else bad "$n: the blank repo.c does not compile cleanly: $(head -n 3 "$TMP/err" | tr '\n' ';')"; fi
    if ! make -s -C "$D" tests/exercises/check > "$TMP/err" 2>&1; then bad "$n: the blank copy's check does not build: $(tail -n 3 "$TMP/err" | tr '\n' ';')"; continue; fi
    out=$(cd "$D" && ./tests/exercises/check "$n" 2>&1); rc=$?
    last=$(echo "$out" | tail -n 1)
    if [ $rc -eq 1 ] && echo "$last" | grep -Eq '^[0-9]+ passed, [1-9][0-9]* failed$' && echo "$out" | grep -q "^FAIL [a-z_]*(.*expected .*, got "; then
        ok "$n: the blank copy fails its check ($last), e.g. $(echo "$out" | grep -m 1 '^FAIL' | cut -c 1-150)..."
    else bad "$n: the blank copy does not fail its check as it should (exit $rc): $(echo "$out" | tail -n 2 | tr '\n' ';')"; fi
done

# make exercise's refusals: one line "repo: error: ...", a non-zero exit, nothing written or lost
refuse() { # refuse WHAT NAME OUT: must fail with one error line and leave OUT as it was
    local what=$1 before after
    before=$(ls -la "$3" 2>&1 | md5sum)
    if make -s --no-print-directory exercise NAME="$2" OUT="$3" > "$TMP/out" 2> "$TMP/err"; then bad "make exercise $what: accepted"; return; fi
    after=$(ls -la "$3" 2>&1 | md5sum)
    local lines; lines=$(grep -Ev '^make(\[[0-9]+\])?: \*\*\*' "$TMP/err" | wc -l)
    if [ "$lines" -eq 1 ] && grep -q '^repo: error: make exercise: ' "$TMP/err" && [ "$before" = "$after" ] && ! ls -d "$3".tmp.* > /dev/null 2>&1
    then ok "make exercise $what: refused ($(grep '^repo' "$TMP/err"))"
    else bad "make exercise $what: $(cat "$TMP/err" | tr '\n' ';') (OUT changed: $([ "$before" = "$after" ] && echo no || echo yes))"; fi
}
refuse "NAME=no_such" no_such "$TMP/r1"
refuse "without NAME" "" "$TMP/r2"
refuse "without OUT" loss_repo ""
mkdir -p "$TMP/full"; echo "a student's work" > "$TMP/full/mine.c"
refuse "into a non-empty OUT" loss_repo "$TMP/full"
echo "keep me" > "$TMP/file"
refuse "with OUT a file" loss_repo "$TMP/file"
mkdir "$TMP/empty"
if make -s --no-print-directory exercise NAME=loss_repo OUT="$TMP/empty" > /dev/null 2>&1 && [ -f "$TMP/empty/repo.c" ] && [ -f "$TMP/empty/Makefile" ]
then ok "make exercise into an existing empty directory"; else bad "make exercise into an existing empty directory failed"; fi

# -DREPO_REFERENCE_KERNELS: the whole trainer through the plain matmul and attention
golden_one() { # golden_one BINARY: one golden case (GPT-2) through that binary; 0 when it passes
    mkdir -p "$TMP/one"; ln -sfn "$(pwd)/tests/golden/repo_s3" "$TMP/one/repo_s3"
    REPO="$1" bash tests/run_golden.sh "$TMP/one" > "$TMP/golden_one.log" 2>&1
}
if make -s repo_reference_kernels tests/compare > "$TMP/err" 2>&1; then
    for g in tests/golden tests/golden_llama; do
        if REPO=./repo_reference_kernels bash tests/run_golden.sh "$g" > "$TMP/golden.log" 2>&1
        then ok "make check-exercise-full's build (-DREPO_REFERENCE_KERNELS) passes every case of $g: $(tail -n 1 "$TMP/golden.log")"
        else bad "-DREPO_REFERENCE_KERNELS on $g: $(grep FAIL "$TMP/golden.log" | head -n 3 | tr '\n' ';')"; fi
    done
    for n in attention_backward matmul_backward; do
        D=$TMP/$n
        [ -d "$D" ] || continue
        if ! make -s -C "$D" repo_reference_kernels tests/compare > "$TMP/err" 2>&1; then bad "$n: the blank copy's repo_reference_kernels does not build"; continue; fi
        if golden_one "$D/repo_reference_kernels"; then bad "$n: the blank copy's -DREPO_REFERENCE_KERNELS build passes a golden run: the switch does not route through ${n}_reference"
        else ok "$n: the blank copy's -DREPO_REFERENCE_KERNELS build fails the golden run repo_s3, as it should"; fi
    done
    if [ ! -d "$TMP/attention_backward" ]; then :
    elif make -s -C "$TMP/attention_backward" repo > "$TMP/err" 2>&1 && golden_one "$TMP/attention_backward/repo"
    then ok "attention_backward: the blank copy's plain ./repo (the tuned kernels) still passes the golden run repo_s3"
    else bad "attention_backward: the blank copy's ./repo does not build or fails repo_s3: $(tail -n 3 "$TMP/golden_one.log" "$TMP/err" | tr '\n' ';')"; fi
else bad "make repo_reference_kernels: $(tail -n 3 "$TMP/err" | tr '\n' ';')"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
