"""Stack trace text → parsed exceptions and frames.

Formats: Python (with chained causes and exception groups), JavaScript (V8, Firefox/Safari),
Java/Kotlin/Scala (with Caused by, Suppressed), Go panics, .NET (with inner exceptions), Ruby and PHP.

Conventions of the result: ``parse_stacktrace`` returns the exception chain with the reported
(outermost) exception first and the root cause last; each exception's frames are ordered
outermost call first, innermost (where it was raised) last, whatever order the language prints.
"""

from __future__ import annotations

import re

from otel_autoheal.group.inapp import InAppRules, go_package
from otel_autoheal.model import Frame, ParsedException

__all__ = ["InAppRules", "parse_stacktrace"]

#: Frames kept per exception; deeper traces keep the outermost and innermost halves.
MAX_FRAMES = 200

_PY_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<func>.+))?\s*$')
_PY_CHAIN = re.compile(
    r"^\s*(?:\|\s*)?(The above exception was the direct cause of the following exception:"
    r"|During handling of the above exception, another exception occurred:)\s*$"
)
_V8_FRAME = re.compile(r"^\s*at (?:(?P<func>.+?) \((?P<loc>.+)\)|(?P<bare>.+))\s*$")
_GECKO_FRAME = re.compile(r"^\s*(?P<func>[^@]*)@(?P<loc>\S+:\d+(?::\d+)?)\s*$")
_LOCATION = re.compile(r"^(?P<file>.+?)(?::(?P<line>\d+))?(?::(?P<col>\d+))?$")
# "at app//com.acme.Main.main(Main.java:5)", "at java.base@17.0.2/java.lang.Thread.run(…)"; PHP's
# OpenTelemetry SDK writes the same shape ("at App.Orders.load(Orders.php:12)", "at {main}(…)").
_JAVA_FRAME = re.compile(
    r"^\s*at (?:[\w.\-@]*/)*(?:(?P<cls>[\w$.\\]+)\.)?(?P<method>[\w$<>{}\-]+)\((?P<loc>[^)]*)\)\s*(?:~?\[[^\]]*\])?$"
)
_JAVA_HEADER = re.compile(r"^(?:Caused by: |Suppressed: |\s*Caused by: )?(?P<type>[\w$.]+(?:Exception|Error|Throwable|[A-Z]\w*))(?:: (?P<msg>.*))?$")
_GO_FUNC = re.compile(r"^(?:created by )?(?P<func>[\w./*()\-\[\]{},~]+?)(?:\((?P<args>[^)]*)\))?(?: in goroutine \d+)?$")
_GO_FILE = re.compile(r"^\t(?P<file>.+?):(?P<line>\d+)(?: \+0x[0-9a-f]+)?$")
_TYPE_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:\[[^\]]*\])?)(?::\s?(?P<msg>.*))?$")


_DEFAULT_RULES = InAppRules()


def _frame(
    rules: InAppRules,
    language: str,
    filename: str,
    function: str,
    lineno: int | None = None,
    colno: int | None = None,
    module: str | None = None,
    source_line: str | None = None,
) -> Frame:
    in_app, instrumentation = rules.classify(filename, module, function, language)
    return Frame(filename, function, lineno, colno, module=module, in_app=in_app, source_line=source_line,
                 instrumentation=instrumentation)


def _cap_frames(frames: list[Frame]) -> tuple[Frame, ...]:
    if len(frames) <= MAX_FRAMES:
        return tuple(frames)
    half = MAX_FRAMES // 2
    return tuple(frames[:half] + frames[-half:])


def _split_type_message(line: str, fallback_type: str) -> tuple[str, str]:
    match = _TYPE_LINE.match(line.strip())
    if match and ("." in match.group("type") or match.group("type")[:1].isupper()):
        return match.group("type"), (match.group("msg") or "").strip()
    return fallback_type, line.strip()


