"""Trading calendars: which calendar an instrument trades on, its last closed session, sessions between days.

One piece of code serves two checks: the Yahoo provider drops a daily bar whose session has not closed yet
(``last_closed_session``), and the validation gate counts how many sessions a symbol's last bar is behind
(``sessions_between``).

Calendar names are ``exchange_calendars`` names (ISO MICs such as ``XNYS``, ``XPAR``; aliases such as
``NYSE`` work too) plus two pseudo-calendars handled by date arithmetic, never built:
- ``24/7``: every day is a session that closes at midnight UTC (crypto, ``ccxt:…``);
- ``24/5``: Monday–Friday with no holidays, closing at midnight UTC (Yahoo FX ``=X``), also the plain
  weekday rule used where we do not know the exchange (``synthetic``, ``csv:``).

``calendar_for`` (an instrument's ``calendar`` field, when set, wins over all of these):
- ``ccxt:…`` → ``24/7``; ``sample`` → ``XNYS`` (SP500, NASDAQ and GOOG are all US series);
- ``synthetic``, ``csv:…`` and any other local source → ``24/5`` (their bars are dated on weekdays);
- ``yfinance`` → by the ticker's suffix, see ``YAHOO_SUFFIXES``: no suffix → ``XNYS``, ``.PA`` → ``XPAR``,
  ``.DE`` → ``XETR``, ``.AS`` → ``XAMS``, ``.L`` → ``XLON``, ``.MI`` → ``XMIL``, ``.MC`` → ``XMAD``,
  ``…=X`` → ``24/5``. An unknown suffix (``7203.T``) and index tickers (``^FCHI``) fall back to ``XNYS``:
  for a market that closes before New York it only delays a finished bar until the NYSE close, never keeps a
  forming one; a universe can state the right one with ``calendar = "XTKS"`` on the instrument.

Deliberate decisions:
- Building a calendar costs ~0.1 s (plus ~0.2 s to import ``exchange_calendars`` the first time), so each
  is built once per process (``functools.lru_cache``) from 1990-01-01 (before the oldest sample bar; the
  library's default start is only 20 years back) to its default end (a year ahead), and reduced to two
  sorted numpy arrays (session days, UTC closes): each query is then a binary search.
- Outside that span (a day before 1990, a clock more than a year ahead) the weekday rule is used rather
  than failing: the answer is at worst one holiday off, as it was before calendars were used.
- ``last_closed_session`` uses each session's real close, so an early close (the day after Thanksgiving,
  Christmas Eve in Paris) counts from its early time, and a bar dated on a holiday after the last closed
  session is dropped along with today's. For the pseudo-calendars the last closed day is yesterday (UTC).
- The mapped exchanges trade Monday–Friday only (tested), so their session count is never above the
  weekday count: ``weekday_bounded`` tells the gate it may skip building a calendar when the weekday count
  is already within its limit (the common case, e.g. every day of a replay).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np

from tools.errors import DataError
from tools.models import Instrument

ALWAYS = "24/7"
WEEKDAYS = "24/5"
_PSEUDO = (ALWAYS, WEEKDAYS)

YAHOO_SUFFIXES: dict[str, str] = {
    "": "XNYS",  # US listings have no suffix (SPY, AAPL, BRK-B)
    ".PA": "XPAR",  # Euronext Paris
    ".DE": "XETR",  # Xetra (Frankfurt)
    ".AS": "XAMS",  # Euronext Amsterdam
    ".L": "XLON",  # London Stock Exchange
    ".MI": "XMIL",  # Borsa Italiana (Milan)
    ".MC": "XMAD",  # Bolsa de Madrid
}
_FALLBACK = "XNYS"  # unknown suffix: see the module docstring for why this errs on the safe side
_FIRST_DAY = "1990-01-01"


def yahoo_calendar(symbol: str) -> str:
    """The calendar of a Yahoo ticker, by its suffix (``MC.PA`` → ``XPAR``, ``EURUSD=X`` → ``24/5``)."""
    if symbol.upper().endswith("=X"):
        return WEEKDAYS
    stem, dot, suffix = symbol.rpartition(".")
    if not dot or not stem:
        return YAHOO_SUFFIXES[""]
    return YAHOO_SUFFIXES.get(f".{suffix.upper()}", _FALLBACK)


def calendar_for(source: Instrument | str, symbol: str = "") -> str:
    """The calendar name of an instrument, or of a ``source`` string and ``symbol``."""
    if isinstance(source, Instrument):
        return source.calendar or calendar_for(source.source, source.symbol)
    kind = source.partition(":")[0]
    if kind == "ccxt":
        return ALWAYS
    if kind == "sample":
        return "XNYS"
    if kind == "yfinance":
        return yahoo_calendar(symbol)
    return WEEKDAYS


def check_calendar_name(name: str) -> str:
    """``name`` if it is ``24/5``, ``24/7`` or an ``exchange_calendars`` name; ``ValueError`` otherwise."""
    if name in _PSEUDO:
        return name
    import exchange_calendars

    if name not in exchange_calendars.get_calendar_names(include_aliases=True):
        raise ValueError(
            f"unknown calendar {name!r}; use 24/5, 24/7 or an exchange_calendars name (XNYS, XPAR…)"
        )
    return name


@lru_cache(maxsize=32)
def exchange_calendar(name: str) -> Any:
    """The ``exchange_calendars`` calendar ``name`` from 1990 on, built once per process."""
    import exchange_calendars

    try:
        return exchange_calendars.get_calendar(name, start=_FIRST_DAY)
    except exchange_calendars.errors.InvalidCalendarName:
        raise DataError(f"unknown calendar {name!r}") from None


@lru_cache(maxsize=32)
def _table(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Session days (``datetime64[D]``) and their UTC closes (``datetime64[ns]``), both sorted."""
    cal = exchange_calendar(name)
    sessions = cal.sessions.values.astype("datetime64[D]")
    closes = cal.closes.dt.tz_convert(None).values.astype("datetime64[ns]")
    return sessions, closes


