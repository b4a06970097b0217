# Over 400 lines on purpose: one stdlib-only file shipped byte-identical in both distributions.
"""The secret-scrubbing engine shared by the otel-autoheal service and its Python instrumentation.

This file and ``scrub_rules.toml`` next to it are shipped byte-identical in both distributions
(``otel_autoheal/`` and ``autoheal_instrumentation/``; a test checks it), so the two scrubbers
cannot drift. It imports only the standard library; the caller passes the regex module.

Time bound. The service compiles the rules with google-re2 (linear time by construction). The
instrumentation compiles the same rules with Python's ``re``: the rule file's constraints (bounded
repeats, none nested in another that can run more than once, no lookaround or backreferences;
checked by the tests) bound the work per start position by a constant, so a text costs time
linear in its size (bench/scrub.py measures it). The instrumentation does not use google-re2: it
is a compiled wheel (RE2 + abseil) not built for every platform and Python an app may run on,
and building its automata costs a failing CLI run ~250 ms more than ``re`` does. Texts beyond
``max_text_chars`` are cut (visibly) before scrubbing, a second guard on the time one text takes.

Under RE2 the text is scrubbed as UTF-8 bytes: the google-re2 wrapper re-encodes a ``str`` on
every ``match(text, pos)`` call, which would make the keyed forms quadratic.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

__all__ = ["RULES_PATH", "Engine", "load_rules", "luhn_valid"]

#: The rule file read by default (next to this module in both distributions).
RULES_PATH = Path(__file__).with_name("scrub_rules.toml")

_REDACTED = "[redacted:"
_NAME_WORDS = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_LINE_LEAD = re.compile(r"[ \t]*(?:(?:export|set|-)[ \t]+)?[\"']?")
_UPPER_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_PORT = re.compile(r"[0-9]{1,5}(?:/|$)")
_MAX_NAME = 200


def load_rules(path: Path | None = None) -> dict[str, Any]:
    """The parsed rule file."""
    with open(path or RULES_PATH, "rb") as handle:
        return tomllib.load(handle)


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


class _Rule(NamedTuple):
    kind: str
    regex: str
    keywords: tuple[Any, ...]
    luhn: bool = False
    extend: str | None = None


class _Block(NamedTuple):
    kind: str
    begin: str
    end: str
    keywords: tuple[Any, ...]
    max_chars: int


class _Keyed(NamedTuple):
    form: str
    key: Any


class Engine:
    """Compiled rules plus the logic that applies them; ``text``, ``argv`` and ``value`` scrub.

    ``regex`` is the module the rules are compiled with: google-re2's ``re2`` (the service) or
    the standard ``re`` (default; the instrumentation). ``extra_patterns`` maps a label to a regex (the whole match
    is replaced); ``allow`` lists literal values and names never redacted.
    """

    def __init__(
        self,
        *,
        regex: ModuleType | None = None,
        extra_patterns: Mapping[str, str] | None = None,
        allow: Iterable[str] = (),
        rules: Mapping[str, Any] | None = None,
    ) -> None:
        self.regex = regex if regex is not None else re
        self.engine = "re2" if self.regex is not re else "re"
        self._bytes = self.engine == "re2"
        data = rules if rules is not None else load_rules()
        names = data["names"]
        self.max_text_chars: int = int(data["max_text_chars"])
        self._anywhere = tuple(names["anywhere"])
        self._last_word = frozenset(names["last_word"])
        self._suffix = tuple(names["suffix"])
        self._not_secret_last = frozenset(names["not_secret_last_word"])
        self._allow = frozenset(allow)
        self._allowed_names = frozenset(n.lower() for n in (*names["allowed"], *self._allow))
        self._kinds = tuple((word, kind) for word, kind in names["kinds"])
        stems = "|".join(names["stems"])
        self._blocks = [
            _Block(
                block["id"],
                block["begin"],
                block["end"],
                tuple(self._hay(k) for k in block.get("keywords", ())),
                int(block["max_chars"]),
            )
            for block in data.get("block", ())
        ]
        self._rules = [
            _Rule(
                rule["id"],
                rule["regex"],
                tuple(self._hay(k) for k in rule.get("keywords", ())),
                rule.get("check") == "luhn",
                rule.get("extend"),
            )
            for rule in data["rule"]
        ]
        self._compiled: dict[str, Any] = {}
        self._rules += [_Rule(name, p, ()) for name, p in (extra_patterns or {}).items()]
        for pattern in (extra_patterns or {}).values():
            self._re(pattern)  # a bad extra pattern fails here, not on the first text
        self._always = [i for i, rule in enumerate(self._rules) if not rule.keywords]
        self._rules_by_keyword: dict[Any, list[int]] = {}
        for index, rule in enumerate(self._rules):
            for keyword in rule.keywords:
                self._rules_by_keyword.setdefault(keyword, []).append(index)
        self._stems = frozenset(self._hay(stem) for stem in names["stems"])
        keywords = {k for rule in self._rules for k in rule.keywords}
        keywords |= {k for block in self._blocks for k in block.keywords} | self._stems
        self._keyword_list = sorted(keywords)
        self._keyword_set: Any = None
        if self._bytes and hasattr(self.regex, "Set"):
            self._keyword_set = self.regex.Set.SearchSet()
            for keyword in self._keyword_list:
                self._keyword_set.Add(b"(?i)" + self.regex.escape(keyword))
            self._keyword_set.Compile()
        self._keyed = [_Keyed(k["value"], self._compile(k["key"].replace("{stems}", stems))) for k in data["keyed"]]
        values = data["values"]
        self._values = {name: self._compile(values[name]) for name in values}
        self._label_cache: dict[str, Any] = {}
        self._name_cache: dict[str, bool] = {}

    # -- plumbing ----------------------------------------------------------------------------
    def _compile(self, pattern: str) -> Any:
        if self._bytes:
            return self.regex.compile(pattern.encode())
        return re.compile(pattern, re.ASCII)

    def _keywords_present(self, hay: Any) -> frozenset[Any]:
        """The pre-filter keywords (rules' keywords and name stems) that occur in the text, case
        folded. Under RE2 one pass of an RE2::Set finds them all (what gitleaks does with
        Aho-Corasick); under re, one substring test per keyword."""
        if self._keyword_set is not None:
            found = self._keyword_set.Match(hay)
            return frozenset(self._keyword_list[i] for i in found) if found else frozenset()
        lowered = hay.lower()
        return frozenset(k for k in self._keyword_list if k in lowered)

    def _re(self, pattern: str) -> Any:
        """The compiled form of a rule regex, compiled on first use: most texts trigger few rules,
        and a failing CLI run should not pay for compiling all of them."""
        compiled = self._compiled.get(pattern)
        if compiled is None:
            compiled = self._compiled[pattern] = self._compile(pattern)
        return compiled

    def _hay(self, text: str) -> Any:
        return text.encode("utf-8", "surrogatepass") if self._bytes else text

    def _str(self, hay: Any) -> str:
        return hay.decode("utf-8", "surrogatepass") if self._bytes else str(hay)

    def _context(self, hay: Any) -> str:
        """A slice of the text read only for its ASCII context (quotes, separators, line lead): the
        slice may cut a UTF-8 sequence under RE2, which must not fail the whole text."""
        return hay.decode("utf-8", "replace") if self._bytes else str(hay)

    def _label(self, kind: str) -> Any:
        label = self._label_cache.get(kind)
        if label is None:
            label = self._label_cache[kind] = self._hay(f"[redacted:{kind}]")
        return label

    def _allowed(self, secret: Any) -> bool:
        return bool(self._allow) and self._str(secret) in self._allow

    # -- names -------------------------------------------------------------------------------
    def is_secret_name(self, name: str) -> bool:
        """Tell whether an option, key, header or variable name holds a secret."""
        cached = self._name_cache.get(name)
        if cached is None:
            if len(self._name_cache) > 4096:
                self._name_cache.clear()
            cached = self._name_cache[name] = self._is_secret_name(name)
        return cached

    def _is_secret_name(self, name: str) -> bool:
        name = name[-_MAX_NAME:]
        lowered = name.lower()
        if lowered in self._allowed_names or lowered.lstrip("-") in self._allowed_names:
            return False
        words = _NAME_WORDS.findall(_CAMEL.sub(r"\1_\2", name).lower())
        if not words or words[-1] in self._not_secret_last:
            return False
        compact = "".join(words)
        return (
            words[-1] in self._last_word
            or any(word in compact for word in self._anywhere)
            or compact.endswith(self._suffix)
        )

    def name_kind(self, name: str) -> str:
        """The label kind for a secret name ("db.password" → password, "X-Api-Key" → api_key)."""
        compact = "".join(_NAME_WORDS.findall(_CAMEL.sub(r"\1_\2", name[-_MAX_NAME:]).lower()))
        for word, kind in self._kinds:
            if word in compact:
                return str(kind)
        return "secret"

    # -- text --------------------------------------------------------------------------------
    def cap(self, text: str) -> str:
        """Cut a text longer than the size budget at whitespace, with a visible note."""
        limit = self.max_text_chars
        if len(text) <= limit:
            return text
        head = text[:limit]
        cut = max(head.rfind("\n"), head.rfind(" "))
        head = head[:cut] if cut > limit // 2 else head
        return head + f"\n[… {len(text) - len(head)} characters not shown: over the scrubber's size budget]"

    def text(self, text: str) -> str:
        """Return ``text`` with every recognised secret replaced by ``[redacted:<kind>]``."""
        if not text:
            return text
        hay = self._hay(self.cap(text))
        present = self._keywords_present(hay)
        for block in self._blocks:
            if not present.isdisjoint(block.keywords):
                hay = self._apply_block(block, hay)
        chosen = set(self._always)
        for keyword in present:
            chosen.update(self._rules_by_keyword.get(keyword, ()))
        for index in sorted(chosen):
            hay = self._apply_rule(self._rules[index], hay)
        if not present.isdisjoint(self._stems):
            for keyed in self._keyed:
                hay = self._apply_keyed(keyed, hay)
        return self._str(hay)

    def _apply_block(self, block: _Block, hay: Any) -> Any:
        out, done = [], 0
        block_end = self._re(block.end)
        for begin in self._re(block.begin).finditer(hay):
            if begin.start() < done:
                continue
            limit = min(len(hay), begin.end() + block.max_chars)
            end = block_end.search(hay, begin.end(), limit)
            done_at = end.end() if end is not None else limit
            out += [hay[done : begin.start()], self._label(block.kind)]
            done = done_at
        if not out:
            return hay
        out.append(hay[done:])
        return hay[:0].join(out)

    def _apply_rule(self, rule: _Rule, hay: Any) -> Any:
        out, done, pos = [], 0, 0
        regex = self._re(rule.regex)
        groups = regex.groups
        while pos <= len(hay):
            match = regex.search(hay, pos)
            if match is None:
                break
            end = match.end()
            if rule.extend is not None:
                end = self._extend(self._re(rule.extend), hay, end)
            for start, stop in self._secret_spans(hay, match, rule, end):
                out += [hay[done:start], self._label(rule.kind)]
                done = stop
            # Resume after the last group, not after the match: the context a match consumed after
            # its secret (a separator) may be the context the next match needs before its own.
            last_group = max((match.end(i) for i in range(1, groups + 1) if match.start(i) >= 0), default=-1)
            resume = end if groups == 0 or last_group == match.end() else last_group
            pos = max(resume, done, match.start() + 1)
        if not out:
            return hay
        out.append(hay[done:])
        return hay[:0].join(out)

    def _secret_spans(self, hay: Any, match: Any, rule: _Rule, end: int) -> list[tuple[int, int]]:
        """The spans to replace: the capture groups that took part (else the whole match)."""
        groups = self._re(rule.regex).groups
        if groups == 0:
            whole = hay[match.start() : end]
            return [] if self._allowed(whole) else [(match.start(), end)]
        spans = []
        for index in range(1, groups + 1):
            g_start, g_end = match.span(index)
            if g_start < 0:
                continue
            secret = match.group(index)
            if (
                self._allowed(secret)
                or secret.startswith(self._label_prefix)
                or (rule.kind == "url_password" and _PORT.match(self._str(secret)))
                or (rule.luhn and not self._luhn_card(secret))
            ):
                continue
            spans.append((g_start, end if g_end == match.end() else g_end))
        return spans

    @property
    def _label_prefix(self) -> Any:
        return self._hay(_REDACTED)

    def _luhn_card(self, secret: Any) -> bool:
        digits = "".join(c for c in self._str(secret) if c.isdigit())
        return 13 <= len(digits) <= 19 and luhn_valid(digits)

    def _apply_keyed(self, keyed: _Keyed, hay: Any) -> Any:
        out, done = [], 0
        for match in keyed.key.finditer(hay):
            if match.start(1) < done:
                continue  # inside a value already replaced
            name = self._str(match.group(1))
            if not self.is_secret_name(name):
                continue
            span = self._value_span(keyed.form, hay, match, name)
            if span is None:
                continue
            v_start, v_end = span
            out += [hay[done:v_start], self._label(self.name_kind(name))]
            done = v_end
        if not out:
            return hay
        out.append(hay[done:])
        return hay[:0].join(out)

    def _value_span(self, form: str, hay: Any, match: Any, name: str) -> tuple[int, int] | None:
        """Where the value after a secret name starts and ends, or None to keep it."""
        pos = match.end(0)
        values = self._values
        quote = self._context(hay[pos : pos + 2])
        # Escaped quotes (password=\"x\" inside a string literal) delimit the value as plain ones do;
        # the backslash before the closing quote stays.
        opening = 2 if quote in ("\\\"", "\\'") else 1
        quote = quote[opening - 1 : opening]
        span = None
        if quote in ("\"", "'") and form in ("assignment", "flag"):
            start = pos + opening
            body_end = self._extend(values["double_quoted" if quote == '"' else "single_quoted"], hay, start)
            close = body_end - opening + 1
            if close > start and self._context(hay[body_end : body_end + 1]) == quote and self._context(hay[close:body_end]) in ("", "\\"):
                span = (start, close)
        if span is None:
            if form == "assignment":
                pattern = values["line"] if self._takes_line(hay, match, name) else values["token"]
            else:
                pattern = values[form]
            found = pattern.match(hay, pos + opening - 1)
            if found is None:
                return None
            span = (pos, self._extend(values[_CONTINUE.get(form, "token")] if form != "assignment" else pattern, hay, found.end()))
        value = hay[span[0] : span[1]]
        if values["keep"].match(value) or self._allowed(value):
            return None
        if form == "assignment" and self._prose_colon(hay, match, name, value):
            return None
        return span

    @staticmethod
    def _extend(pattern: Any, hay: Any, end: int) -> int:
        """Extend a run past the regex's repeat bound (kept small: RE2 compiles counted repeats
        into that many instructions) by matching again where it stopped."""
        while True:
            more = pattern.match(hay, end)
            if more is None or more.end() == end:
                return end
            end = more.end()

    def _line_start(self, hay: Any, index: int) -> int:
        newline = hay.rfind(b"\n" if self._bytes else "\n", max(0, index - _MAX_NAME), index)
        return newline + 1 if newline >= 0 else max(0, index - _MAX_NAME)

    def _takes_line(self, hay: Any, match: Any, name: str) -> bool:
        """Env-style ``UPPER_NAME=v a l``, ``export x=...`` and line-leading ``name: v a l`` (YAML,
        headers) own the rest of the line; ``name=value`` elsewhere ends at whitespace."""
        sep = self._context(hay[match.end(1) : match.end(0)])
        if "=" in sep and _UPPER_NAME.fullmatch(name):
            return True
        lead = self._context(hay[self._line_start(hay, match.start(1)) : match.start(1)])
        found = _LINE_LEAD.fullmatch(lead)
        return found is not None and (":" in sep or "export" in lead)

    def _prose_colon(self, hay: Any, match: Any, name: str, value: Any) -> bool:
        """"refresh token: connection reset" is prose, not an assignment: keep all-letter values."""
        sep = self._context(hay[match.end(1) : match.end(0)])
        if sep.strip() != ":" or sep.endswith(":") or self._takes_line(hay, match, name):
            return False
        return self.name_kind(name) != "password" and self._str(value).isalpha()

    # -- argv and structures -----------------------------------------------------------------
    def argv(self, args: Sequence[str]) -> list[str]:
        """Scrub an argument vector: ``--password x``, ``--token=x``, ``-pX`` (mysql), ``-u u:p`` (curl)."""
        out: list[str] = []
        program = str(args[0]).replace("\\", "/").rsplit("/", 1)[-1].lower() if args else ""
        pending: str | None = None  # the kind of the value the previous option announced
        user_next = False
        for raw in args:
            arg = str(raw)
            is_option = arg.startswith("-") and len(arg) > 1
            if pending is not None:
                kind, pending = pending, None
                if not is_option:
                    out.append(f"[redacted:{kind}]")
                    continue
            if user_next:
                user_next = False
                if not is_option and ":" in arg:
                    out.append(arg.split(":", 1)[0] + ":[redacted:password]")
                    continue
            if is_option:
                name, sep, value = arg.partition("=")
                # "-p[redacted:password]" (a scrubbed mysql -pX) names no secret option: scrubbing
                # scrubbed data again must change nothing (the intake journal's records are).
                if self.is_secret_name(name) and _REDACTED not in name:
                    kind = self.name_kind(name)
                    if not sep:
                        out.append(arg)
                        pending = kind
                    else:
                        out.append(arg if not value or self.is_allowed(value) else f"{name}=[redacted:{kind}]")
                    continue
                if program in _ATTACHED_PASSWORD_FLAG and arg.startswith("-p") and not arg.startswith("--") and len(arg) > 2:
                    out.append("-p[redacted:password]")
                    continue
                if arg == _SEPARATE_PASSWORD_FLAG.get(program):
                    out.append(arg)
                    pending = "password"
                    continue
                if program == "curl" and name in _CURL_USER_FLAGS:
                    if sep and ":" in value:
                        out.append(f"{name}={value.split(':', 1)[0]}:[redacted:password]")
                    else:
                        out.append(arg)
                        user_next = True
                    continue
                if program == "curl" and arg.startswith("-u") and ":" in arg:
                    out.append(arg.split(":", 1)[0] + ":[redacted:password]")
                    continue
            out.append(self.text(arg))
        return out

    def is_allowed(self, value: str) -> bool:
        """Whether ``value`` is on the allow-list."""
        return value in self._allow

    def value(self, value: Any, key: str = "", depth: int = 0) -> Any:
        """Scrub a JSON-like value: values under secret names are replaced whole, strings scrubbed."""
        if depth > 32:
            return "[truncated]"
        if key and self.is_secret_name(key) and value not in (None, "", True, False):
            if isinstance(value, (dict, list, tuple)) and not value:
                return value
            if isinstance(value, str) and (value in self._allow or value.startswith(_REDACTED)):
                return value
            return f"[redacted:{self.name_kind(key)}]"
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.value(v, str(k), depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            if value and all(isinstance(v, str) for v in value):
                return self.argv([str(v) for v in value])
            return [self.value(v, "", depth + 1) for v in value]
        return value


#: The value regex that continues a value of each keyed form past its repeat bound.
_CONTINUE = {"query": "query", "flag": "token", "xml": "xml"}
#: Programs whose ``-p`` takes the password attached (``mysql -pS3cret``; ``-p S3cret`` would be a
#: database name).
_ATTACHED_PASSWORD_FLAG = frozenset({"mysql", "mysqldump", "mysqladmin", "mariadb", "mariadb-dump", "mysqlimport"})
#: Programs with a password option that is not named like one.
_SEPARATE_PASSWORD_FLAG = {"sshpass": "-p", "redis-cli": "-a"}
#: ``curl -u user:password``.
_CURL_USER_FLAGS = frozenset({"-u", "--user", "--proxy-user", "-U"})
