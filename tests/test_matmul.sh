#!/usr/bin/env bash
# matmul.c against a double-precision triple loop (tests/test_matmul.c), in every build the code has:
# this machine's best (-march=native: AVX-512 or AVX2), AVX2+FMA with AVX-512 switched off, portable
# (no -march at all), without OpenMP, and under AddressSanitizer + UndefinedBehaviorSanitizer.
# Prints one closing line "N passed, M failed" for them all.
set -u
cd "$(dirname "$0")/.."
CC=${CC:-gcc}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
FLAGS="-O3 -ffast-math -fno-finite-math-only -Wall -Wextra"
pass=0; fail=0; skipped=""
has() { grep -qw "$1" /proc/cpuinfo; }
# variant NAME EXPECTED_ISA "COMPILER FLAGS" [TEST ARGS...]: build tests/test_matmul.c + matmul.c, run it, add up
variant() {
    local name=$1 isa=$2 flags=$3; shift 3
    echo "--- $name ($flags)"
    if ! $CC $flags -o "$W/$name" tests/test_matmul.c matmul.c -lm; then
        echo "FAIL $name: does not build"; fail=$((fail + 1)); return
    fi
    local log; log=$("$W/$name" --isa "$isa" "$@" 2>&1); local rc=$?
    echo "$log" | grep -E '^(FAIL|matmul:|digest|\(built)' | head -n 20
    echo "$log" | sed -n 's/^digest of the outputs above: \([0-9a-f]*\)$/\1/p' > "$W/$name.digest"
    local line; line=$(echo "$log" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then echo "$log" | tail -n 20; echo "FAIL $name: no result line (exit $rc)"; fail=$((fail + 1)); return; fi
    echo "$line"
    local p f; p=$(echo "$line" | cut -d' ' -f1); f=$(echo "$line" | cut -d' ' -f3)
    pass=$((pass + p)); fail=$((fail + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then echo "FAIL $name: exit $rc"; fail=$((fail + 1)); fi
}
native=portable
if has avx512f; then native=avx512; elif has avx2 && has fma; then native=avx2; fi
variant native "$native" "$FLAGS -march=native -fopenmp"
if has avx2 && has fma; then variant avx2 avx2 "$FLAGS -march=native -mno-avx512f -fopenmp"
else skipped="$skipped avx2 (this CPU has no AVX2+FMA)"; fi
if [ "$native" = avx512 ] && [ -s "$W/avx2.digest" ]; then # same KC, same order of every sum: the same bits
    if cmp -s "$W/native.digest" "$W/avx2.digest"; then echo "AVX-512 and AVX2 builds: bit-identical outputs"; pass=$((pass + 1))
    else echo "FAIL AVX-512 and AVX2 builds give different outputs"; fail=$((fail + 1)); fi
fi
variant portable portable "$FLAGS -fopenmp"
variant no_openmp "$native" "$FLAGS -march=native -Wno-unknown-pragmas" --quick
variant sanitizers "$native" "$FLAGS -march=native -fopenmp -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" --quick
[ -n "$skipped" ] && echo "skipped:$skipped"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
