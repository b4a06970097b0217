"""The issue's Markdown as HTML, safe whatever the error text held.

The body is the one filed (``render.py``): sender values are fenced or escaped there already,
but the page does not rely on it. Raw HTML is never passed through, except the service's own
``<details><summary>…</summary>`` and ``</details>`` lines (matched exactly, with a summary of
plain words); HTML comments (the service's markers) are dropped; every other tag is shown as
text. Links must be http(s) and get ``rel="nofollow noopener noreferrer"``; images are shown as
their text, never loaded. No autolinking (linkify) either.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup, escape

__all__ = ["render_markdown"]

_DETAILS = re.compile(r"<details><summary>[\w ()=▶.,-]{1,80}</summary>|</details>")


def _html_block(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    text = tokens[idx].content.strip()
    if _DETAILS.fullmatch(text):
        return text + "\n"
    if text.startswith("<!--") and text.endswith("-->"):
        return ""
    return f"<p>{escape(tokens[idx].content)}</p>\n"


def _html_inline(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return str(escape(tokens[idx].content))


def _image(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    return str(escape(f"[image: {token.content} {token.attrGet('src') or ''}]"))


def _link_open(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
    return str(renderer.renderToken(tokens, idx, options, env))


def _safe_link(url: str) -> bool:
    return url.strip().lower().startswith(("http://", "https://"))


def _build() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "linkify": False}).enable("table").enable("strikethrough")
    md.validateLink = _safe_link  # type: ignore[method-assign]
    md.add_render_rule("html_block", _html_block)
    md.add_render_rule("html_inline", _html_inline)
    md.add_render_rule("image", _image)
    md.add_render_rule("link_open", _link_open)
    return md


_MD = _build()


def render_markdown(text: str) -> Markup:
    """HTML for the issue body; see the module docstring for what is let through."""
    return Markup(_MD.render(text))
