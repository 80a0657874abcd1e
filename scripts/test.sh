#!/usr/bin/env bash
# Install everything the test suite needs into .venv, then run the checks CI runs:
# formatting, lint, types, and the whole pytest suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first and pinned, so that the train extra does not pull another build. PyPI's
# torch is the CUDA build (about 16 nvidia packages, several GB): without an NVIDIA GPU
# take the CPU build from PyTorch's own wheel index instead, and only where that index
# cannot be reached fall back to the default one (a machine with a wheel on disk, a mirror).
torch_pin=torch==2.13.0
if ! .venv/bin/python -c 'import sys, torch; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1; then
        .venv/bin/python -m pip install --quiet "$torch_pin"
    elif ! .venv/bin/python -m pip install --quiet --retries 0 --timeout 20 "$torch_pin" \
            --index-url https://download.pytorch.org/whl/cpu 2>/dev/null; then
        echo "PyTorch's CPU wheel index is out of reach: installing $torch_pin from the default index" >&2
        .venv/bin/python -m pip install --quiet "$torch_pin"
    fi
fi
.venv/bin/python -m pip install --quiet -e '.[test]'
# amd-train corpus speaks with Debian's espeak-ng voices too, and runs GSM and AMR-NB
# through sox (libsox-fmt-base has AMR-NB).
if ! command -v espeak-ng >/dev/null || [[ "$(sox -h 2>/dev/null)" != *amr-nb* ]]; then
    apt-get update -qq && apt-get install -y -qq espeak-ng sox libsox-fmt-base >/dev/null
fi
.venv/bin/ruff format --check .
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/pytest "$@"
