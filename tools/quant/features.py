"""Features and labels for the quant models: symbol-agnostic, causal, computed once per symbol.

Contract:
- ``symbol_features(bars)`` returns one row per bar with ``FEATURE_COLUMNS`` (floats; NaN during warm-up).
  Every column on day D reads bars up to D only, so a full-series computation sliced at D equals a
  computation on bars cut at D (tests perturb every bar after D and compare). Indicators come from
  ``tools.indicators.compute_indicators`` (pandas-ta-classic), passed in precomputed when the caller has them.
- Features are ratios, returns and bounded oscillators, never prices or volumes themselves, so one model can
  pool every symbol of a universe (``close / sma_50 - 1``, not ``sma_50``).
- ``labels(bars, rule)``: class of the forward return over ``rule.horizon`` sessions of the symbol's own bars
  (SELL 0 / HOLD 1 / BUY 2), and ``label_end``, the day that return becomes known. No label without it.
- ``build_dataset`` pools symbols into one frame (``symbol, date, label, label_end`` + features), keeping only
  rows whose features are all finite (the warm-up is dropped, never imputed).
- Purging: a training window ending at E takes only rows whose ``label_end <= E`` (``in_window``), i.e. rows
  at least ``horizon`` sessions before E; a validation split drops the rows whose label reaches into it.

Deliberate decisions:
- Volume-derived features are 0 (neutral) where a series has no volume (indices from some sources, FX):
  otherwise one volume-less symbol would lose every row.
- XGBoost needs no scaler (trees split on order). ``fit_scaler`` exists for kinds that do (PPO) and, like
  anything fitted, is fitted on training rows only (the caller passes only those rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import numpy as np
import pandas as pd

from tools.indicators import compute_indicators
from tools.quant.models import LabelRule

RETURN_HORIZONS: tuple[int, ...] = (1, 5, 10, 20, 60, 120)
RETURN_LAGS: tuple[int, ...] = (1, 2, 3, 4)
_IND = (
    "px_sma20", "px_sma50", "px_sma200", "sma20_sma50", "sma50_sma200", "ema12_ema26", "rsi14", "rsi14_chg5",
    "macd_n", "macd_signal_n", "macd_hist_n", "bb_percent", "bb_width", "natr14", "adx14", "vol20", "drawdown",
)  # fmt: skip
_ROLL = ("mean5", "mean20", "std5", "std20", "std60", "skew60", "std5_std60", "zclose20", "hl_range", "hl_range5", "gap")
_VOL = ("volume_ratio20", "obv_slope20")
FEATURE_COLUMNS: tuple[str, ...] = (
    *_IND,
    *(f"ret{h}" for h in RETURN_HORIZONS),
    *(f"ret1_lag{k}" for k in RETURN_LAGS),
    *_ROLL,
    *_VOL,
)


def symbol_features(bars: pd.DataFrame, indicators: pd.DataFrame | None = None) -> pd.DataFrame:
    """``FEATURE_COLUMNS`` for one symbol's OHLCV bars (same index); ``indicators`` must match ``bars``' index."""
    ind = compute_indicators(bars) if indicators is None else indicators.reindex(bars.index)
    o, h, low, c, v = (bars[k].astype("float64") for k in ("open", "high", "low", "close", "volume"))
    lr = np.log(c).diff()
    f: dict[str, pd.Series] = {
        "px_sma20": c / ind["sma_20"] - 1.0,
        "px_sma50": c / ind["sma_50"] - 1.0,
        "px_sma200": c / ind["sma_200"] - 1.0,
        "sma20_sma50": ind["sma_20"] / ind["sma_50"] - 1.0,
        "sma50_sma200": ind["sma_50"] / ind["sma_200"] - 1.0,
        "ema12_ema26": ind["ema_12"] / ind["ema_26"] - 1.0,
        "rsi14": ind["rsi_14"] / 100.0,
        "rsi14_chg5": ind["rsi_14"].diff(5) / 100.0,
        "macd_n": ind["macd"] / c,
        "macd_signal_n": ind["macd_signal"] / c,
        "macd_hist_n": ind["macd_hist"] / c,
        "bb_percent": ind["bb_percent"],
        "bb_width": ind["bb_width"] / 100.0,
        "natr14": ind["natr_14"] / 100.0,
        "adx14": ind["adx_14"] / 100.0,
        "vol20": ind["vol_20"],
        "drawdown": ind["drawdown"],
    }
    for n in RETURN_HORIZONS:
        f[f"ret{n}"] = np.log(c / c.shift(n))
    for k in RETURN_LAGS:
        f[f"ret1_lag{k}"] = lr.shift(k)
    mean20, std20 = c.rolling(20).mean(), c.rolling(20).std(ddof=1)
    f |= {
        "mean5": lr.rolling(5).mean(),
        "mean20": lr.rolling(20).mean(),
        "std5": lr.rolling(5).std(ddof=1),
        "std20": lr.rolling(20).std(ddof=1),
        "std60": lr.rolling(60).std(ddof=1),
        "skew60": lr.rolling(60).skew(),
        "std5_std60": lr.rolling(5).std(ddof=1) / lr.rolling(60).std(ddof=1),
        "zclose20": (c - mean20) / std20,
        "hl_range": (h - low) / c,
        "hl_range5": ((h - low) / c).rolling(5).mean(),
        "gap": o / c.shift(1) - 1.0,
    }
    vol_sum20 = v.rolling(20).sum()
    has_volume = vol_sum20 > 0
    f["volume_ratio20"] = (v / (vol_sum20 / 20.0) - 1.0).where(has_volume, 0.0)
    f["obv_slope20"] = (ind["obv"].diff(20) / vol_sum20).where(has_volume, 0.0)
    frame = pd.DataFrame({k: f[k] for k in FEATURE_COLUMNS}, index=bars.index).astype("float64")
    return frame.replace([np.inf, -np.inf], np.nan)


def labels(bars: pd.DataFrame, rule: LabelRule) -> pd.DataFrame:
    """``label`` (0 SELL, 1 HOLD, 2 BUY; NaN when the window runs past the data) and ``label_end`` per bar."""
    c = bars["close"].astype("float64")
    fwd = c.shift(-rule.horizon) / c - 1.0
    label = pd.Series(1.0, index=bars.index).where(fwd.notna())
    label = label.mask(fwd > rule.threshold, 2.0).mask(fwd < -rule.threshold, 0.0)
    end = pd.Series(bars.index, index=bars.index).shift(-rule.horizon)
    return pd.DataFrame({"label": label, "label_end": end.where(fwd.notna())}, index=bars.index)


def precompute_features(
    bars: Mapping[str, pd.DataFrame], indicators: Mapping[str, pd.DataFrame] | None = None
) -> dict[str, pd.DataFrame]:
    """Features of every symbol over its whole span, once (a replay then slices them at each day)."""
    return {s: symbol_features(b, None if indicators is None else indicators.get(s)) for s, b in bars.items()}


def build_dataset(
    bars: Mapping[str, pd.DataFrame],
    rule: LabelRule,
    features: Mapping[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Every symbol's rows with finite features, pooled and sorted by (date, symbol); labels may be NaN."""
    parts = []
    for symbol in sorted(bars):
        b = bars[symbol]
        feats = features[symbol] if features is not None else symbol_features(b)
        part = pd.concat([feats, labels(b, rule)], axis=1)
        part = part[np.isfinite(feats.to_numpy()).all(axis=1)]
        part.insert(0, "date", part.index)
        part.insert(0, "symbol", symbol)
        parts.append(part.reset_index(drop=True))
    if not parts:
        return pd.DataFrame(columns=["symbol", "date", *FEATURE_COLUMNS, "label", "label_end"])
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)


