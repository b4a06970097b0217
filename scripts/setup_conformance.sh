#!/usr/bin/env bash
# Install what the conformance suite's producer apps need (tests/conformance/), into caches that
# survive between runs. Each part is skipped when its stamp (a hash of its inputs and toolchain)
# is current, so a second run costs well under a second.
#
# Usage: scripts/setup_conformance.sh [python|node|go|java|telemetrygen|all]   (default: all)
#
# Environment:
#   AUTOHEAL_CONFORMANCE_CACHE  where things land (default: $HOME/.cache/otel-autoheal/conformance)
#   AUTOHEAL_BUILD_JOBS         go build parallelism (default: 2)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
apps="$root/tests/conformance"
cache="${AUTOHEAL_CONFORMANCE_CACHE:-$HOME/.cache/otel-autoheal/conformance}"
what="${1:-all}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"

# Concurrent test sessions share the cache: one installs, the others wait and find it current.
if command -v flock >/dev/null 2>&1; then
  exec 8>"$cache/.lock"
  flock 8
fi

log() { printf '[setup_conformance] %s\n' "$*" >&2; }
digest() { { cat "$@"; printf '%s\n' "$extra"; } | sha256sum | cut -d' ' -f1; }
current() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }
timed() { # name command... : run, then log how long it took
  local name="$1" start=$SECONDS
  shift
  "$@"
  log "$name done in $((SECONDS - start))s"
}

# telemetrygen: the collector modules of this repo are at v0.161.0 (collector-config/).
telemetrygen_version="v0.161.0"

setup_python() {
  # The app's own virtualenv, like a user's: its pins need not match the service's test tools.
  local venv="$cache/python-venv" stamp="$cache/python-venv.stamp" extra sum
  extra="$(python3 --version)"
  sum="$(digest "$apps/python/requirements.txt")"
  if current "$stamp" "$sum" && [[ -x "$venv/bin/opentelemetry-instrument" ]]; then
    log "python app venv is current"; return
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$apps/python/requirements.txt"
  printf '%s\n' "$sum" >"$stamp"
}

setup_node() {
  local dir="$apps/node" stamp="$cache/node.stamp" extra sum
  extra="$(node --version)"
  sum="$(digest "$dir/package-lock.json")"
  if current "$stamp" "$sum" && [[ -d "$dir/node_modules/@opentelemetry/sdk-node" ]]; then
    log "node app packages are current"; return
  fi
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  printf '%s\n' "$sum" >"$stamp"
}

setup_go() {
  # Two builds of one app: plain (absolute source paths in stacks) and -trimpath (module paths).
  local dir="$apps/go" extra sum out
  extra="$(go env GOVERSION GOOS GOARCH) $dir"
  sum="$(cd "$dir" && digest go.mod go.sum $(find cmd internal -name '*.go' | sort))"
  out="$cache/go/$sum"
  if [[ -x "$out/shop" && -x "$out/shop-trimpath" ]]; then
    log "go app builds are current ($out)"; ln -sfn "$out" "$cache/go/current"; return
  fi
  mkdir -p "$out"
  (cd "$dir" && go build -p "${AUTOHEAL_BUILD_JOBS:-2}" -mod=readonly -o "$out/shop.tmp" ./cmd/shop \
    && go build -p "${AUTOHEAL_BUILD_JOBS:-2}" -mod=readonly -trimpath -o "$out/shop-trimpath.tmp" ./cmd/shop)
  mv -f "$out/shop.tmp" "$out/shop"
  mv -f "$out/shop-trimpath.tmp" "$out/shop-trimpath"
  ln -sfn "$out" "$cache/go/current"
  # Builds of older sources are never used again.
  find "$cache/go" -mindepth 1 -maxdepth 1 -type d ! -name "$sum" -exec rm -rf {} +
}

setup_telemetrygen() {
  local bin="$cache/bin/telemetrygen-$telemetrygen_version"
  if [[ -x "$bin" ]]; then
    log "telemetrygen $telemetrygen_version is current"; return
  fi
  mkdir -p "$cache/bin/.gobin"
  GOBIN="$cache/bin/.gobin" GOFLAGS="-trimpath -p=${AUTOHEAL_BUILD_JOBS:-2}" \
    go install "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@$telemetrygen_version"
  mv -f "$cache/bin/.gobin/telemetrygen" "$bin"
}

setup_java() {
  # The agent and the jars the program compiles against (pinned in java/pom.xml, from Maven
  # Central, resolved transitively in one Maven run), then the program itself, compiled by javac.
  local dir="$cache/java" stamp="$cache/java.stamp" extra sum out
  extra="$(javac -version 2>&1)"
  sum="$(digest "$apps/java/pom.xml" $(find "$apps/java/src" -name '*.java' | sort))"
  if current "$stamp" "$sum" && [[ -f "$dir/opentelemetry-javaagent.jar" && -d "$dir/classes" ]]; then
    log "java agent and program are current"; return
  fi
  rm -rf "$dir"
  mkdir -p "$dir/lib" "$dir/classes"
  # Maven prints colour resets even with -q: show its output only when it fails.
  out="$(mvn -q -B -f "$apps/java/pom.xml" dependency:copy-dependencies -DoutputDirectory="$dir/lib" \
    -Dmdep.stripVersion=true 2>&1)" || { printf '%s\n' "$out" >&2; return 1; }
  mv "$dir/lib/opentelemetry-javaagent.jar" "$dir/opentelemetry-javaagent.jar"
  javac -d "$dir/classes" -cp "$dir/lib/*" $(find "$apps/java/src" -name '*.java' | sort)
  printf '%s\n' "$sum" >"$stamp"
}

case "$what" in
  python) timed python setup_python ;;
  node) timed node setup_node ;;
  go) timed go setup_go ;;
  java) timed java setup_java ;;
  telemetrygen) timed telemetrygen setup_telemetrygen ;;
  all)
    timed python setup_python
    timed node setup_node
    timed go setup_go
    timed java setup_java
    timed telemetrygen setup_telemetrygen
    ;;
  *) log "unknown part '$what' (python, node, go, java, telemetrygen or all)"; exit 2 ;;
esac
