"""Parsing of raw proposals for the risk guard: whatever an LLM produced, read strictly, never guessed.

Contract: ``parse`` turns an ``Order`` or a mapping with ``Order``'s keys into a ``Proposal``, or raises
``Reject`` with a rejection code. Unknown keys, strings for numbers ("10"), bools, NaN/inf, ≤ 0 sizes and
weights > 1 are rejected. ``describe`` never raises, even on an object with a hostile ``__repr__``.
Used only by ``portfolio/risk.py`` (split out to keep the guard's module small).
"""

from __future__ import annotations

import math
import numbers
import re
import reprlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from portfolio.models import Order

STRATEGY_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
_KEYS = frozenset({"symbol", "side", "quantity", "weight", "reason", "strategy", "limit_price"})
_repr = reprlib.Repr()  # Python 3.11: no keyword arguments yet
_repr.maxstring, _repr.maxother, _repr.maxlist, _repr.maxdict, _repr.maxlevel = 80, 80, 6, 8, 2


@dataclass(frozen=True)
class Proposal:
    index: int
    raw: str
    symbol: str
    side: str
    quantity: float | None
    weight: float | None
    reason: str
    strategy: str
    limit_price: float | None


class Reject(Exception):
    """A proposal the guard refuses: ``code`` is the rejection code, ``detail`` says why."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


def describe(obj: object) -> str:
    """A short, bounded repr for the guard log."""
    try:
        return _repr.repr(obj)[:200]
    except Exception:  # a hostile __repr__ must not break the guard
        return f"<unprintable {type(obj).__name__}>"


def as_items(proposals: object) -> list[object]:
    """The proposals as a list; a single string, mapping or Order is one (malformed or not) proposal."""
    if isinstance(proposals, (str, bytes, Mapping, Order)) or not isinstance(proposals, Iterable):
        return [proposals]
    return list(proposals)


def _number(value: object, name: str, *, positive: bool = True) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise Reject(f"invalid_{name}", f"{name} must be a number, got {type(value).__name__}")
    f = float(value)
    if not math.isfinite(f):
        raise Reject(f"invalid_{name}", f"{name} must be finite, got {f}")
    if positive and f <= 0:
        raise Reject(f"invalid_{name}", f"{name} must be > 0, got {f}")
    return f


def parse(index: int, item: object) -> Proposal:
    raw = describe(item)
    if isinstance(item, Order):
        data: dict[Any, Any] = item.model_dump()
    elif isinstance(item, Mapping):
        data = dict(item)
    else:
        raise Reject("malformed", f"expected an Order or a mapping, got {type(item).__name__}")
    unknown = [k for k in data if k not in _KEYS]
    if unknown:
        raise Reject("malformed", f"unknown fields {describe(unknown)}")
    symbol = data.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip() or len(symbol.strip()) > 40:
        raise Reject("invalid_symbol", f"symbol must be a non-empty string, got {describe(symbol)}")
    side = data.get("side")
    if not isinstance(side, str) or side.strip().lower() not in ("buy", "sell"):
        raise Reject("invalid_side", f"side must be 'buy' or 'sell', got {describe(side)}")
    quantity = _number(data.get("quantity"), "quantity")
    weight = _number(data.get("weight"), "weight")
    if (quantity is None) == (weight is None):
        raise Reject("invalid_size", "give exactly one of quantity or weight")
    if weight is not None and weight > 1.0:
        raise Reject("invalid_weight", f"weight is a fraction of equity in (0, 1], got {weight}")
    reason = data.get("reason", "")
    if reason is None:
        reason = ""
    if not isinstance(reason, str):
        raise Reject("malformed", f"reason must be text, got {type(reason).__name__}")
    strategy = data.get("strategy", "v1")
    if not isinstance(strategy, str) or not STRATEGY_RE.fullmatch(strategy):
        raise Reject("invalid_strategy", f"strategy must match {STRATEGY_RE.pattern}, got {describe(strategy)}")
    limit_price = _number(data.get("limit_price"), "limit_price")
    return Proposal(index, raw, symbol.strip(), side.strip().lower(), quantity, weight, reason[:500],
                    strategy, limit_price)
