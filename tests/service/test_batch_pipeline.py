"""Finished traces are recorded in batches: one store transaction per batch, a bad trace costing only itself."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

import psycopg

from otel_autoheal.state.postgres import PostgresStore
from otlp_payloads import new_span_id, new_trace_id, span, traces_payload
from polling import wait_for
from tests.conftest import AutohealProcess
from tests.postgres_server import PostgresServer

STACK = ('Traceback (most recent call last):\n  File "/srv/app/shop/views.py", line 42, in checkout\n'
         '    total = price(cart)\n  File "/srv/app/shop/pricing.py", line 7, in price\n'
         '    return cart["sku"].amount\nKeyError: \'sku\'\n')


def _failing_span(error_type: str, message: str) -> dict[str, Any]:
    exc = {"type": error_type, "message": message, "stacktrace": STACK.replace("KeyError", error_type)}
    return span(new_trace_id(), new_span_id(), "POST /checkout", exception=exc)


def _post(endpoint: str, spans: list[dict[str, Any]]) -> None:
    # One request: its traces finish together and reach the pipeline as one batch.
    request = urllib.request.Request(f"{endpoint}/v1/traces", data=json.dumps(traces_payload(spans)).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def _counts(issues: list[dict[str, Any]]) -> dict[str, int]:
    return {i["exception_type"]: i["count"] for i in issues}


def test_a_storm_in_one_batch_counts_every_occurrence(autoheal_factory: Callable[..., AutohealProcess]) -> None:
    """Forty failing traces of two errors sent at once are counted exactly (30 and 10), one group each."""
    service = autoheal_factory()
    _post(service.http_endpoint, [_failing_span("KeyError" if i % 4 else "IndexError", "'sku'") for i in range(40)])
    issues = service.wait_for_issues(lambda found: sum(i["count"] for i in found) >= 40)
    assert _counts(issues) == {"KeyError": 30, "IndexError": 10}
    assert service.metric("autoheal_occurrences_total") == 40
    assert service.metric("autoheal_issues_filed_total") == 2


def test_one_unrecordable_trace_does_not_lose_its_batch(autoheal_factory: Callable[..., AutohealProcess],
                                                        pg_server: PostgresServer) -> None:
    """A trace the database refuses (a CHECK constraint added to its table rejects its group) fails the batch's
    transaction; the batch is then recorded trace by trace and only that trace is lost."""
    url = pg_server.new_database()
    service = autoheal_factory(env={"AUTOHEAL_DATABASE_URL": url})
    # The schema exists once the service is up: from now on the database itself refuses one kind of group.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE groups ADD CONSTRAINT refuses_value_error CHECK (exception_type <> 'ValueError')")
    spans = [_failing_span("KeyError", "'sku'"), _failing_span("ValueError", "bad name"),
             _failing_span("KeyError", "'sku'"), _failing_span("IndexError", "'sku'")]
    _post(service.http_endpoint, spans)
    wait_for(lambda: service.metric("autoheal_pipeline_errors_total") >= 1, 60, 0.25, "the failed trace counted")
    wait_for(lambda: service.metric("autoheal_occurrences_total") >= 3, 60, 0.25, "three occurrences counted")
    store = PostgresStore(url)
    try:
        assert {g.exception_type: g.count for g in store.groups()} == {"KeyError": 2, "IndexError": 1}
    finally:
        store.close()
    assert service.metric("autoheal_occurrences_total") == 3
    assert service.metric("autoheal_pipeline_errors_total") == 1
    assert "recording them one by one" in service.log_text()
    assert "refuses_value_error" in service.log_text()
