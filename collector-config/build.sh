#!/usr/bin/env bash
# Build the otel-autoheal collector distribution (OCB) and Jaeger v2 into a cache directory.
#
# Usage: collector-config/build.sh [otelcol|jaeger|all]      (default: all)
#
# Environment:
#   AUTOHEAL_BIN_CACHE   where binaries land (default: $HOME/.cache/otel-autoheal/bin)
#   AUTOHEAL_BUILD_JOBS  go build parallelism (default: 2; the CI machines have 2 cores)
#
# Each binary is rebuilt only when its stamp (sha256 of its inputs + go version + platform) changes,
# so a second run costs a few milliseconds. Prints "name=path" for every binary on stdout; progress
# goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${AUTOHEAL_BIN_CACHE:-$HOME/.cache/otel-autoheal/bin}"
jobs="${AUTOHEAL_BUILD_JOBS:-2}"
what="${1:-all}"

builder_version="v0.161.0"
jaeger_module="github.com/jaegertracing/jaeger/cmd/jaeger"

mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
work="$cache/.work"
mkdir -p "$work"

# Concurrent test sessions share the cache: one builds, the others wait and then find it current.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.lock"
  flock 9
fi

# -trimpath keeps the binaries (and their hashes) independent of where the cache lives;
# -p bounds compile parallelism on shared 2-core machines.
export GOFLAGS="-trimpath -p=${jobs}"
export CGO_ENABLED="${CGO_ENABLED:-0}"

log() { printf '[build.sh] %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  log "go not found on PATH; install Go >= 1.26 (collector v0.161.0 needs it)"
  exit 1
fi

go_id="$(go env GOVERSION GOOS GOARCH | tr '\n' ' ')"

stamp_of() { # files... -> hex digest of their contents, the builder and the go toolchain
  { cat "$@"; printf '%s\n' "$builder_version" "$go_id" "$GOFLAGS" "$CGO_ENABLED"; } | sha256sum | cut -d' ' -f1
}

is_current() { # binary stamp_file digest
  [[ -x "$1" && -f "$2" && "$(cat "$2")" == "$3" ]]
}

build_otelcol() {
  local bin="$cache/otelcol-autoheal" stamp="$cache/otelcol-autoheal.stamp" digest
  digest="$(stamp_of "$here/builder-config.yaml")"
  if is_current "$bin" "$stamp" "$digest"; then
    log "otelcol-autoheal is current ($bin)"
    return
  fi
  local builder="$cache/ocb-$builder_version"
  if [[ ! -x "$builder" ]]; then
    log "installing OCB $builder_version"
    GOBIN="$work/gobin" go install "go.opentelemetry.io/collector/cmd/builder@$builder_version"
    mv -f "$work/gobin/builder" "$builder"
  fi
  local dir="$work/otelcol-autoheal"
  rm -rf "$dir"
  mkdir -p "$dir/build"
  cp "$here/builder-config.yaml" "$dir/builder-config.yaml"
  log "building otelcol-autoheal with OCB (first build takes several minutes)"
  local start=$SECONDS
  (cd "$dir" && "$builder" --config builder-config.yaml --ldflags "-s -w" >&2)
  install -m 0755 "$dir/build/otelcol-autoheal/otelcol-autoheal" "$bin.tmp"
  mv -f "$bin.tmp" "$bin"
  printf '%s\n' "$digest" >"$stamp"
  log "otelcol-autoheal built in $((SECONDS - start))s"
}

build_jaeger() {
  local bin="$cache/jaeger" stamp="$cache/jaeger.stamp" digest tools="$here/jaeger-tools"
  digest="$(stamp_of "$tools/go.mod" "$tools/go.sum")"
  if is_current "$bin" "$stamp" "$digest"; then
    log "jaeger is current ($bin)"
    return
  fi
  # A separate tools module: Jaeger pins an older collector release, and sharing a module with the
  # OCB build would let minimal version selection mix the two. `go install pkg@version` is refused
  # because Jaeger's go.mod carries replace directives, hence `go get -tool` + `go build` here.
  log "building jaeger ($jaeger_module, see jaeger-tools/go.mod; takes several minutes the first time)"
  local start=$SECONDS
  (cd "$tools" && go build -mod=readonly -ldflags "-s -w" -o "$bin.tmp" "$jaeger_module")
  mv -f "$bin.tmp" "$bin"
  printf '%s\n' "$digest" >"$stamp"
  log "jaeger built in $((SECONDS - start))s"
}

case "$what" in
  otelcol) build_otelcol; echo "otelcol-autoheal=$cache/otelcol-autoheal" ;;
  jaeger) build_jaeger; echo "jaeger=$cache/jaeger" ;;
  all)
    build_otelcol
    build_jaeger
    echo "otelcol-autoheal=$cache/otelcol-autoheal"
    echo "jaeger=$cache/jaeger"
    ;;
  *) log "unknown target '$what' (expected otelcol, jaeger or all)"; exit 2 ;;
esac
