#!/usr/bin/env bash
# test_exact.sh: our tokenizer against Hugging Face `tokenizers` on ~1 MB of
# generated text with GPT-2, SmolLM2 and a Llama-3-style vocabulary, plus the
# unit tests. Prints PASS/FAIL lines and "N passed, M failed".
#
# Environment: PYTHON (default REPO/.venv/bin/python, else python3;
# needs tokenizers==0.15.2 and gguf==0.17.1), TOK_VOCABS_DIR (download cache, default REPO/.cache/tokenizer-vocabs),
# CC (default gcc), SANITIZE=1 to build with AddressSanitizer/UBSan.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# the repo's test venv (tests/install_deps.sh test) has tokenizers and gguf pinned
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    [ -x "$REPO/.venv/bin/python" ] && PYTHON="$REPO/.venv/bin/python"
fi
VOCABS=${TOK_VOCABS_DIR:-$REPO/.cache/tokenizer-vocabs}
CC=${CC:-gcc}
BUILD=$(mktemp -d)
trap 'rm -rf "$BUILD"' EXIT
FLAGS="-O2 -Wall -Wextra -Werror -std=c11"
[ "${SANITIZE:-0}" = 1 ] && FLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -Wall -std=c11"

$CC $FLAGS -o "$BUILD/tok_cli" "$HERE/tok_cli.c" "$REPO/tokenizer.c" "$REPO/io.c" -lpcre2-8 -lcjson
$CC $FLAGS -o "$BUILD/test_unit" "$HERE/test_unit.c" "$REPO/tokenizer.c" "$REPO/io.c" -lpcre2-8 -lcjson
PYTHON="$PYTHON" "$HERE/fetch_vocabs.sh" "$VOCABS" >&2

status=0
unit=$("$BUILD/test_unit") || status=1
exact=$(cd "$HERE" && "$PYTHON" exact.py "$BUILD/tok_cli" "$VOCABS") || status=1
printf '%s\n' "$unit" "$exact" | grep -v ' passed, .* failed$'
p=$(printf '%s\n' "$unit" "$exact" | grep -c '^PASS' || true)
f=$(printf '%s\n' "$unit" "$exact" | grep -c '^FAIL' || true)
[ "$f" -eq 0 ] || status=1
echo "$p passed, $f failed"
exit $status
