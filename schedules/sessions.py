"""Which session a scheduled daily run trades, and an APScheduler trigger that skips days without a new one.

Contract:
- ``ready_session(calendars, now)`` is the session D the daily run decides at ``now``: the latest day on which
  some calendar of the universe has a session and every one of them trading that day has closed it. A
  universe mixing exchanges (XNYS and XPAR) thus trades a day only after the last of them closes.
- ``SessionTrigger(cron, calendars)`` fires at the cron's times, except those at which no session closed in
  the previous 24 hours: an exchange holiday (Thanksgiving on XNYS, 1 May on XPAR) and a weekend are
  skipped; a 24/7 (crypto) universe has a session every day, Sunday included. ``serve --list`` therefore
  shows the real next run.

Deliberate decisions:
- Calendars are the instruments' own (``tools.calendars.calendar_for``): ``exchange_calendars`` names with
  their real holidays and early closes; ``24/7`` (crypto) and ``24/5`` (csv, synthetic) are sessions that
  close at midnight UTC, every day and on weekdays respectively.
- In a universe that mixes 24/7 instruments with exchanges, the 24/7 ones do not gate the run: their day
  closes at midnight UTC, after every exchange, and waiting for it would delay every exchange day by one.
  Their last closed bar is used (the providers drop a forming bar).
- A day outside the span ``exchange_calendars`` covers falls back to the weekday rule with a midnight close.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from tools.calendars import ALWAYS, WEEKDAYS, calendar_for, exchange_calendar
from tools.models import Universe

LOOKBACK_DAYS = 10  # the longest run of days without a session (a long holiday weekend) is far shorter
NEW_SESSION_WINDOW = timedelta(hours=24)
SEARCH_DAYS = 400  # how far ahead the trigger looks for a fire time with a new session (a yearly cron still fits)


def universe_calendars(universe: Universe) -> tuple[str, ...]:
    return tuple(sorted({calendar_for(i) for i in universe.instruments}))


def gating(calendars: Sequence[str]) -> tuple[str, ...]:
    """The calendars whose closes decide when a day is done (24/7 ones only when there is nothing else)."""
    others = tuple(c for c in calendars if c != ALWAYS)
    return others or tuple(calendars)


def session_close(calendar: str, day: date) -> datetime | None:
    """The UTC close of ``calendar``'s session on ``day``, or None when ``day`` is not one of its sessions."""
    midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)
    if calendar == ALWAYS:
        return midnight
    if calendar == WEEKDAYS:
        return midnight if day.weekday() < 5 else None
    cal = exchange_calendar(calendar)
    stamp = pd.Timestamp(day)
    if not cal.first_session <= stamp <= cal.last_session:
        return midnight if day.weekday() < 5 else None
    if not cal.is_session(stamp):
        return None
    close: datetime = cal.session_close(stamp).to_pydatetime()
    return close.astimezone(UTC)


def _day_closed_at(calendars: Sequence[str], day: date) -> datetime | None:
    """When the last of ``calendars`` trading on ``day`` closes; None when none of them trades that day."""
    closes = [c for c in (session_close(cal, day) for cal in calendars) if c is not None]
    return max(closes) if closes else None


def ready_session(calendars: Sequence[str], now: datetime) -> tuple[date, datetime] | None:
    """The session D the daily run decides at ``now`` and when its last exchange closed (module docstring)."""
    gate = gating(calendars)
    utc = now.astimezone(UTC)
    for back in range(LOOKBACK_DAYS + 1):
        day = utc.date() - timedelta(days=back)
        closed = _day_closed_at(gate, day)
        if closed is not None and closed <= utc:
            return day, closed
    return None


def has_new_session(calendars: Sequence[str], at: datetime) -> bool:
    """A session of the universe closed in the 24 hours before ``at``: a daily run at ``at`` has a new day."""
    ready = ready_session(calendars, at)
    return ready is not None and at.astimezone(UTC) - ready[1] < NEW_SESSION_WINDOW


def next_close_after(calendars: Sequence[str], at: datetime) -> datetime | None:
    """The first time after ``at`` at which a new session of the universe is done (``ready_session`` changes)."""
    gate = gating(calendars)
    utc = at.astimezone(UTC)
    for ahead in range(-1, SEARCH_DAYS + 1):  # a later day closes later: the first one found is the next
        close = _day_closed_at(gate, utc.date() + timedelta(days=ahead))
        if close is not None and close > utc:
            return close
    return None


class SessionTrigger(BaseTrigger):
    """A cron trigger that skips fire times with no new session of the universe (holidays, weekends)."""

    def __init__(self, cron: CronTrigger, calendars: Sequence[str]) -> None:
        self.cron = cron
        self.calendars = tuple(calendars)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        candidate: datetime | None = self.cron.get_next_fire_time(previous_fire_time, now)
        limit = now + timedelta(days=SEARCH_DAYS)
        while candidate is not None and candidate <= limit:
            if has_new_session(self.calendars, candidate):
                return candidate
            # bounded by time, not by a count of fire times: jump to the next close (a frequent cron on a
            # weekend would otherwise test every minute of it)
            close = next_close_after(self.calendars, candidate)
            if close is None:
                return None
            candidate = self.cron.get_next_fire_time(None, close)
        return None

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "cron": self.cron, "calendars": self.calendars}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.cron, self.calendars = state["cron"], tuple(state["calendars"])

    def __str__(self) -> str:
        return f"{self.cron} on sessions of {'+'.join(self.calendars)}"

    def __repr__(self) -> str:
        return f"<SessionTrigger {self}>"
