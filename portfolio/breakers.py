"""Circuit breakers and the persisted kill-switch state (re-exported by ``portfolio.risk``).

Deliberate decisions:
- Breakers LATCH: a one-day loss beyond ``daily_loss_limit`` moves ACTIVE → REDUCING, a drawdown from the
  peak beyond ``max_drawdown`` moves anything → HALTED. Nothing here ever loosens a mode; only a person does,
  with ``tradeagent risk resume`` (never an LLM tool).
- A person's word restarts the drawdown measure: a state written by the CLI (``changed_by == "cli"``, ACTIVE or
  REDUCING) with a ``since`` measures the peak only over the marks on or after ``since`` (the book's last
  equity-mark day when ``risk resume``/``risk reduce`` ran), else the next run would latch HALTED again from
  the same old peak and the person could never de-risk. A breaker that latches after that keeps the person's
  start (``peak_since``): a one-day loss after a resume does not bring the old peak back (it did, and with it
  the drawdown brake of the offline rules, which steers by the same number). Without a person's restart the
  peak is the whole curve's (a REDUCING latched by a daily loss still reaches HALTED from the earlier peak), and
  a ``since`` after every mark up to today (an older state file that recorded the wall clock) means the whole
  curve too. The one-day loss is always the last two marks.
- Fail closed: an equity curve with a non-finite or non-positive value halts; a missing state file means
  ACTIVE on a fresh install, HALTED when a paper book exists (the file was lost), and a CORRUPT one means HALTED. A file without an explicit ``mode`` (``{}``, a
  list, ``null``) is corrupt too: the model's ACTIVE default is for a fresh state, never for a damaged file.
- The state file is written atomically (temp file in the same directory, fsync, ``os.replace``).
- Breakers read only the equity curve, and equity is cash + Σ market values, where a short's value (and its
  ``PositionView.weight``) is negative: a short that rallies lowers equity and trips them like a falling long.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Protocol

from portfolio.errors import RiskStateError
from portfolio.models import RiskLimits, RiskState
from portfolio.storage import reraise_interrupt

_RANK = {"ACTIVE": 0, "REDUCING": 1, "HALTED": 2}


def update_breakers(
    equity_curve: Sequence[tuple[date, float]], limits: RiskLimits, state: RiskState, today: date
) -> RiskState:
    """Return the new risk state after looking at the equity curve up to ``today`` (inclusive)."""
    if not isinstance(state, RiskState):
        return RiskState(mode="HALTED", reason="invalid risk state", since=today, changed_by="breaker:fail_closed")
    if state.mode == "HALTED":
        return state
    points, unreadable = _marks(equity_curve, today)
    if unreadable:
        return RiskState(mode="HALTED", reason=unreadable, since=today, changed_by="breaker:fail_closed")
    if not points:
        return state
    values = [v for _, v in points]
    peak, last = max(_peak_window(points, state)), values[-1]
    drawdown = 1.0 - last / peak
    start = _peak_start(state)  # a latch keeps the peak a person restarted (their resume is not undone by it)
    if drawdown > limits.max_drawdown:
        return RiskState(mode="HALTED", since=today, changed_by="breaker:max_drawdown", peak_since=start,
                         reason=f"drawdown {drawdown:.2%} from peak {peak:.2f} exceeds {limits.max_drawdown:.2%}")
    if len(values) >= 2 and state.mode == "ACTIVE":
        loss = 1.0 - last / values[-2]
        if loss > limits.daily_loss_limit:
            return RiskState(mode="REDUCING", since=today, changed_by="breaker:daily_loss", peak_since=start,
                             reason=f"one-day loss {loss:.2%} exceeds {limits.daily_loss_limit:.2%}")
    return state


def drawdown_from_peak(equity_curve: Sequence[tuple[date, float]], state: RiskState, today: date) -> float | None:
    """The fall from the equity peak as the drawdown breaker measures it (0.1: 10% below the peak), up to ``today``.

    The same peak window as ``update_breakers`` (a person's ``risk resume`` restarts it), so a policy that steers by
    it (offline rule 9's brake) steers by the number the breaker will judge. None when the curve is empty or
    unreadable (the breaker halts on the latter).
    """
    points, unreadable = _marks(equity_curve, today)
    if unreadable or not points:
        return None
    return max(0.0, 1.0 - points[-1][1] / max(_peak_window(points, state)))


def _marks(equity_curve: Sequence[tuple[date, float]], today: date) -> tuple[list[tuple[date, float]], str]:
    """The curve's marks up to ``today``, sorted, and why they cannot be read ("" when they can)."""
    try:
        points = sorted((d, float(v)) for d, v in equity_curve if d <= today)
    except (TypeError, ValueError):
        return [], "unreadable equity curve"
    if any(not math.isfinite(v) or v <= 0 for _, v in points):
        return [], "non-finite or non-positive equity"
    return points, ""


def _peak_start(state: RiskState) -> date | None:
    """The first mark of the drawdown peak: the one a breaker's latch carried on, else a person's ``since``."""
    if state.peak_since is not None:
        return state.peak_since
    return state.since if state.changed_by == "cli" else None


def _peak_window(points: list[tuple[date, float]], state: RiskState) -> list[float]:
    """The equity values the drawdown peak is taken over: from a person's restart on, else the whole curve."""
    values = [v for _, v in points]
    if (start := _peak_start(state)) is None:
        return values
    window = [v for d, v in points if d >= start]
    return window or values  # a since after every mark (a wall-clock date) must not switch the breaker off


class RiskStore(Protocol):
    """Where the kill-switch state lives: a file for the user's book, memory for a replay."""

    def locked(self) -> contextlib.AbstractContextManager[None]: ...

    def load(self, *, book_exists: bool = False) -> RiskState: ...

    def escalate(self, state: RiskState, *, book_exists: bool = True) -> RiskState: ...

    def save(self, state: RiskState) -> None: ...


class RiskStateStore:
    """The kill-switch state in a JSON file (``TRADEAGENT_HOME/risk_state.json``).

    ``locked()`` holds an exclusive ``flock`` on a lock file beside it: the CLI writes the state under it, and
    the daily run re-reads the state under it right before placing orders, so a ``risk halt`` lands either
    before the placing (nothing is placed) or after it (the next run cancels what was placed).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RiskStateError(f"cannot lock the risk state {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def load(self, *, book_exists: bool = False) -> RiskState:
        """The saved state. Missing file: ACTIVE on a fresh install, HALTED when a book already exists.

        A book without its state file means the file was deleted or lost, and with it maybe a breaker's HALT:
        trading stops until a person looks and runs ``tradeagent risk resume``.
        """
        if not self.path.exists():
            if book_exists:
                return RiskState(mode="HALTED", changed_by="fail_closed",
                                 reason=f"risk state file {self.path} is missing but a paper book exists; "
                                        "check the book, then run `tradeagent risk resume`")
            return RiskState(mode="ACTIVE", reason="no risk state saved yet", changed_by="default")
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            problem = None if isinstance(raw, dict) and "mode" in raw else "no mode"
            state = None if problem else RiskState.model_validate(raw)
        except Exception as exc:  # any unreadable state halts trading
            reraise_interrupt(exc)
            problem, state = type(exc).__name__, None
        if state is None:
            return RiskState(mode="HALTED", reason=f"corrupt risk state file {self.path} ({problem})",
                             changed_by="fail_closed")
        return state

    def escalate(self, state: RiskState, *, book_exists: bool = True) -> RiskState:
        """Save ``state`` only where it is stricter than what is saved now (breakers); returns the state in force.

        Under the lock, so a person's ``risk halt`` written meanwhile is never replaced by a milder mode.
        """
        with self.locked():
            current = self.load(book_exists=book_exists)
            winner = stricter(current, state)
            if winner is not current or not self.path.exists():
                self.save(winner)
            return winner

    def save(self, state: RiskState) -> None:
        if not isinstance(state, RiskState):
            raise RiskStateError("only a RiskState can be saved")
        data = state.model_dump_json(indent=2)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".risk_state.", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise RiskStateError(f"cannot write risk state to {self.path}: {exc.strerror or exc}") from None


def stricter(a: RiskState, b: RiskState) -> RiskState:
    """The more restrictive of two states (used when a breaker and a saved state disagree)."""
    return b if _RANK.get(b.mode, 2) > _RANK.get(a.mode, 2) else a


class MemoryRiskStore:
    """A risk state held in memory (replays): the same interface as ``RiskStateStore``, never the user's file."""

    def __init__(self, state: RiskState | None = None) -> None:
        self._state = state or RiskState(mode="ACTIVE", reason="replay start", changed_by="default")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        yield

    def load(self, *, book_exists: bool = False) -> RiskState:
        return self._state

    def escalate(self, state: RiskState, *, book_exists: bool = True) -> RiskState:
        self._state = stricter(self._state, state)
        return self._state

    def save(self, state: RiskState) -> None:
        self._state = state
