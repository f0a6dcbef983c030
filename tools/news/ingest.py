"""A universe's news sources into the store: ``fetch_news`` (RSS/Atom feeds, then subreddits), one outcome each.

Contract:
- ``to_items(entries, source, matcher, fetched_at)`` cleans each entry (``tools.news.text``), gives it a stable
  id, matches symbols and scores it; entries with neither title nor summary are dropped.
- ``fetch_news(universe, store, reddit=..., now=...)`` reads every feed of ``universe.news`` and, when a
  ``praw.Reddit`` is given, every subreddit; a source that fails (timeout, size cap, bad XML, HTTP error) is
  a ``skipped`` outcome with its reason and the others go on. Items are stored as they come (one transaction
  per source). ``on_source`` is called after each source (the CLI's progress).

Deliberate decisions:
- The id is the first 32 hex digits of sha256 over the item's link (query and fragment kept, scheme and host
  lower-cased), else its guid, else its source, title and date: the same article seen in two feeds, or
  fetched twice, is one row. Reddit posts use ``reddit:<post id>``.
- A local feed file is an archive someone saved: its dated items count as fetched when published (the file
  cannot say when they were first seen; today's clock would hide them from every past day). A URL's items
  are available from the later of their published time and the time we fetched them.
- Every item is kept, matched or not (``symbols`` may be empty): another universe may match it later, and
  ``news show`` can say how much was read. Decisions only read items about their own symbols.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tools.models import Universe
from tools.news.feeds import FeedError, RawEntry, parse_feed
from tools.news.fetch import FetchError, FetchLimits, display_location, fetch_bytes, is_local
from tools.news.matching import SymbolMatcher
from tools.news.models import NewsItem, SourceOutcome
from tools.news.reddit import RedditError, subreddit_posts
from tools.news.scoring import SCORER, score_text
from tools.news.store import NewsStore
from tools.news.text import SUMMARY_MAX, TITLE_MAX, cap, clean

REDDIT_LIMIT = 50  # newest posts per subreddit and fetch
DEFAULT_LIMITS = FetchLimits()


def _canonical_link(link: str) -> str:
    try:
        parts = urlsplit(link.strip())
    except ValueError:
        return link.strip()
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, ""))


def item_id(entry: RawEntry, source: str) -> str:
    if entry.guid.startswith("reddit:"):
        key = entry.guid
    elif entry.link.strip():
        key = "link:" + _canonical_link(entry.link)
    elif entry.guid.strip():
        key = "guid:" + entry.guid.strip()
    else:
        key = f"text:{source}|{entry.title}|{entry.published.isoformat() if entry.published else ''}"
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def to_items(
    entries: Iterable[RawEntry], source: str, matcher: SymbolMatcher, fetched_at: datetime, *, archive: bool = False
) -> list[NewsItem]:
    """Clean, identify, match and score ``entries``. ``archive``: each dated entry counts as fetched when published."""
    items = []
    for entry in entries:
        title, summary = clean(entry.title, TITLE_MAX), clean(entry.summary, SUMMARY_MAX)
        if not title and not summary:
            continue
        link = entry.link.strip()
        fetched = entry.published if archive and entry.published is not None else fetched_at
        items.append(NewsItem(
            id=item_id(entry, source), source=cap(source, 300), url=link if len(link) <= 2000 else "",
            title=cap(title, TITLE_MAX), summary=summary, published_at=entry.published, fetched_at=fetched,
            symbols=matcher.match(title, summary), score=score_text(title, summary), scorer=SCORER,
            scored_at=fetched_at,
        ))  # fmt: skip
    return items


def _store(store: NewsStore, source: str, items: list[NewsItem], started: float) -> SourceOutcome:
    new = store.upsert(items)
    return SourceOutcome(source=source, status="ok", items=len(items), new=new,
                         matched=sum(1 for i in items if i.symbols), seconds=round(time.perf_counter() - started, 3))


def fetch_news(
    universe: Universe,
    store: NewsStore,
    *,
    now: Callable[[], datetime],
    reddit: Any = None,
    limits: FetchLimits = DEFAULT_LIMITS,
    on_source: Callable[[SourceOutcome], None] | None = None,
) -> list[SourceOutcome]:
    """Fetch every feed (and subreddit, when ``reddit`` is a ``praw.Reddit``) of ``universe`` into ``store``."""
    matcher = SymbolMatcher.for_universe(universe)
    outcomes: list[SourceOutcome] = []
    jobs: list[tuple[str, Callable[[], list[RawEntry]], bool]] = []
    for feed in universe.news.feeds:
        def read_feed(feed: str = feed) -> list[RawEntry]:
            fetched = fetch_bytes(feed, limits)
            return parse_feed(fetched.data, fetched.content_type)
        jobs.append((f"rss:{display_location(feed)}", read_feed, is_local(feed)))
    if reddit is not None:
        for name in universe.news.subreddits:
            def read_sub(name: str = name) -> list[RawEntry]:
                return subreddit_posts(reddit, name, REDDIT_LIMIT)
            jobs.append((f"reddit:r/{name}", read_sub, False))
    for source, read, archive in jobs:
        started = time.perf_counter()
        try:
            entries = read()
            items = to_items(entries, source, matcher, now(), archive=archive)
            outcome = _store(store, source, items, started)
        except (FetchError, FeedError, RedditError) as exc:
            outcome = SourceOutcome(source=source, status="skipped", reason=str(exc),
                                    seconds=round(time.perf_counter() - started, 3))
        outcomes.append(outcome)
        if on_source is not None:
            on_source(outcome)
    return outcomes
