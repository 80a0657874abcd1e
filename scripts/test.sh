#!/usr/bin/env bash
# Install everything the test suite needs into .venv, then run the checks CI runs:
# formatting, lint, types, and the whole pytest suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first and pinned, so that the train extra does not pull a CUDA build.
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e '.[test]'
# amd-train corpus speaks with Debian's espeak-ng voices too.
if ! command -v espeak-ng >/dev/null; then
    apt-get update -qq && apt-get install -y -qq espeak-ng >/dev/null
fi
.venv/bin/ruff format --check .
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/pytest "$@"
