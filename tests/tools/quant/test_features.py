"""Features are causal and symbol-agnostic; labels and training windows never reach past their end."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import numpy as np
import pandas as pd
import pytest

from tools.quant.features import (
    FEATURE_COLUMNS,
    apply_scaler,
    build_dataset,
    fit_scaler,
    in_window,
    labels,
    split_validation,
    symbol_features,
)
from tools.quant.models import LabelRule

D = pd.Timestamp("2006-06-30")


def _garbage_after(bars: pd.DataFrame, day: pd.Timestamp, seed: int = 1) -> pd.DataFrame:
    """Every bar after ``day`` replaced by random (but valid) prices and volumes."""
    out = bars.copy()
    after = out.index > day
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.3, 3.0, after.sum())
    for col in ("open", "high", "low", "close"):
        out.loc[after, col] = out.loc[after, col] * scale
    out.loc[after, "volume"] = rng.uniform(1e3, 1e9, after.sum())
    return out


@pytest.mark.parametrize("symbol", ["SP500", "GOOG"])
def test_garbage_after_d_leaves_every_feature_up_to_d_unchanged(demo_bars: Mapping[str, pd.DataFrame], symbol: str) -> None:
    bars = demo_bars[symbol]
    clean, dirty = symbol_features(bars), symbol_features(_garbage_after(bars, D))
    pd.testing.assert_frame_equal(clean.loc[:D], dirty.loc[:D], check_exact=True)
    assert not clean.loc[D:].iloc[1:].equals(dirty.loc[D:].iloc[1:])  # the perturbation did reach the features


def test_features_are_the_same_whatever_the_price_level(demo_bars: Mapping[str, pd.DataFrame]) -> None:
    bars = demo_bars["SP500"]
    scaled = bars.assign(**{c: bars[c] * 37.0 for c in ("open", "high", "low", "close")}, volume=bars["volume"] * 0.01)
    a, b = symbol_features(bars).dropna(), symbol_features(scaled).dropna()
    pd.testing.assert_frame_equal(a, b, rtol=1e-6, atol=1e-9)


def test_a_series_without_volume_keeps_its_rows(demo_bars: Mapping[str, pd.DataFrame]) -> None:
    bars = demo_bars["SP500"].assign(volume=0.0)
    feats = symbol_features(bars)
    assert (feats[["volume_ratio20", "obv_slope20"]] == 0.0).all().all()
    assert np.isfinite(feats.iloc[250:].to_numpy()).all()


def test_labels_follow_the_rule_and_end_h_sessions_later() -> None:
    idx = pd.bdate_range("2020-01-01", periods=8)
    close = pd.Series([100, 103, 100, 97, 100, 100.5, 100, 100], index=idx, dtype=float)
    bars = pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": 1.0})
    out = labels(bars, LabelRule(horizon=1, threshold=0.02))
    # 100→103 BUY, 103→100 SELL (-2.9%), 100→97 SELL, 97→100 BUY (+3.1%), 100→100.5 HOLD, …, last: unknown
    assert out["label"].tolist()[:7] == [2.0, 0.0, 0.0, 2.0, 1.0, 1.0, 1.0]
    assert np.isnan(out["label"].iloc[-1]) and pd.isna(out["label_end"].iloc[-1])
    assert (out["label_end"].iloc[:-1] == idx[1:]).all()
    h3 = labels(bars, LabelRule(horizon=3, threshold=0.02))
    assert h3["label"].notna().sum() == 5 and h3["label_end"].iloc[0] == idx[3]


def test_a_training_window_ending_at_e_uses_no_row_after_e_minus_h_sessions(demo_bars: Mapping[str, pd.DataFrame]) -> None:
    rule = LabelRule(horizon=5)
    ds = build_dataset(demo_bars, rule)
    end = pd.Timestamp("2008-09-15")
    used = ds[in_window(ds, None, end)]
    assert (used["label_end"] <= end).all()
    for symbol, rows in used.groupby("symbol"):
        index = demo_bars[str(symbol)].index
        last_allowed = index[index.searchsorted(end, side="right") - 1 - rule.horizon]
        assert rows["date"].max() == last_allowed  # as late as allowed, and never later: the purge is exact


def test_the_validation_split_is_purged_and_time_ordered(demo_bars: Mapping[str, pd.DataFrame]) -> None:
    ds = build_dataset(demo_bars, LabelRule(horizon=5))
    rows = in_window(ds, date(2005, 1, 1), date(2007, 12, 31))
    fit, val = split_validation(ds, rows, 0.2)
    first_val = ds.loc[val, "date"].min()
    assert ds.loc[fit, "label_end"].max() < first_val  # no fit label reaches into validation
    assert ds.loc[fit, "date"].max() < first_val and not (fit & val).any()
    assert not (fit & ~rows).any() and not (val & ~rows).any()
    purged = rows & ~fit & ~val
    assert 0 < purged.sum() <= 5 * 3  # at most h sessions per symbol are dropped
    assert 0.15 < val.sum() / rows.sum() < 0.25


def test_the_dataset_pools_symbols_with_complete_features_only(demo_bars: Mapping[str, pd.DataFrame]) -> None:
    ds = build_dataset(demo_bars, LabelRule())
    assert set(ds["symbol"]) == {"SP500", "NASDAQ", "GOOG"}
    assert np.isfinite(ds[list(FEATURE_COLUMNS)].to_numpy()).all()
    assert ds["date"].is_monotonic_increasing
    first = ds.groupby("symbol")["date"].min()
    assert first["GOOG"] > pd.Timestamp("2005-05-01")  # GOOG listed 2004-08: ~200 bars of warm-up dropped


def test_a_scaler_is_fitted_on_the_rows_it_is_given_only(demo_bars: Mapping[str, pd.DataFrame]) -> None:
    feats = symbol_features(demo_bars["SP500"]).dropna()
    train = feats.loc[:"2005-12-31"]
    scaler = fit_scaler(train)
    assert scaler == fit_scaler(symbol_features(_garbage_after(demo_bars["SP500"], pd.Timestamp("2005-12-31"))).dropna().loc[:"2005-12-31"])
    z = apply_scaler(train, scaler)
    assert np.allclose(z.mean(), 0.0, atol=1e-9) and np.allclose(z.std(ddof=0), 1.0)
