"""Who may see the page, and the headers every page response carries.

The page shows stack traces and logs. On a loopback address it is open to the local user, but
only under a loopback ``Host`` name: a web site whose name an attacker points at 127.0.0.1 (DNS
rebinding) would otherwise read it from the user's own browser. On any other address it needs
``ui_token``, and without one it answers 403 saying so. With a token, a request carries it as
``Authorization: Bearer`` (scripts) or as the session cookie the login form sets; the cookie
holds an HMAC of the token, not the token, and is ``HttpOnly`` and ``SameSite=Strict``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

__all__ = ["COOKIE", "SECURITY_HEADERS", "Access", "is_loopback"]

#: Name of the session cookie set by the login form.
COOKIE = "autoheal_ui"

#: On every page, API and static response: no inline script or style, nothing from elsewhere,
#: never framed, no MIME sniffing, no referrer leaking a group's URL to a linked site.
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` names and loopback IP addresses (an empty host means every address)."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The name part of a ``Host`` header (``[::1]:4318`` → ``::1``)."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Access:
    """The decision for one request: ``ok``, ``login`` (token needed), ``off`` or ``bad_host``."""

    def __init__(self, bind_host: str, token: str) -> None:
        self.loopback = is_loopback(bind_host)
        self.token = token
        self.session = hmac.new(token.encode(), b"otel-autoheal ui session v1", hashlib.sha256).hexdigest() \
            if token else ""

    @property
    def open(self) -> bool:
        """The page is served at all: a token is set, or the address is loopback."""
        return bool(self.token) or self.loopback

    def token_matches(self, candidate: str) -> bool:
        return bool(self.token) and hmac.compare_digest(candidate.encode(), self.token.encode())

    def verdict(self, host_header: str, authorization: str, cookie: str) -> str:
        if self.token:
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() == "bearer" and self.token_matches(credentials.strip()):
                return "ok"
            if cookie and hmac.compare_digest(cookie.encode(), self.session.encode()):
                return "ok"
            return "login"
        if not self.loopback:
            return "off"
        return "ok" if is_loopback(_host_name(host_header)) else "bad_host"
