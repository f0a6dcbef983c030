"""The data validation gate: may a symbol be traded on day ``as_of`` given its bars?

``validate_bars`` returns ``ValidationResult(tradeable, reasons)``; every reason is ``code: detail``:
- ``empty``      no bar on or before as_of;
- ``stale``      the last bar is more than ``max_stale_sessions`` sessions before as_of;
- ``bad_price``  NaN, infinite or non-positive open/high/low/close in the last ``recent_window`` bars;
- ``inconsistent`` a bar whose high is below its open or close, or whose low is above them, in
                 the last ``recent_window`` bars (a torn or mis-mapped row: which column is wrong is unknowable);
- ``duplicate``  repeated timestamps with identical rows in the frame given (a provider or cache bug);
- ``conflicting_duplicate`` a day with rows that DISAGREE, within the last ``jump_window`` bars: in the
                 frame given, or recorded upstream (``conflicts``, from ``MarketCache.conflicts``, where the
                 cache kept one row of the day). Which row is true is unknowable;
- ``jump``       a day-over-day close move beyond ``max_jump`` (fraction) with no recorded split that
                 day, within the last ``jump_window`` bars.

Deliberate decisions:
- Only bars on or before ``as_of`` are looked at: the gate cannot leak the future either. And only the last
  ``2 × (jump_window + 1)`` of them: an identical repeated row older than that no longer blocks a symbol.
- Sessions are the instrument's exchange sessions when ``calendar`` is given (a ``tools.calendars`` name,
  usually ``calendar_for(instrument)``): a holiday (Thanksgiving, Good Friday) is not a missed session.
  ``24/7`` counts every day (crypto), ``24/5`` counts weekdays. Without ``calendar`` the old rule applies:
  weekdays (numpy business days), or every day with ``sessions_per_week=7``.
- The calendar is only built when it can change the verdict: for the mapped Monday–Friday exchanges the
  session count never exceeds the weekday count, so a weekday count within ``max_stale_sessions`` is
  already "not stale" (every day of a normal replay) and costs nothing per call.
- A conflict older than the jump window does not block: it can no longer reach an indicator or a price the
  agent reads, and a remote source cannot be re-fetched that far back to clear it.
- Price checks look at a recent window only: a gap in 2003 does not make a symbol untradeable in 2018,
  but a bad print last week does. The jump window (260 bars ≈ one year) covers the longest indicator
  (SMA 200), whose values an unrecorded split would corrupt.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import numpy as np
import pandas as pd

from tools import calendars
from tools.market_data.base import conflicting_days
from tools.models import ValidationResult

_PRICE_COLUMNS = ("open", "high", "low", "close")


def sessions_between(last: date, as_of: date, sessions_per_week: int = 5) -> int:
    """Sessions strictly after ``last`` up to and including ``as_of`` (0 when last >= as_of)."""
    if last >= as_of:
        return 0
    if sessions_per_week >= 7:
        return (as_of - last).days
    # busday_count counts [begin, end): shift both by one day to count (last, as_of].
    one = np.timedelta64(1, "D")
    return int(np.busday_count(np.datetime64(last) + one, np.datetime64(as_of) + one))


def _sessions_behind(
    last: date, as_of: date, sessions_per_week: int, calendar: str | None, max_stale: int
) -> int:
    if calendar is None:
        return sessions_between(last, as_of, sessions_per_week)
    if calendars.weekday_bounded(calendar):
        upper = sessions_between(last, as_of, 5)
        if upper <= max_stale:  # sessions <= weekdays: the verdict is "not stale" without the calendar
            return upper
    return calendars.sessions_between(calendar, last, as_of)


def _conflicting(days: set[date], bars: pd.DataFrame, as_of: date, jump_window: int) -> list[str]:
    """The ``conflicting_duplicate`` reason for conflicted days within the jump window, if any."""
    since = bars.index[-(jump_window + 1) :][0].date()
    recent = sorted(d for d in days if since <= d <= as_of)
    if not recent:
        return []
    return [f"conflicting_duplicate: {len(recent)} day(s) with different bars for one date (first {recent[0]});"
            " which is true is unknowable"]


def validate_bars(
    symbol: str,
    df: pd.DataFrame,
    as_of: date,
    *,
    max_stale_sessions: int = 5,
    max_jump: float = 0.5,
    splits: dict[date, float] | None = None,
    sessions_per_week: int = 5,
    recent_window: int = 20,
    jump_window: int = 260,
    calendar: str | None = None,
    conflicts: Iterable[date] | None = None,
) -> ValidationResult:
    """Check ``symbol``'s bars as seen on ``as_of``; ``tradeable`` is True only when no check fails.

    ``calendar`` (e.g. ``"XNYS"``, ``"24/7"``) counts staleness in that calendar's sessions and then
    overrides ``sessions_per_week``. ``conflicts`` are days whose source rows disagreed (see the module).
    """
    reasons: list[str] = []
    # Only the tail can change the verdict (every check looks at the last ``jump_window`` bars at most), so
    # a replay pays for a year of bars per day, not the whole history: twice the window absorbs repeated rows.
    end = int(df.index.searchsorted(pd.Timestamp(as_of), side="right")) if len(df) else 0
    bars = df.iloc[max(0, end - 2 * (jump_window + 1)) : end]
    if bars.empty:
        return ValidationResult(
            symbol=symbol, tradeable=False, reasons=[f"empty: no bars on or before {as_of}"]
        )

    has_dup = bars.index.has_duplicates
    dup = bars.index.duplicated() if has_dup else None
    conflicted = set(conflicts or ()) | ({ts.date() for ts in conflicting_days(bars)} if has_dup else set())
    if dup is not None:
        repeats = bars.index[dup & ~bars.index.isin([pd.Timestamp(d) for d in conflicted])]
        if len(repeats):
            reasons.append(f"duplicate: {len(repeats)} repeated timestamps (first {repeats[0].date()})")
        bars = bars[~bars.index.duplicated(keep="last")]
    reasons.extend(_conflicting(conflicted, bars, as_of, jump_window))

    last = bars.index[-1].date()
    behind = _sessions_behind(last, as_of, sessions_per_week, calendar, max_stale_sessions)
    if behind > max_stale_sessions:
        reasons.append(f"stale: last bar {last} is {behind} sessions before {as_of}")

    reasons.extend(_price_checks(bars, recent_window))
    reasons.extend(_jumps(bars["close"].to_numpy(dtype="float64"), bars.index, jump_window, max_jump, splits))
    return ValidationResult(symbol=symbol, tradeable=not reasons, reasons=reasons)


def _price_checks(bars: pd.DataFrame, recent_window: int) -> list[str]:
    """``bad_price`` and ``inconsistent`` over the last ``recent_window`` bars (numpy: a replay calls this daily)."""
    reasons: list[str] = []
    recent = bars.index[-recent_window:]
    o, h, lo, c = (bars[col].to_numpy(dtype="float64")[-recent_window:] for col in _PRICE_COLUMNS)
    prices = np.vstack([o, h, lo, c])
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(prices).all(axis=0) | (prices <= 0).any(axis=0)
    if bad.any():
        reasons.append(
            f"bad_price: NaN, infinite or non-positive OHLC on {int(bad.sum())} of the last {len(recent)} bars"
            f" (first {recent[np.flatnonzero(bad)[0]].date()})"
        )
    ok = ~bad
    tol = 1e-6  # relative: vendors round each price on its own
    # high >= max(open, close) and low <= min(open, close) together also mean high >= low
    torn = ok & ((h < np.maximum(o, c) * (1 - tol)) | (lo > np.minimum(o, c) * (1 + tol)))
    if torn.any():
        reasons.append(
            f"inconsistent: high below open/close or low above them on {int(torn.sum())} of the last"
            f" {len(recent)} bars (first {recent[np.flatnonzero(torn)[0]].date()})"
        )
    return reasons


def _jumps(closes: np.ndarray, index: pd.DatetimeIndex, jump_window: int, max_jump: float,
           splits: dict[date, float] | None) -> list[str]:
    """``jump``: a close-to-close move beyond ``max_jump`` with no recorded split, in the last ``jump_window`` bars."""
    window = closes[-(jump_window + 1) :]
    days = index[-(jump_window + 1) :][1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        moves = window[1:] / window[:-1] - 1.0
    big = np.abs(moves) > max_jump
    if splits:
        big &= ~days.isin([pd.Timestamp(d) for d in splits])
    hits = np.flatnonzero(big)
    if not len(hits):
        return []
    last = hits[-1]
    more = f" (+{len(hits) - 1} more)" if len(hits) > 1 else ""
    return [f"jump: close moved {float(moves[last]):+.0%} on {days[last].date()} with no recorded split{more}"]
