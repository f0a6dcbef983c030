"""Untrusted text made plain: HTML stripped, Unicode normalised, invisible characters removed, length capped.

Deliberate decisions:
- Tags are removed, never interpreted: the text of "hidden" HTML (``display:none`` spans, comments excepted) is
  kept as text, so whatever it says is scored like any other words and cannot hide from a reader of the item.
  ``<script>`` and ``<style>`` bodies are dropped: they are code, not prose.
- NFKC folds full-width and other compatibility forms ("ＢＵＹ" becomes "BUY"); zero-width, bidirectional and
  other format/control characters are removed (they can hide or reorder words). Look-alike letters from other
  scripts stay as they are: they are only text to the scorer and the matcher.
- Caps: titles ``TITLE_MAX`` characters, summaries ``SUMMARY_MAX``; longer text is cut on a word with "…".
"""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

TITLE_MAX = 300
SUMMARY_MAX = 1000
_SPACE = re.compile(r"\s+")
_BLOCKS = frozenset({"br", "p", "div", "li", "ul", "ol", "tr", "td", "th", "h1", "h2", "h3", "h4", "blockquote", "span"})


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        elif tag in _BLOCKS:  # "<div>a</div>b" reads as two words, not "ab"
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def strip_html(raw: str) -> str:
    """The text of an HTML fragment (entities decoded, tags gone)."""
    if "<" not in raw and "&" not in raw:
        return raw
    parser = _TextOnly()
    try:
        parser.feed(raw)
        parser.close()
    except Exception:  # html.parser is lenient, but a pathological input must not stop ingestion
        return html.unescape(re.sub(r"<[^>]*>", " ", raw))
    return "".join(parser.parts)


def _visible(ch: str) -> bool:
    if ch in "\t\n\r ":
        return True
    return unicodedata.category(ch) not in ("Cc", "Cf", "Co", "Cs", "Cn")


def normalise(raw: str) -> str:
    """NFKC, invisible characters removed, whitespace collapsed to single spaces."""
    text = unicodedata.normalize("NFKC", raw)
    text = "".join(ch for ch in text if _visible(ch))
    return _SPACE.sub(" ", text).strip()


def cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def clean(raw: str | None, limit: int) -> str:
    """``raw`` (HTML or plain) as capped plain text; None or empty gives ""."""
    if not raw:
        return ""
    # A pathological input (megabytes of one entry) is cut before parsing, so cleaning stays linear and small.
    return cap(normalise(strip_html(raw[: limit * 20])), limit)