def _parse_python(text: str, rules: InAppRules) -> list[ParsedException]:
    lines = [re.sub(r"^\s*\|\s?", "", ln) if ln.lstrip().startswith("|") else ln for ln in text.splitlines()]
    blocks: list[list[str]] = [[]]
    for line in lines:
        if _PY_CHAIN.match(line):
            blocks.append([])
        else:
            blocks[-1].append(line)
    chain: list[ParsedException] = []
    for block in blocks:
        frames: list[Frame] = []
        exc_line = ""
        message_tail: list[str] = []
        seen_frame = False
        i = 0
        while i < len(block):
            line = block[i]
            match = _PY_FRAME.match(line)
            if match:
                seen_frame = True
                filename = match.group("file")
                source = None
                if i + 1 < len(block) and block[i + 1].startswith("    ") and not _PY_FRAME.match(block[i + 1]):
                    source = block[i + 1].strip()
                    i += 1
                frames.append(_frame(rules, "python", filename, (match.group("func") or "<module>").strip(),
                                     int(match.group("line")), None, _python_module(filename), source))
            elif seen_frame and line and not line[0].isspace() and not exc_line:
                exc_line = line
            elif exc_line and line.strip():
                if re.match(r"^\s*\+[-+]", line):
                    break  # the sub-exceptions of an ExceptionGroup follow
                message_tail.append(line.strip())
            i += 1
        if not exc_line and not frames:
            continue
        exc_type, message = _split_type_message(exc_line, "Exception") if exc_line else ("Exception", "")
        if message_tail and not message_tail[0].startswith("[Previous line repeated"):
            message = "\n".join([message, *message_tail]).strip()
        chain.append(ParsedException(exc_type, message, _cap_frames(frames), "python"))
    chain.reverse()  # Python prints the cause first; we want the reported exception first.
    return chain


def _python_module(filename: str) -> str | None:
    for marker in ("site-packages/", "dist-packages/"):
        if marker in filename:
            rel = filename.rsplit(marker, 1)[1]
            return rel.removesuffix(".py").replace("/__init__", "").replace("/", ".")
    return None


def _split_location(loc: str) -> tuple[str, int | None, int | None]:
    loc = loc.strip()
    if loc.startswith("eval at "):
        inner = re.search(r"\(([^()]+)\)", loc)
        loc = inner.group(1) if inner else loc
    match = _LOCATION.match(loc)
    if not match:
        return loc, None, None
    line, col = match.group("line"), match.group("col")
    return match.group("file"), int(line) if line else None, int(col) if col else None


def _parse_js(text: str, rules: InAppRules, fallback_type: str) -> list[ParsedException]:
    frames: list[Frame] = []
    header: list[str] = []
    for line in text.splitlines():
        v8 = _V8_FRAME.match(line)
        if v8 and line.lstrip().startswith("at "):
            func = (v8.group("func") or "<anonymous>").strip()
            loc = v8.group("loc") or v8.group("bare") or ""
            for prefix in ("async ", "new "):
                func = func.removeprefix(prefix)
            filename, lineno, colno = _split_location(loc)
            frames.append(_frame(rules, "javascript", filename, func, lineno, colno))
            continue
        gecko = _GECKO_FRAME.match(line)
        if gecko and ("/" in gecko.group("loc") or ":" in gecko.group("loc")):
            filename, lineno, colno = _split_location(gecko.group("loc"))
            # Firefox marks async boundaries as "cause*name" ("async*load", "setTimeout handler*").
            func = gecko.group("func").rsplit("*", 1)[-1].strip() or "<anonymous>"
            frames.append(_frame(rules, "javascript", filename, func, lineno, colno))
            continue
        if not frames and line.strip():
            header.append(line.strip())
    exc_type, message = _split_type_message(header[0], fallback_type) if header else (fallback_type, "")
    if len(header) > 1:
        message = "\n".join([message, *header[1:]])
    frames.reverse()  # JS prints the innermost frame first.
    return [ParsedException(exc_type, message, _cap_frames(frames), "javascript")]


def _parse_java(text: str, rules: InAppRules, language: str = "java") -> list[ParsedException]:
    chain: list[ParsedException] = []
    current: tuple[str, str] | None = None
    frames: list[Frame] = []

    def flush() -> None:
        if current is not None:
            frames.reverse()  # Java prints the innermost frame first.
            chain.append(ParsedException(current[0], current[1], _cap_frames(frames), language))

    suppressed_indent: int | None = None
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if suppressed_indent is not None:
            nested_cause = indent == suppressed_indent and line.strip().startswith("Caused by:")
            if line.strip() and (indent > suppressed_indent or nested_cause):
                continue  # a suppressed exception's frames and causes don't belong to the chain
            suppressed_indent = None
        if line.strip().startswith("Suppressed:"):
            suppressed_indent = indent
            continue
        frame = _JAVA_FRAME.match(line)
        if frame:
            cls, method = frame.group("cls"), frame.group("method")
            filename, lineno, _ = _split_location(frame.group("loc"))
            frames.append(_frame(rules, language, filename, method, lineno, None, cls or None))
            continue
        stripped = line.strip()
        if not stripped or re.match(r"^\.\.\. \d+ (more|common frames omitted)", stripped):
            continue
        if current is None or stripped.startswith("Caused by:"):
            header = _JAVA_HEADER.match(stripped)
            if header:
                flush()
                current, frames = (header.group("type"), (header.group("msg") or "").strip()), []
    flush()
    return chain


