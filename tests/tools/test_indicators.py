"""Indicators equal pandas-ta-classic's, and computing once then slicing equals computing on cut data."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pandas_ta_classic as ta
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.indicators import (
    INDICATOR_COLUMNS,
    compute_indicators,
    correlation_matrix,
    indicators_as_of,
    rows_through,
)
from tools.market_data import sample_frame, synthetic_frame

SP = sample_frame("SP500")
SP_IND = compute_indicators(SP)


def test_columns_are_the_stable_names() -> None:
    assert tuple(SP_IND.columns) == INDICATOR_COLUMNS
    assert {"sma_20", "rsi_14", "macd_hist", "bb_percent", "adx_14", "obv", "vol_20", "drawdown"} <= set(
        SP_IND.columns
    )
    assert SP_IND.index.equals(SP.index)


def test_values_equal_a_direct_pandas_ta_classic_call() -> None:
    c, h, low, v = SP["close"], SP["high"], SP["low"], SP["volume"]
    macd = ta.macd(c, fast=12, slow=26, signal=9)
    bb = ta.bbands(c, length=20, std=2)
    expected = {
        "sma_20": ta.sma(c, length=20), "sma_50": ta.sma(c, length=50), "sma_200": ta.sma(c, length=200),
        "ema_12": ta.ema(c, length=12), "ema_21": ta.ema(c, length=21), "ema_26": ta.ema(c, length=26),
        "rsi_14": ta.rsi(c, length=14),
        "macd": macd["MACD_12_26_9"], "macd_signal": macd["MACDs_12_26_9"], "macd_hist": macd["MACDh_12_26_9"],
        "bb_lower": bb["BBL_20_2.0"], "bb_mid": bb["BBM_20_2.0"], "bb_upper": bb["BBU_20_2.0"],
        "bb_percent": bb["BBP_20_2.0"], "bb_width": bb["BBB_20_2.0"],
        "atr_14": ta.atr(h, low, c, length=14), "natr_14": ta.natr(h, low, c, length=14),
        "adx_14": ta.adx(h, low, c, length=14)["ADX_14"], "obv": ta.obv(c, v),
    }  # fmt: skip
    for name, series in expected.items():
        np.testing.assert_allclose(
            SP_IND[name].to_numpy(), series.to_numpy(), rtol=1e-12, equal_nan=True, err_msg=name
        )


def test_simple_columns_match_their_definitions() -> None:
    c = SP["close"]
    day = pd.Timestamp("2008-10-15")
    window = np.log(c.loc[:day]).diff().iloc[-20:]
    assert SP_IND.loc[day, "vol_20"] == pytest.approx(window.std(ddof=1) * np.sqrt(252))
    assert SP_IND.loc[day, "drawdown"] == pytest.approx(c.loc[day] / c.loc[:day].max() - 1)
    assert SP_IND.loc[day, "ret_1d"] == pytest.approx(907.840027 / 998.01001 - 1)
    assert SP_IND.loc[day, "ret_cum"] == pytest.approx(c.loc[day] / c.iloc[0] - 1)
    assert (SP_IND["drawdown"] <= 0).all() and (SP_IND["rsi_14"].dropna().between(0, 100)).all()


@settings(max_examples=25, deadline=None)
@given(cut=st.integers(min_value=1, max_value=len(SP) - 1))
def test_no_look_ahead_cut_then_compute_equals_compute_then_slice(cut: int) -> None:
    """The look-ahead guard: the value on day D must not depend on any bar after D."""
    head = SP.iloc[:cut]
    day = head.index[-1].date()
    on_cut = compute_indicators(head).iloc[-1].to_numpy()
    sliced = np.array([v if v is not None else np.nan for v in indicators_as_of(SP_IND, day).values()])
    np.testing.assert_allclose(on_cut, sliced, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_short_series_gives_nan_not_an_error() -> None:
    ind = compute_indicators(SP.iloc[:5])
    assert ind["sma_200"].isna().all() and ind["close"].notna().all()
    assert compute_indicators(SP.iloc[:0]).empty


def test_indicators_as_of_reads_the_last_row_on_or_before() -> None:
    weekend = indicators_as_of(SP_IND, date(2008, 10, 18))  # a Saturday → Friday's row
    assert weekend["close"] == pytest.approx(940.549988)
    assert indicators_as_of(SP_IND, date(1999, 1, 4))["sma_20"] is None  # NaN → None
    assert set(indicators_as_of(SP_IND, date(1990, 1, 1)).values()) == {None}


@settings(max_examples=50, deadline=None)
@given(unit=st.sampled_from(["s", "ms", "us", "ns"]), seed=st.integers(0, 10_000), stamped=st.booleans(),
       nat=st.booleans())
def test_rows_through_is_the_pandas_binary_search(unit: str, seed: int, stamped: bool, nat: bool) -> None:
    """The cut every view makes: numpy on the index's array must count exactly the rows pandas does."""
    rng = np.random.default_rng(seed)
    days = np.sort(rng.integers(0, 400, size=rng.integers(0, 40)))
    seconds = rng.integers(0, 86_400, size=len(days)) if stamped else np.zeros(len(days), dtype=int)
    stamps = pd.Timestamp("2008-01-01") + pd.to_timedelta(days, "D") + pd.to_timedelta(seconds, "s")
    idx = pd.DatetimeIndex(list(stamps) + ([pd.NaT] if nat else [])).as_unit(unit)
    for k in range(-2, 405, 3):
        day = date.fromordinal(date(2008, 1, 1).toordinal() + k)
        assert rows_through(idx, day) == idx.searchsorted(pd.Timestamp(day) + pd.Timedelta(days=1)), day
    assert rows_through(SP.index, date(2008, 10, 18)) == len(SP.loc[:"2008-10-18"])


