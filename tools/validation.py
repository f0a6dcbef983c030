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

``jump`` judges each close against the last *accepted* close (the valuation close), not the raw previous close,
and accepts the ``PLATEAU_SESSIONS``-th close it refuses in a row (``_jump_flags``, the one definition).
``valuation_rows`` gives the close a book is valued at on each bar (the day's, unless that ``jump`` test refuses it
or it is not a positive number: then the previous bar's valuation close): the ledger of the graph policies (via
``agent.day.market_snapshot``), its delisting cash-out, the FX rates (``tools.fx``) and the eval benchmarks use it,
so a refused print never values a book, and the gate's ``jump`` days are exactly the closes it refuses.

Deliberate decisions:
- Only bars on or before ``as_of`` are looked at: the gate cannot leak the future either. And only the last
  ``2 × (jump_window + 1)`` of them, except for ``jump``: an identical repeated row older than that no longer
  blocks a symbol. ``jump`` reports refused closes of the last ``jump_window`` bars, but the anchor a close is
  judged against is path-dependent, so its flags are computed on the whole history up to as_of (one numpy pass;
  the loop runs only from a raw jump until a close is accepted again).
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

import math
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from tools import calendars
from tools.indicators import cut_at
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


def _conflicting(days: set[date], since: date, as_of: date) -> list[str]:
    """The ``conflicting_duplicate`` reason for conflicted days from ``since`` (the jump window's start) to as_of."""
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
    reasons.extend(_conflicting(conflicted, bars.index[-(jump_window + 1) :][0].date(), as_of))

    last = bars.index[-1].date()
    behind = _sessions_behind(last, as_of, sessions_per_week, calendar, max_stale_sessions)
    if behind > max_stale_sessions:
        reasons.append(f"stale: last bar {last} is {behind} sessions before {as_of}")

    reasons.extend(_price_checks(bars, recent_window))
    history = df.iloc[:end]
    if not df.index.is_unique and history.index.has_duplicates:
        history = history[~history.index.duplicated(keep="last")]
    reasons.extend(_jumps(history["close"].to_numpy(dtype="float64"), history.index, jump_window, max_jump, splits))
    return ValidationResult(symbol=symbol, tradeable=not reasons, reasons=reasons)


def _price_checks(bars: pd.DataFrame, recent_window: int) -> list[str]:
    """``bad_price`` and ``inconsistent`` over the last ``recent_window`` bars (numpy: a replay calls this daily)."""
    reasons: list[str] = []
    recent = bars.index[-recent_window:]
    o, h, lo, c = (bars[col].to_numpy(dtype="float64")[-recent_window:] for col in _PRICE_COLUMNS)
    prices = np.vstack([o, h, lo, c])
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(prices).all(axis=0) | (prices <= 0).any(axis=0)
    bad, torn = _bad_and_torn(o, h, lo, c)
    if bad.any():
        reasons.append(_bad_price_reason(int(bad.sum()), len(recent), recent[np.flatnonzero(bad)[0]].date()))
    if torn.any():
        reasons.append(_torn_reason(int(torn.sum()), len(recent), recent[np.flatnonzero(torn)[0]].date()))
    return reasons


