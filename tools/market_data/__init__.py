"""Market data providers behind one protocol, and ``provider_for(source)`` to pick one.

Sources (the ``source`` field of an instrument): ``sample`` | ``csv:PATH`` | ``yfinance`` |
``ccxt:EXCHANGE`` | ``synthetic`` (or ``synthetic:SEED``). Every provider returns the same frame shape
(see ``tools.market_data.base``). ``is_local`` says whether a source is cheap and offline, which the
loader uses to decide what to re-read on every run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from tools.errors import DataError
from tools.market_data.base import COLUMNS, MarketData, cut, empty_frame, normalise
from tools.market_data.crypto import CcxtData
from tools.market_data.csv_file import CsvData, read_ohlcv_file
from tools.market_data.sample import SAMPLE_SYMBOLS, SampleData, sample_frame
from tools.market_data.synthetic import SyntheticData, synthetic_frame
from tools.market_data.yahoo import YFinanceData

__all__ = [
    "COLUMNS",
    "SAMPLE_SYMBOLS",
    "CcxtData",
    "CsvData",
    "MarketData",
    "SampleData",
    "SyntheticData",
    "YFinanceData",
    "cut",
    "empty_frame",
    "is_local",
    "normalise",
    "provider_for",
    "read_ohlcv_file",
    "sample_frame",
    "synthetic_frame",
]

_KNOWN = "sample | csv:PATH | yfinance | ccxt:EXCHANGE | synthetic[:SEED]"


def is_local(source: str) -> bool:
    return source == "sample" or source.startswith(("csv:", "synthetic"))


def provider_for(source: str, *, clock: Callable[[], datetime] | None = None, **kwargs: Any) -> MarketData:
    """The provider for an instrument's ``source`` string. Unknown source → ``DataError``."""
    kind, _, arg = source.partition(":")
    if kind == "sample" and not arg:
        return SampleData()
    if kind == "csv" and arg:
        return CsvData(arg)
    if kind == "yfinance" and not arg:
        return YFinanceData(clock=clock, **kwargs)
    if kind == "ccxt" and arg:
        return CcxtData(arg, clock=clock, **kwargs)
    if kind == "synthetic":
        if not arg:
            return SyntheticData()
        if arg.isdigit():
            return SyntheticData(int(arg))
    raise DataError(f"unknown data source {source!r}; expected {_KNOWN}")
