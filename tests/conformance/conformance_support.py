"""Shared harness of the conformance suite: run a producer app, drive it, read the issues it caused.

Every app is a real program instrumented only the way its language's OpenTelemetry docs say, and
configured only by the standard ``OTEL_*`` variables. It prints ``listening <port>`` once it
serves; the tests send it requests, wait for otel-autoheal to group the failures and then check
the rendered issues the way a person reading them would.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polling import wait_for
from processes import stop_process_group

__all__ = [
    "CACHE",
    "HERE",
    "REPO",
    "TRACE_WAIT",
    "Checks",
    "GroupSpec",
    "Occurrence",
    "ProducerApp",
    "RenderedIssue",
    "check_groups",
    "drive_shop",
    "otel_env",
    "require",
    "wait_for_groups",
]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
#: Where scripts/setup_conformance.sh installs what the apps need (outside the work tree).
CACHE = Path(os.environ.get("AUTOHEAL_CONFORMANCE_CACHE", Path.home() / ".cache" / "otel-autoheal" / "conformance"))


#: The service's default trace wait: the apps export spans and logs in separate batches, and on a
#: loaded 2-core machine they can arrive more than the fixture's short 0.5 s apart.
TRACE_WAIT = 3.0


def require(path: Path, what: str) -> Path:
    """Fail (not skip) with the set-up command when an installed prerequisite is missing."""
    assert path.exists(), f"{what} is not installed at {path}: run `bash scripts/setup_conformance.sh` first"
    return path


def otel_env(service: str, protocol: str, autoheal: Any, **extra: str) -> dict[str, str]:
    """The environment a user would set: the standard ``OTEL_*`` variables only, nothing of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AUTOHEAL_", "GITHUB_", "GH_"))}
    endpoint = f"http://{autoheal.grpc_endpoint}" if protocol == "grpc" else autoheal.http_endpoint
    env.update(
        OTEL_SERVICE_NAME=service,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="none",
        # Export promptly so the test waits seconds, not the SDKs' default 5 s batches.
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_BLRP_SCHEDULE_DELAY="200",
    )
    env.update(extra)
    return env


class ProducerApp:
    """A producer app in its own process group; prints ``listening <port>`` when it serves."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path, log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=self._log, env=dict(env), cwd=cwd,
                                     start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = 0

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def wait_listening(self, timeout: float = 180) -> ProducerApp:
        def port() -> int | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"app exited with {self.proc.returncode}: {self.output()}")
            found = [int(m.group(1)) for line in self.lines if (m := re.match(r"listening (\d+)$", line))]
            return found[0] if found else None

        self.port = wait_for(port, timeout, 0.1, "the app to listen")
        return self

    def get(self, path_and_query: str) -> int:
        """One GET request; the HTTP status (500 is expected for the failing requests)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path_and_query}", timeout=60) as response:
                response.read()
                return int(response.status)
        except urllib.error.HTTPError as error:
            error.read()
            return int(error.code)

    def output(self) -> str:
        self._log.flush()
        return "\n".join(self.lines[-50:]) + "\n" + self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """SIGTERM (apps flush their exporters on it), SIGKILL if it does not end."""
        stop_process_group(self.proc, grace=30)
        self._reader.join(10)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


def drive_shop(app: ProducerApp, price_inputs: list[tuple[str, str]]) -> None:
    """Every shop app's scenario: three failures of one bug on different inputs, successes in between, one other bug."""
    sku, raw = price_inputs[0]
    assert app.get(f"/checkout?sku={sku}&price={raw}") == 500
    assert app.get("/health") == 200
    for sku, raw in price_inputs[1:]:
        assert app.get(f"/checkout?sku={sku}&price={raw}") == 500
    assert app.get("/checkout?sku=OK-1&price=3.25") == 200
    assert app.get("/ship?country=ZZ") == 500


def wait_for_groups(autoheal: Any, app: ProducerApp, occurrences: int, timeout: float = 120) -> list[dict[str, Any]]:
    """Wait until the groups hold ``occurrences`` in all; on timeout show what the app and service said."""
    try:
        return autoheal.wait_for_issues(  # type: ignore[no-any-return]
            lambda found: sum(i["count"] for i in found) >= occurrences, timeout=timeout)
    except AssertionError as error:
        raise AssertionError(f"{error}\n--- app output ---\n{app.output()[-3000:]}\n--- service log ---\n"
                             f"{autoheal.log_text()[-2000:]}") from None


