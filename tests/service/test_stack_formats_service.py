"""The newer stack formats end to end: sent over OTLP/HTTP as exception logs, grouped by the running service."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from otlp_payloads import log_record, logs_payload, new_span_id, new_trace_id, post

STACKS = Path(__file__).resolve().parent.parent / "testdata" / "stacks"
#: Formats added after the first release of the parser, and hardened ones whose keys changed.
LANGUAGES = ("rust", "elixir", "swift", "cpp")


def test_new_formats_group_same_bugs_together_and_keep_different_bugs_apart(autoheal_factory, tmp_path):
    """Each golden stack of Rust, Elixir/Erlang, Swift and C++ sent as a log becomes an occurrence
    of exactly its group's issue: one issue per group, counting that group's stacks."""
    svc = autoheal_factory(state_dir=tmp_path / "state")
    expected: Counter[tuple[str, str]] = Counter()
    for path in sorted(p for language in LANGUAGES for p in (STACKS / language).glob("*.txt")):
        sidecar = json.loads(path.with_suffix(".expected.json").read_text())
        inp = sidecar["input"]
        # The attributes the sidecar says came with the stack, as the golden test parses them.
        attributes = {"exception.stacktrace": path.read_text()}
        attributes.update({f"exception.{key}": inp[key] for key in ("type", "message") if inp.get(key)})
        record = log_record("request failed", trace_id=new_trace_id(), span_id=new_span_id(), severity="ERROR",
                            severity_number=17, attributes=attributes)
        status, reply = post(f"{svc.http_endpoint}/v1/logs", logs_payload([record], {"service.name": inp["service"]}))
        assert status == 200, reply[:300]
        expected[(inp["service"], sidecar["group"])] += 1
    issues = svc.wait_for_issues(lambda found: sum(i["count"] for i in found) >= sum(expected.values()), 120)
    assert len(issues) == len(expected), [(i["service"], i["title"], i["count"], i["fingerprint"][:8]) for i in issues]
    assert sorted(i["count"] for i in issues) == sorted(expected.values())
