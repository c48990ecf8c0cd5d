#!/usr/bin/env bash
# tokenizer_bench.sh: encoding speed of our tokenizer vs Hugging Face
# `tokenizers` and `tiktoken`, single thread, on ~10 MB of the same generated
# text the exactness test uses (prose, code, numbers, many scripts, emoji,
# special tokens; without its 40-700 character runs, which are rare in real
# text and would dominate the timings). Every contender encodes the text line by line (newlines
# kept) and as one string; per line, ours loops in C, the others are timed
# both looping in Python and through their batch call limited to one thread.
# The "faster" ratios compare like with like (per line vs ours per line,
# whole text vs ours whole text). Best of REPEAT runs.
# Not a test: it prints a table and exits 0.
#
# Environment: PYTHON (default REPO/.venv/bin/python, else python3;
# needs tokenizers, gguf, tiktoken), TOK_VOCABS_DIR,
# REPEAT (default 3), BENCH_MB (default 10).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# the repo's test venv (tests/install_deps.sh test) has tokenizers and gguf pinned
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    [ -x "$REPO/.venv/bin/python" ] && PYTHON="$REPO/.venv/bin/python"
fi
VOCABS=${TOK_VOCABS_DIR:-$REPO/.cache/tokenizer-vocabs}
REPEAT=${REPEAT:-3}
BENCH_MB=${BENCH_MB:-10}
BUILD=$(mktemp -d)
trap 'rm -rf "$BUILD"' EXIT

"$PYTHON" -c 'import tiktoken' 2>/dev/null || { echo "tokenizer_bench: needs tiktoken in $PYTHON (pip install tiktoken==0.9.0)" >&2; exit 1; }
${CC:-gcc} -O2 -Wall -std=c11 -o "$BUILD/tok_cli" "$REPO/tests/tokenizer/tok_cli.c" "$REPO/tokenizer.c" -lpcre2-8 -lcjson
PYTHON="$PYTHON" "$REPO/tests/tokenizer/fetch_vocabs.sh" "$VOCABS" >&2
TEXT="$BUILD/bench.txt"
(cd "$REPO/tests/tokenizer" && "$PYTHON" -c "
import sys, gen_text
recs = gen_text.generate(seed=99, target_bytes=int($BENCH_MB * 1_000_000), long_runs_too=False)
sys.stdout.buffer.write('\n'.join(recs).encode())" > "$TEXT")

export RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
{
    for v in gpt2 smollm2; do
        r=$("$BUILD/tok_cli" bench "$VOCABS/$v" "$TEXT" "$REPEAT")
        read -r _ bytes _ tokens _ secs _ mbs <<<"$r"
        printf '%s\tours (tokenizer.c) per line\t%s\t%s\t%s\t%s\n' "$v" "$bytes" "$tokens" "$secs" "$mbs"
        r=$("$BUILD/tok_cli" bench "$VOCABS/$v" "$TEXT" "$REPEAT" whole)
        read -r _ bytes _ tokens _ secs _ mbs <<<"$r"
        printf '%s\tours (tokenizer.c) whole text\t%s\t%s\t%s\t%s\n' "$v" "$bytes" "$tokens" "$secs" "$mbs"
    done
    "$PYTHON" "$HERE/tokenizer_bench.py" "$TEXT" "$VOCABS" "$REPEAT"
} > "$BUILD/rows.tsv"

echo "single thread, $(wc -c <"$TEXT") bytes, $(wc -l <"$TEXT") lines, best of $REPEAT; $(uname -m), $(nproc) cores"
printf '%-8s %-44s %10s %8s %8s %s\n' vocab encoder tokens seconds MB/s "ours is"
awk -F'\t' '
    { mode = $2 ~ /whole text/ ? "whole" : "lines" }
    $2 ~ /^ours/ { ours[$1, mode] = $6 }
    { row[NR] = $0; modes[NR] = mode }
    END {
        for (i = 1; i <= NR; i++) {
            split(row[i], f, "\t")
            ratio = f[2] ~ /^ours/ ? "-" : sprintf("%.2fx faster", ours[f[1], modes[i]] / f[6])
            printf "%-8s %-44s %10d %8.3f %8.2f %s\n", f[1], f[2], f[4], f[5], f[6], ratio
        }
    }' "$BUILD/rows.tsv"
