"""BASELINE ONLY (bench/scrub.py): verbatim copy of otel_autoheal/scrub.py at commit 4010cca, before the shared rule set.

The scrubber: removes secrets from text and attribute maps before anything is stored or rendered.

Values are replaced, never deleted, and each replacement names what it was
(``[redacted:github_token]``), so an issue still shows *that* a value was there.
Usable on its own: ``Scrubber().text(s)`` / ``Scrubber().value(obj)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Scrubber", "luhn_valid"]

# Token formats with a recognisable shape. Order matters: specific formats first, so that a
# GitHub token inside a URL is named as such rather than as a URL password.
_TOKEN_PATTERNS: tuple[tuple[str, str], ...] = (
    # PEM blocks: the whole block, header to footer, including encrypted keys.
    ("private_key", r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|\Z)"),
    # GitHub: classic PATs, OAuth, user-to-server, server-to-server, refresh; fine-grained PATs.
    ("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})\b"),
    # GitLab personal/project/group/deploy/runner/CI job/feed/OAuth tokens.
    ("gitlab_token", r"\b(?:glpat|gldt|glrt|glcbt|glptt|glft|glimt|glagent|gloas|glsoat|glffct)-[A-Za-z0-9_\-]{20,}\b"),
    # Slack bot/user/app/config tokens and incoming-webhook URLs.
    ("slack_token", r"\bxox[abposre]-[A-Za-z0-9\-]{10,}\b|\bxapp-\d-[A-Za-z0-9\-]{10,}\b"),
    ("slack_webhook", r"https://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/\-]+"),
    # AWS access key ids (long-term and temporary).
    ("aws_access_key", r"\b(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[A-Z0-9]{16}\b"),
    # Google API keys, OAuth access tokens and client secrets.
    ("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    ("google_oauth_token", r"\bya29\.[0-9A-Za-z_\-]{20,}"),
    ("google_client_secret", r"\bGOCSPX-[0-9A-Za-z_\-]{20,}"),
    # Stripe secret/restricted/publishable keys and webhook secrets.
    ("stripe_key", r"\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{10,}\b|\bwhsec_[0-9A-Za-z]{20,}\b"),
    # OpenAI / Anthropic style keys.
    ("api_key", r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_\-]{20,}\b"),
    # npm, PyPI, SendGrid, Twilio, Mailgun, Shopify, Hugging Face, DigitalOcean tokens.
    ("npm_token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("pypi_token", r"\bpypi-AgE[A-Za-z0-9_\-]{50,}"),
    ("sendgrid_key", r"\bSG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}"),
    ("twilio_key", r"\bSK[0-9a-fA-F]{32}\b"),
    ("mailgun_key", r"\bkey-[0-9a-zA-Z]{32}\b"),
    ("shopify_token", r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b"),
    ("huggingface_token", r"\bhf_[A-Za-z0-9]{30,}\b"),
    ("digitalocean_token", r"\bdo[opr]_v1_[a-f0-9]{64}\b"),
    # Other vendors with a fixed prefix: Atlassian, Linear, HashiCorp Vault, Doppler, Databricks,
    # Postman, New Relic, Grafana, Square, age, Telegram bots, Discord webhooks.
    ("atlassian_token", r"\bATATT3[A-Za-z0-9_\-=]{20,}"),
    ("linear_key", r"\blin_(?:api|oauth)_[A-Za-z0-9]{30,}\b"),
    ("vault_token", r"\bhv[sb]\.[A-Za-z0-9_\-]{20,}"),
    ("doppler_token", r"\bdp\.(?:pt|st|sa|ct|scim)\.[A-Za-z0-9]{30,}"),
    ("databricks_token", r"\bdapi[a-f0-9]{32}\b"),
    ("postman_key", r"\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b"),
    ("newrelic_key", r"\bNR(?:AK|II|JS)-[A-Za-z0-9]{20,}"),
    ("grafana_token", r"\bgl(?:c|sa)_[A-Za-z0-9_\-=+/]{30,}"),
    ("square_token", r"\b(?:sq0atp|sq0csp|EAAA)[A-Za-z0-9_\-]{22,}"),
    ("age_secret_key", r"\bAGE-SECRET-KEY-1[0-9A-Z]{58}\b"),
    ("telegram_bot_token", r"\b\d{8,10}:AA[A-Za-z0-9_\-]{33}\b"),
    ("discord_webhook", r"https://(?:canary\.|ptb\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_\-]+"),
    # A bearer token on its own, outside an Authorization header.
    ("bearer_token", r"(?i)(?<=\bbearer )[A-Za-z0-9\-._~+/]{16,}=*"),
    # JSON Web Tokens (header.payload.signature, base64url).
    ("jwt", r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}"),
    # Azure storage / service bus connection strings.
    ("azure_key", r"(?i)(?:AccountKey|SharedAccessKey|sig)=[A-Za-z0-9+/%]{20,}={0,2}"),
)

#: ``Authorization: Bearer x``, ``authorization=Basic x``, ``"Authorization": "token x"``.
_AUTH_HEADER = re.compile(
    r"(?i)(\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)((?:bearer|basic|token|digest|negotiate|apikey)\s+)?([^\s\"',;]+)"
)
#: ``Cookie:`` / ``Set-Cookie:`` header values, all of them (several ``name=value`` pairs).
_COOKIE_HEADER = re.compile(r"(?im)(\b(?:set-)?cookie[\"']?\s*[:=]\s*[\"']?)([^\n\"']+)")
#: ``scheme://user:password@host``: the password only.
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s]*:)([^@\s/]+)(@)")

#: Key names whose values are secret. Matched as a substring of the key, case-insensitively,
#: after removing separators: "X-Api-Key", "db_password", "sessionId", "auth_token".
DEFAULT_SECRET_KEYS: tuple[str, ...] = (
    "password", "passwd", "pwd", "passphrase", "secret", "token", "apikey", "accesskey", "privatekey",
    "credential", "cookie", "session", "authorization", "auth", "signature", "clientsecret", "dsn",
)
#: Keys that contain one of the words above but are not secret (telemetry conventions).
DEFAULT_ALLOWED_KEYS: tuple[str, ...] = (
    "mcp.session.id.present", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
    "gen_ai.usage.total_tokens", "http.request.header.cookie.present", "max_tokens", "tokenizer",
    "session.previous_id.present", "authority", "author", "authored",
)

#: ``password=x``, ``api_key: "x"``, ``--token x``, ``"secret": "x"`` inside free text and argv.
_KEY_VALUE = re.compile(
    r"(?i)((?:--?|\b)[\w.\-]*(?:password|passwd|pwd|passphrase|secret|token|api[_\-]?key|access[_\-]?key"
    r"|private[_\-]?key|credential|cookie|session[_\-]?id|client[_\-]?secret)[\w.\-]*[\"']?"
    r"(?:\s*[=:]\s*))([\"']?)([^\s\"',;&)}\]]{1,500})"
)
#: ``--token x`` / ``-p x`` style flags in free text (a leading dash is required for this form).
_FLAG_VALUE = re.compile(
    r"(?i)((?<![\w\-])--?[\w\-]*(?:password|passwd|pwd|passphrase|secret|token|api[_\-]?key|access[_\-]?key"
    r"|private[_\-]?key|credential|cookie|client[_\-]?secret)[\w\-]*\s+)()([^\s\"'\-][^\s\"']{0,499})"
)
_CARD = re.compile(r"(?<![\d\-])(?:\d[ \-]?){12,18}\d(?![\d\-])")


def luhn_valid(digits: str) -> bool:
    """Luhn checksum of a digit string (payment card numbers)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        d = ord(char) - 48
        if index % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class _Pattern:
    name: str
    regex: re.Pattern[str]