def _bad_and_torn(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per bar: a NaN, infinite or non-positive price (bad); high/low not containing open and close (torn)."""
    prices = np.vstack([o, h, lo, c])
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(prices).all(axis=0) | (prices <= 0).any(axis=0)
    ok = ~bad
    tol = 1e-6  # relative: vendors round each price on its own
    # high >= max(open, close) and low <= min(open, close) together also mean high >= low
    torn = ok & ((h < np.maximum(o, c) * (1 - tol)) | (lo > np.minimum(o, c) * (1 + tol)))
    return bad, torn


def _bad_price_reason(count: int, window: int, first: date) -> str:
    return f"bad_price: NaN, infinite or non-positive OHLC on {count} of the last {window} bars (first {first})"


def _torn_reason(count: int, window: int, first: date) -> str:
    return (f"inconsistent: high below open/close or low above them on {count} of the last {window} bars"
            f" (first {first})")


def _jump_reason(move: float, day: date, hits: int) -> str:
    more = f" (+{hits - 1} more)" if hits > 1 else ""
    return f"jump: close moved {move:+.0%} on {day} with no recorded split{more}"


PLATEAU_SESSIONS = 5
"""The ``PLATEAU_SESSIONS``-th close in a row that the jump test refuses is accepted, whatever its path.

5 sessions = one trading week = ``max_stale_sessions`` and ``agent.day.DELIST_AFTER_SESSIONS``: the product's
existing "a state that persists this long is real" horizon. Shorter lets a bad print repeated for a few days (a
vendor's stuck row) value the book; longer values a genuine takeover or crash at the old price for longer."""


def _jump_flags(closes: np.ndarray, index: pd.Index, max_jump: float,
                splits: Mapping[date, float] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The one definition of a ``jump``, per bar ``j``: ``(moves, jumps, valued)``.

    ``valued[j]``: close ``j`` values the book (the valuation close is its own). The valuation close is the last
    valued close, the *anchor*. Close ``j`` is valued when it is a finite positive number and either there is no
    anchor yet (the first usable close: a spike there cannot be tested), bar ``j``'s day has a recorded split,
    ``|close / anchor - 1| <= max_jump``, or it is the ``PLATEAU_SESSIONS``-th consecutive close refused against
    the anchor (NaN or non-positive bars in between neither count nor break the run), whatever path those closes
    took: a crash that keeps falling, or prices that stay noisy after a collapse, are real once they have lasted
    that long, and a refusal that never ends would value the book at a price long gone (an attacker's −60% gap
    followed by −12% a day was marked at the pre-crash close until its delisting, cashed out there too). From
    that session on its close is the anchor (point-in-time: the refused days stay refused). So a ×50 print held
    for three days is refused on each and its revert is valued; a genuine move is valued from its 5th session; a
    close that goes to 0 and stays is never valued (the book keeps its last positive close; the gate's
    ``bad_price`` blocks trading it).

    ``jumps[j]``: close ``j`` is refused by this test (not valued, and a finite close that moved beyond
    ``max_jump`` from the anchor, or from the last finite close before it for a non-positive or infinite one):
    the gate's ``jump``, so the gate and the valuation refuse the same closes. A NaN close is no jump (the gate's
    ``bad_price`` reports it); a NaN bar is skipped, never a "no jump" neighbour. ``moves[j]``: the move judged
    (against the anchor for a refused finite close, else against the last finite close; NaN for the first).

    Vectorised first (with no raw move beyond ``max_jump`` every finite positive close is valued: the anchor is
    always the previous finite close); a Python loop walks only from each raw jump until a close is valued again.
    Causal: bar ``j`` reads closes ``0..j`` only. Used by the gate (``validate_bars``, ``ValidationTimeline``),
    the valuation (``valuation_rows``) and the FX rates (``tools.fx``).
    """
    n = len(closes)
    if not n:
        return np.empty(0), np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)
    finite = np.isfinite(closes)
    with np.errstate(invalid="ignore", divide="ignore"):
        usable = finite & (closes > 0)
        if finite.all():  # the usual series: the previous close is the last finite one
            moves = np.concatenate([[np.nan], closes[1:] / closes[:-1] - 1.0])
        else:
            before = np.concatenate([[-1], np.maximum.accumulate(np.where(finite, np.arange(n), -1))[:-1]])  # < j
            moves = np.where(before >= 0, closes / closes[np.maximum(before, 0)] - 1.0, np.nan)
        big = np.abs(moves) > max_jump
    split = np.asarray(index.isin([pd.Timestamp(d) for d in splits])) if splits else None
    if split is not None:
        big &= ~split
    valued = usable & ~big
    hits = np.flatnonzero(big & usable)
    if len(hits):
        _anchored(closes, usable, split, valued, moves, hits, max_jump)
    return moves, ~valued & (big | usable), valued


def _anchored(closes: np.ndarray, usable: np.ndarray, split: np.ndarray | None, valued: np.ndarray,
              moves: np.ndarray, hits: np.ndarray, max_jump: float) -> None:
    """``_jump_flags``' walk from each raw jump (``hits``) until a close is valued again (in place).

    Between a valued close and the next raw jump the vectorised verdict holds: every usable close there is
    valued (it is within ``max_jump`` of the previous finite close, which is the anchor)."""
    last_usable = np.maximum.accumulate(np.where(usable, np.arange(len(closes)), -1))
    n, i = len(closes), int(hits[0])
    anchor = float(closes[last_usable[i - 1]]) if i > 0 and last_usable[i - 1] >= 0 else math.nan
    count = 0
    while i < n:
        if not usable[i]:  # NaN, infinite or non-positive: never valued, neither counts nor breaks a plateau
            i += 1
            continue
        x = float(closes[i])
        move = x / anchor - 1.0
        take = math.isnan(anchor) or abs(move) <= max_jump or (split is not None and bool(split[i]))
        if not take:  # refused: the PLATEAU_SESSIONS-th refused close in a row is accepted, whatever its path
            count += 1
            take = count >= PLATEAU_SESSIONS
            if not take:
                moves[i] = move
        valued[i] = take
        if not take:
            i += 1
            continue
        count = 0
        k = int(np.searchsorted(hits, i, side="right"))
        if k == len(hits):
            break
        i = int(hits[k])
        anchor = float(closes[last_usable[i - 1]])  # valued by the vectorised pass (or i's own predecessor run)


def _jumps(closes: np.ndarray, index: pd.Index, jump_window: int, max_jump: float,
           splits: dict[date, float] | None) -> list[str]:
    """``jump``: a close ``_jump_flags`` refuses, in the last ``jump_window`` bars (of ``closes``: the whole history
    up to as_of, since the anchor a close is judged against may be older than the window)."""
    moves, big, _ = _jump_flags(closes, index, max_jump, splits)
    moves, big, days = moves[-jump_window:], big[-jump_window:], index[-jump_window:]  # bar 0 is never a jump
    hits = np.flatnonzero(big)
    if not len(hits):
        return []
    last = hits[-1]
    return [_jump_reason(float(moves[last]), days[last].date(), len(hits))]


def valuation_rows(closes: np.ndarray, index: pd.Index, *, max_jump: float = 0.5,
                   splits: Mapping[date, float] | None = None) -> np.ndarray:
    """For every bar, the row of the close the book is valued at on that bar's day (-1 while there is none).

    The valuation close of bar ``j`` is its own close when ``_jump_flags`` values it (a finite positive close
    within ``max_jump`` of the last valued close, a recorded split that day, or the ``PLATEAU_SESSIONS``-th refused
    close in a row), else bar ``j - 1``'s valuation close. So a ×50 print that lasts one or several days is valued
    at the last close before it on each of them and its revert at its own close; a genuine permanent move (±60 %)
    at the old close for 4 sessions and at its own from the 5th. The gate refuses trading the symbol for its
    whole jump window; the valuation holds only the refused days. Known limits: the very first usable close
    cannot be tested (nothing before it); a close that goes to 0 (or NaN) and stays is valued at its last
    positive close for ever (the gate's ``bad_price`` blocks trading it; a held position is cashed out there by
    the delisting rule only when its bars stop). Point-in-time and causal: row ``j`` reads closes ``0..j``
    only, so the result on a prefix of the bars is the prefix of the result (a replay computes it once).

    ``closes`` in the rows' order (the bars as given, like ``bars["close"]``).
    """
    closes = np.asarray(closes, dtype="float64")
    if not len(closes):
        return np.empty(0, dtype=np.intp)
    return _rows_of(_jump_flags(closes, index, max_jump, splits)[2])


def _rows_of(valued: np.ndarray) -> np.ndarray:
    """Per bar, the row of the last valued bar up to it (-1 while there is none)."""
    return np.maximum.accumulate(np.where(valued, np.arange(len(valued)), -1))


def closes_at(closes: np.ndarray, rows: np.ndarray, missing: float | np.ndarray = math.nan) -> np.ndarray:
    """``closes`` read at ``rows`` (``valuation_rows``): each bar's valuation close, ``missing`` where a row is -1."""
    closes = np.asarray(closes, dtype="float64")
    return np.where(rows >= 0, closes[np.maximum(rows, 0)], missing)


def valuation_closes(closes: np.ndarray, index: pd.Index, *, max_jump: float = 0.5,
                     missing: float | np.ndarray = math.nan) -> np.ndarray:
    """Each bar's valuation close (``closes_at`` of ``valuation_rows``), ``missing`` before the first usable one."""
    return closes_at(closes, valuation_rows(closes, index, max_jump=max_jump), missing)


def last_valuation_close(closes: np.ndarray, index: pd.Index) -> float | None:
    """The valuation close of the last bar (the last close the jump test accepts); None when there is none."""
    rows = valuation_rows(closes, index)
    return float(np.asarray(closes, dtype="float64")[rows[-1]]) if len(rows) and rows[-1] >= 0 else None


class ValidationTimeline:
    """``validate_bars`` of one symbol on every day, from one pass over its whole history (a replay's gate).

    ``as_of(D)`` equals ``validate_bars(symbol, bars cut at D, D, …)`` with the same settings, day by day
    (tests/tools/test_validation_timeline.py recomputes it on data truncated at each D). The per-bar checks are
    causal, so they are computed once over the whole series: for the window ending at bar ``e`` (the bars on
    or before D), prefix sums count the bad, torn and jumping bars among the last ``recent_window`` or
    ``jump_window`` of them, and only windows that fail are turned into reasons. What depends on D itself
    (empty, stale, upstream conflicts up to D) is decided per call.

    A series with repeated timestamps, an unsorted or time-zoned index, or ``splits`` is not precomputed: each
    call runs ``validate_bars`` on the cut frame (exact by definition, at today's cost).
    """

    def __init__(
        self,
        symbol: str,
        df: pd.DataFrame,
        *,
        max_stale_sessions: int = 5,
        max_jump: float = 0.5,
        sessions_per_week: int = 5,
        recent_window: int = 20,
        jump_window: int = 260,
        calendar: str | None = None,
        conflicts: Iterable[date] | None = None,
    ) -> None:
        self.symbol = symbol
        self.max_stale_sessions = max_stale_sessions
        self._df = df
        self._kw: dict[str, Any] = {"max_stale_sessions": max_stale_sessions, "max_jump": max_jump,
                                    "sessions_per_week": sessions_per_week, "recent_window": recent_window,
                                    "jump_window": jump_window, "calendar": calendar}
        self._conflicts = set(conflicts or ())
        idx = df.index
        self._fast = (isinstance(idx, pd.DatetimeIndex) and idx.tz is None and idx.is_monotonic_increasing
                      and idx.is_unique)
        self._index = idx
        self._times = idx.to_numpy() if self._fast else None
        self.max_jump = max_jump
        self._valuation: np.ndarray | None = None
        self._bar_reasons = self._precompute(df, recent_window, jump_window, max_jump) if self._fast else {}

    def valuation_rows(self, end: int) -> np.ndarray:
        """``valuation_rows`` of the first ``end`` bars (the bars a view cut at D holds), with the gate's
        ``max_jump``: computed once over the whole series (with the gate's flags when precomputed), sliced
        (causal, so the slice is the prefix's result)."""
        if self._valuation is None:
            self._valuation = valuation_rows(self._df["close"].to_numpy(dtype="float64"), self._index,
                                             max_jump=self.max_jump)
        return self._valuation[:end]

    def _precompute(self, df: pd.DataFrame, recent_window: int, jump_window: int,
                    max_jump: float) -> dict[int, list[str]]:
        """End position ``e`` (bars ``[0, e)`` are known) → its bad_price, inconsistent and jump reasons, when any."""
        n = len(df)
        if n == 0:
            return {}
        o, h, lo, c = (df[col].to_numpy(dtype="float64") for col in _PRICE_COLUMNS)
        bad, torn = _bad_and_torn(o, h, lo, c)
        moves, big, valued = _jump_flags(c, df.index, max_jump, None)  # one pass: the gate's and the valuation's
        self._valuation = _rows_of(valued)
        ends = np.arange(1, n + 1)
        # validate_bars looks at the last 2 × (jump_window + 1) bars, and at the last recent_window of those
        recent_from = ends - np.minimum(recent_window, np.minimum(ends, 2 * (jump_window + 1)))
        jumps_from = np.maximum(1, ends - jump_window)  # moves inside the last jump_window + 1 closes
        counts = {}
        for name, flags, start in (("bad", bad, recent_from), ("torn", torn, recent_from), ("jump", big, jumps_from)):
            total = np.concatenate([[0], np.cumsum(flags)])
            counts[name] = total[ends] - total[start]
        failing = np.flatnonzero((counts["bad"] > 0) | (counts["torn"] > 0) | (counts["jump"] > 0))
        if not len(failing):
            return {}
        bad_at, torn_at, big_at = np.flatnonzero(bad), np.flatnonzero(torn), np.flatnonzero(big)
        out: dict[int, list[str]] = {}
        for k in failing:
            e, first = int(ends[k]), int(recent_from[k])
            reasons: list[str] = []
            if counts["bad"][k]:
                at = bad_at[np.searchsorted(bad_at, first)]
                reasons.append(_bad_price_reason(int(counts["bad"][k]), e - first, df.index[at].date()))
            if counts["torn"][k]:
                at = torn_at[np.searchsorted(torn_at, first)]
                reasons.append(_torn_reason(int(counts["torn"][k]), e - first, df.index[at].date()))
            if counts["jump"][k]:
                at = big_at[np.searchsorted(big_at, e) - 1]  # the last jump before e
                reasons.append(_jump_reason(float(moves[at]), df.index[at].date(), int(counts["jump"][k])))
            out[e] = reasons
        return out

    def as_of(self, as_of: date) -> ValidationResult:
        """The verdict of ``validate_bars`` on the bars on or before ``as_of``."""
        if self._times is None or type(as_of) is not date:  # a datetime's time of day: the exact path
            return validate_bars(self.symbol, cut_at(self._df, as_of), as_of, conflicts=self._conflicts or None,
                                 **self._kw)
        # validate_bars reads the bars at or before D's midnight (within the view's cut, all of day D)
        end = int(np.searchsorted(self._times, np.datetime64(as_of, "D"), side="right"))
        if end == 0:
            return ValidationResult(symbol=self.symbol, tradeable=False, reasons=[f"empty: no bars on or before {as_of}"])
        reasons: list[str] = []
        if self._conflicts:
            reasons.extend(_conflicting(self._conflicts, self._index[max(0, end - self._kw["jump_window"] - 1)].date(),
                                        as_of))
        last = self._index[end - 1].date()
        stale = self._kw["max_stale_sessions"]
        behind = _sessions_behind(last, as_of, self._kw["sessions_per_week"], self._kw["calendar"], stale)
        if behind > stale:
            reasons.append(f"stale: last bar {last} is {behind} sessions before {as_of}")
        reasons.extend(self._bar_reasons.get(end, ()))
        return ValidationResult(symbol=self.symbol, tradeable=not reasons, reasons=reasons)
