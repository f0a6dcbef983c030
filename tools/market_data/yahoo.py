"""``yfinance``: daily bars from Yahoo Finance (stocks ``MC.PA``, ETFs ``SPY``, FX ``EURUSD=X``).

Deliberate decisions:
- ``auto_adjust=False``: we keep Yahoo's traded OHLC (split-adjusted by Yahoo, not dividend-adjusted).
  Dividend back-adjustment rewrites *past* prices every time a dividend is paid, so bars cached last month
  would disagree with bars fetched today and a replay would see prices nobody could trade at. The cost:
  returns ignore dividends (documented in the README). A split after the cached history shows up as a
  jump, which the validation gate rejects until the cache is refreshed from scratch.
- ``Ticker.history`` rather than ``yf.download``: one ticker per call, plain columns, no threads.
- ``raise_errors=True`` is deprecated in yfinance 1.7 (it warns); the supported switch is
  ``yf.config.debug.hide_exceptions = False``, set only for the duration of our call and then restored,
  so errors reach us as exceptions instead of log lines and empty frames.
- Rate limits (``YFRateLimitError``) are retried a bounded number of times with exponential backoff
  (``tenacity``: ``base_delay``, then doubled, each wait capped at ``BACKOFF_CAP``; nothing else is retried);
  anything network-shaped becomes
  ``DataUnavailableError`` (the caller falls back to the cache).
- "Unknown ticker": Yahoo reports no timezone for it (``YFTzMissingError``). An empty answer for the
  *whole* history also means unknown; an empty answer for a window (``start`` given) only means no
  sessions in that window (a weekend, a holiday), so it returns an empty frame.
- The still-forming bar is dropped: during a session Yahoo returns today's unfinished bar. Any bar dated
  after the ticker's last *closed* session at the injected clock (``tools.calendars``: calendar by ticker
  suffix, ``=X`` FX by UTC day) is not a finished bar; a run after the close keeps that day's bar. A bar on
  a holiday after the last closed session goes too. Dropping it can leave a window empty: that is "no
  finished bars yet", an empty frame, not an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import tenacity

from tools.calendars import calendar_for, last_closed_session
from tools.errors import DataUnavailableError, UnknownSymbolError
from tools.market_data.base import cut, empty_frame, normalise
from tools.models import Instrument

# One wait never exceeds this: past a minute, falling back to the cache serves a daily run better than waiting.
BACKOFF_CAP = 60.0


@contextmanager
def _exceptions_raised() -> Iterator[None]:
    import yfinance as yf

    # yfinance also logs its retries (e.g. "Cookie/crumb fetch failed") as warnings on stderr; we report
    # failures ourselves as one line, so its logger is quietened for the call.
    log = logging.getLogger("yfinance")
    previous, previous_level = yf.config.debug.hide_exceptions, log.level
    yf.config.debug.hide_exceptions = False
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        yf.config.debug.hide_exceptions = previous
        log.setLevel(previous_level)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _default_ticker(symbol: str) -> Any:
    import yfinance as yf

    return yf.Ticker(symbol)


class YFinanceData:
    name = "yfinance"

    def __init__(
        self,
        *,
        ticker_factory: Callable[[str], Any] | None = None,
        max_retries: int = 3,
        base_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 15.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._ticker = ticker_factory or _default_ticker
        self._max_retries = max_retries
        self._base_delay = base_delay
        self._sleep = sleep
        self._timeout = timeout
        self._clock = clock or _utc_now

    def _history(self, symbol: str, start: date | None, end: date | None) -> pd.DataFrame:
        kwargs: dict[str, Any] = {
            "interval": "1d",
            "auto_adjust": False,
            "actions": False,
            "timeout": self._timeout,
        }
        if start is None and end is None:
            kwargs["period"] = "max"  # without it yfinance returns one month
        else:
            kwargs["start"] = (start or date(1970, 1, 2)).isoformat()
            if end is not None:
                kwargs["end"] = (end + timedelta(days=1)).isoformat()  # yfinance's end is exclusive
        with _exceptions_raised():
            return self._ticker(symbol).history(**kwargs)

    def fetch(self, instrument: Instrument, start: date | None, end: date | None) -> pd.DataFrame:
        from yfinance.exceptions import (
            YFDataException,
            YFPricesMissingError,
            YFRateLimitError,
            YFTickerMissingError,
            YFTzMissingError,
        )

        symbol = instrument.symbol
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(YFRateLimitError),
            wait=tenacity.wait_exponential(multiplier=self._base_delay, exp_base=2, max=BACKOFF_CAP),
            stop=tenacity.stop_after_attempt(self._max_retries + 1),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            raw = retrying(self._history, symbol, start, end)
        except YFRateLimitError:
            raise DataUnavailableError(
                f"yfinance rate-limited {symbol} after {self._max_retries + 1} attempts"
            ) from None
        except YFTzMissingError:
            raise UnknownSymbolError(f"yfinance does not know ticker {symbol!r}") from None
        except YFPricesMissingError:
            if start is not None:
                return empty_frame()
            raise UnknownSymbolError(f"yfinance has no price history for ticker {symbol!r}") from None
        except YFTickerMissingError as exc:
            raise UnknownSymbolError(f"yfinance: {exc}") from None
        except YFDataException as exc:
            raise DataUnavailableError(f"yfinance unavailable for {symbol}: {exc}") from None
        except Exception as exc:
            # curl_cffi/requests errors, HTML instead of JSON, timeouts: all mean "not now".
            # The safe reaction is the same for each (fall back to the cache), so one type.
            raise DataUnavailableError(
                f"yfinance unreachable for {symbol} ({type(exc).__name__}: {str(exc)[:160]})"
            ) from None
        if raw is None or raw.empty:
            if start is not None:
                return empty_frame()
            raise UnknownSymbolError(f"yfinance returned no bars for ticker {symbol!r} (unknown or delisted)")
        if isinstance(raw.columns, pd.MultiIndex):  # yf.download-shaped frames: (field, ticker)
            raw = raw.droplevel(-1, axis=1)
        frame = normalise(raw)
        closed = last_closed_session(calendar_for(instrument), self._clock())
        frame = frame[frame.index <= pd.Timestamp(closed)]  # drop the still-forming bar
        return cut(frame, start, end)
