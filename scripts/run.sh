#!/usr/bin/env bash
# Install the runtime dependencies into .venv and start LMM Explorer on example data.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install --disable-pip-version-check -q -r requirements.txt
exec .venv/bin/streamlit run app.py "$@"