def _parse_go(text: str, rules: InAppRules) -> list[ParsedException]:
    lines = text.splitlines()
    message = ""
    exc_type = "panic"
    for line in lines:
        if line.startswith("panic: "):
            message = line[len("panic: "):].strip()
            if message.startswith("runtime error: "):
                exc_type = "runtime.Error"
            break
        if line.startswith("fatal error: "):
            exc_type, message = "fatal error", line[len("fatal error: "):].strip()
            break
    frames: list[Frame] = []
    # runtime.Stack/debug.Stack and panics start with a goroutine header; "%+v" stacks of
    # error-wrapping libraries have none, so then every func/file pair counts.
    in_first_goroutine = not any(line.startswith("goroutine ") for line in lines)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("goroutine "):
            if in_first_goroutine:
                break  # Only the panicking goroutine matters.
            in_first_goroutine = True
        elif in_first_goroutine and i + 1 < len(lines):
            func_match = _GO_FUNC.match(line.strip())
            file_match = _GO_FILE.match(lines[i + 1])
            if func_match and file_match:
                func = func_match.group("func")
                frames.append(_frame(rules, "go", file_match.group("file"), func, int(file_match.group("line")),
                                     None, go_package(func)))
                i += 2
                continue
        i += 1
    frames.reverse()  # Go prints the innermost frame first.
    return [ParsedException(exc_type, message, _cap_frames(frames), "go")]


_DOTNET_FRAME = re.compile(r"^\s*at (?P<func>[^(]+?)\((?P<args>[^)]*)\)(?: in (?P<file>.+?):line (?P<line>\d+))?\s*$")
_RUBY_FRAME = re.compile(r"^\s*(?:from )?(?P<file>[^\s:][^:]*):(?P<line>\d+):in [`'](?P<func>[^'`]+)'(?P<rest>.*)$")
_PHP_FRAME = re.compile(r"^#\d+ (?P<file>[^(]+)\((?P<line>\d+)\): (?P<func>[^(]+)\(")
_PHP_HEADER = re.compile(r"^(?:PHP )?(?:Fatal error:\s+Uncaught )?(?P<type>[\w\\]+): (?P<msg>.*?)(?: in (?P<file>\S+):(?P<line>\d+))?$")


def _parse_dotnet(text: str, rules: InAppRules) -> list[ParsedException]:
    lines = text.splitlines()
    header = lines[0].strip() if lines else ""
    names = [part.strip() for part in header.split(" ---> ")]
    for line in lines[1:]:
        if line.strip().startswith("---> "):
            names.append(line.strip()[5:])
    chain_heads = [_split_type_message(name, "Exception") for name in names if name]
    blocks: list[list[Frame]] = [[]]
    for line in lines[1:]:
        if "--- End of inner exception stack trace ---" in line:
            blocks.append([])
            continue
        match = _DOTNET_FRAME.match(line)
        if not match:
            continue
        qualified = match.group("func").strip()
        module, _, function = qualified.rpartition(".")
        filename = match.group("file") or module
        frames = blocks[-1]
        in_app, instrumentation = rules.classify(filename, qualified, function, "dotnet")
        frames.append(Frame(filename, function or qualified, int(match.group("line")) if match.group("line") else None,
                            None, module=module or None, in_app=in_app, instrumentation=instrumentation))
    # Frames before an "end of inner exception" marker belong to the innermost exception.
    blocks.reverse()
    chain = []
    for index, (exc_type, message) in enumerate(chain_heads):
        frames = list(reversed(blocks[index])) if index < len(blocks) else []
        chain.append(ParsedException(exc_type, message, _cap_frames(frames), "dotnet"))
    return chain


def _parse_ruby(text: str, rules: InAppRules) -> list[ParsedException]:
    frames: list[Frame] = []
    exc_type, message = "RuntimeError", ""
    for index, line in enumerate(text.splitlines()):
        match = _RUBY_FRAME.match(line)
        if not match:
            continue
        if index == 0 and match.group("rest").startswith(": "):
            rest = match.group("rest")[2:]
            tail = re.search(r"\((?P<type>[A-Z][\w:]*)\)\s*$", rest)
            if tail:
                exc_type, message = tail.group("type"), rest[: tail.start()].strip()
            else:
                message = rest
        filename = match.group("file")
        frames.append(_frame(rules, "ruby", filename, match.group("func"), int(match.group("line"))))
    frames.reverse()  # Ruby prints the innermost frame first.
    return [ParsedException(exc_type, message, _cap_frames(frames), "ruby")]


