"""RSS and Atom documents (bytes) into plain entries, with feedparser; hostile documents refused with a reason.

Contract:
- ``parse_feed(data, content_type=None)`` returns up to ``MAX_ENTRIES`` ``RawEntry`` (title, summary, link,
  guid, published as naive UTC or None) or raises ``FeedError`` with a one-line reason.

Deliberate decisions:
- A document that declares DTD entities (``<!ENTITY``, looked for in UTF-16/32 text too) is refused before
  parsing: no feed needs them, and they are how billion-laughs expansion and external-entity reads are built.
  (Python's expat 2.5 also stops amplification, after seconds of work; this refusal costs nothing.)
- A document that is not well-formed XML is refused (feedparser's lenient fallback can turn half a file into
  plausible entries). Encoding slips are accepted: feedparser detects the real encoding when the declared one
  is wrong (``CharacterEncodingOverride``) or when the server's content type is not an XML one.
- A document with no entries and no recognised feed format is refused as "not an RSS or Atom feed"; a valid
  feed with no entries is fine (zero items).
- The entry's published date, else its updated date; a date feedparser cannot read leaves it undated.
"""

from __future__ import annotations

import calendar
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser

MAX_ENTRIES = 200  # feeds list their newest first; a daily run needs a few dozen
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_BENIGN = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


class FeedError(Exception):
    """A document that is not a usable feed; the message is one line."""


@dataclass(frozen=True)
class RawEntry:
    title: str
    summary: str
    link: str
    guid: str
    published: datetime | None


def _when(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC).replace(tzinfo=None)
            except (OverflowError, ValueError, OSError):
                return None
    return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _declares_entities(data: bytes) -> bool:
    if _ENTITY_DECL.search(data):
        return True
    if b"\x00" not in data[:4096]:
        return False
    # UTF-16/32 interleave NUL bytes: "<!ENTITY" would not appear in the raw bytes, so look in the decoded text
    for codec in ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"):
        if "<!entity" in data.decode(codec, errors="ignore").lower():
            return True
    return False


def parse_feed(data: bytes, content_type: str | None = None) -> list[RawEntry]:
    """The entries of an RSS/Atom document (see the module doc)."""
    if not data.strip():
        raise FeedError("empty document")
    if _declares_entities(data):
        raise FeedError("declares XML entities (<!ENTITY): refused (entity expansion / external entity attack)")
    headers = {"content-type": content_type} if content_type else {}
    try:
        parsed = feedparser.parse(io.BytesIO(data), response_headers=headers, sanitize_html=True,
                                  resolve_relative_uris=False)
    except Exception as exc:  # feedparser is meant not to raise; a crash on one feed must not stop the others
        raise FeedError(f"parser failed ({type(exc).__name__})") from None
    if parsed.get("bozo") and not isinstance(parsed.get("bozo_exception"), _BENIGN):
        why = " ".join(str(parsed.get("bozo_exception") or "unknown error").split())[:200]
        raise FeedError(f"not well-formed XML ({why})")
    entries = parsed.get("entries") or []
    if not entries and not parsed.get("version"):
        raise FeedError("not an RSS or Atom feed")
    out = []
    for entry in entries[:MAX_ENTRIES]:
        summary = _text(entry.get("summary"))
        if not summary and entry.get("content"):
            summary = _text(entry["content"][0].get("value"))
        out.append(RawEntry(title=_text(entry.get("title")), summary=summary, link=_text(entry.get("link")),
                            guid=_text(entry.get("id")), published=_when(entry)))
    return out
