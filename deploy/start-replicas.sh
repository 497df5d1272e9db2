#!/usr/bin/env bash
# Start LMM Explorer replicas in the foreground, without systemd (a trial, a container):
#   deploy/start-replicas.sh 8501 8502
# Each replica's output (Streamlit's messages and the JSON events) is prefixed with its port.
# Ctrl-C (or SIGTERM) stops them all. With systemd, use deploy/systemd/lmm-explorer@.service.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ "$#" -gt 0 ] || set -- 8501 8502
pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait; }
trap stop INT TERM EXIT
for port in "$@"; do
  "$PYTHON" deploy/replica.py --port "$port" > >(sed -u "s/^/[$port] /") 2>&1 &
  pids+=("$!")
done
wait