class Scrubber:
    """Replaces secrets in strings and nested attribute values.

    ``extra_patterns`` maps a name to a regex (the whole match is replaced); ``allow`` lists
    literal values or key names never redacted (for false positives in your data).
    """

    def __init__(
        self,
        extra_patterns: Mapping[str, str] | None = None,
        allow: Iterable[str] = (),
        secret_keys: Sequence[str] = DEFAULT_SECRET_KEYS,
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self._patterns = [_Pattern(n, re.compile(p)) for n, p in _TOKEN_PATTERNS]
        self._patterns += [_Pattern(n, re.compile(p)) for n, p in (extra_patterns or {}).items()]
        self._allow = frozenset(allow)
        self._allow_keys = frozenset(k.lower() for k in (*DEFAULT_ALLOWED_KEYS, *self._allow))
        self._secret_keys = tuple(k.lower() for k in secret_keys)

    # -- text ---------------------------------------------------------------------------------
    def text(self, value: str) -> str:
        """Return ``value`` with every recognised secret replaced by ``[redacted:<kind>]``."""
        if not self.enabled or not value:
            return value
        allow = self._allow

        def sub(name: str) -> Any:
            def repl(match: re.Match[str]) -> str:
                return match.group(0) if match.group(0) in allow else f"[redacted:{name}]"
            return repl

        for pattern in self._patterns:
            value = pattern.regex.sub(sub(pattern.name), value)
        value = _AUTH_HEADER.sub(
            lambda m: m.group(0) if m.group(3) in allow or m.group(3).startswith("[redacted")
            else f"{m.group(1)}{m.group(2) or ''}[redacted:authorization]",
            value,
        )
        value = _COOKIE_HEADER.sub(
            lambda m: m.group(0) if m.group(2).startswith("[redacted") else f"{m.group(1)}[redacted:cookie]", value
        )
        value = _URL_PASSWORD.sub(
            lambda m: m.group(0) if m.group(2) in allow or m.group(2).startswith("[redacted")
            else f"{m.group(1)}[redacted:url_password]{m.group(3)}",
            value,
        )
        value = _KEY_VALUE.sub(self._key_value_repl, value)
        value = _FLAG_VALUE.sub(self._key_value_repl, value)
        value = _CARD.sub(self._card_repl, value)
        return value

    def _key_value_repl(self, match: re.Match[str]) -> str:
        secret = match.group(3)
        if secret in self._allow or secret.startswith(("[redacted", "<")):
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}[redacted:secret]"

    def _card_repl(self, match: re.Match[str]) -> str:
        digits = re.sub(r"[ \-]", "", match.group(0))
        if 13 <= len(digits) <= 19 and luhn_valid(digits) and match.group(0) not in self._allow:
            return "[redacted:card_number]"
        return match.group(0)

    # -- keys and structures ------------------------------------------------------------------
    def is_secret_key(self, key: str) -> bool:
        lowered = key.lower()
        if lowered in self._allow_keys:
            return False
        compact = re.sub(r"[\s_.\-]", "", lowered)
        return any(word in compact for word in self._secret_keys)

    def value(self, value: Any, key: str = "") -> Any:
        """Scrub a nested value; values under secret-looking keys are replaced whole."""
        if not self.enabled:
            return value
        if key and self.is_secret_key(key) and value not in (None, "", True, False):
            if isinstance(value, (dict, list)) and not value:
                return value
            return f"[redacted:{_key_kind(key)}]"
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.value(v, str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return self.argv([str(v) for v in value]) if all(isinstance(v, str) for v in value) else [
                self.value(v) for v in value
            ]
        return value

    def attributes(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        return {k: self.value(v, k) for k, v in attributes.items()}

    def argv(self, args: Sequence[str]) -> list[str]:
        """Scrub an argument vector: ``--password x`` redacts ``x``; ``--token=x`` redacts after ``=``."""
        out: list[str] = []
        redact_next = False
        for arg in args:
            if redact_next and not arg.startswith("-"):
                out.append("[redacted:secret]")
                redact_next = False
                continue
            redact_next = False
            if arg.startswith("-") and "=" not in arg and self.is_secret_key(arg.lstrip("-")):
                redact_next = True
                out.append(arg)
                continue
            out.append(self.text(arg))
        return out


def _kind_for(word: str) -> str:
    return {"pwd": "password", "passwd": "password", "apikey": "api_key", "accesskey": "access_key"}.get(word, word)


def _key_kind(key: str) -> str:
    compact = re.sub(r"[\s_.\-]", "", key.lower())
    for word in DEFAULT_SECRET_KEYS:
        if word in compact:
            return _kind_for(word)
    return "secret"
