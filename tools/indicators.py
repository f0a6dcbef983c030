"""Technical indicators via pandas-ta-classic, computed once per series and then read point-in-time.

``compute_indicators(df)`` returns one row per bar with these columns (stable names other modules use):
``close, sma_20, sma_50, sma_200, ema_12, ema_21, ema_26, rsi_14, macd, macd_signal, macd_hist, bb_lower,
bb_mid, bb_upper, bb_percent, bb_width, atr_14, natr_14, adx_14, obv, vol_20, drawdown, ret_1d, ret_cum``.

Deliberate decisions:
- The library's indicators are used as is (no hand-written RSI/MACD/ADX): values equal pandas-ta-classic's
  on the same data, which a test checks. ``bb_width`` is pandas-ta's BBB, i.e. *percent* of the middle band
  ((upper - lower) / mid * 100); ``bb_percent`` is %B (0 at the lower band, 1 at the upper).
- Every column is causal: the value on day D uses only bars up to D. So computing once on the full series
  and slicing at D equals computing on the series cut at D (a test guards this: it is our look-ahead
  check). The simple ones (volatility, drawdown, returns) are plain pandas and causal by construction.
  Note ``ret_cum`` and ``obv`` are relative to the *first bar of the series*; a slice keeps that origin.
- ``vol_20`` is the sample std (ddof=1) of 20 daily log returns × √252.
- A series shorter than an indicator's window gives NaN in that column (pandas-ta returns None there).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date

import numpy as np
import pandas as pd
import pandas_ta_classic as ta

INDICATOR_COLUMNS: tuple[str, ...] = (
    "close", "sma_20", "sma_50", "sma_200", "ema_12", "ema_21", "ema_26", "rsi_14",
    "macd", "macd_signal", "macd_hist", "bb_lower", "bb_mid", "bb_upper", "bb_percent", "bb_width",
    "atr_14", "natr_14", "adx_14", "obv", "vol_20", "drawdown", "ret_1d", "ret_cum",
)  # fmt: skip


def _series(value: pd.Series | pd.DataFrame | None, index: pd.Index, column: str | None = None) -> pd.Series:
    if value is None:
        return pd.Series(np.nan, index=index, dtype="float64")
    if isinstance(value, pd.DataFrame):
        value = value[column] if column is not None else value.iloc[:, 0]
    return value.astype("float64")


def _pick(frame: pd.DataFrame | None, prefix: str) -> pd.Series | None:
    """One column of a pandas-ta frame by name prefix (its suffix carries the parameters, e.g. MACDh_12_26_9)."""
    if frame is None:
        return None
    match = [c for c in frame.columns if str(c).startswith(prefix)]
    return frame[match[0]] if match else None


def compute_indicators(df: pd.DataFrame) -> pd.DataFrame:
    """All indicator columns for an OHLCV frame (contract shape), same index, vectorised."""
    idx = df.index
    if df.empty:  # pandas-ta's OBV fails on an empty series; nothing to compute anyway
        return pd.DataFrame({k: pd.Series(dtype="float64", index=idx) for k in INDICATOR_COLUMNS}, index=idx)
    # A short series is normal (a recent listing, the first days of a replay): pandas-ta logs a warning per
    # indicator and returns None, which we turn into NaN. Silence that expected noise for this call only.
    with _quiet_pandas_ta():
        return _compute(df, idx)


@contextmanager
def _quiet_pandas_ta() -> Iterator[None]:
    log = logging.getLogger("pandas_ta_classic")
    previous = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(previous)


def _compute(df: pd.DataFrame, idx: pd.Index) -> pd.DataFrame:
    o = {c: df[c].astype("float64") for c in ("high", "low", "close", "volume")}
    h, low, c, v = o["high"], o["low"], o["close"], o["volume"]
    macd = ta.macd(c, fast=12, slow=26, signal=9)
    bb = ta.bbands(c, length=20, std=2)
    adx = ta.adx(h, low, c, length=14)
    log_ret = np.log(c).diff()
    out = {
        "close": c,
        "sma_20": _series(ta.sma(c, length=20), idx),
        "sma_50": _series(ta.sma(c, length=50), idx),
        "sma_200": _series(ta.sma(c, length=200), idx),
        "ema_12": _series(ta.ema(c, length=12), idx),
        "ema_21": _series(ta.ema(c, length=21), idx),
        "ema_26": _series(ta.ema(c, length=26), idx),
        "rsi_14": _series(ta.rsi(c, length=14), idx),
        "macd": _series(_pick(macd, "MACD_"), idx),
        "macd_signal": _series(_pick(macd, "MACDs_"), idx),
        "macd_hist": _series(_pick(macd, "MACDh_"), idx),
        "bb_lower": _series(_pick(bb, "BBL_"), idx),
        "bb_mid": _series(_pick(bb, "BBM_"), idx),
        "bb_upper": _series(_pick(bb, "BBU_"), idx),
        "bb_percent": _series(_pick(bb, "BBP_"), idx),
        "bb_width": _series(_pick(bb, "BBB_"), idx),
        "atr_14": _series(ta.atr(h, low, c, length=14), idx),
        "natr_14": _series(ta.natr(h, low, c, length=14), idx),
        "adx_14": _series(_pick(adx, "ADX_"), idx),
        "obv": _series(ta.obv(c, v), idx),
        "vol_20": log_ret.rolling(20).std(ddof=1) * np.sqrt(252.0),
        "drawdown": c / c.cummax() - 1.0,
        "ret_1d": c.pct_change(fill_method=None),
        "ret_cum": c / c.iloc[0] - 1.0 if len(c) else c,
    }
    frame = pd.DataFrame({k: out[k].reindex(idx) for k in INDICATOR_COLUMNS}, index=idx)
    return frame.astype("float64")


def rows_through(index: pd.Index, as_of: date) -> int:
    """How many rows of the sorted ``index`` are on or before day ``as_of`` (before the next midnight).

    Equals ``index.searchsorted(pd.Timestamp(as_of) + pd.Timedelta(days=1))``; for a ``date`` and a
    time-zone-naive index it searches the index's datetime64 array directly (numpy converts the day to the
    index's unit exactly, and orders NaT as pandas does), ~5× cheaper: a replay cuts every frame every day.
    """
    if type(as_of) is date and isinstance(index, pd.DatetimeIndex) and index.tz is None:
        return int(np.searchsorted(index.values, np.datetime64(as_of, "D") + 1, side="left"))
    return int(index.searchsorted(pd.Timestamp(as_of) + pd.Timedelta(days=1), side="left"))


def cut_at(frame: pd.DataFrame, as_of: date | None) -> pd.DataFrame:
    """Rows on or before ``as_of`` (binary search on the sorted index; a view, no copy)."""
    if as_of is None:
        return frame
    return frame.iloc[: rows_through(frame.index, as_of)]


def indicators_as_of(ind: pd.DataFrame, as_of: date | None) -> dict[str, float | None]:
    """The last row on or before ``as_of`` as a dict; NaN → None; all None when no row qualifies."""
    return row_before(ind, len(ind) if as_of is None else rows_through(ind.index, as_of))


def row_before(ind: pd.DataFrame, end: int) -> dict[str, float | None]:
    """Row ``end - 1`` of ``ind`` as a dict (``indicators_as_of`` once the rows are counted); all None when end is 0."""
    if end == 0:
        return dict.fromkeys(ind.columns, None)
    # numpy, not ``iloc[-1]``: the context node and the market snapshot read every symbol's row every day
    last = ind.to_numpy(dtype="float64", copy=False)[end - 1].tolist()  # Python floats, as float() makes them
    return {str(k): (val if math.isfinite(val) else None) for k, val in zip(ind.columns.tolist(), last, strict=True)}


def correlation_matrix(closes: Mapping[str, pd.Series], as_of: date | None, window: int = 60) -> pd.DataFrame:
    """Pearson correlation of daily returns over the last ``window`` common days on or before ``as_of``.

    Series are aligned on the days they share (a 24/7 crypto series and a stock are compared on weekdays);
    a pair with fewer than ``window // 2`` common returns gets NaN.
    """
    # Only the tail can be in the last ``window`` common days: 3 × window rows of each series cover them even
    # when a 24/7 series meets a weekday one (3 × 61 calendar days hold more than 61 weekdays).
    if not closes:
        return pd.DataFrame()
    fast = _same_days_correlation(closes, as_of, window)
    if fast is not None:
        return fast
    cut = {s: cut_at(c.to_frame(), as_of).iloc[-3 * (window + 1) :, 0] for s, c in closes.items()}
    aligned = pd.concat(cut, axis=1, join="inner").sort_index()
    rets = aligned.pct_change(fill_method=None).iloc[1:].tail(window)
    return rets.corr(min_periods=max(2, window // 2))


def _same_days_correlation(closes: Mapping[str, pd.Series], as_of: date | None, window: int) -> pd.DataFrame | None:
    """``correlation_matrix`` in numpy when the last ``window + 1`` closes of every series fall on the same days
    and none is missing (a replay's usual day); None otherwise, and the general path aligns them.

    Same days and no NaN make the inner join a stack and pandas' pairwise ``corr`` a plain ``corrcoef``.
    """
    tails: dict[str, np.ndarray] = {}
    days: np.ndarray | None = None
    for symbol, series in closes.items():
        idx = series.index
        end = len(idx) if as_of is None else rows_through(idx, as_of)
        if end < window + 1:
            return None
        these = idx.asi8[end - window - 1 : end]
        if days is None:
            days = these
        elif not np.array_equal(days, these):
            return None
        tails[symbol] = series.to_numpy(dtype="float64")[end - window - 1 : end]
    prices = np.vstack(list(tails.values()))
    if not np.isfinite(prices).all() or (prices == 0).any():
        return None
    rets = prices[:, 1:] / prices[:, :-1] - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(rets) if len(tails) > 1 else np.ones((1, 1))
    names = list(tails)
    return pd.DataFrame(np.atleast_2d(corr), index=names, columns=names)
