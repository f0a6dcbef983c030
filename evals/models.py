"""What one policy's replay hands to the report: ``PolicyRun`` (and its parts ``Trade`` and ``LLMUsage``).

Contract:
- The replay runner (graph policies: agent, analyst, xgb, ppo) and ``evals.baselines`` (buyhold,
  equalweight, holdall) both produce a ``PolicyRun``; ``evals.report`` consumes only this type.
- ``equity`` is the account's equity at each session's close, in the base currency, indexed by a sorted,
  unique ``DatetimeIndex`` (one row per session of the replay, the first row before any fill).
- ``exposure`` has the same index: gross market value of the open positions divided by equity
  (0 = all cash, 1 = fully invested; shorts count by their absolute value).
- ``weights`` (optional) is a date × symbol frame of signed position value / equity, for the positions chart.
- ``trades`` are fills: ``price`` already includes slippage, ``fees`` is the commission.
- ``decisions`` are plain JSON-able mappings with at least ``date``, ``symbol`` and ``action``; the report
  copies them as they are (the runner decides what else a decision carries: reason, weight, guard verdict…).
- ``trade_pnls`` (optional): the realised P&L of each closed trade, in base currency. When given, win rate
  and profit factor are computed on them; when ``None``, on daily returns (``evals.metrics``).

Deliberate decisions:
- Frozen dataclasses, not pydantic: the payload is pandas objects (pydantic would only ``isinstance``-check
  them) and a replay of 500 symbols makes tens of thousands of ``Trade`` rows, which a slotted dataclass
  builds about ten times faster. ``__post_init__`` still validates what the metrics rely on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

Side = Literal["buy", "sell"]


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill: ``quantity`` > 0 units at ``price`` (slippage included), ``fees`` = commission paid."""

    date: date
    symbol: str
    side: Side
    quantity: float
    price: float
    fees: float

    def __post_init__(self) -> None:
        if isinstance(self.date, datetime):  # pd.Timestamp too: trades sort and print as plain dates
            object.__setattr__(self, "date", self.date.date())
        if self.side not in ("buy", "sell"):
            raise ValueError(f"trade side must be buy or sell, got {self.side!r}")
        if not (math.isfinite(self.quantity) and self.quantity > 0):
            raise ValueError(f"trade quantity must be positive, got {self.quantity}")
        if not (math.isfinite(self.price) and self.price > 0 and math.isfinite(self.fees) and self.fees >= 0):
            raise ValueError(f"trade price must be positive and fees non-negative, got {self.price}, {self.fees}")

    @property
    def notional(self) -> float:
        return self.quantity * self.price


@dataclass(frozen=True, slots=True)
class LLMUsage:
    """LLM calls, tokens and cost of a policy's replay; ``cost`` is ``None`` when unknown (local servers)."""

    calls: int = 0
    tokens: int = 0
    cost: float | None = None


@dataclass(frozen=True)
class PolicyRun:
    """One policy's replay over one window (see the module docstring for each field's meaning)."""

    name: str
    equity: pd.Series
    exposure: pd.Series
    trades: tuple[Trade, ...] = ()
    decisions: tuple[Mapping[str, Any], ...] = ()
    weights: pd.DataFrame | None = None
    trade_pnls: tuple[float, ...] | None = None
    llm: LLMUsage = field(default_factory=LLMUsage)
    notes: tuple[str, ...] = ()
    targets: tuple[Mapping[str, Any], ...] = ()  # the risk node's plan per day: {date, symbol, target, reason}

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise ValueError("a PolicyRun needs a name")
        _check_daily_series(self.equity, f"{self.name}: equity")
        _check_daily_series(self.exposure, f"{self.name}: exposure")
        if not self.exposure.index.equals(self.equity.index):
            raise ValueError(f"{self.name}: exposure must have the same index as equity")
        if self.weights is not None and not self.weights.index.equals(self.equity.index):
            raise ValueError(f"{self.name}: weights must have the same index as equity")
        for d in self.decisions:
            missing = {"date", "symbol", "action"} - set(d)
            if missing:
                raise ValueError(f"{self.name}: a decision lacks {sorted(missing)}: {dict(d)!r}")
        if self.trade_pnls is not None and not all(math.isfinite(p) for p in self.trade_pnls):
            raise ValueError(f"{self.name}: trade_pnls must be finite")


def _check_daily_series(s: pd.Series, what: str) -> None:
    if not isinstance(s, pd.Series) or not isinstance(s.index, pd.DatetimeIndex):
        raise ValueError(f"{what} must be a pandas Series with a DatetimeIndex")
    if s.empty:
        raise ValueError(f"{what} is empty")
    if not s.index.is_monotonic_increasing or not s.index.is_unique:
        raise ValueError(f"{what} index must be sorted and unique")
    if not np.isfinite(s.to_numpy(dtype="float64")).all():
        raise ValueError(f"{what} has NaN or infinite values")
