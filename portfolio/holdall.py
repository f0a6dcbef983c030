"""Holds: the day's "no orders" outcome, kept apart by cause.

- ``hold_all(cause, detail)`` is the FALLBACK (something failed): reason ``fallback:<cause>``, ``fallback=True``.
- ``deliberate_hold(why, detail)`` is a DECISION to do nothing: reason ``hold:<why>``, ``fallback=False``.
- ``guarded_day()`` turns any exception in its block into ``hold_all`` with the exception's type as cause and
  a sanitised message (secret-looking tokens masked, one line, bounded length).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import BaseModel, ConfigDict

from portfolio.storage import reraise_interrupt

_SLUG = re.compile(r"[^a-z0-9_.\-]+")
_SECRETS = [
    re.compile(r"(?i)\b(sk|pk|rk|xox[abp]|ghp|gho|glpat)[-_][A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(api[_-]?key|token|secret|password|passwd|authorization|bearer)(\s*[:=]\s*|\s+)\S+"),
    re.compile(r"https?://\S*(webhooks|@)\S*"),
    re.compile(r"\b[A-Za-z0-9_\-]{32,}\b"),
]


class Hold(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str
    detail: str
    fallback: bool


def _slug(text: str) -> str:
    return _SLUG.sub("_", text.strip().lower()).strip("_")[:60] or "unknown"


def sanitise(text: str, limit: int = 300) -> str:
    """One line, secrets masked, at most ``limit`` characters."""
    out = " ".join(str(text).split())
    for pattern in _SECRETS:
        out = pattern.sub("[redacted]", out)
    return out[:limit]


def hold_all(cause: str, detail: str) -> Hold:
    return Hold(reason=f"fallback:{_slug(cause)}", detail=sanitise(detail), fallback=True)


def deliberate_hold(why: str, detail: str = "") -> Hold:
    return Hold(reason=f"hold:{_slug(why)}", detail=sanitise(detail), fallback=False)


class DayOutcome:
    """Filled in by ``guarded_day``: ``hold`` is set when the block raised."""

    hold: Hold | None = None


@contextmanager
def guarded_day() -> Iterator[DayOutcome]:
    """``with guarded_day() as day: ...`` — any Exception becomes ``day.hold`` (a fallback hold-all)."""
    outcome = DayOutcome()
    try:
        yield outcome
    except Exception as exc:  # every failure means hold-all, by design
        reraise_interrupt(exc)
        outcome.hold = hold_all(type(exc).__name__, str(exc))
