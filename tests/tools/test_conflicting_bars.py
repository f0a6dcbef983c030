"""Bars that cannot be true reach the gate: an ``inf`` price in a CSV, and two different rows for one date
(the cache keeps one row per day, so it records the conflict instead of losing it). Identical repeats of a
row stay harmless."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from tools.cache import MarketCache
from tools.data import load_universe_data
from tools.market_data import normalise, sample_frame
from tools.market_data.base import conflicting_days
from tools.models import Instrument, NewsConfig, Universe
from tools.view import MarketView

AS_OF = date(2008, 10, 15)
BARS = sample_frame("SP500").loc["2007-10-01":"2008-10-15"]


def _csv(path: Path, frame: pd.DataFrame) -> Instrument:
    out = frame.rename(columns=str.capitalize)
    out.index = out.index.strftime("%Y-%m-%d")
    out.rename_axis("Date").to_csv(path)
    return Instrument(symbol="SPX", source=f"csv:{path}", currency="USD")


def _verdict(cache: MarketCache, inst: Instrument) -> tuple[bool, list[str]]:
    universe = Universe(name="t", base_currency="USD", instruments=[inst], news=NewsConfig())
    data = load_universe_data(universe, cache, as_of=AS_OF, refresh=False)
    check = MarketView.build(data, AS_OF).validation["SPX"]
    return check.tradeable, check.reasons


def test_an_inf_high_in_a_csv_makes_the_symbol_untradeable(cache: MarketCache, tmp_path: Path) -> None:
    bad = BARS.copy()
    bad.loc["2008-10-15", "high"] = float("inf")
    tradeable, reasons = _verdict(cache, _csv(tmp_path / "spx.csv", bad))
    assert not tradeable and [r.split(":")[0] for r in reasons] == ["bad_price"]


def test_two_different_rows_for_one_date_make_the_symbol_untradeable(cache: MarketCache, tmp_path: Path) -> None:
    second = BARS.loc["2008-10-10":"2008-10-10"] * 1.02
    inst = _csv(tmp_path / "spx.csv", pd.concat([BARS, second]).sort_index(kind="stable"))
    tradeable, reasons = _verdict(cache, inst)
    assert not tradeable and [r.split(":")[0] for r in reasons] == ["conflicting_duplicate"]
    assert "2008-10-10" in reasons[0]
    assert len(cache.bars("SPX", source=inst.source)) == len(BARS)  # one row a day in the cache, as before

    _csv(tmp_path / "spx.csv", BARS)  # the user fixes the file: the conflict goes with the re-read
    assert _verdict(cache, inst) == (True, [])


def test_identical_repeats_of_a_row_are_collapsed_silently(cache: MarketCache, tmp_path: Path) -> None:
    repeated = pd.concat([BARS, BARS.loc["2008-10-10":"2008-10-10"]]).sort_index(kind="stable")
    assert _verdict(cache, _csv(tmp_path / "spx.csv", repeated)) == (True, [])


def test_normalise_keeps_disagreeing_rows_and_drops_identical_ones() -> None:
    day = BARS.loc["2008-10-10":"2008-10-10"]
    frame = normalise(pd.concat([BARS, day, day, day.assign(close=day["close"] * 1.01)]))
    assert frame.index.is_monotonic_increasing and len(frame) == len(BARS) + 1
    assert list(conflicting_days(frame).date) == [date(2008, 10, 10)]
    assert conflicting_days(normalise(pd.concat([BARS, day]))).empty


def test_the_cache_records_a_conflict_and_a_rewrite_of_the_day_clears_it(cache: MarketCache) -> None:
    day = BARS.loc["2008-10-10":"2008-10-10"]
    cache.upsert("SPX", "yfinance", normalise(pd.concat([BARS, day * 1.02])))
    assert cache.conflicts("SPX") == [date(2008, 10, 10)]
    assert cache.conflicts("SPX", as_of=date(2008, 10, 9)) == [] and cache.conflicts("NOPE") == []
    assert cache.bars("SPX").loc["2008-10-10", "close"] == (day["close"] * 1.02).iloc[0]  # the last row, as before
    cache.upsert("SPX", "yfinance", BARS.loc["2008-10-10":])  # a tail re-fetch gives the day one row
    assert cache.conflicts("SPX") == []
