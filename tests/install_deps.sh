#!/usr/bin/env bash
# Installs what repo needs on Debian/Ubuntu; does nothing when it is all there.
#   tests/install_deps.sh build   compiler and C libraries (make run)
#   tests/install_deps.sh test    also the PyTorch references in .venv (make test)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-build}
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
pkgs="gcc make libcjson-dev libpcre2-dev gnuplot-nox unzip python3-pip jq"
# test: the PyTorch references, and clang with its libFuzzer runtime for tests/fuzz, OpenMPI for repo_mpi
if [ "$mode" = test ]; then pkgs="$pkgs python3 python3-venv python3-pip python3-torch python3-numpy libopenblas0-pthread clang libclang-rt-dev openmpi-bin libopenmpi-dev"; fi
missing=""
for p in $pkgs; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"; done
if [ -n "$missing" ]; then
    echo "installing Debian packages:$missing"
    if [ -n "$SUDO" ] && ! command -v sudo >/dev/null; then
        echo "repo: error: please install these packages as root:$missing" >&2; exit 1
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ "$mode" = test ]; then
    # Debian's torch lives in the system Python; the venv sees it and adds pinned pip packages
    if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import torch" 2>/dev/null; then
        rm -rf .venv
        /usr/bin/python3 -m venv --system-site-packages .venv
    fi
    if ! cmp -s tests/requirements.txt .venv/requirements.installed; then
        .venv/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements.txt
        cp tests/requirements.txt .venv/requirements.installed
    fi
fi