def in_window(ds: pd.DataFrame, start: date | pd.Timestamp | None, end: date | pd.Timestamp) -> np.ndarray:
    """Rows a training window [start, end] may use: labelled, ``date >= start`` and ``label_end <= end``."""
    mask = ds["label"].notna().to_numpy() & (ds["label_end"] <= pd.Timestamp(end)).to_numpy()
    if start is not None:
        mask &= (ds["date"] >= pd.Timestamp(start)).to_numpy()
    return mask


def split_validation(ds: pd.DataFrame, rows: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Time-ordered, purged split of ``rows`` (a mask): the last ``fraction`` of days validate; fit rows are
    those whose label is known before the first validation day. Returns (fit mask, validation mask)."""
    days = np.unique(ds["date"].to_numpy()[rows])
    if len(days) < 2:
        return rows.copy(), np.zeros_like(rows)
    first_val = days[min(len(days) - 1, max(1, int(len(days) * (1.0 - fraction))))]
    val = rows & (ds["date"] >= first_val).to_numpy()
    fit = rows & (ds["label_end"] < first_val).to_numpy()
    return fit, val


def features_as_of(features: Mapping[str, pd.DataFrame], as_of: date) -> tuple[pd.DataFrame, dict[str, str]]:
    """Each symbol's last feature row on or before ``as_of`` (index: symbol, column ``feature_date``).

    A symbol with no bar by then, or whose last row is still in warm-up (a NaN feature), is returned in the
    second value with the reason instead.
    """
    rows, dates, skipped = [], [], {}
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    for symbol, frame in features.items():
        i = int(frame.index.searchsorted(end, side="left"))
        if i == 0:
            skipped[symbol] = f"no bar on or before {as_of}"
            continue
        row = frame.iloc[i - 1]
        if not np.isfinite(row.to_numpy(dtype="float64")).all():
            skipped[symbol] = f"features still warming up on {frame.index[i - 1].date()} (needs ~200 bars)"
            continue
        rows.append(row.rename(symbol))
        dates.append(frame.index[i - 1])
    out = pd.DataFrame(rows, columns=list(FEATURE_COLUMNS))
    out["feature_date"] = pd.DatetimeIndex(dates) if dates else pd.DatetimeIndex([])
    return out, skipped


def fit_scaler(train: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Per-column (mean, std) of the TRAINING rows only; a constant column gets std 1."""
    return {
        str(col): (float(train[col].mean()), float(train[col].std(ddof=0)) or 1.0) for col in train.columns
    }


def apply_scaler(frame: pd.DataFrame, scaler: Mapping[str, tuple[float, float]]) -> pd.DataFrame:
    return pd.DataFrame({c: (frame[c] - m) / s for c, (m, s) in scaler.items()}, index=frame.index)