def test_correlation_matrix_uses_only_returns_up_to_as_of() -> None:
    closes = {
        "SP500": SP["close"],
        "NASDAQ": sample_frame("NASDAQ")["close"],
        "SYN": synthetic_frame("SYN001")["close"],
    }
    corr = correlation_matrix(closes, date(2008, 10, 15), window=60)
    assert list(corr.columns) == ["SP500", "NASDAQ", "SYN"]
    assert corr.loc["SP500", "NASDAQ"] > 0.8 and abs(corr.loc["SP500", "SYN"]) < 0.5
    manual = pd.concat([closes["SP500"], closes["NASDAQ"]], axis=1, join="inner").loc[:"2008-10-15"]
    manual = manual.pct_change().iloc[1:].tail(60)
    assert corr.loc["SP500", "NASDAQ"] == pytest.approx(manual.corr().iloc[0, 1])
    changed = dict(closes, SP500=closes["SP500"].where(closes["SP500"].index <= "2008-10-15", 1.0))
    pd.testing.assert_frame_equal(
        correlation_matrix(changed, date(2008, 10, 15)), corr
    )  # future edits ignored


def test_correlation_of_series_on_the_same_days_equals_the_pandas_alignment() -> None:
    """The numpy path (same days, no gaps: a replay's usual day) gives pandas' pairwise answer."""
    from tools.indicators import _same_days_correlation

    rng = np.random.default_rng(7)
    idx = pd.bdate_range("2020-01-01", periods=300)
    closes = {f"S{i}": pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(idx)))), index=idx) for i in range(5)}
    as_of = idx[250].date()
    fast = _same_days_correlation(closes, as_of, 60)
    assert fast is not None  # the fast path is the one under test
    aligned = pd.concat({s: c.loc[: idx[250]] for s, c in closes.items()}, axis=1).pct_change().iloc[1:].tail(60)
    pd.testing.assert_frame_equal(fast, aligned.corr(min_periods=30), check_exact=False, atol=1e-12)
    pd.testing.assert_frame_equal(correlation_matrix(closes, as_of), fast)
    gappy = dict(closes, S0=closes["S0"].drop(idx[240]))  # one missing day: the general path aligns
    assert _same_days_correlation(gappy, as_of, 60) is None
    assert correlation_matrix(gappy, as_of).shape == (5, 5)
