#!/usr/bin/env bash
# Install amd-bridge with its embedded models into .venv and start the service on the
# defaults (ws://127.0.0.1:8080/ws/amd, /healthz). Settings come from AMD_* variables
# or flags after the script name, e.g. `scripts/serve.sh --http-host 0.0.0.0`.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet .
exec .venv/bin/amd-bridge serve "$@"
