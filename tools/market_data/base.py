"""The ``MarketData`` protocol and the one frame shape every provider returns.

Frame contract (checked by ``normalise``): a ``DatetimeIndex`` named ``date``, tz-naive, normalised to
midnight, sorted, with float64 columns ``open, high, low, close, volume``. Each day appears once, except a
day whose rows DISAGREE: those rows all stay (``conflicting_days`` finds them) so that the cache can record
the conflict and the validation gate can refuse the symbol (``conflicting_duplicate``).

Deliberate decisions:
- A tz-aware index (yfinance) keeps its *local* calendar day (``tz_localize(None)``), not the UTC day:
  a Tokyo or Paris daily bar belongs to its exchange's date.
- Identical repeats of a day collapse silently (a page overlap). Rows of one day that differ are kept:
  which one is true is unknowable, and keeping the last one silently (as before) hid a broken file.
- Missing volume becomes 0.0 (FX and indices often have none); missing prices stay NaN so the
  validation gate can reject them rather than having them papered over here.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from tools.models import Instrument

COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")


@runtime_checkable
class MarketData(Protocol):
    """A source of daily OHLCV bars. ``start``/``end`` are inclusive; ``None`` means unbounded."""

    name: str

    def fetch(self, instrument: Instrument, start: date | None, end: date | None) -> pd.DataFrame: ...


def empty_frame() -> pd.DataFrame:
    index = pd.DatetimeIndex([], dtype="datetime64[ns]", name="date")
    return pd.DataFrame({c: pd.Series([], dtype="float64", index=index) for c in COLUMNS}, index=index)


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Bring an OHLCV frame with any-case column names and a datetime-like index to the contract shape."""
    if df.empty:
        return empty_frame()
    lower = {str(c).strip().lower(): c for c in df.columns}
    out = pd.DataFrame({c: pd.to_numeric(df[lower[c]], errors="coerce") for c in COLUMNS if c in lower})
    for c in COLUMNS:
        if c not in out:
            out[c] = np.nan
    out = out[list(COLUMNS)].astype("float64")
    out["volume"] = out["volume"].fillna(0.0)
    index = pd.DatetimeIndex(df.index)
    if index.tz is not None:
        index = index.tz_localize(None)
    out.index = index.normalize().astype("datetime64[ns]").rename("date")
    out = out[~out.index.isna()].sort_index(kind="stable")
    if out.index.has_duplicates:  # drop exact repeats only (same day, same values; NaN equals NaN here)
        out = out[~out.reset_index().duplicated(keep="last").to_numpy()]
    return out


def conflicting_days(df: pd.DataFrame) -> pd.DatetimeIndex:
    """Days that carry two or more DIFFERENT rows (identical repeats are not a conflict)."""
    if not df.index.has_duplicates:
        return pd.DatetimeIndex([], name=df.index.name)
    distinct = df.reset_index().drop_duplicates()
    first = distinct.columns[0]
    return pd.DatetimeIndex(distinct.loc[distinct[first].duplicated(), first].unique(), name=df.index.name)


def cut(df: pd.DataFrame, start: date | None = None, end: date | None = None) -> pd.DataFrame:
    """Rows whose day lies in ``[start, end]`` (inclusive), for a normalised frame."""
    if start is not None:
        df = df[df.index >= pd.Timestamp(start)]
    if end is not None:
        df = df[df.index <= pd.Timestamp(end)]
    return df
