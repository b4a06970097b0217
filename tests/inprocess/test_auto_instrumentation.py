"""``opentelemetry-instrument`` with OTEL_TRACES_EXPORTER/OTEL_LOGS_EXPORTER=otlp,autoheal (env vars only)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from inprocess_support import REPO, _isolated_env, clean_env, read_issues  # noqa: F401

APP = textwrap.dedent('''
    import logging
    from opentelemetry import trace

    logging.basicConfig(level=logging.INFO)
    log = logging.getLogger("shop.checkout")
    tracer = trace.get_tracer("shop")

    def charge(cart):
        raise ValueError(f"card declined for cart {cart}")

    def checkout(cart):
        with tracer.start_as_current_span("checkout"):
            log.info("loading cart %d", cart)
            log.info("charging card for cart %d", cart)
            try:
                charge(cart)
            except ValueError:
                log.exception("checkout failed")
                raise

    with tracer.start_as_current_span("startup"):
        log.info("unrelated startup line")
    try:
        checkout(7)
    except ValueError:
        pass
    print("app finished")
''')

LOGGING_ROUTES = {
    # opentelemetry-instrumentation-logging attaches its handler to the root logger by default.
    "instrumentation-logging": {},
    # The SDK's own (deprecated) handler, for setups without the logging instrumentation.
    "sdk-handler": {"OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true"},
}


@pytest.mark.parametrize("route", sorted(LOGGING_ROUTES))
def test_opentelemetry_instrument_env_vars_file_issue_with_logs(tmp_path: Path, autoheal, route: str) -> None:
    """Only env vars: the OTLP exporter keeps sending to the existing backend and ours files the issue with its log lines."""
    script = tmp_path / "app.py"
    script.write_text(APP)
    state = tmp_path / "inprocess-state"
    env = clean_env(
        OTEL_SERVICE_NAME="shop",
        OTEL_TRACES_EXPORTER="otlp,autoheal",
        OTEL_LOGS_EXPORTER="otlp,autoheal",
        OTEL_METRICS_EXPORTER="none",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{autoheal.grpc_endpoint}",  # "their backend"
        OTEL_EXPORTER_OTLP_INSECURE="true",
        AUTOHEAL_STATE_DIR=str(state),
        **LOGGING_ROUTES[route],
    )
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    result = subprocess.run([str(instrument), sys.executable, str(script)], cwd=REPO, env=env,
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert b"app finished" in result.stdout

    issues = read_issues(state)  # written before the app exited: the last exporter's shutdown flushes
    assert [(i["title"], i["count"], i["service"]) for i in issues] == [
        ("[autoheal] ValueError: card declined for cart <num>", 1, "shop")]
    body = issues[0]["body"]
    assert body.index("loading cart 7") < body.index("charging card for cart 7") < body.index("checkout failed")
    assert "unrelated startup line" not in body and "charge" in body

    # The existing OTLP pipeline still got the same trace, and the service made the same issue of it.
    theirs = autoheal.wait_for_issues(1)
    assert theirs[0]["trace_ids"] == issues[0]["trace_ids"]
    assert theirs[0]["fingerprint"] == issues[0]["fingerprint"]
    assert _without_times(theirs[0]["body"]) == _without_times(body)


def _without_times(body: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "<time>", body)
