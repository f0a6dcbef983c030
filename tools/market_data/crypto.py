"""``ccxt:EXCHANGE``: daily candles from a crypto exchange via ccxt (e.g. ``ccxt:kraken``, ``BTC/EUR``).

Deliberate decisions:
- Pagination: ``fetch_ohlcv(symbol, "1d", since, limit)`` is called with ``since`` moved past the last
  candle received, until a page is empty, makes no progress, or reaches ``end``. Exchanges cap pages
  differently (Kraken returns at most the last 720 candles whatever ``since`` says); the loop copes.
- The still-forming candle is dropped: any candle whose UTC day is today or later (per the injected
  clock) is not a finished bar, and caching it would freeze a partial close into history.
- Candle days are UTC days (ccxt timestamps are UTC milliseconds); crypto trades 24/7, so the series
  has weekends: its calendar is ``24/7`` (``tools.calendars.calendar_for``), which the validation gate uses.
- ``ccxt.BadSymbol`` → ``UnknownSymbolError``; ``ccxt.NetworkError`` (timeouts, rate limits, exchange
  down) and other exchange errors → ``DataUnavailableError``, so the caller falls back to the cache.
- The exchange object is created lazily with ccxt's own rate limiter on and a 15 s timeout; tests inject a
  fake one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from tools.errors import DataError, DataUnavailableError, UnknownSymbolError
from tools.market_data.base import cut, empty_frame, normalise
from tools.models import Instrument

_DAY_MS = 86_400_000
_DEFAULT_START = date(2010, 1, 1)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def make_exchange(exchange_id: str) -> Any:
    import ccxt

    if exchange_id not in ccxt.exchanges:
        raise DataError(f"unknown ccxt exchange {exchange_id!r} (see ccxt.exchanges)")
    return getattr(ccxt, exchange_id)({"enableRateLimit": True, "timeout": 15_000})


class CcxtData:
    def __init__(
        self,
        exchange_id: str,
        *,
        exchange: Any | None = None,
        clock: Callable[[], datetime] | None = None,
        page_limit: int = 720,
        max_pages: int = 500,
    ) -> None:
        self.exchange_id = exchange_id
        self.name = f"ccxt:{exchange_id}"
        self._exchange = exchange
        self._clock = clock or _utc_now
        self._page_limit = page_limit
        self._max_pages = max_pages

    @property
    def exchange(self) -> Any:
        if self._exchange is None:
            self._exchange = make_exchange(self.exchange_id)
        return self._exchange

    def _pages(self, symbol: str, since: int, stop_ms: int) -> list[list[Any]]:
        import ccxt

        rows: list[list[Any]] = []
        for _ in range(self._max_pages):
            try:
                page = self.exchange.fetch_ohlcv(symbol, "1d", since, self._page_limit)
            except ccxt.BadSymbol:
                raise UnknownSymbolError(f"{self.name} does not list {symbol!r}") from None
            except ccxt.NetworkError as exc:
                raise DataUnavailableError(
                    f"{self.name} unreachable for {symbol} ({type(exc).__name__})"
                ) from None
            except ccxt.BaseError as exc:
                raise DataUnavailableError(
                    f"{self.name} refused {symbol} ({type(exc).__name__}: {str(exc)[:160]})"
                ) from None
            if not page:
                break
            rows.extend(page)
            last = int(page[-1][0])
            if last < since or last >= stop_ms:
                break
            since = last + _DAY_MS
        return rows

    def fetch(self, instrument: Instrument, start: date | None, end: date | None) -> pd.DataFrame:
        symbol = instrument.symbol
        today = self._clock().astimezone(UTC).date()
        # Yesterday's candle is the last finished one: once a page reaches it there is nothing more to ask.
        stop_ms = _ms(today) - _DAY_MS
        if end is not None:
            stop_ms = min(stop_ms, _ms(end))
        rows = self._pages(symbol, _ms(start or _DEFAULT_START), stop_ms)
        if not rows:
            if start is not None:
                return empty_frame()
            raise UnknownSymbolError(f"{self.name} returned no candles for {symbol!r}")
        raw = pd.DataFrame([r[:6] for r in rows], columns=["ts", "open", "high", "low", "close", "volume"])
        raw.index = pd.to_datetime(raw.pop("ts").astype("int64"), unit="ms", utc=True)
        frame = normalise(raw)
        frame = frame[frame.index < pd.Timestamp(today)]  # drop the still-forming candle
        return cut(frame, start, end)
