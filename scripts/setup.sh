#!/usr/bin/env bash
# Idempotent set-up shared by ./scripts/test and ./scripts/demo: a virtualenv with the service
# and its test dependencies. Source it; it exports PY (the venv's python).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AUTOHEAL_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$PY" -m pip install --quiet --disable-pip-version-check -e "$ROOT[test]"
export PY
