"""Unit tests for the argv/text/value scrubber."""

from __future__ import annotations

import pytest

from autoheal_instrumentation import scrub_argv, scrub_text, scrub_value


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--password=hunter2"], ["--password=[redacted:password]"]),
        (["--token", "abc", "next"], ["--token", "[redacted:token]", "next"]),
        (["--api-key", "k1"], ["--api-key", "[redacted:api_key]"]),
        (["--client_secret=x"], ["--client_secret=[redacted:secret]"]),
        (["--auth", "u:p"], ["--auth", "[redacted:auth]"]),
        (["--token", "--verbose"], ["--token", "--verbose"]),
        (["--author", "bob", "--session-timeout", "5"], ["--author", "bob", "--session-timeout", "5"]),
        (
            ["--session-id", "s1", "--basic-auth=u:p"],
            ["--session-id", "[redacted:session]", "--basic-auth=[redacted:auth]"],
        ),
        (["DB_PASSWORD=pw", "NAME=x"], ["DB_PASSWORD=[redacted:password]", "NAME=x"]),
        (["https://user:pw@host/path"], ["https://user:[redacted:url_password]@host/path"]),
        (["http://h/x?access_token=abc&page=2"], ["http://h/x?access_token=[redacted:token]&page=2"]),
        (["ghp_" + "a" * 36], ["[redacted:github_token]"]),
        (["AKIAABCDEFGHIJKLMNOP"], ["[redacted:aws_access_key]"]),
        (["sync", "--fail", "-v"], ["sync", "--fail", "-v"]),
    ],
)
def test_scrub_argv(argv: list[str], expected: list[str]) -> None:
    """Secret options, assignments, URL credentials and token formats are redacted; the rest is kept."""
    assert scrub_argv(argv) == expected


def test_scrub_text_known_formats() -> None:
    """Free text loses bearer tokens, JWTs, private keys and secret assignments."""
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----"
    text = f"Authorization: Bearer abcdefgh12345 jwt={jwt} password: s3cret\n{key}"
    out = scrub_text(text)
    for secret in ("abcdefgh12345", jwt, "s3cret", "MIIE"):
        assert secret not in out
    assert "[redacted:private_key]" in out


def test_scrub_text_keeps_ordinary_text() -> None:
    """Ordinary messages, paths and times pass through unchanged."""
    text = "synced 3 entries from /srv/data at 12:30:01 (author=bob)"
    assert scrub_text(text) == text


def test_scrub_value_nested() -> None:
    """Secret-named keys are redacted at any depth; strings inside are scrubbed."""
    value = {"path": "/tmp", "apiKey": "x", "items": [{"secret": "y"}, "postgres://me:pw@db/x"], "n": 3}
    assert scrub_value(value) == {
        "path": "/tmp",
        "apiKey": "[redacted:api_key]",
        "items": [{"secret": "[redacted:secret]"}, "postgres://me:[redacted:url_password]@db/x"],
        "n": 3,
    }


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["mysql", "-uroot", "-pS3cr3t!", "app"], ["mysql", "-uroot", "-p[redacted:password]", "app"]),
        (["curl", "-u", "deploy:S3cr3t!", "https://x"], ["curl", "-u", "deploy:[redacted:password]", "https://x"]),
        (["sshpass", "-p", "S3cr3t!", "ssh", "h"], ["sshpass", "-p", "[redacted:password]", "ssh", "h"]),
        (["psql", "-p", "5432"], ["psql", "-p", "5432"]),
        (["env", "DB_PASSWORD=a&b;c d"], ["env", "DB_PASSWORD=[redacted:password]"]),
    ],
)
def test_scrub_argv_program_specific_password_options(argv: list[str], expected: list[str]) -> None:
    """mysql -pX, curl -u user:X and sshpass -p X are redacted; -p of other programs (a port) is kept."""
    assert scrub_argv(argv) == expected


def test_scrub_text_formats_that_used_to_get_through() -> None:
    """Bot tokens, DSN passwords with / and +, env values with & ; and spaces, SQL IDENTIFIED BY are redacted."""
    bot = "MTk4NjIyNDgzNDcxOTI1MjQ4" + ".Cl2FMQ." + "ZnCjm1XVW7vRze4b7Cq4se7kKWsZnCjm1XV"
    cases = {
        f"Authorization: Bot {bot}": bot,
        "postgresql://app:ab/cd+ef12@db/x": "ab/cd+ef12",
        "DB_PASSWORD=first&second;third fourth": "second",
        "CREATE USER r IDENTIFIED BY 'Pw-0f-R3p0rts'": "Pw-0f-R3p0rts",
        "login failed for bob with password Tr0ub4dor": "Tr0ub4dor",
        "GET /x?X-Amz-Signature=" + "ab" * 32 + "&X-Amz-Date=1": "ab" * 32,
    }
    for text, secret in cases.items():
        out = scrub_text(text)
        assert secret not in out and "[redacted:" in out, out


def test_instrumentation_runs_the_python_re_engine() -> None:
    """The instrumentation does not need google-re2: it compiles the shared rules with Python's re."""
    from autoheal_instrumentation import _scrub

    assert _scrub._engine().engine == "re"
