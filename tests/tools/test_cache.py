"""The DuckDB cache: idempotent upserts, the point-in-time rule, and sharing one file with other tables."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portfolio.storage import DUCKDB_CONFIG
from tools.cache import MarketCache
from tools.errors import DataError
from tools.market_data import sample_frame, synthetic_frame


def test_upsert_is_idempotent(cache: MarketCache) -> None:
    df = sample_frame("GOOG")
    assert cache.upsert("GOOG", "sample", df) == len(df)
    cache.upsert("GOOG", "sample", df)
    cache.upsert("GOOG", "sample", df.iloc[100:200])
    back = cache.bars("GOOG")
    pd.testing.assert_frame_equal(back, df)
    assert cache.coverage("GOOG", source="sample") == (date(2004, 8, 19), date(2013, 3, 1), len(df))


def test_upsert_replaces_a_corrected_bar(cache: MarketCache) -> None:
    df = sample_frame("SP500").iloc[:10]
    cache.upsert("SP500", "sample", df)
    fixed = df.iloc[-1:].copy()
    fixed["close"] = 1.0
    cache.upsert("SP500", "sample", fixed)
    back = cache.bars("SP500")
    assert len(back) == 10 and back["close"].iloc[-1] == 1.0 and back["close"].iloc[0] == df["close"].iloc[0]


def test_replace_all_removes_rows_no_longer_in_the_source(cache: MarketCache) -> None:
    df = sample_frame("SP500").iloc[:10]
    cache.upsert("SP500", "csv:x", df)
    cache.upsert("SP500", "csv:x", df.iloc[:4], replace_all=True)
    assert len(cache.bars("SP500")) == 4


def test_bars_window_edges_and_empty_answers(cache: MarketCache) -> None:
    cache.upsert("SP500", "sample", sample_frame("SP500"))
    part = cache.bars("SP500", start=date(2008, 10, 1), as_of=date(2008, 10, 15))
    assert part.index[0] == pd.Timestamp("2008-10-01") and part.index[-1] == pd.Timestamp("2008-10-15")
    assert cache.bars("SP500", as_of=date(1990, 1, 1)).empty
    assert cache.bars("UNKNOWN").empty
    assert cache.last_date("SP500") == date(2018, 12, 31) and cache.first_date("SP500") == date(1999, 1, 4)
    assert cache.last_date("UNKNOWN") is None
    assert cache.symbols() == ["SP500"]


def test_bars_refuses_to_mix_two_sources(cache: MarketCache) -> None:
    cache.upsert("X", "sample", sample_frame("GOOG").iloc[:5])
    cache.upsert("X", "csv:/x.csv", sample_frame("GOOG").iloc[:7])
    with pytest.raises(DataError, match="several sources"):
        cache.bars("X")
    assert len(cache.bars("X", source="csv:/x.csv")) == 7


_SERIES = synthetic_frame("SYN123").iloc[:800]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    as_of=st.dates(min_value=date(1999, 12, 1), max_value=date(2003, 6, 1)),
    start=st.one_of(st.none(), st.dates(min_value=date(1999, 12, 1), max_value=date(2003, 6, 1))),
)
def test_point_in_time_never_returns_a_bar_after_as_of(
    cache: MarketCache, as_of: date, start: date | None
) -> None:
    if not cache.symbols():
        cache.upsert("SYN123", "synthetic", _SERIES)
    bars = cache.bars("SYN123", as_of=as_of, start=start)
    assert (bars.index <= pd.Timestamp(as_of)).all()
    # …and it is not trivially empty: exactly the source rows in the window come back.
    expected = _SERIES[_SERIES.index <= pd.Timestamp(as_of)]
    if start is not None:
        expected = expected[expected.index >= pd.Timestamp(start)]
    assert len(bars) == len(expected)


def test_intraday_bars_of_as_of_day_count_as_that_day(cache: MarketCache) -> None:
    df = sample_frame("GOOG").iloc[:3].copy()
    df.index = df.index + pd.Timedelta(hours=15)  # an hourly timeframe's 15:00 bar
    cache.upsert("GOOG", "sample", df, timeframe="1h")
    as_of = df.index[1].date()
    assert len(cache.bars("GOOG", as_of=as_of, timeframe="1h")) == 2


def test_two_caches_and_a_foreign_table_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "tradeagent.duckdb"
    # stands in for the portfolio ledger in the same process (same settings, or DuckDB refuses the second open)
    ledger = duckdb.connect(str(path), config=DUCKDB_CONFIG)
    ledger.execute("CREATE TABLE fills (id INTEGER, qty DOUBLE)")
    ledger.execute("INSERT INTO fills VALUES (1, 2.5)")
    a, b = MarketCache(path), MarketCache(path)
    a.upsert("GOOG", "sample", sample_frame("GOOG").iloc[:5], fetched_at=datetime(2024, 1, 1))
    assert len(b.bars("GOOG")) == 5  # written by one object, read by the other, no reopen
    ledger.execute("INSERT INTO fills VALUES (2, 1.0)")
    a.close()
    assert b.symbols() == ["GOOG"]
    assert ledger.execute("SELECT count(*) FROM fills").fetchall() == [(2,)]  # never dropped
    b.close()
    ledger.close()
    with MarketCache(path) as again:
        assert again.last_date("GOOG") == sample_frame("GOOG").index[4].date()


def test_fetched_at_is_recorded(cache: MarketCache) -> None:
    when = datetime(2024, 5, 6, 7, 8, 9)
    cache.upsert("GOOG", "sample", sample_frame("GOOG").iloc[:2], fetched_at=when)
    rows = cache._con.execute("SELECT DISTINCT fetched_at FROM ohlcv").fetchall()
    assert rows == [(when,)]
    assert when - timedelta(seconds=1) < rows[0][0] <= when