def weekday_bounded(name: str) -> bool:
    """True when ``name`` never has more sessions than weekdays (the mapped Monday–Friday exchanges)."""
    return name == WEEKDAYS or name in YAHOO_SUFFIXES.values()


def _weekdays_between(last: date, as_of: date) -> int:
    one = np.timedelta64(1, "D")  # busday_count counts [begin, end): shift both to count (last, as_of]
    return int(np.busday_count(np.datetime64(last) + one, np.datetime64(as_of) + one))


def sessions_between(calendar: str, last: date, as_of: date) -> int:
    """Sessions of ``calendar`` strictly after ``last`` up to and including ``as_of`` (0 if last >= as_of)."""
    if last >= as_of:
        return 0
    if calendar == ALWAYS:
        return (as_of - last).days
    if calendar == WEEKDAYS:
        return _weekdays_between(last, as_of)
    sessions, _ = _table(calendar)
    lo, hi = np.datetime64(last, "D"), np.datetime64(as_of, "D")
    if lo < sessions[0] or hi > sessions[-1]:
        return _weekdays_between(last, as_of)  # outside the built span (module docstring)
    return int(np.searchsorted(sessions, hi, side="right") - np.searchsorted(sessions, lo, side="right"))


def last_closed_session(calendar: str, now: datetime) -> date:
    """The latest session of ``calendar`` whose close is at or before ``now`` (naive ``now``: local time).

    A daily bar dated after this day is still forming (or a provider's artefact on a holiday).
    """
    utc = now.astimezone(UTC)
    yesterday = utc.date() - timedelta(days=1)
    if calendar in _PSEUDO:
        return yesterday
    sessions, closes = _table(calendar)
    moment = np.datetime64(utc.replace(tzinfo=None), "ns")
    i = int(np.searchsorted(closes, moment, side="right")) - 1
    if i < 0 or i == len(closes) - 1:
        # Outside the built span: the last weekday before today (UTC), the weekday rule.
        return yesterday - timedelta(days=max(0, yesterday.weekday() - 4))
    return date.fromisoformat(str(sessions[i]))
