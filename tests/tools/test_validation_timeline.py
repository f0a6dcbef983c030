"""The validation gate precomputed over the whole history equals the gate recomputed on data truncated at D.

A replay asks the gate about every symbol every day; ``ValidationTimeline`` answers from one pass over the
history. This is its look-ahead guard, as tests/tools/test_indicators.py is the indicators': on every calendar
day D (before the first bar, inside gaps, after the last bar) its verdict must equal ``validate_bars`` run on
the bars truncated at D, on series that fail every check somewhere.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.data import UniverseData
from tools.indicators import indicators_as_of
from tools.market_data import sample_frame
from tools.models import Instrument, NewsConfig, Universe
from tools.validation import ValidationTimeline, validate_bars
from tools.view import MarketView, precompute_indicators, precompute_validation

SP = sample_frame("SP500").loc["2006-01-01":"2009-12-31"]


def _truncated(df: pd.DataFrame, day: date) -> pd.DataFrame:
    """The bars known on ``day``: a boolean mask, not the binary search the timeline uses."""
    return df[df.index < pd.Timestamp(day) + pd.Timedelta(days=1)]


def _days(df: pd.DataFrame, before: int = 10, after: int = 20) -> list[date]:
    first, last = df.index[0].date(), df.index[-1].date()
    return [first + timedelta(days=k) for k in range(-before, (last - first).days + after)]


def _damaged(df: pd.DataFrame, seed: int = 3) -> pd.DataFrame:
    """``df`` with bad prices, torn bars, unrecorded splits and a gap of three weeks, spread over its history."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    n = len(out)
    for col, value in (("low", np.nan), ("open", 0.0), ("close", -1.0), ("high", np.inf)):
        for at in rng.choice(n, size=3, replace=False):
            out.iloc[at, out.columns.get_loc(col)] = value
    for at in rng.choice(n, size=4, replace=False):  # high below the close
        out.iloc[at, out.columns.get_loc("high")] = out["close"].iloc[at] * 0.9
    for at in sorted(rng.choice(np.arange(30, n), size=3, replace=False)):  # a halving (a split nobody recorded)
        out.iloc[at:, [out.columns.get_loc(c) for c in ("open", "high", "low", "close")]] /= 2.0
    prices = [out.columns.get_loc(c) for c in ("open", "high", "low", "close")]
    for at in rng.choice(np.arange(1, n - 4), size=2, replace=False):  # a ×50 print held for 1 to 3 days
        out.iloc[at : at + int(rng.integers(1, 4)), prices] *= 50.0
    at = int(rng.integers(1, n - 2))  # a ×50 print right after a NaN close (judged against the close before it)
    out.iloc[at, out.columns.get_loc("close")] = np.nan
    out.iloc[at + 1, prices] *= 50.0
    gap = out.index[(out.index > "2008-03-01") & (out.index < "2008-03-22")]
    return out.drop(gap)


def _check_every_day(df: pd.DataFrame, **kwargs: object) -> Counter[str]:
    timeline = ValidationTimeline("X", df, **kwargs)  # type: ignore[arg-type]
    seen: Counter[str] = Counter()
    for day in _days(df):
        expected = validate_bars("X", _truncated(df, day), day, **kwargs)  # type: ignore[arg-type]
        assert timeline.as_of(day) == expected, day
        seen.update(r.split(":", 1)[0] for r in expected.reasons)
    return seen


def test_the_timeline_equals_the_gate_on_data_truncated_at_every_day() -> None:
    seen = _check_every_day(_damaged(SP), calendar="XNYS", conflicts=[date(2007, 5, 7), date(2009, 6, 1)])
    # every check failed on some day, so each one was compared, not only the clean verdicts
    assert set(seen) == {"empty", "stale", "bad_price", "inconsistent", "jump", "conflicting_duplicate"}, seen


def test_short_windows_move_every_boundary_inside_the_series() -> None:
    seen = _check_every_day(_damaged(SP.iloc[:400], seed=11), recent_window=7, jump_window=15, max_stale_sessions=2,
                            max_jump=0.3)
    assert {"bad_price", "inconsistent", "jump", "stale"} <= set(seen)
    seen = _check_every_day(_damaged(SP.iloc[:200], seed=5), recent_window=50, jump_window=10)  # recent > 2 × jump window
    assert {"bad_price", "inconsistent"} <= set(seen)


