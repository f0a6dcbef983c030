"""The validation gate: each failure has its own reason code, and clean data passes."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from tools.market_data import sample_frame
from tools.validation import sessions_between, validate_bars

SP = sample_frame("SP500")
AS_OF = date(2008, 10, 15)


def _codes(reasons: list[str]) -> list[str]:
    return [r.split(":", 1)[0] for r in reasons]


def test_clean_data_is_tradeable() -> None:
    result = validate_bars("SP500", SP, AS_OF)
    assert result.tradeable and result.reasons == [] and result.symbol == "SP500"


def test_empty_series() -> None:
    result = validate_bars("X", SP.iloc[:0], AS_OF)
    assert not result.tradeable and result.reasons == ["empty: no bars on or before 2008-10-15"]
    assert _codes(validate_bars("X", SP, date(1990, 1, 1)).reasons) == ["empty"]


def test_stale_last_bar_counts_sessions() -> None:
    result = validate_bars("SP500", SP.loc[:"2008-09-30"], AS_OF)
    assert result.reasons == ["stale: last bar 2008-09-30 is 11 sessions before 2008-10-15"]
    assert validate_bars("SP500", SP.loc[:"2008-10-08"], AS_OF).tradeable  # 5 sessions behind: allowed
    assert not validate_bars("SP500", SP.loc[:"2008-10-08"], AS_OF, max_stale_sessions=4).tradeable


def test_weekend_is_not_stale_for_stocks_but_is_for_crypto_counting() -> None:
    assert sessions_between(date(2008, 10, 10), date(2008, 10, 13)) == 1  # Fri → Mon
    assert sessions_between(date(2008, 10, 10), date(2008, 10, 13), sessions_per_week=7) == 3
    daily = pd.DataFrame(
        {"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0},
        index=pd.date_range("2024-01-01", "2024-01-20", freq="D", name="date"),
    )
    assert not validate_bars("BTC/EUR", daily, date(2024, 1, 27), sessions_per_week=7).tradeable  # 7 days
    assert validate_bars("BTC/EUR", daily, date(2024, 1, 24), sessions_per_week=7).tradeable


def test_nan_or_non_positive_prices_in_the_recent_window() -> None:
    bad = SP.loc[:"2008-10-15"].copy()
    bad.loc["2008-10-10", "low"] = np.nan
    bad.loc["2008-10-14", "open"] = 0.0
    result = validate_bars("SP500", bad, AS_OF)
    assert (
        _codes(result.reasons) == ["bad_price"]
        and "2 of the last 20 bars (first 2008-10-10)" in result.reasons[0]
    )
    old_gap = SP.loc[:"2008-10-15"].copy()
    old_gap.loc["2003-01-02", "low"] = np.nan  # years ago: not a reason to stop trading today
    assert validate_bars("SP500", old_gap, AS_OF).tradeable


def test_a_bar_whose_high_and_low_do_not_contain_its_open_and_close() -> None:
    torn = SP.loc[:"2008-10-15"].copy()
    torn.loc["2008-10-10", "high"] = torn.loc["2008-10-10", "close"] * 0.9  # high below the close
    result = validate_bars("SP500", torn, AS_OF)
    assert result.reasons == [
        "inconsistent: high below open/close or low above them on 1 of the last 20 bars (first 2008-10-10)"
    ]
    torn = SP.loc[:"2008-10-15"].copy()
    torn.loc["2008-10-14", "low"] = torn.loc["2008-10-14", "high"] * 1.01  # low above everything
    assert _codes(validate_bars("SP500", torn, AS_OF).reasons) == ["inconsistent"]
    rounded = SP.loc[:"2008-10-15"].copy()
    top = max(rounded.loc["2008-10-14", "open"], rounded.loc["2008-10-14", "close"])
    rounded.loc["2008-10-14", "high"] = top * (1 - 1e-9)  # vendor rounding
    assert validate_bars("SP500", rounded, AS_OF).tradeable
    old = SP.loc[:"2008-10-15"].copy()
    old.loc["2003-03-03", "high"] = 1.0  # outside the recent window: not today's problem
    assert validate_bars("SP500", old, AS_OF).tradeable


def test_duplicate_timestamps() -> None:
    dup = pd.concat([SP.loc[:"2008-10-15"], SP.loc["2008-10-14":"2008-10-14"]]).sort_index()
    result = validate_bars("SP500", dup, AS_OF)
    assert result.reasons == ["duplicate: 1 repeated timestamps (first 2008-10-14)"]


def test_jump_without_a_split_and_the_same_jump_with_one() -> None:
    split = SP.loc[:"2008-10-15"].copy()
    split.loc["2008-10-01":] = split.loc["2008-10-01":] / 2  # an unrecorded 2:1 split on Oct 1
    split["volume"] = SP["volume"]
    result = validate_bars("SP500", split, AS_OF)
    # judged against the last accepted close (2008-09-30): refused on its first 4 sessions, the new level accepted
    # on the 5th (2008-10-07); the reason names the last refused one
    assert result.reasons == ["jump: close moved -55% on 2008-10-06 with no recorded split (+3 more)"]
    assert validate_bars("SP500", split, AS_OF, max_jump=0.45, splits={date(2008, 10, 1): 2.0}).tradeable


def test_bars_after_as_of_are_not_looked_at() -> None:
    future_bad = SP.copy()
    future_bad.loc["2008-10-16":, "close"] = -1.0
    assert validate_bars("SP500", future_bad, AS_OF).tradeable


def test_several_failures_are_all_reported() -> None:
    bad = SP.loc[:"2008-09-30"].copy()
    bad.loc["2008-09-29", "open"] = -5.0
    assert _codes(validate_bars("SP500", bad, AS_OF).reasons) == ["stale", "bad_price"]


def test_an_infinite_price_is_a_bad_price() -> None:
    for column in ("high", "close", "open"):
        bad = SP.loc[:"2008-10-15"].copy()
        bad.loc["2008-10-15", column] = np.inf
        result = validate_bars("SP500", bad, AS_OF)
        assert not result.tradeable and "bad_price" in _codes(result.reasons), column
        assert "infinite" in result.reasons[0]


def test_two_different_rows_for_one_day_are_a_conflicting_duplicate() -> None:
    other = SP.loc["2008-10-14":"2008-10-14"] * 1.03
    conflicting = pd.concat([SP.loc[:"2008-10-15"], other]).sort_index(kind="stable")
    result = validate_bars("SP500", conflicting, AS_OF)
    assert _codes(result.reasons) == ["conflicting_duplicate"] and not result.tradeable
    assert "(first 2008-10-14)" in result.reasons[0]


def test_a_conflict_recorded_upstream_blocks_within_the_jump_window_only() -> None:
    bars = SP.loc[:"2008-10-15"]  # the cache kept one row of the day: the frame alone looks clean
    recent = validate_bars("SP500", bars, AS_OF, conflicts=[date(2008, 10, 1)])
    assert _codes(recent.reasons) == ["conflicting_duplicate"] and not recent.tradeable
    assert validate_bars("SP500", bars, AS_OF, conflicts=[date(2003, 1, 2)]).tradeable  # years before
    assert validate_bars("SP500", bars, AS_OF, conflicts=[date(2008, 10, 16)]).tradeable  # after as_of
