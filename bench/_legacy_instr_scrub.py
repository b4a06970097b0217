"""BASELINE ONLY (bench/scrub.py): verbatim copy of autoheal_instrumentation/_scrub.py at commit 4010cca.

Remove secrets from argv, free text and tool arguments before they leave the process.

The service scrubs again; this is the first line, so secrets never reach the wire or the spool.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["is_secret_name", "scrub_argv", "scrub_text", "scrub_value"]

# Substrings that make an option/key name secret wherever they appear ("github_token", "dbpassword").
_SECRET_SUBSTRINGS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "api_key",
    "private_key",
    "privatekey",
    "access_key",
    "credential",
    "client_secret",
    "signature",
)
# As the last word only: "auth" is secret in "--auth" or "basic_auth", not in "--author" or
# "--auth-mode"; "session" in "--session", not in "--session-timeout".
_SECRET_WORDS = frozenset({"pwd", "auth", "authorization", "cookie", "session", "sessionid", "jwt", "dsn", "pat"})

_TOKEN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private-key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)")),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})\b")),
    ("aws-access-key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+")),
    ("stripe-key", re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b")),
    ("openai-key", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}")),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("bearer", re.compile(r"(?i)(?<=\bbearer )[A-Za-z0-9._~+/-]{8,}=*")),
)
_URL_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^/\s:@]*):([^/\s@]+)@")
_QUERY_PARAM = re.compile(r"([?&;])([^=&;#\s]+)=([^&;#\s]*)")
_INLINE_ASSIGN = re.compile(r"""(?i)\b([A-Za-z0-9_.-]*?)(\s*[=:]\s*)(["']?)([^\s"',;&]+)""")
_NAME_SPLIT = re.compile(r"[^a-z0-9]+")


def is_secret_name(name: str) -> bool:
    """Tell whether an option, key or variable name usually holds a secret."""
    norm = name.lower().lstrip("-").replace("-", "_")
    if not norm:
        return False
    if any(sub in norm for sub in _SECRET_SUBSTRINGS):
        return True
    words = [w for w in _NAME_SPLIT.split(norm) if w]
    if not words:
        return False
    return words[-1] in _SECRET_WORDS or norm.endswith("session_id")


def _label(name: str) -> str:
    norm = _NAME_SPLIT.sub("-", name.lower().lstrip("-")).strip("-")
    return norm or "secret"


def scrub_text(text: str) -> str:
    """Redact credentials in URLs, secret-named assignments and known token formats."""
    if not text:
        return text
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:[redacted:url-password]@", text)
    for kind, pattern in _TOKEN_PATTERNS:
        text = pattern.sub(f"[redacted:{kind}]", text)
    text = _QUERY_PARAM.sub(
        lambda m: (
            f"{m.group(1)}{m.group(2)}=[redacted:{_label(m.group(2))}]"
            if is_secret_name(m.group(2)) and m.group(3) and not m.group(3).startswith("[redacted:")
            else m.group(0)
        ),
        text,
    )
    text = _INLINE_ASSIGN.sub(
        lambda m: (
            f"{m.group(1)}{m.group(2)}{m.group(3)}[redacted:{_label(m.group(1))}]"
            if m.group(1) and is_secret_name(m.group(1)) and not m.group(4).startswith("[redacted:")
            else m.group(0)
        ),
        text,
    )
    return text


def scrub_argv(argv: Sequence[str]) -> list[str]:
    """Scrub a command line: ``--password=x``, ``--token x``, ``KEY=value``, URLs and token formats."""
    out: list[str] = []
    redact_next: str | None = None
    for raw in argv:
        arg = str(raw)
        if redact_next is not None:
            # "--token -" style flags are rare; a following option means the flag took no value.
            if arg.startswith("-") and len(arg) > 1:
                redact_next = None
            else:
                out.append(f"[redacted:{redact_next}]")
                redact_next = None
                continue
        if arg.startswith("-") and len(arg) > 1:
            name, sep, _value = arg.partition("=")
            if is_secret_name(name):
                if sep:
                    out.append(f"{name}=[redacted:{_label(name)}]")
                else:
                    out.append(arg)
                    redact_next = _label(name)
                continue
            out.append(scrub_text(arg))
            continue
        out.append(scrub_text(arg))
    return out


def scrub_value(value: Any, *, _depth: int = 0) -> Any:
    """Scrub a JSON-like value: secret-named keys are redacted, strings are scrubbed."""
    if _depth > 20:
        return "[truncated]"
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {
            str(k): f"[redacted:{_label(str(k))}]"
            if is_secret_name(str(k)) and v not in (None, "")
            else scrub_value(v, _depth=_depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [scrub_value(v, _depth=_depth + 1) for v in value]
    return value