def test_every_day_of_a_week_counts_for_a_crypto_series() -> None:
    daily = SP.iloc[:120].copy()
    daily.index = pd.date_range("2024-01-01", periods=len(daily), freq="D", name="date")
    _check_every_day(_damaged(daily, seed=2), sessions_per_week=7, calendar="24/7")


def test_bars_stamped_during_the_day() -> None:
    stamped = _damaged(SP.iloc[:300], seed=4)
    stamped.index = stamped.index + pd.Timedelta(hours=16)  # the gate reads up to D's midnight, the view's cut all of D
    assert {"empty", "bad_price", "jump"} <= set(_check_every_day(stamped, calendar="XNYS"))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), length=st.integers(1, 300))
def test_random_damage_anywhere(seed: int, length: int) -> None:
    df = _damaged(SP.iloc[-length:], seed=seed) if length > 40 else SP.iloc[-length:]
    timeline = ValidationTimeline("X", df, calendar="XNYS", jump_window=20)
    rng = np.random.default_rng(seed)
    for day in rng.choice(np.array(_days(df, after=10), dtype=object), size=25):
        assert timeline.as_of(day) == validate_bars("X", _truncated(df, day), day, calendar="XNYS", jump_window=20)


def test_repeated_timestamps_take_the_gates_own_path() -> None:
    repeated = pd.concat([SP.iloc[:300], SP.iloc[100:101], SP.iloc[200:201] * 1.02]).sort_index(kind="stable")
    seen = _check_every_day(repeated, conflicts=[date(2006, 9, 5)])
    assert {"duplicate", "conflicting_duplicate"} <= set(seen)
    assert _check_every_day(repeated.iloc[::-1]) is not None  # unsorted: exact path too


def test_the_view_with_precomputed_validation_is_the_view_without() -> None:
    bars = {"A": _damaged(SP, seed=1), "B": SP.loc["2007-06-01":"2008-12-31"]}
    universe = Universe(name="t", base_currency="USD", news=NewsConfig(), instruments=[
        Instrument(symbol="A", source="sample", currency="USD"),
        Instrument(symbol="B", source="synthetic", currency="USD"),
        Instrument(symbol="C", source="synthetic", currency="USD")])  # fmt: skip
    data = UniverseData(universe=universe, as_of=None, bars=bars, errors={"C": "no such file"},
                        conflicts={"A": [date(2008, 1, 10)]})
    inds, checks = precompute_indicators(data), precompute_validation(data)
    for day in _days(SP, after=5)[::3]:
        fast = MarketView.build(data, day, indicators=inds, validation=checks)
        assert dict(fast.validation) == dict(MarketView.build(data, day, indicators=inds).validation), day
    with pytest.raises(ValueError, match="max_stale_sessions"):
        MarketView.build(data, date(2008, 1, 2), validation=checks, max_stale_sessions=3)


def test_the_views_indicators_are_cut_at_d_and_its_last_rows_are_read_from_them() -> None:
    bars = {"A": SP, "B": SP.loc["2007-06-01":"2008-12-31"]}
    universe = Universe(name="t", base_currency="USD", news=NewsConfig(), instruments=[
        Instrument(symbol="A", source="sample", currency="USD"),
        Instrument(symbol="B", source="synthetic", currency="USD")])  # fmt: skip
    data = UniverseData(universe=universe, as_of=None, bars=bars)
    inds = precompute_indicators(data)
    for day in [date(2006, 1, 1), date(2007, 6, 2), date(2008, 10, 15), date(2009, 12, 31)]:
        view = MarketView.build(data, day, indicators=inds)
        assert set(view.indicators) == {"A", "B"} and "A" in view.indicators and "C" not in view.indicators
        for symbol in ("A", "B"):
            cut = view.indicators[symbol]
            assert cut.index.equals(_truncated(bars[symbol], day).index)  # nothing after D
            assert view.latest_indicators(symbol) == indicators_as_of(cut, day)
            assert view.latest_indicators(symbol) == indicators_as_of(inds[symbol], day)
        assert view.latest_indicators("C") is None and view.indicators.get("C") is None
        row = view.latest_indicators("A")
        if row is not None:
            row["close"] = -1.0  # a copy: the next reader gets the view's row
            assert view.latest_indicators("A") != row
