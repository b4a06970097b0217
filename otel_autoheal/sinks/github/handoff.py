"""Hand-off of filed issues to the GitHub Copilot coding agent, and the gates in front of it.

Error text is attacker-influenced (a browser error can carry any message a visitor crafts), so
the agent's directions come only from ``messages.CUSTOM_INSTRUCTIONS``, never from the issue text,
and errors from untrusted sources are not handed off unless explicitly allowed.
"""

from __future__ import annotations

from collections.abc import Collection

from otel_autoheal.model import ExceptionRecord, Occurrence
from otel_autoheal.onboarding.templates.gate import handoff_refusal
from otel_autoheal.sinks.github.config import GitHubConfig
from otel_autoheal.sinks.github.messages import CUSTOM_INSTRUCTIONS

__all__ = ["agent_assignment", "has_in_app_frames", "provenance", "refusal"]


def has_in_app_frames(occurrence: Occurrence) -> bool:
    """True when any parsed frame of the exception chain is application code."""
    return any(f.in_app for exc in occurrence.exception.chain for f in exc.frames)


def provenance(exception: ExceptionRecord, untrusted_sources: Collection[str]) -> tuple[bool, str]:
    """Whether the service trusts where ``exception`` came from, and what that rests on.

    The ingest path's verdict (``ExceptionRecord.ingest_trust``, set by the receivers from the
    authenticated token / CORS origin, never from the data) decides when present: basis
    ``receiver``. Otherwise only the sender's own ``autoheal.source`` attribute is known
    (basis ``attribute``): browser (``untrusted_sources``) and unknown (empty) sources are
    untrusted, the rest trusted.
    """
    if exception.ingest_trust in ("trusted", "untrusted"):
        return exception.ingest_trust == "trusted", "receiver"
    source = exception.source
    return bool(source) and source not in untrusted_sources, "attribute"


def refusal(
    config: GitHubConfig, *, source: str, trusted: bool, basis: str, count: int, in_app: bool
) -> tuple[str, str] | None:
    """The shared hand-off rules (the repository gate's ``handoff_refusal``) applied to a group's facts.

    The daily budget is not checked here: the service waits for it (``Budget.handoff_wait``)
    where the gate, which runs once per event, skips.
    """
    facts = {"source": source, "trusted_source": trusted, "provenance": basis, "count": count, "in_app": in_app}
    return handoff_refusal(
        facts,
        min_occurrences=config.handoff_min_occurrences,
        require_in_app=config.handoff_require_in_app,
        allow_sources=config.handoff_allow_sources,
    )


def agent_assignment(config: GitHubConfig) -> dict[str, str]:
    """The ``agent_assignment`` object sent with the assignee request."""
    out = {
        "target_repo": config.handoff_target_repo or config.repository,
        "custom_instructions": CUSTOM_INSTRUCTIONS,
    }
    if config.handoff_base_branch:
        out["base_branch"] = config.handoff_base_branch
    return out
