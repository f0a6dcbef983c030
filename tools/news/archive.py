"""A news archive for backtests: a JSONL file, or a folder of saved RSS/Atom files, into ``NewsItem``s.

Contract:
- ``read_archive(path, universe)`` returns ``(items, outcomes)``: one ``SourceOutcome`` per file (a bad file is
  ``skipped`` with its reason; in a JSONL file, bad lines are counted in the outcome's reason and the rest kept).
- JSONL: one object per line with ``title`` (required), ``published_at`` (ISO 8601; a timezone is converted to
  UTC, none means UTC), optional ``summary``, ``url``, ``source``, ``id`` and ``fetched_at``.
- A folder: every ``*.xml``, ``*.rss``, ``*.atom`` and ``*.json`` (JSONL) file in it, sorted by name.

Deliberate decisions:
- An archive is trusted to say when an item became available: ``fetched_at`` defaults to ``published_at`` (the
  import's own clock would make every item "available" today, after any day a backtest replays). An undated
  item stays undated, so no replay uses it.
- Text, ids, matching and scores go through the same code as live ingestion (``tools.news.ingest.to_items``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.errors import DataError
from tools.models import Universe
from tools.news.feeds import FeedError, RawEntry, parse_feed
from tools.news.fetch import FetchError, FetchLimits, fetch_bytes
from tools.news.ingest import to_items
from tools.news.matching import SymbolMatcher
from tools.news.models import NewsItem, SourceOutcome

FEED_SUFFIXES = (".xml", ".rss", ".atom")
ARCHIVE_LIMITS = FetchLimits(max_bytes=200_000_000)  # a local archive may be large; it is still bounded


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"bad date {value[:40]!r}") from None
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def _jsonl(path: Path, matcher: SymbolMatcher) -> tuple[list[NewsItem], SourceOutcome]:
    source = f"archive:{path.name}"
    data = fetch_bytes(str(path), ARCHIVE_LIMITS).data
    items: list[NewsItem] = []
    bad: list[int] = []
    for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or not isinstance(rec.get("title"), str):
                raise ValueError("no title")
            published = _utc(rec.get("published_at"))
            fetched = _utc(rec.get("fetched_at")) or published
            entry = RawEntry(title=rec["title"], summary=str(rec.get("summary") or ""), link=str(rec.get("url") or ""),
                             guid=str(rec.get("id") or ""), published=published)
            # an undated line has no time it became available: it is kept (fetched "at" the epoch) but never used
            items.extend(to_items([entry], str(rec.get("source") or source)[:300], matcher, fetched or datetime(1970, 1, 1)))
        except (ValueError, TypeError):
            bad.append(n)
    reason = f"{len(bad)} bad line(s) skipped (first: line {bad[0]})" if bad else None
    return items, SourceOutcome(source=source, status="ok", items=len(items), matched=sum(1 for i in items if i.symbols),
                                reason=reason)


def _feed_file(path: Path, matcher: SymbolMatcher) -> tuple[list[NewsItem], SourceOutcome]:
    source = f"archive:{path.name}"
    fetched = fetch_bytes(str(path), ARCHIVE_LIMITS)
    items = to_items(parse_feed(fetched.data), source, matcher, datetime(1970, 1, 1), archive=True)
    return items, SourceOutcome(source=source, status="ok", items=len(items), matched=sum(1 for i in items if i.symbols))


def read_archive(path: Path, universe: Universe) -> tuple[list[NewsItem], list[SourceOutcome]]:
    """Items and per-file outcomes of the archive at ``path`` (see the module doc)."""
    matcher = SymbolMatcher.for_universe(universe)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in (*FEED_SUFFIXES, ".json", ".jsonl"))
        if not files:
            raise DataError(f"news archive folder {path} has no .xml, .rss, .atom, .json or .jsonl file")
    elif path.is_file():
        files = [path]
    else:
        raise DataError(f"news archive {path} not found")
    items: list[NewsItem] = []
    outcomes: list[SourceOutcome] = []
    for file in files:
        try:
            reader = _feed_file if file.suffix.lower() in FEED_SUFFIXES else _jsonl
            got, outcome = reader(file, matcher)
        except (FetchError, FeedError) as exc:
            outcomes.append(SourceOutcome(source=f"archive:{file.name}", status="skipped", reason=str(exc)))
            continue
        items.extend(got)
        outcomes.append(outcome)
    return items, outcomes
