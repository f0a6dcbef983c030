"""``sample``: real daily history that ships inside installed PyPI packages (works offline).

- ``SP500``  S&P 500 index, 1999-01-04 … 2018-12-31, from ``arch.data.sp500.load()``
- ``NASDAQ`` NASDAQ Composite, 1999-01-04 … 2018-12-31, from ``arch.data.nasdaq.load()``
- ``GOOG``   Alphabet (Google) shares, 2004-08-19 … 2013-03-01, from ``backtesting.test.GOOG``

Decision: we use the plain ``Open/High/Low/Close`` columns and ignore arch's ``Adj Close``. For the two
indices it is identical to ``Close`` (a price index pays no dividends: checked, max difference 0.0),
and using the unadjusted column keeps OHLC mutually consistent (an adjusted close with unadjusted
high/low can fall outside the bar). The datasets are loaded once per process (they are immutable).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import cache

import pandas as pd

from tools.errors import UnknownSymbolError
from tools.market_data.base import cut, normalise
from tools.models import Instrument


def _sp500() -> pd.DataFrame:
    from arch.data import sp500

    return sp500.load()


def _nasdaq() -> pd.DataFrame:
    from arch.data import nasdaq

    return nasdaq.load()


def _goog() -> pd.DataFrame:
    # Imported lazily: backtesting pulls in bokeh, ~1 s we only pay when GOOG is asked for.
    from backtesting.test import GOOG

    return GOOG


_LOADERS: dict[str, Callable[[], pd.DataFrame]] = {"SP500": _sp500, "NASDAQ": _nasdaq, "GOOG": _goog}
SAMPLE_SYMBOLS: tuple[str, ...] = tuple(_LOADERS)


@cache
def _load(symbol: str) -> pd.DataFrame:
    return normalise(_LOADERS[symbol]())


def sample_frame(symbol: str) -> pd.DataFrame:
    """The full normalised sample series (a copy), for callers that need the raw history."""
    if symbol not in _LOADERS:
        raise UnknownSymbolError(
            f"unknown sample symbol {symbol!r}; sample symbols: {', '.join(SAMPLE_SYMBOLS)}"
        )
    return _load(symbol).copy()


class SampleData:
    name = "sample"

    def fetch(self, instrument: Instrument, start: date | None, end: date | None) -> pd.DataFrame:
        return cut(sample_frame(instrument.symbol), start, end)
