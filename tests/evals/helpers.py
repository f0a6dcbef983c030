"""Small synthetic inputs for the eval tests: equity curves and OHLCV bars that are pure functions of a seed."""

from __future__ import annotations

import numpy as np
import pandas as pd


def sessions(n: int, start: str = "2020-01-02") -> pd.DatetimeIndex:
    return pd.bdate_range(start, periods=n, name="date")


def curve(values: list[float] | np.ndarray, start: str = "2020-01-02") -> pd.Series:
    v = np.asarray(values, dtype="float64")
    return pd.Series(v, index=sessions(len(v), start), name="equity")


def random_curve(n: int = 750, seed: int = 0, drift: float = 0.0004, vol: float = 0.01, start: float = 100_000.0) -> pd.Series:
    r = np.random.default_rng(seed).normal(drift, vol, n - 1)
    return curve(start * np.concatenate([[1.0], np.cumprod(1.0 + r)]))


def bars(closes: list[float] | np.ndarray, opens: list[float] | np.ndarray | None = None,
         index: pd.DatetimeIndex | None = None) -> pd.DataFrame:
    c = np.asarray(closes, dtype="float64")
    o = c.copy() if opens is None else np.asarray(opens, dtype="float64")
    idx = sessions(len(c)) if index is None else index
    return pd.DataFrame({"open": o, "high": np.maximum(o, c), "low": np.minimum(o, c), "close": c,
                         "volume": 1e6}, index=idx)


def random_bars(n_symbols: int, days: int, seed: int = 0, start: str = "2020-01-02") -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    idx = sessions(days, start)
    out = {}
    for i in range(n_symbols):
        c = 50.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, days)))
        o = c * np.exp(rng.normal(0.0, 0.003, days))
        out[f"S{i:02d}"] = bars(c, o, idx)
    return out
