"""Start the real collector and Jaeger binaries on free ports, for tests of the otel-autoheal stack.

The binaries come from ``collector-config/build.sh`` (cached in ``$AUTOHEAL_BIN_CACHE`` or
``~/.cache/otel-autoheal/bin``). Every process runs in its own process group and is killed as a group
by :meth:`ManagedProcess.stop`, which tests register as a finalizer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TypeVar

from processes import stop_process_group

__all__ = [
    "BUILD_SCRIPT",
    "COLLECTOR_CONFIG_DIR",
    "REPO_ROOT",
    "Binaries",
    "Collector",
    "Jaeger",
    "ManagedProcess",
    "bin_cache_dir",
    "ensure_binaries",
    "free_port",
    "http_get",
    "start_collector",
    "start_jaeger",
    "stopping",
    "validate_collector_config",
    "wait_for",
]

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
COLLECTOR_CONFIG_DIR = REPO_ROOT / "collector-config"
BUILD_SCRIPT = COLLECTOR_CONFIG_DIR / "build.sh"

# Cold builds of both binaries take tens of minutes on a 2-core machine.
_BUILD_TIMEOUT_S = 3600.0
_START_TIMEOUT_S = 60.0

T = TypeVar("T")


def bin_cache_dir() -> pathlib.Path:
    """Return the directory build.sh installs binaries into."""
    default = pathlib.Path.home() / ".cache" / "otel-autoheal" / "bin"
    return pathlib.Path(os.environ.get("AUTOHEAL_BIN_CACHE", str(default)))


@dataclasses.dataclass(frozen=True)
class Binaries:
    otelcol: pathlib.Path
    jaeger: pathlib.Path


def ensure_binaries() -> Binaries:
    """Run build.sh (a no-op when the cache is current) and return the binary paths.

    Raises RuntimeError with the build output when the build fails, so a missing toolchain shows up as
    a test error instead of a skip.
    """
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "all"],
        capture_output=True,
        text=True,
        timeout=_BUILD_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{BUILD_SCRIPT} failed with exit code {proc.returncode}; the collector tests need Go and "
            f"the Go module proxy.\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-8000:]}"
        )
    paths = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    bins = Binaries(
        otelcol=pathlib.Path(paths["otelcol-autoheal"]), jaeger=pathlib.Path(paths["jaeger"])
    )
    for path in (bins.otelcol, bins.jaeger):
        if not os.access(path, os.X_OK):
            raise RuntimeError(f"build.sh reported {path} but it is not an executable file")
    return bins


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """Poll ``probe`` until it returns something truthy; raise AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            result = probe()
        except Exception as exc:  # the probe races a starting process; keep polling
            last_exc, result = exc, None
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            extra = f"\n{on_timeout()}" if on_timeout else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}{extra}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``url`` and return (status, body), also for 4xx/5xx answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _tcp_open(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=1.0):
        return True
    return False


