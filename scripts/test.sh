#!/usr/bin/env bash
# Install the test dependencies into .venv and run the whole suite (ruff, the import contracts
# of .importlinter, pytest).
# Usage: scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
mkdir -p artifacts
log=artifacts/pip-install.log
start=$(date +%s)
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/pip install --disable-pip-version-check -r requirements-dev.txt >"$log" 2>&1; then
  echo "pip install failed; last lines of $log:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
echo "dependencies installed in $(( $(date +%s) - start )) s"

.venv/bin/ruff check .
.venv/bin/lint-imports

set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
