"""DuckDB cache of OHLCV bars, read point-in-time.

Contract:
- Table ``ohlcv(symbol, source, timeframe, ts, open, high, low, close, volume, fetched_at)`` with primary key
  ``(symbol, source, timeframe, ts)``. ``upsert`` is idempotent (``INSERT OR REPLACE``) and runs in one
  transaction, so a crash mid-write leaves the previous state, never half a series.
- Table ``ohlcv_conflicts(symbol, source, timeframe, ts, rows)``: days for which ``upsert`` was given rows
  that DISAGREE (``tools.market_data.base.conflicting_days``). The last row is stored in ``ohlcv`` as before,
  and the day is recorded here in the same transaction, so ``conflicts(symbol, as_of=D)`` can tell the
  validation gate (code ``conflicting_duplicate``) instead of the information being lost to the primary key.
  Writing a day again replaces its verdict; identical repeats are never a conflict.
- ``bars(symbol, as_of=D)`` never returns a bar whose day is after D. This is the one read path the
  agent, the replays and the CLI use, so look-ahead is prevented here and not by every caller.

Deliberate decisions:
- ``ts`` is a TIMESTAMP (midnight for daily bars) so an intraday timeframe could share the table.
- The same DuckDB file holds other modules' tables (the portfolio ledger). Each object opens its own
  connection; within one process DuckDB hands every connection to one file the same database
  instance (verified in tests), so the ledger and the cache can be open together. We create only our
  table and never drop anything.
- DuckDB is opened through ``portfolio.storage.connect`` (one config for every layer, no extension
  autoloading): DuckDB refuses a second connection to one file with different settings in one process.
- A file DuckDB cannot open (not a DuckDB file, locked by another process) is a one-line ``DataError``.
- A symbol cached from several sources is ambiguous: ``bars`` without ``source`` then raises rather than
  mixing two price histories.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from types import TracebackType

import pandas as pd

from portfolio.storage import StorageError, connect
from tools.errors import DataError
from tools.market_data.base import COLUMNS, conflicting_days, empty_frame

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ohlcv (
    symbol     VARCHAR   NOT NULL,
    source     VARCHAR   NOT NULL,
    timeframe  VARCHAR   NOT NULL,
    ts         TIMESTAMP NOT NULL,
    open       DOUBLE,
    high       DOUBLE,
    low        DOUBLE,
    close      DOUBLE,
    volume     DOUBLE,
    fetched_at TIMESTAMP NOT NULL,
    PRIMARY KEY (symbol, source, timeframe, ts)
)
"""


_CONFLICTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS ohlcv_conflicts (
    symbol    VARCHAR   NOT NULL,
    source    VARCHAR   NOT NULL,
    timeframe VARCHAR   NOT NULL,
    ts        TIMESTAMP NOT NULL,
    rows      INTEGER   NOT NULL,
    PRIMARY KEY (symbol, source, timeframe, ts)
)
"""
_SERIES = "symbol = ? AND source = ? AND timeframe = ?"


class MarketCache:
    def __init__(self, db_path: Path | str) -> None:
        self.db_path = Path(db_path)
        if str(db_path) != ":memory:":
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = connect(db_path)
        except StorageError as exc:
            raise DataError(f"cannot open the market cache: {exc}") from None
        self._con.execute(_SCHEMA)
        self._con.execute(_CONFLICTS_SCHEMA)

    # -- lifecycle -----------------------------------------------------------------------------------
    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> MarketCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- writes --------------------------------------------------------------------------------------
    def upsert(
        self,
        symbol: str,
        source: str,
        df: pd.DataFrame,
        *,
        timeframe: str = "1d",
        fetched_at: datetime | None = None,
        replace_all: bool = False,
    ) -> int:
        """Insert or replace the bars of ``df`` (contract frame shape); returns the number of rows written.

        ``replace_all`` first deletes every cached bar of (symbol, source, timeframe), in the same
        transaction: for local files, which are the truth, rows removed from the file leave the cache too.
        """
        if df.empty and not replace_all:
            return 0
        conflicts = _conflict_rows(df)
        df = df[~df.index.duplicated(keep="last")]
        frame = pd.DataFrame(
            {
                "symbol": symbol,
                "source": source,
                "timeframe": timeframe,
                "ts": pd.DatetimeIndex(df.index).astype("datetime64[us]"),
                **{c: df[c].to_numpy(dtype="float64") for c in COLUMNS},
                "fetched_at": pd.Timestamp(fetched_at or datetime.now()).tz_localize(None),
            }
        )
        key = [symbol, source, timeframe]
        self._con.register("_incoming", frame)
        self._con.register("_conflicts", conflicts)
        try:
            self._con.execute("BEGIN TRANSACTION")
            if replace_all:
                self._con.execute(f"DELETE FROM ohlcv WHERE {_SERIES}", key)
                self._con.execute(f"DELETE FROM ohlcv_conflicts WHERE {_SERIES}", key)
            else:  # the days written now get a new verdict
                self._con.execute(
                    f"DELETE FROM ohlcv_conflicts WHERE {_SERIES} AND ts IN (SELECT ts FROM _incoming)", key
                )
            self._con.execute(
                "INSERT OR REPLACE INTO ohlcv SELECT symbol, source, timeframe, ts, open, high, low, close,"
                " volume, fetched_at FROM _incoming"
            )
            self._con.execute("INSERT INTO ohlcv_conflicts SELECT ?, ?, ?, ts, rows FROM _conflicts", key)
            self._con.execute("COMMIT")
        except Exception:
            self._con.execute("ROLLBACK")
            raise
        finally:
            self._con.unregister("_incoming")
            self._con.unregister("_conflicts")
        return len(frame)

    # -- reads ---------------------------------------------------------------------------------------
    def _resolve_source(self, symbol: str, source: str | None, timeframe: str) -> str | None:
        if source is not None:
            return source
        rows = self._con.execute(
            "SELECT DISTINCT source FROM ohlcv WHERE symbol = ? AND timeframe = ? ORDER BY source",
            [symbol, timeframe],
        ).fetchall()
        if len(rows) > 1:
            names = ", ".join(r[0] for r in rows)
            raise DataError(f"{symbol} is cached from several sources ({names}); name the source")
        return rows[0][0] if rows else None

    def bars(
        self,
        symbol: str,
        *,
        as_of: date | None = None,
        start: date | None = None,
        source: str | None = None,
        timeframe: str = "1d",
    ) -> pd.DataFrame:
        """Cached bars of ``symbol`` whose day is in ``[start, as_of]``, in the contract frame shape."""
        resolved = self._resolve_source(symbol, source, timeframe)
        if resolved is None:
            return empty_frame()
        sql = (
            "SELECT ts, open, high, low, close, volume FROM ohlcv"
            " WHERE symbol = ? AND source = ? AND timeframe = ?"
        )
        params: list[object] = [symbol, resolved, timeframe]
        if as_of is not None:
            # "< next midnight", not "<= midnight": also correct for intraday bars of day as_of.
            sql += " AND ts < ?"
            params.append(datetime.combine(as_of + timedelta(days=1), datetime.min.time()))
        if start is not None:
            sql += " AND ts >= ?"
            params.append(datetime.combine(start, datetime.min.time()))
        sql += " ORDER BY ts"
        df = self._con.execute(sql, params).df()
        if df.empty:
            return empty_frame()
        df.index = pd.DatetimeIndex(df.pop("ts")).astype("datetime64[ns]").rename("date")
        return df.astype("float64")

    def conflicts(
        self,
        symbol: str,
        *,
        as_of: date | None = None,
        start: date | None = None,
        source: str | None = None,
        timeframe: str = "1d",
    ) -> list[date]:
        """Days in ``[start, as_of]`` for which the source gave rows that disagree (see the module contract)."""
        resolved = self._resolve_source(symbol, source, timeframe)
        if resolved is None:
            return []
        sql = f"SELECT ts FROM ohlcv_conflicts WHERE {_SERIES}"
        params: list[object] = [symbol, resolved, timeframe]
        if as_of is not None:
            sql += " AND ts < ?"
            params.append(datetime.combine(as_of + timedelta(days=1), datetime.min.time()))
        if start is not None:
            sql += " AND ts >= ?"
            params.append(datetime.combine(start, datetime.min.time()))
        return [row[0].date() for row in self._con.execute(sql + " ORDER BY ts", params).fetchall()]

    def _edge(self, func: str, symbol: str, source: str | None, timeframe: str) -> date | None:
        sql = f"SELECT {func}(ts) FROM ohlcv WHERE symbol = ? AND timeframe = ?"
        params: list[object] = [symbol, timeframe]
        if source is not None:
            sql += " AND source = ?"
            params.append(source)
        # fetchall, not fetchone: DuckDB 2 keeps a half-read result open and then refuses the next statement.
        rows = self._con.execute(sql, params).fetchall()
        return rows[0][0].date() if rows and rows[0][0] is not None else None

    def last_date(self, symbol: str, *, source: str | None = None, timeframe: str = "1d") -> date | None:
        return self._edge("max", symbol, source, timeframe)

    def first_date(self, symbol: str, *, source: str | None = None, timeframe: str = "1d") -> date | None:
        return self._edge("min", symbol, source, timeframe)

    def coverage(
        self, symbol: str, *, source: str, timeframe: str = "1d"
    ) -> tuple[date | None, date | None, int]:
        """(first day, last day, number of bars) cached for one symbol and source."""
        row = self._con.execute(
            "SELECT min(ts), max(ts), count(*) FROM ohlcv WHERE symbol = ? AND source = ? AND timeframe = ?",
            [symbol, source, timeframe],
        ).fetchall()[0]
        if row[2] == 0:
            return None, None, 0
        return row[0].date(), row[1].date(), int(row[2])

    def symbols(self) -> list[str]:
        return [
            r[0] for r in self._con.execute("SELECT DISTINCT symbol FROM ohlcv ORDER BY symbol").fetchall()
        ]


def _conflict_rows(df: pd.DataFrame) -> pd.DataFrame:
    """``(ts, rows)``: each day of ``df`` with rows that disagree, and how many rows it has."""
    days = conflicting_days(df)
    counts = pd.Series(df.index).value_counts()
    return pd.DataFrame(
        {
            "ts": pd.DatetimeIndex(days).astype("datetime64[us]"),
            "rows": pd.Series([int(counts[d]) for d in days], dtype="int64"),
        }
    )