class ManagedProcess:
    """A subprocess in its own process group whose output goes to a log file."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: pathlib.Path
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def log_tail(self, limit: int = 6000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"<no log at {self.log_path}>"
        return f"--- {self.name} log ({self.log_path}):\n{text[-limit:]}"

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise AssertionError(f"{self.name} exited with code {code}\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash or an OOM kill would, and reap it."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15.0)

    def stop(self, timeout: float = 15.0) -> None:
        stop_process_group(self.proc, grace=timeout)
        self._log.close()


@dataclasses.dataclass
class Jaeger:
    process: ManagedProcess
    otlp_grpc_endpoint: str  # host:port
    otlp_http_endpoint: str
    query_url: str  # http://host:port

    def get_trace(self, trace_id_hex: str) -> tuple[int, bytes]:
        """``GET /api/v3/traces/{id}``: (status, body); 404 while Jaeger has no such trace."""
        return http_get(f"{self.query_url}/api/v3/traces/{trace_id_hex}")

    def stop(self) -> None:
        self.process.stop()


@dataclasses.dataclass
class Collector:
    process: ManagedProcess
    grpc_endpoint: str  # host:port
    http_endpoint: str  # http://host:port
    health_url: str
    metrics_url: str

    def metrics_text(self) -> str:
        status, body = http_get(self.metrics_url)
        return body.decode() if status == 200 else ""

    def traces_not_sampled(self) -> float:
        """How many traces tail_sampling has decided to drop so far (0 while the metric is absent)."""
        total = 0.0
        for line in self.metrics_text().splitlines():
            if line.startswith("otelcol_processor_tail_sampling_global_count_traces_sampled") and (
                'sampled="false"' in line
            ):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> None:
        self.process.stop()


def _started(proc: ManagedProcess, ready: Callable[[], bool], what: str) -> None:
    def probe() -> bool:
        proc.check_alive()
        return ready()

    try:
        wait_for(probe, timeout=_START_TIMEOUT_S, what=what, on_timeout=proc.log_tail)
    except BaseException:
        proc.stop()
        raise


def start_jaeger(binary: pathlib.Path, workdir: pathlib.Path) -> Jaeger:
    """Start Jaeger with collector-config/jaeger.yaml on free ports and wait until it answers."""
    ports = {name: free_port() for name in ("grpc", "http", "query", "qgrpc", "health", "metrics")}
    env = {
        "JAEGER_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['grpc']}",
        "JAEGER_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['http']}",
        "JAEGER_QUERY_HTTP": f"127.0.0.1:{ports['query']}",
        "JAEGER_QUERY_GRPC": f"127.0.0.1:{ports['qgrpc']}",
        "JAEGER_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
        "JAEGER_METRICS_PORT": str(ports["metrics"]),
    }
    proc = ManagedProcess(
        "jaeger",
        [str(binary), "--config", str(COLLECTOR_CONFIG_DIR / "jaeger.yaml")],
        env,
        workdir / f"jaeger-{ports['query']}.log",
    )
    jaeger = Jaeger(
        process=proc,
        otlp_grpc_endpoint=env["JAEGER_OTLP_GRPC_ENDPOINT"],
        otlp_http_endpoint=f"http://{env['JAEGER_OTLP_HTTP_ENDPOINT']}",
        query_url=f"http://{env['JAEGER_QUERY_HTTP']}",
    )
    _started(
        proc,
        lambda: http_get(f"{jaeger.query_url}/api/v3/services")[0] == 200
        and _tcp_open(jaeger.otlp_grpc_endpoint),
        "Jaeger query API and OTLP receiver",
    )
    return jaeger


def start_collector(
    binary: pathlib.Path,
    workdir: pathlib.Path,
    *,
    autoheal_endpoint: str,
    jaeger_endpoint: str,
    configs: Sequence[str] = ("otelcol-autoheal.yaml",),
    env: Mapping[str, str] | None = None,
) -> Collector:
    """Start the collector with ``configs`` (merged in order) on free ports; wait until healthy.

    ``configs`` are file names in collector-config/ or absolute paths; ``env`` overrides anything,
    e.g. ``OTELCOL_TAIL_DECISION_WAIT``. The persistent sending queue goes to a fresh directory under
    ``workdir`` unless ``env`` names one in ``OTELCOL_QUEUE_DIR`` (pass the same one to a restarted
    collector to let it find what its predecessor queued).
    """
    ports = {name: free_port() for name in ("grpc", "http", "health", "metrics")}
    full_env = {
        "OTELCOL_GRPC_ENDPOINT": f"127.0.0.1:{ports['grpc']}",
        "OTELCOL_HTTP_ENDPOINT": f"127.0.0.1:{ports['http']}",
        "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
        "OTELCOL_METRICS_PORT": str(ports["metrics"]),
        "AUTOHEAL_OTLP_ENDPOINT": autoheal_endpoint,
        "JAEGER_OTLP_ENDPOINT": jaeger_endpoint,
        "OTELCOL_TAIL_DECISION_WAIT": "2s",
        "OTELCOL_QUEUE_DIR": str(workdir / f"queue-{ports['grpc']}"),
        **(env or {}),
    }
    argv = [str(binary)]
    for config in configs:
        argv += ["--config", str(COLLECTOR_CONFIG_DIR / config)]
    proc = ManagedProcess("otelcol-autoheal", argv, full_env, workdir / f"otelcol-{ports['grpc']}.log")
    collector = Collector(
        process=proc,
        grpc_endpoint=full_env["OTELCOL_GRPC_ENDPOINT"],
        http_endpoint=f"http://{full_env['OTELCOL_HTTP_ENDPOINT']}",
        health_url=f"http://{full_env['OTELCOL_HEALTH_ENDPOINT']}/",
        metrics_url=f"http://127.0.0.1:{ports['metrics']}/metrics",
    )
    _started(
        proc,
        lambda: http_get(collector.health_url)[0] == 200 and _tcp_open(collector.grpc_endpoint),
        "collector health check and OTLP gRPC receiver",
    )
    return collector


def validate_collector_config(
    binary: pathlib.Path, configs: Sequence[str], env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``<binary> validate --config ...`` over collector-config/ files; return the result."""
    argv = [str(binary), "validate"]
    for config in configs:
        argv += ["--config", str(COLLECTOR_CONFIG_DIR / config)]
    return subprocess.run(
        argv,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextlib.contextmanager
def stopping(*items: Jaeger | Collector | ManagedProcess) -> Iterator[None]:
    """Stop every item on exit, also when the body raises."""
    try:
        yield
    finally:
        for item in items:
            item.stop()