class Checks:
    """Collects every failed expectation so one run reports all of them, not just the first."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def check(self, ok: bool, message: str) -> bool:
        if not ok:
            self.failures.append(message)
        return ok

    def raise_if_failed(self, context: str = "") -> None:
        if self.failures:
            listing = "\n".join(f"- {f}" for f in self.failures)
            raise AssertionError(f"{len(self.failures)} conformance expectation(s) failed:\n{listing}\n{context}")


_SECTION = re.compile(r"^## (.+)$", re.M)
_FENCE = re.compile(r"^(`{3,})[^\n]*\n(.*?)\n\1$", re.M | re.S)
_ROW = re.compile(r"^\| (.+?) \| (.*) \|$", re.M)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


@dataclass
class RenderedIssue:
    """One group from ``otel-autoheal issues --json``, with the parts of its Markdown body."""

    title: str
    count: int
    body: str
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RenderedIssue:
        return cls(str(data["title"]), int(data["count"]), str(data["body"]), data)

    def section(self, heading_prefix: str) -> str:
        """The text under the first ``## heading`` that starts with ``heading_prefix``."""
        matches = list(_SECTION.finditer(self.body))
        for index, match in enumerate(matches):
            if match.group(1).startswith(heading_prefix):
                end = matches[index + 1].start() if index + 1 < len(matches) else len(self.body)
                return self.body[match.end():end]
        return ""

    def log_lines(self) -> list[str]:
        fenced = _FENCE.search(self.section("Logs before the error"))
        return fenced.group(2).splitlines() if fenced else []

    def stack_text(self) -> str:
        fenced = _FENCE.search(self.section("Stack trace"))
        return fenced.group(2) if fenced else self.section("Stack trace")

    def frames(self) -> list[tuple[bool, str]]:
        """``(in_app, line)`` for each parsed frame line (``▶`` marks in-app frames)."""
        section = self.section("Stack trace")
        start = section.find("Parsed frames")
        fenced = _FENCE.search(section, start) if start >= 0 else None
        out: list[tuple[bool, str]] = []
        for line in fenced.group(2).splitlines() if fenced else []:
            if line.startswith("  ▶ "):
                out.append((True, line[4:]))
            elif line.startswith("    ") and "(" in line and not line.startswith("        "):
                out.append((False, line[4:]))
        return out

    def where(self) -> str:
        match = re.search(r"^\*\*Where:\*\* (.*)$", self.body, re.M)
        return match.group(1).replace("`", "") if match else ""

    def context(self) -> dict[str, str]:
        """The context table's rows (not the resource table below it)."""
        table = self.section("Context of the failing operation").split("<details>")[0]
        rows = {_unescape(k): _unescape(v) for k, v in _ROW.findall(table)}
        rows.pop("field", None)
        rows.pop("---", None)
        return rows


@dataclass(frozen=True)
class Occurrence:
    """One failing request: a string that identifies it in the stack/message, its logs in order."""

    marker: str
    logs: Sequence[tuple[str, Mapping[str, str]]]
    query: str = ""


@dataclass(frozen=True)
class GroupSpec:
    """What a person expects of one group's issue."""

    count: int
    occurrences: Sequence[Occurrence]
    title_has: Sequence[str]
    culprit: str
    culprit_file: str
    in_app: Sequence[tuple[str, str]]
    not_in_app: Sequence[str] = ()
    route: str = ""
    method: str = "GET"
    title_lacks: Sequence[str] = ()
    foreign_logs: Sequence[str] = field(default_factory=tuple)


def price_occurrences(price_inputs: Sequence[tuple[str, str]], quote: str, with_query: bool = True) -> list[Occurrence]:
    """``drive_shop``'s price failures: each raw price as the runtime quotes it, the two logs before it."""
    return [Occurrence(f"{quote}{raw}{quote}", [("loading cart", {"sku": sku}), ("parsing price", {"raw_price": raw})],
                       query=f"price={raw}" if with_query else "")
            for sku, raw in price_inputs]


def zone_occurrences(marker: str, with_query: bool = True) -> list[Occurrence]:
    """``drive_shop``'s one shipping failure (country ZZ) and the two logs before it."""
    return [Occurrence(marker, [("shipping order", {"country": "ZZ"}), ("looking up shipping zone", {"country": "ZZ"})],
                       query="country=ZZ" if with_query else "")]


#: Logs of ``drive_shop``'s other requests, which must not show in the price issue.
PRICE_FOREIGN_LOGS = ("health check ok", "OK-1", "ZZ")


def zone_foreign_logs(price_inputs: Sequence[tuple[str, str]]) -> list[str]:
    """Logs of ``drive_shop``'s other requests, which must not show in the zone issue."""
    return ["health check ok", *(sku for sku, _ in price_inputs), "OK-1"]


_METHOD_KEYS = ("http.request.method", "http.method")
_ROUTE_KEYS = ("http.route", "url.path", "http.target", "url.full", "http.url", "span")
_QUERY_KEYS = ("url.query", "http.target", "url.full", "http.url")


