"""What the sentiment node reads on day D: the news items available by D's decision time, per symbol.

Contract:
- ``decision_time(D)`` is D 23:59:59 UTC: an item is usable on D when its ``available_at`` (the later of its
  published and fetched times) is at or before it, and after ``decision_time(D) - WINDOW_HOURS``.
- ``read_news(news, symbols, D)`` returns ``NewsReadings``: per symbol with items, ``{score, n_items, bullish,
  neutral, bearish, item_ids}`` over its ``MAX_ITEMS`` newest items (score = mean of the items' stored offline
  scores, rounded to 4 places), and the item texts the LLM prompt fences as data (``prompt_items``: at most
  ``PROMPT_ITEMS_PER_SYMBOL`` per symbol, summaries cut to ``PROMPT_SUMMARY_CHARS``).
- ``load_day_news(db_path, D)`` is the daily edge's loader: ``None`` when the file has no ``news`` table yet.
  ``load_window(db_path, start, end)`` is the replay's: every item a window of days may read, loaded once.

Deliberate decisions:
- The decision time is the end of D in UTC for every universe: orders decided on D fill at the next session's
  open, so an item published after D's close but before the run is legitimately known; the same rule in the
  daily run and the replay makes a day reproducible. Undated items are never used (``LoadedNews`` holds none).
- The prompt names an item's source by its feed's host or file name (``source_label``): a local path says nothing
  about the news and would make prompts, and so LLM cache keys, differ from machine to machine.
- A 72-hour window: a Monday reads the weekend's news; older items have been priced in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import urlsplit

from portfolio.storage import reraise_interrupt
from tools.news.models import NewsItem
from tools.news.store import LoadedNews, NewsStore, news_table_exists
from tools.news.text import cap

WINDOW_HOURS = 72.0
MAX_ITEMS = 30  # newest items per symbol that make its score
PROMPT_ITEMS_PER_SYMBOL = 8
PROMPT_SUMMARY_CHARS = 300


def decision_time(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59))


@dataclass(frozen=True)
class NewsReadings:
    symbols: dict[str, dict[str, Any]] = field(default_factory=dict)
    prompt_items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def item_ids(self) -> list[str]:
        return sorted({i for s in self.symbols.values() for i in s["item_ids"]})


def source_label(source: str) -> str:
    """``rss:`` + the feed's host (or its file name), ``reddit:r/name`` as is: the prompt never carries local paths."""
    kind, _, where = source.partition(":")
    if kind not in ("rss", "archive") or not where:
        return source
    parsed = urlsplit(where)
    if parsed.scheme in ("http", "https") and parsed.hostname:
        return f"{kind}:{parsed.hostname}"
    return f"{kind}:{PurePath(where).name}"


def _summary(items: list[NewsItem]) -> dict[str, Any]:
    labels = [i.label for i in items]
    return {
        "score": round(sum(i.score for i in items) / len(items), 4),
        "n_items": len(items),
        "bullish": labels.count("bullish"),
        "neutral": labels.count("neutral"),
        "bearish": labels.count("bearish"),
        "item_ids": [i.id for i in items],
    }


def read_news(news: LoadedNews, symbols: list[str], day: date) -> NewsReadings:
    """Per-symbol readings and prompt items for ``day`` (see the module doc)."""
    end = decision_time(day)
    per_symbol: dict[str, dict[str, Any]] = {}
    prompt: dict[str, dict[str, Any]] = {}
    for symbol in symbols:
        items = news.about([symbol], end, WINDOW_HOURS)[:MAX_ITEMS]
        if not items:
            continue
        per_symbol[symbol] = _summary(items)
        for item in items[:PROMPT_ITEMS_PER_SYMBOL]:
            prompt.setdefault(item.id, {
                "id": item.id, "symbols": [s for s in item.symbols if s in symbols], "source": source_label(item.source),
                "published": item.published_at.isoformat() if item.published_at else None,
                "title": item.title, "summary": cap(item.summary, PROMPT_SUMMARY_CHARS),
            })  # fmt: skip
    return NewsReadings(symbols=per_symbol, prompt_items=sorted(prompt.values(), key=lambda i: i["id"]))


def load_window(db_path: Path, start: date, end: date) -> LoadedNews | None:
    """Every item any day in [start, end] may read; None when the file has no news table."""
    if not news_table_exists(db_path):
        return None
    with NewsStore(db_path) as store:
        return store.load(decision_time(start) - timedelta(hours=WINDOW_HOURS), decision_time(end))


def load_day_news(db_path: Path, day: date) -> LoadedNews | None:
    return load_window(db_path, day, day)


def load_for_run(db_path: Path, day: date) -> tuple[LoadedNews | None, str | None]:
    """The daily run's news and a note when it could not be read: news is optional, a failure never stops a day."""
    try:
        return load_day_news(db_path, day), None
    except Exception as exc:  # a damaged news table or a locked file: the sentiment node abstains, the day goes on
        reraise_interrupt(exc)
        return None, f"news could not be read, sentiment abstains ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
