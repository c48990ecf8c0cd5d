#!/usr/bin/env bash
# libFuzzer harnesses for every parser (tests/fuzz/README.md). Builds them with clang
# (-fsanitize=fuzzer,address,undefined), replays the committed seeds and regressions (each input once),
# then fuzzes each harness for SECONDS (default 10), starting from the seeds.
#   tests/fuzz/run.sh [SECONDS] [HARNESS...]    (make fuzz: FUZZ_SECONDS, default 60)
#   tests/fuzz/run.sh --check                   exit 0 if clang's fuzzer runtime is installed
# Prints PASS/FAIL per harness and "N passed, M failed". A crash leaves its input in
# tests/fuzz/build/crashes/HARNESS/: add it to tests/fuzz/regressions/HARNESS/ with the fix.
set -u
cd "$(dirname "$0")/../.." || exit 2
CLANG=${CLANG:-clang}
B=tests/fuzz/build
ALL="safetensors config index gguf gguf_tokenizer pairs repopair tokenizer_json vocab_merges encode"
# harnesses whose code path can die(): die() longjmps out of it, leaving its allocations behind
LEAKY="safetensors config index gguf_tokenizer pairs repopair"

have_runtime() {
    mkdir -p "$B" &&
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }\n' > "$B/probe.c" &&
    "$CLANG" -fsanitize=fuzzer,address,undefined -o "$B/probe" "$B/probe.c" 2>/dev/null
}
if [ "${1:-}" = --check ]; then have_runtime; exit $?; fi
SECONDS_EACH=${1:-10}
shift $(( $# > 0 ? 1 : 0 ))
WANT=${*:-$ALL}
if ! have_runtime; then
    echo "skipped: $CLANG cannot link -fsanitize=fuzzer (install clang and libclang-rt-dev: tests/install_deps.sh test)"
    echo "0 passed, 0 failed"; exit 0
fi

pass=0; fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

# the parsers once, instrumented for coverage and sanitizers; each harness links against them
FLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -DREPO_FUZZ"
objs=""
for f in io tokenizer data gguf; do
    if [ ! -f "$B/$f.o" ] || [ "$f.c" -nt "$B/$f.o" ] || [ -n "$(find . -maxdepth 1 -name '*.h' -newer "$B/$f.o")" ]; then
        "$CLANG" $FLAGS -fsanitize=fuzzer-no-link -c -o "$B/$f.o" "$f.c" || { bad "build $f.o"; echo "$pass passed, $fail failed"; exit 1; }
    fi
    objs="$objs $B/$f.o"
done

for h in $WANT; do
    exe=$B/fuzz_$h
    if ! "$CLANG" $FLAGS -fsanitize=fuzzer -o "$exe" "tests/fuzz/fuzz_$h.c" $objs -lcjson -lpcre2-8 -lm 2>"$B/cc_$h.log"; then
        bad "$h: build: $(head -c 300 "$B/cc_$h.log")"; continue
    fi
    opts="-timeout=10 -rss_limit_mb=2048 -max_len=65536"
    case " $LEAKY " in *" $h "*) opts="$opts -detect_leaks=0";; esac
    seeds=tests/fuzz/seeds/$h regs=tests/fuzz/regressions/$h
    mkdir -p "$B/corpus/$h" "$B/crashes/$h"
    # 1. every committed input once (a regression that crashes again fails here)
    inputs=$(ls -d "$seeds"/* "$regs"/* 2>/dev/null)
    if [ -n "$inputs" ]; then
        if "$exe" $opts -runs=0 $inputs >"$B/replay_$h.log" 2>&1; then ok "$h: $(echo "$inputs" | wc -l) seeds and regressions replay cleanly"
        else bad "$h: replay: $(grep -m3 -E 'ERROR|error|abort|SUMMARY|bad' "$B/replay_$h.log" | tr '\n' ';')"; continue; fi
    fi
    # 2. fuzzing from the seeds for SECONDS_EACH
    if "$exe" $opts -max_total_time="$SECONDS_EACH" -artifact_prefix="$B/crashes/$h/" -print_final_stats=1 \
           "$B/corpus/$h" $( [ -d "$seeds" ] && echo "$seeds" ) >"$B/fuzz_$h.log" 2>&1; then
        ok "$h: fuzzed ${SECONDS_EACH}s: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$B/fuzz_$h.log" | grep -o '[0-9]*$') runs, cov $(grep -o 'cov: [0-9]*' "$B/fuzz_$h.log" | tail -n 1 | cut -d' ' -f2)"
    else
        bad "$h: $(grep -m2 -E 'ERROR|SUMMARY|bad error|differs|!=|does not' "$B/fuzz_$h.log" | tr '\n' ';') input: $(ls -t "$B/crashes/$h" | head -n 1)"
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