def _attr_shown(line: str, key: str, value: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(key)}\s*[=:]\s*['\"]?{re.escape(value)}", line) is not None


def check_group(checks: Checks, issue: RenderedIssue, spec: GroupSpec, name: str) -> None:
    """Check one group against ``spec``; failures go to ``checks`` prefixed with ``name``."""
    pre = f"[{name}] "
    checks.check(issue.count == spec.count, f"{pre}count {issue.count}, expected {spec.count}")
    for part in spec.title_has:
        checks.check(part in issue.title, f"{pre}title {issue.title!r} lacks {part!r}")
    for part in spec.title_lacks:
        checks.check(part not in issue.title, f"{pre}title {issue.title!r} shows {part!r}")
    where = issue.where()
    checks.check(spec.culprit in where and spec.culprit_file in where,
                 f"{pre}Where is {where!r}, expected {spec.culprit!r} in {spec.culprit_file!r}")
    frames = issue.frames()
    for function, filename in spec.in_app:
        checks.check(any(in_app and function in line and filename in line for in_app, line in frames),
                     f"{pre}frame {function!r} ({filename}) not marked in-app; in-app frames: {[f for a, f in frames if a]}")
    for library in spec.not_in_app:
        checks.check(not any(in_app and library in line for in_app, line in frames),
                     f"{pre}library frame matching {library!r} marked in-app: {[f for a, f in frames if a and library in f]}")

    stack = issue.section("Stack trace") + "\n" + issue.title
    shown = [o for o in spec.occurrences if o.marker in stack]
    if not checks.check(len(shown) == 1, f"{pre}expected the stack of exactly one of {[o.marker for o in spec.occurrences]}, "
                                        f"found {[o.marker for o in shown]}"):
        return
    occurrence = shown[0]
    # The same exception reported a second way (a log bridge's error record) is not a related error.
    related = issue.section("Related errors")
    checks.check(occurrence.marker not in related,
                 f"{pre}the failure itself is listed again as a related error: {related.strip()!r}")
    logs = issue.log_lines()
    position = -1
    for message, attributes in occurrence.logs:
        found = [i for i, line in enumerate(logs) if message in line and i > position]
        if not checks.check(bool(found), f"{pre}log {message!r} missing or out of order; logs shown: {logs}"):
            continue
        position = found[0]
        for key, value in attributes.items():
            checks.check(_attr_shown(logs[position], key, value),
                         f"{pre}log {message!r} lacks attribute {key}={value}: {logs[position]!r}")
    others = [o.marker for o in spec.occurrences if o is not occurrence] + list(spec.foreign_logs)
    for foreign in others:
        leaked = [line for line in logs if foreign in line]
        checks.check(not leaked, f"{pre}logs of another request ({foreign!r}) shown: {leaked}")

    context = issue.context()
    methods = {k: context[k] for k in _METHOD_KEYS if k in context}
    checks.check(spec.method in methods.values(), f"{pre}method {spec.method} not in context {context}")
    if spec.route:
        checks.check(any(spec.route in context.get(k, "") for k in _ROUTE_KEYS),
                     f"{pre}route {spec.route!r} not in context {context}")
    # code.* of the log call (a logging library's frame) is not where the operation failed.
    if "code.file.path" in context:
        checks.check(spec.culprit_file in context["code.file.path"],
                     f"{pre}context names a location other than the culprit: code.file.path={context['code.file.path']!r}")
    if occurrence.query:
        # SDKs differ in percent-encoding the query (Node sends "12%2C50"): compare decoded.
        checks.check(any(occurrence.query in urllib.parse.unquote(context.get(k, "")) for k in _QUERY_KEYS),
                     f"{pre}query {occurrence.query!r} not in context {context}")


def check_groups(issues: list[dict[str, Any]], specs: Mapping[str, GroupSpec]) -> None:
    """Exactly one issue per spec, matched by count; raise listing every failed expectation."""
    checks = Checks()
    rendered = [RenderedIssue.from_json(i) for i in issues]
    summary = [(i.title, i.count) for i in rendered]
    checks.check(sorted(i.count for i in rendered) == sorted(s.count for s in specs.values()),
                 f"groups {summary}, expected counts {sorted(s.count for s in specs.values())}")
    for name, spec in specs.items():
        matching = [i for i in rendered if i.count == spec.count and all(p in i.title for p in spec.title_has[:1])]
        matching = matching or [i for i in rendered if i.count == spec.count]
        if checks.check(bool(matching), f"[{name}] no group with count {spec.count}: {summary}"):
            check_group(checks, matching[0], spec, name)
    checks.raise_if_failed("bodies:\n" + "\n\n=====\n\n".join(i.title + "\n" + i.body for i in rendered))
