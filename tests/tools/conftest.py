"""Fakes for the market-data tests: a recorded-answer yfinance ticker and a paging ccxt exchange.

Both serve the fixtures in tests/data/market (see its README) and record the calls they receive, so tests
can assert what was asked (pagination, tail-only fetches) as well as what came back.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tools.cache import MarketCache

DATA = Path(__file__).resolve().parents[1] / "data" / "market"
_TZ = {
    "SPY": "America/New_York",
    "MC.PA": "Europe/Paris",
    "EURUSD=X": "Europe/London",
    "USDEUR=X": "Europe/London",
}


def recorded_history(ticker: str) -> pd.DataFrame:
    """A fixture in the shape ``yf.Ticker(t).history(auto_adjust=False, actions=False)`` returns."""
    raw = pd.read_csv(DATA / f"yf_history_{ticker}.csv", index_col="Date")
    raw.index = pd.to_datetime(raw.index, utc=True).tz_convert(_TZ[ticker]).rename("Date")
    return raw


class FakeTicker:
    def __init__(self, owner: FakeYahoo, symbol: str) -> None:
        self.owner, self.symbol = owner, symbol

    def history(self, **kwargs: Any) -> pd.DataFrame:
        import yfinance as yf
        from yfinance.exceptions import YFPricesMissingError, YFTzMissingError

        self.owner.calls.append((self.symbol, kwargs))
        self.owner.hide_exceptions_seen.append(yf.config.debug.hide_exceptions)
        queued = self.owner.errors.get(self.symbol)
        if queued:
            raise queued.pop(0)
        if self.symbol not in self.owner.recorded:
            raise YFTzMissingError(self.symbol)  # what yfinance 1.7 raises for an unknown ticker
        df = self.owner.recorded[self.symbol]
        if "start" in kwargs:
            df = df[df.index.tz_localize(None) >= pd.Timestamp(kwargs["start"])]
        if "end" in kwargs:
            df = df[df.index.tz_localize(None) < pd.Timestamp(kwargs["end"])]  # end is exclusive
        if df.empty:
            raise YFPricesMissingError(self.symbol, "")
        return df.copy()


class FakeYahoo:
    """Stands in for ``yfinance.Ticker``: ``FakeYahoo(...)("SPY").history(...)``."""

    def __init__(self, tickers: tuple[str, ...] = ("SPY", "MC.PA", "EURUSD=X", "USDEUR=X")) -> None:
        self.recorded = {t: recorded_history(t) for t in tickers}
        self.errors: dict[str, list[BaseException]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.hide_exceptions_seen: list[bool] = []

    def __call__(self, symbol: str) -> FakeTicker:
        return FakeTicker(self, symbol)


class FakeExchange:
    """A ccxt exchange serving recorded daily candles ``page_size`` at a time from ``since``."""

    def __init__(self, page_size: int = 30, fail: BaseException | None = None) -> None:
        recorded = json.loads((DATA / "ccxt_kraken_BTC-EUR_1d.json").read_text())
        self.symbol = recorded["symbol"]
        self.candles: list[list[float]] = recorded["candles"]
        self.page_size = page_size
        self.fail = fail
        self.calls: list[int | None] = []

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None, limit: int | None
    ) -> list[list[float]]:
        import ccxt

        assert timeframe == "1d"
        self.calls.append(since)
        if self.fail is not None:
            raise self.fail
        if symbol != self.symbol:
            raise ccxt.BadSymbol(f"kraken does not have market symbol {symbol}")
        rows = [c for c in self.candles if since is None or c[0] >= since]
        return [list(c) for c in rows[: min(limit or 10**9, self.page_size)]]


def fixed_clock(year: int, month: int, day: int, hour: int = 12) -> Any:
    moment = datetime(year, month, day, hour, tzinfo=UTC)
    return lambda: moment


@pytest.fixture
def cache(tmp_path: Path) -> Any:
    with MarketCache(tmp_path / "tradeagent.duckdb") as c:
        yield c


@pytest.fixture
def fake_yahoo() -> FakeYahoo:
    return FakeYahoo()
