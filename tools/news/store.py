"""The DuckDB ``news`` table, and ``LoadedNews``: a window of it in memory, read point-in-time.

Contract:
- Table ``news(id PRIMARY KEY, source, url, title, summary, published_at, fetched_at, available_at, symbols
  VARCHAR[], score, scorer, scored_at)`` in the shared DuckDB file (opened via ``portfolio.storage.connect``).
  ``NewsStore.upsert(items)`` inserts new ids and, for an id already stored, only adds symbols to its list (the
  same article matched for another universe); text, times and score of a stored item never change. It returns
  how many ids were new. One transaction per call.
- ``NewsStore.load(start, end)`` returns the dated items with ``start <= available_at <= end`` as ``LoadedNews``.
- ``LoadedNews.about(symbols, end, hours)``: the items about any of ``symbols`` with
  ``end - hours < available_at <= end``, newest first. Undated items are never in a ``LoadedNews``.
- ``news_table_exists(path)`` says whether a DuckDB file has the table, without creating anything.

Deliberate decisions:
- Decisions read ``LoadedNews`` (plain data): the daily run loads its window before the ledger opens and holds
  no news connection during the graph; a replay loads its whole window once and hands it to worker processes.
- Times are naive UTC throughout (DuckDB TIMESTAMP); ``available_at`` is stored so the window is one indexed
  range scan rather than a computation per row.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType

import pandas as pd

from portfolio.storage import StorageError, connect
from tools.errors import DataError
from tools.news.models import NewsItem

_SCHEMA = """
CREATE TABLE IF NOT EXISTS news (
    id           VARCHAR   PRIMARY KEY,
    source       VARCHAR   NOT NULL,
    url          VARCHAR   NOT NULL,
    title        VARCHAR   NOT NULL,
    summary      VARCHAR   NOT NULL,
    published_at TIMESTAMP,
    fetched_at   TIMESTAMP NOT NULL,
    available_at TIMESTAMP,
    symbols      VARCHAR[] NOT NULL,
    score        DOUBLE    NOT NULL,
    scorer       VARCHAR   NOT NULL,
    scored_at    TIMESTAMP NOT NULL
)
"""
_SEP = "\x1f"  # joins symbols in the bulk frame; no symbol contains it
_COLUMNS = "id, source, url, title, summary, published_at, fetched_at, symbols, score, scorer, scored_at"


def news_table_exists(db_path: Path | str) -> bool:
    """True when ``db_path`` is a DuckDB file with a ``news`` table (read without creating anything)."""
    if str(db_path) != ":memory:" and not Path(db_path).is_file():
        return False
    try:
        con = connect(db_path)
    except StorageError as exc:
        raise DataError(f"cannot open the news store: {exc}") from None
    try:
        row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'news'").fetchone()
        return bool(row and row[0])
    finally:
        con.close()


@dataclass(frozen=True)
class LoadedNews:
    """Dated items sorted by ``available_at`` (oldest first), indexed per symbol for point-in-time reads."""

    items: tuple[NewsItem, ...] = ()
    # symbol -> (available_at times, items), both oldest first: a day's read is two bisections per symbol
    _by_symbol: dict[str, tuple[list[datetime], list[NewsItem]]] = field(default_factory=dict, repr=False,
                                                                        compare=False)

    @classmethod
    def of(cls, items: Iterable[NewsItem]) -> LoadedNews:
        dated = sorted((i for i in items if i.available_at is not None), key=lambda i: (i.available_at, i.id))
        index: dict[str, tuple[list[datetime], list[NewsItem]]] = {}
        for item in dated:
            for symbol in set(item.symbols):
                times, listed = index.setdefault(symbol, ([], []))
                times.append(item.available_at)  # type: ignore[arg-type]  # dated: never None here
                listed.append(item)
        return cls(items=tuple(dated), _by_symbol=index)

    def about(self, symbols: Iterable[str], end: datetime, hours: float) -> list[NewsItem]:
        """Items about any of ``symbols`` available in (end - hours, end], newest first."""
        start = end - timedelta(hours=hours)
        found: dict[str, NewsItem] = {}
        for symbol in set(symbols):
            times, listed = self._by_symbol.get(symbol, ([], []))
            for item in listed[bisect.bisect_right(times, start) : bisect.bisect_right(times, end)]:
                found[item.id] = item
        return sorted(found.values(), key=lambda i: (i.available_at, i.id), reverse=True)

    def __len__(self) -> int:
        return len(self.items)


class NewsStore:
    def __init__(self, db_path: Path | str) -> None:
        if str(db_path) != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = connect(db_path)
        except StorageError as exc:
            raise DataError(f"cannot open the news store: {exc}") from None
        self._con.execute(_SCHEMA)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> NewsStore:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def upsert(self, items: Iterable[NewsItem]) -> int:
        """Store ``items`` (see the module doc); returns the number of ids that were not stored before."""
        batch = list(items)
        rows: dict[str, NewsItem] = {}
        merged: dict[str, set[str]] = {}
        for item in batch:  # one row per id: the first occurrence's text, every occurrence's symbols
            rows.setdefault(item.id, item)
            merged.setdefault(item.id, set()).update(item.symbols)
        if not rows:
            return 0
        vals = list(rows.values())
        # one frame, two set-based statements: row-by-row inserts managed ~500 items/s, too slow for archives
        frame = pd.DataFrame({
            "id": [i.id for i in vals], "source": [i.source for i in vals], "url": [i.url for i in vals],
            "title": [i.title for i in vals], "summary": [i.summary for i in vals],
            "published_at": pd.to_datetime([i.published_at for i in vals]),
            "fetched_at": pd.to_datetime([i.fetched_at for i in vals]),
            "available_at": pd.to_datetime([i.available_at for i in vals]),
            "symbols_joined": [_SEP.join(sorted(merged[i.id])) for i in vals],
            "score": [i.score for i in vals], "scorer": [i.scorer for i in vals],
            "scored_at": pd.to_datetime([i.scored_at for i in vals]),
        })  # fmt: skip
        symbols = f"CASE WHEN i.symbols_joined = '' THEN []::VARCHAR[] ELSE string_split(i.symbols_joined, '{_SEP}') END"
        con = self._con
        con.register("_incoming", frame)
        con.execute("BEGIN")
        try:
            row = con.execute("SELECT count(*) FROM _incoming i JOIN news n ON n.id = i.id").fetchone()
            known = int(row[0]) if row else 0
            con.execute(f"UPDATE news SET symbols = list_sort(list_distinct(list_concat(news.symbols, {symbols}))) "
                        "FROM _incoming i WHERE news.id = i.id AND i.symbols_joined <> ''")
            con.execute(f"INSERT INTO news (id, source, url, title, summary, published_at, fetched_at, available_at, "
                        f"symbols, score, scorer, scored_at) SELECT i.id, i.source, i.url, i.title, i.summary, "
                        f"i.published_at, i.fetched_at, i.available_at, list_sort({symbols}), i.score, i.scorer, "
                        f"i.scored_at FROM _incoming i WHERE i.id NOT IN (SELECT id FROM news)")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("_incoming")
        return len(rows) - known

    def _rows(self, where: str, params: list[object]) -> list[NewsItem]:
        cur = self._con.execute(f"SELECT {_COLUMNS} FROM news WHERE {where} ORDER BY available_at, id", params)
        names = [d[0] for d in cur.description]
        out = []
        for row in cur.fetchall():
            rec = dict(zip(names, row, strict=True))
            rec["symbols"] = tuple(rec["symbols"] or ())
            out.append(NewsItem.model_validate(rec))
        return out

    def load(self, start: datetime, end: datetime) -> LoadedNews:
        return LoadedNews.of(self._rows("available_at BETWEEN ? AND ?", [start, end]))

    def about(self, symbol: str, *, until: datetime | None = None, limit: int = 50) -> list[NewsItem]:
        """Items about ``symbol`` (available by ``until`` when given, dated ones only then), newest first."""
        where, params = "list_contains(symbols, ?)", list[object]([symbol])
        if until is not None:
            where += " AND available_at <= ?"
            params.append(until)
        items = self._rows(where, params)
        items.sort(key=lambda i: (i.available_at or i.fetched_at, i.id), reverse=True)
        return items[:limit]

    def count(self) -> int:
        row = self._con.execute("SELECT count(*) FROM news").fetchone()
        return int(row[0]) if row else 0