def _parse_php(text: str, rules: InAppRules) -> list[ParsedException]:
    """``getTraceAsString()``: each ``#n file(line): f()`` is a call *site* and the function it calls.

    The code at ``file(line)`` runs inside the function called by the next line (``{main}`` for
    the last); the header's ``in file:line`` is where it was thrown, inside the function of ``#0``.
    """
    calls: list[tuple[str, int, str]] = []
    exc_type, message = "Exception", ""
    thrown: tuple[str, int] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        match = _PHP_FRAME.match(stripped)
        if match:
            calls.append((match.group("file").strip(), int(match.group("line")), match.group("func").strip()))
            continue
        header = _PHP_HEADER.match(stripped)
        if header and not calls and exc_type == "Exception" and not message:
            exc_type, message = header.group("type"), header.group("msg")
            if header.group("file"):
                thrown = (header.group("file"), int(header.group("line")))
    frames: list[Frame] = []
    if thrown is not None:
        frames.append(_frame(rules, "php", thrown[0], calls[0][2] if calls else "{main}", thrown[1]))
    for index, (filename, lineno, _called) in enumerate(calls):
        running = calls[index + 1][2] if index + 1 < len(calls) else "{main}"
        frames.append(_frame(rules, "php", filename, running, lineno))
    frames.reverse()  # PHP prints the innermost frame first.
    return [ParsedException(exc_type, message, _cap_frames(frames), "php")]


def detect_language(text: str) -> str:
    """Guess which runtime printed ``text``."""
    head = text[:20000]
    if "Traceback (most recent call last)" in head or re.search(r'^\s*File "[^"]*", line \d+', head, re.M):
        return "python"
    if re.search(r"^goroutine \d+ \[", head, re.M) or re.search(r"^\t.+\.go:\d+", head, re.M):
        return "go"
    if re.search(r"^\s*at [\w$.{}]+\([^)]*\.php:\d+\)", head, re.M):
        return "php-otel"  # PHP's OpenTelemetry SDK formats stacks like Java
    if re.search(r"^\s*at (?:[\w.\-@]*/)*[\w$.]+\([\w$.]*\.(?:java|kt|scala|groovy|clj):\d+\)", head, re.M) or re.search(
        r"^\s*at (?:[\w.\-@]*/)*[\w$.]+\((?:Native Method|Unknown Source)\)", head, re.M
    ):
        return "java"
    if re.search(r"^\s*at [^(]+\([^)]*\)(?: in .+:line \d+)?\s*$", head, re.M) and (
        ":line " in head or re.search(r"^\s*at [\w.`<>+]+\((?:[\w.`\[\]<>]+ \w+(?:, )?)*\)\s*$", head, re.M)
    ):
        return "dotnet"
    if re.search(r"^\s*(?:from )?[^\s:][^:]*:\d+:in [`'][^'`]+'", head, re.M):
        return "ruby"
    if re.search(r"^#\d+ [^(]+\(\d+\): ", head, re.M):
        return "php"
    if re.search(r"^\s*at .+:\d+:\d+\)?\s*$", head, re.M) or re.search(r"^\s*at .+ \(.+\)\s*$", head, re.M):
        return "javascript"
    if re.search(r"^[^@\s]*@.+:\d+:\d+\s*$", head, re.M):
        return "javascript"
    return "unknown"


def parse_stacktrace(
    text: str, exc_type: str = "", message: str = "", rules: InAppRules | None = None
) -> list[ParsedException]:
    """Parse ``text`` into an exception chain (reported exception first, root cause last).

    ``exc_type`` and ``message`` (from the telemetry attributes) override what the text says for
    the reported exception. Text in no known format gives one exception without frames.
    """
    rules = rules or _DEFAULT_RULES
    language = detect_language(text) if text else "unknown"
    chain: list[ParsedException] = []
    if language == "python":
        chain = _parse_python(text, rules)
    elif language == "javascript":
        chain = _parse_js(text, rules, exc_type or "Error")
    elif language == "java":
        chain = _parse_java(text, rules)
    elif language == "php-otel":
        chain, language = _parse_java(text, rules, "php"), "php"
    elif language == "go":
        chain = _parse_go(text, rules)
    elif language == "dotnet":
        chain = _parse_dotnet(text, rules)
    elif language == "ruby":
        chain = _parse_ruby(text, rules)
    elif language == "php":
        chain = _parse_php(text, rules)
    if not chain:
        chain = [ParsedException(exc_type, message, (), language)]
    head = chain[0]
    chain[0] = ParsedException(exc_type or head.type, message or head.message, head.frames, head.language)
    return chain
