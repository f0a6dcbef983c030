"""The hard-coded risk guard: every proposed order passes here before the broker sees it.

Contract:
- ``guard`` is pure and deterministic, has NO bypass flag or parameter, never raises, and fails closed: an
  internal error rejects every proposal with code ``guard_error``. It is the only code that builds an
  ``ApprovedOrder`` (capability token ``_GUARD_KEY``, see ``portfolio/models.py``).
- Proposals are whatever an LLM produced: ``Order`` objects or mappings with the same keys. Anything else,
  unknown keys, strings for numbers ("10"), bools, NaN/inf, ≤ 0 sizes, weights > 1 are REJECTED, never guessed.
- ``CEILINGS`` are constants. Configuration can only tighten them (``effective_limits``/``load_limits``); the
  guard itself re-applies the ceilings to whatever ``RiskLimits`` it is given, so a hand-built looser
  ``RiskLimits`` loosens nothing.

Deliberate decisions (in the order the checks run):
1. Mode: HALTED rejects everything (``halted``); REDUCING rejects buys (``reducing``), sells pass.
2. ``market.as_of`` and ``history.run_date`` must equal ``run_date``, and the ledger must have no activity after
   ``run_date`` (``out_of_order``: re-running an old day would decide against today's book); else every
   order is rejected.
3. Duplicates: the first proposal per symbol+side wins (``duplicate``); a buy and a sell of one symbol in one
   batch: the later one is rejected (``conflicting_order``).
4. Sells run before buys (stable within each side), so cash a sell frees can fund a buy in the same batch;
   the paper broker fills in the same order. Sells also come first for the orders-per-day budget.
5. Per order: a strategy that already stored orders for ``run_date`` gets no more (``already_decided``: a
   re-run of a day, whatever the LLM says this time, never trades again); orders-per-day (counting orders already stored for the day), cooldown (days since the last
   order in the symbol must be ≥ ``cooldown_days``; an order id already stored is ``already_submitted``),
   instrument known and ``tradeable``, price positive/finite and FRESH (``price_date == market.as_of``: zero
   sessions of staleness), fx positive/finite, price collar for a proposal carrying ``limit_price``.
6. Sells: the paper ledger is long-only, so a sell of a symbol not held is rejected (``no_short``, even when
   the quote is ``shortable``); a larger sell is clamped to the held quantity; ``max_order_notional`` clamps;
   a sell below ``min_trade_value`` is rejected unless it closes the position (so dust can always be sold).
7. Buys: a NEW position must fit ``max_open_positions`` and have correlation ≤ ``max_correlation`` with
   every position held after the batch so far; volatility above ``high_volatility`` (or non-finite) halves
   the size; then the size is CLAMPED, in turn, to ``max_order_notional``/``max_order_value``, the room under
   ``max_position_weight`` and ``max_gross_exposure`` and the cash left after this batch's earlier orders
   including fees. A clamp that leaves nothing, or less than ``min_trade_value``, rejects with its code.
8. Pending orders (submitted, not yet filled; ``history.pending``) count as done before the batch: their cash,
   units and exposure are spoken for, valued at today's quote (their reference price when there is none).
   So re-running a day approves nothing its first run did not, and two days' sells cannot sell one lot twice.
9. Fees: the cash check reserves ``max(limits.fee_buffer_bps, fee_bps)`` on every order. Weights are measured
   against equity less the most fees a batch can cost without leverage (2 × equity × fee rate), so post-trade
   weights hold after the broker's actual fees too. Quantities are floored to 1e-6 units (fractional units).
"""

from __future__ import annotations

import logging
import math
import numbers
import re
import reprlib
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from portfolio.breakers import RiskStateStore, stricter, update_breakers
from portfolio.models import (
    _GUARD_KEY,
    ApprovedOrder,
    Clamp,
    GuardResult,
    MarketSnapshot,
    Order,
    PortfolioSnapshot,
    Rejection,
    RiskLimits,
    RiskMode,
    RiskState,
    TradingHistory,
)

__all__ = [
    "CEILINGS",
    "RiskStateStore",
    "effective_limits",
    "guard",
    "load_limits",
    "order_id_for",
    "stricter",
    "tighten",
    "update_breakers",
]

log = logging.getLogger(__name__)

CEILINGS = RiskLimits(
    max_position_weight=0.20,
    max_gross_exposure=1.0,  # no leverage
    max_open_positions=20,
    max_orders_per_day=20,
    max_order_notional=0.25,
    max_order_value=1_000_000.0,
    min_trade_value=10.0,
    max_price_deviation=0.10,
    max_correlation=0.95,
    cooldown_days=1,
    high_volatility=0.60,
    daily_loss_limit=0.05,
    max_drawdown=0.20,
    fee_buffer_bps=20.0,
)

# Fields where a LARGER value is tighter; for every other field a smaller value is tighter.
_HIGHER_IS_TIGHTER = frozenset({"min_trade_value", "cooldown_days", "fee_buffer_bps"})
_INT_FIELDS = frozenset({"max_open_positions", "max_orders_per_day", "cooldown_days"})
_MAX_PROPOSALS = 200
_STRATEGY_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
_KEYS = frozenset({"symbol", "side", "quantity", "weight", "reason", "strategy", "limit_price"})
_SAFETY = 1.0 - 1e-9  # clamps aim a hair under each limit so float rounding never lands above it
_repr = reprlib.Repr()  # Python 3.11: no keyword arguments yet
_repr.maxstring, _repr.maxother, _repr.maxlist, _repr.maxdict, _repr.maxlevel = 80, 80, 6, 8, 2


# ---------------------------------------------------------------- limits


def tighten(overrides: Mapping[str, Any] | None) -> tuple[RiskLimits, list[str]]:
    """Apply overrides that are tighter than ``CEILINGS``; report (and ignore) every other one."""
    values = CEILINGS.model_dump()
    notes: list[str] = []
    for key, raw in (overrides or {}).items():
        if key not in values:
            notes.append(f"unknown risk limit {key!r} ignored")
            continue
        if isinstance(raw, bool) or not isinstance(raw, numbers.Real) or not math.isfinite(raw) or raw < 0:
            notes.append(f"{key}={raw!r} is not a finite non-negative number; ceiling {values[key]} kept")
            continue
        value: float = float(raw)
        if key in _INT_FIELDS:  # round towards the tighter side
            value = math.ceil(value) if key in _HIGHER_IS_TIGHTER else math.floor(value)
        ceiling = getattr(CEILINGS, key)
        looser = value < ceiling if key in _HIGHER_IS_TIGHTER else value > ceiling
        if looser:
            notes.append(f"{key}={raw} is looser than the ceiling {ceiling}; ceiling kept")
            continue
        values[key] = value
    return RiskLimits(**values), notes


def effective_limits(overrides: Mapping[str, float] | None) -> RiskLimits:
    """The limits in force: ``CEILINGS`` tightened by ``overrides`` (looser overrides are logged and ignored)."""
    limits, notes = tighten(overrides)
    for note in notes:
        log.warning("risk config: %s", note)
    return limits


def load_limits(path: Path | None) -> tuple[RiskLimits, list[str]]:
    """Read the optional TOML ``[limits]`` table at ``path``. Missing file: the ceilings, no notes.

    An unreadable file keeps the ceilings and says so (the ceilings are the loosest limits there are,
    so falling back to them never loosens anything).
    """
    if path is None or not Path(path).exists():
        return CEILINGS, []
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return CEILINGS, [f"cannot read {path} ({type(exc).__name__}); ceilings in force"]
    table = data.get("limits", {})
    if not isinstance(table, dict):
        return CEILINGS, [f"[limits] in {path} is not a table; ceilings in force"]
    return tighten(table)


def _within_ceilings(limits: object) -> RiskLimits:
    """Re-apply the ceilings to a RiskLimits of unknown origin (an invalid value takes the ceiling)."""
    if not isinstance(limits, RiskLimits):
        return CEILINGS
    values = CEILINGS.model_dump()
    for key, ceiling in values.items():
        v = getattr(limits, key)
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
            continue
        values[key] = max(v, ceiling) if key in _HIGHER_IS_TIGHTER else min(v, ceiling)
    return RiskLimits(**values)


def order_id_for(run_date: date, symbol: str, side: str, strategy: str) -> str:
    """Deterministic order id: re-running a day proposes the same ids, which the ledger stores once."""
    return f"{run_date:%Y%m%d}-{symbol}-{side}-{strategy}"


# ---------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Proposal:
    index: int
    raw: str
    symbol: str
    side: str
    quantity: float | None
    weight: float | None
    reason: str
    strategy: str
    limit_price: float | None


class _Reject(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


def _short(obj: object) -> str:
    try:
        return _repr.repr(obj)[:200]
    except Exception:  # a hostile __repr__ must not break the guard
        return f"<unprintable {type(obj).__name__}>"


def _number(value: object, name: str, *, positive: bool = True) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _Reject(f"invalid_{name}", f"{name} must be a number, got {type(value).__name__}")
    f = float(value)
    if not math.isfinite(f):
        raise _Reject(f"invalid_{name}", f"{name} must be finite, got {f}")
    if positive and f <= 0:
        raise _Reject(f"invalid_{name}", f"{name} must be > 0, got {f}")
    return f


def _parse(index: int, item: object) -> _Proposal:
    raw = _short(item)
    if isinstance(item, Order):
        data: dict[Any, Any] = item.model_dump()
    elif isinstance(item, Mapping):
        data = dict(item)
    else:
        raise _Reject("malformed", f"expected an Order or a mapping, got {type(item).__name__}")
    unknown = [k for k in data if k not in _KEYS]
    if unknown:
        raise _Reject("malformed", f"unknown fields {_short(unknown)}")
    symbol = data.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip() or len(symbol.strip()) > 40:
        raise _Reject("invalid_symbol", f"symbol must be a non-empty string, got {_short(symbol)}")
    side = data.get("side")
    if not isinstance(side, str) or side.strip().lower() not in ("buy", "sell"):
        raise _Reject("invalid_side", f"side must be 'buy' or 'sell', got {_short(side)}")
    quantity = _number(data.get("quantity"), "quantity")
    weight = _number(data.get("weight"), "weight")
    if (quantity is None) == (weight is None):
        raise _Reject("invalid_size", "give exactly one of quantity or weight")
    if weight is not None and weight > 1.0:
        raise _Reject("invalid_weight", f"weight is a fraction of equity in (0, 1], got {weight}")
    reason = data.get("reason", "")
    if reason is None:
        reason = ""
    if not isinstance(reason, str):
        raise _Reject("malformed", f"reason must be text, got {type(reason).__name__}")
    strategy = data.get("strategy", "v1")
    if not isinstance(strategy, str) or not _STRATEGY_RE.match(strategy):
        raise _Reject("invalid_strategy", f"strategy must match {_STRATEGY_RE.pattern}, got {_short(strategy)}")
    limit_price = _number(data.get("limit_price"), "limit_price")
    return _Proposal(index, raw, symbol.strip(), side.strip().lower(), quantity, weight, reason[:500],
                     strategy, limit_price)


def _floor_units(q: float) -> float:
    if not math.isfinite(q) or q <= 0:
        return 0.0
    if q >= 1e9:
        return float(math.floor(q))
    return math.floor(q * 1e6) / 1e6


# ---------------------------------------------------------------- guard


def guard(
    proposals: Sequence[object],
    *,
    portfolio: PortfolioSnapshot,
    market: MarketSnapshot,
    limits: RiskLimits,
    state: RiskState,
    history: TradingHistory,
    run_date: date,
    fee_bps: float = 0.0,
) -> GuardResult:
    """Check every proposal against the limits; approve, clamp or reject each. Never raises.

    ``fee_bps`` is the broker's commission + slippage; the cash check reserves at least
    ``limits.fee_buffer_bps`` whatever is passed (it can only make the check stricter).
    """
    mode: RiskMode = state.mode if isinstance(state, RiskState) else "HALTED"
    items: list[object] = []
    try:
        items = _as_items(proposals)
        return _guard(items, portfolio, market, _within_ceilings(limits), mode, history, run_date, fee_bps)
    except Exception as exc:  # fail closed
        detail = f"internal guard error ({type(exc).__name__}); every proposal rejected"
        rejections = [Rejection(symbol=None, raw=_short(p), code="guard_error", detail=detail) for p in items]
        if not rejections:
            rejections = [Rejection(symbol=None, raw=_short(proposals), code="guard_error", detail=detail)]
        return GuardResult(approved=[], rejections=rejections, clamps=[], mode=mode)


def _as_items(proposals: object) -> list[object]:
    if isinstance(proposals, (str, bytes, Mapping, Order)) or not isinstance(proposals, Iterable):
        return [proposals]
    return list(proposals)


class _Book:
    """The portfolio as the batch changes it: held units, values in base currency, cash, order count."""

    def __init__(self, portfolio: PortfolioSnapshot, history: TradingHistory, fee_rate: float) -> None:
        self.held = {p.symbol: float(p.quantity) for p in portfolio.positions if p.quantity > 0}
        self.value = {p.symbol: float(p.market_value) for p in portfolio.positions if p.quantity > 0}
        self.cash = float(portfolio.cash)
        self.equity = float(portfolio.equity)
        # Equity less the most fees one batch can cost without leverage (sells ≤ holdings, buys ≤ cash + sells).
        self.equity_floor = self.equity * (1.0 - 2.0 * fee_rate)
        self.orders_today = history.orders_today
        self.fee_rate = fee_rate
        self.cash_ok = math.isfinite(self.cash) and self.cash >= 0

    def valid(self) -> bool:
        nums = [self.cash, self.equity, *self.held.values(), *self.value.values()]
        return all(math.isfinite(x) for x in nums) and self.cash_ok

    def commit_pending(self, history: TradingHistory, market: MarketSnapshot) -> None:
        """Count submitted-but-unfilled orders as done: their cash and exposure are already spoken for."""
        for o in history.pending:
            quote = market.quotes.get(o.symbol)
            unit = quote.price * quote.fx_rate if quote is not None else math.nan
            if not (math.isfinite(unit) and unit > 0):
                unit = o.reference_price * o.fx_rate
            held = self.held.get(o.symbol, 0.0)
            if o.side == "buy":
                held += o.quantity
                self.cash -= o.quantity * unit * (1.0 + self.fee_rate)
            else:
                sold = min(o.quantity, held)
                held -= sold
                self.cash += sold * unit * (1.0 - self.fee_rate)
            if held > 1e-9:
                self.held[o.symbol], self.value[o.symbol] = held, held * unit
            else:
                self.held.pop(o.symbol, None)
                self.value.pop(o.symbol, None)


def _guard(
    items: list[object],
    portfolio: PortfolioSnapshot,
    market: MarketSnapshot,
    limits: RiskLimits,
    mode: RiskMode,
    history: TradingHistory,
    run_date: date,
    fee_bps: float,
) -> GuardResult:
    rejections: list[Rejection] = []
    clamps: list[Clamp] = []
    approved: list[ApprovedOrder] = []

    def reject(symbol: str | None, raw: str, code: str, detail: str) -> None:
        rejections.append(Rejection(symbol=symbol, raw=raw, code=code, detail=detail))

    parsed: list[_Proposal] = []
    for i, item in enumerate(items):
        if i >= _MAX_PROPOSALS:
            reject(None, _short(item), "too_many_proposals", f"only the first {_MAX_PROPOSALS} are read")
            continue
        try:
            parsed.append(_parse(i, item))
        except _Reject as r:
            reject(None, _short(item), r.code, r.detail)
        except Exception as exc:  # a hostile mapping must not break the batch
            reject(None, _short(item), "malformed", f"unreadable proposal ({type(exc).__name__})")

    fee = max(float(limits.fee_buffer_bps), float(fee_bps) if math.isfinite(fee_bps) else 0.0) / 10_000.0
    book = _Book(portfolio, history, fee)
    batch_error = None
    if mode == "HALTED":
        batch_error = ("halted", "trading is HALTED; nothing passes until a person runs `tradeagent risk resume`")
    elif market.as_of != run_date or history.run_date != run_date:
        batch_error = ("date_mismatch", f"market as of {market.as_of} / history of {history.run_date} "
                                        f"do not match run date {run_date}")
    elif history.latest_activity is not None and history.latest_activity > run_date:
        batch_error = ("out_of_order", f"the ledger already has activity on {history.latest_activity}, "
                                       f"after run date {run_date}")
    elif not book.valid():
        batch_error = ("invalid_portfolio", "portfolio cash/equity is not finite or cash is negative")
    if batch_error:
        for p in parsed:
            reject(p.symbol, p.raw, *batch_error)
        return GuardResult(approved=[], rejections=rejections, clamps=[], mode=mode)

    book.commit_pending(history, market)
    seen: dict[str, str] = {}
    kept: list[_Proposal] = []
    for p in parsed:
        prior = seen.get(p.symbol)
        if prior == p.side:
            reject(p.symbol, p.raw, "duplicate", f"a {p.side} of {p.symbol} is already in this batch")
        elif prior is not None:
            reject(p.symbol, p.raw, "conflicting_order", f"a {prior} of {p.symbol} is already in this batch")
        else:
            seen[p.symbol] = p.side
            kept.append(p)
    kept.sort(key=lambda p: (p.side != "sell", p.index))

    for p in kept:
        try:
            order, new_clamps = _check(p, book, market, limits, mode, history, run_date)
        except _Reject as r:
            reject(p.symbol, p.raw, r.code, r.detail)
            continue
        approved.append(order)
        clamps.extend(new_clamps)
    return GuardResult(approved=approved, rejections=rejections, clamps=clamps, mode=mode)


def _check(
    p: _Proposal,
    book: _Book,
    market: MarketSnapshot,
    limits: RiskLimits,
    mode: RiskMode,
    history: TradingHistory,
    run_date: date,
) -> tuple[ApprovedOrder, list[Clamp]]:
    sym = p.symbol
    order_id = order_id_for(run_date, sym, p.side, p.strategy)
    if mode == "REDUCING" and p.side == "buy":
        raise _Reject("reducing", "risk mode is REDUCING: only sells pass")
    if p.strategy in history.decided_strategies:
        raise _Reject("already_decided", f"strategy {p.strategy} already stored orders for {run_date}; "
                                         "a re-run of a day adds none")
    if book.orders_today >= limits.max_orders_per_day:
        raise _Reject("max_orders_per_day", f"{limits.max_orders_per_day} orders a day at most")
    if order_id in history.order_ids_today:
        raise _Reject("already_submitted", f"order {order_id} is already in the ledger")
    last = history.last_trade.get(sym)
    if last is not None and (run_date - last).days < limits.cooldown_days:
        raise _Reject("cooldown", f"last order in {sym} on {last}; {limits.cooldown_days} day(s) between orders")
    quote = market.quotes.get(sym)
    if quote is None:
        raise _Reject("unknown_symbol", f"{sym} is not in today's market snapshot")
    if not quote.tradeable:
        raise _Reject("untradeable", f"{sym} failed validation: {quote.untradeable_reason or 'no reason given'}")
    price, fx = float(quote.price), float(quote.fx_rate)
    if not (math.isfinite(price) and price > 0 and math.isfinite(fx) and fx > 0):
        raise _Reject("invalid_price", f"price {price} / fx {fx} of {sym} is not positive and finite")
    if quote.price_date != market.as_of:
        raise _Reject("stale_price", f"price of {sym} is from {quote.price_date}, not {market.as_of}")
    if p.limit_price is not None and abs(p.limit_price / price - 1.0) > limits.max_price_deviation:
        raise _Reject("price_collar", f"limit {p.limit_price} is more than {limits.max_price_deviation:.0%} "
                                      f"from the quote {price}")
    unit = price * fx  # base currency per unit
    if not (math.isfinite(unit) and unit > 0):
        raise _Reject("invalid_price", f"unit value of {sym} in base currency is {unit}")
    qty = p.quantity if p.quantity is not None else (p.weight or 0.0) * book.equity / unit
    if not (math.isfinite(qty) and qty > 0):
        raise _Reject("invalid_quantity", f"size {qty} is not positive and finite")

    clamps: list[Clamp] = []
    notes: list[str] = []

    def clamp(code: str, cap: float, detail: str) -> None:
        nonlocal qty
        if qty > cap:
            to = _floor_units(cap)
            if to <= 0 or (to * unit < limits.min_trade_value and not closing):
                raise _Reject(code, f"{detail}; nothing (or less than {limits.min_trade_value}) left to trade")
            clamps.append(Clamp(order_id=order_id, code=code, detail=detail, from_quantity=qty, to_quantity=to))
            notes.append(code)
            qty = to

    held = book.held.get(sym, 0.0)
    cap_value = min(limits.max_order_notional * book.equity, limits.max_order_value) * _SAFETY
    closing = False
    if p.side == "sell":
        if held <= 0:
            raise _Reject("no_short", f"{sym} is not held; the paper ledger does not short")
        if qty > held:  # sell everything held, exactly (no flooring: dust must be sellable)
            clamps.append(Clamp(order_id=order_id, code="exceeds_position", from_quantity=qty, to_quantity=held,
                                detail=f"sell of {qty:g} exceeds the {held:g} held"))
            notes.append("exceeds_position")
            qty = held
        closing = qty >= held
        clamp("max_order_notional", cap_value / unit, f"order value above {cap_value:.2f}")
        closing = qty >= held
        qty = _floor_units(qty) if not closing else held
        if qty <= 0 or (qty * unit < limits.min_trade_value and not closing):
            raise _Reject("min_trade_value", f"sell value {qty * unit:.2f} below {limits.min_trade_value}")
        remaining = held - qty
        if remaining <= 1e-9:
            book.held.pop(sym, None)
            book.value.pop(sym, None)
        else:
            book.held[sym] = remaining
            book.value[sym] = remaining * unit
        book.cash += qty * unit * (1.0 - book.fee_rate)
    else:
        if held <= 0:
            if len(book.held) >= limits.max_open_positions:
                raise _Reject("max_open_positions", f"{limits.max_open_positions} open positions at most")
            for other in book.held:
                corr = _correlation(market, sym, other)
                if corr is not None and corr > limits.max_correlation:
                    raise _Reject("max_correlation", f"correlation {corr:.2f} with {other} above "
                                                     f"{limits.max_correlation}")
        vol = quote.volatility
        if vol is not None and (not math.isfinite(vol) or vol > limits.high_volatility):
            clamp("high_volatility", qty / 2.0, f"volatility {vol} above {limits.high_volatility}: size halved")
        clamp("max_order_notional", cap_value / unit, f"order value above {cap_value:.2f}")
        room = (limits.max_position_weight * book.equity_floor - held * unit) * _SAFETY
        clamp("max_position_weight", room / unit, f"position above {limits.max_position_weight:.0%} of equity")
        gross = sum(book.value.values())
        room = (limits.max_gross_exposure * book.equity_floor - gross) * _SAFETY
        clamp("max_gross_exposure", room / unit, f"gross exposure above {limits.max_gross_exposure:.0%}")
        room = book.cash / (1.0 + book.fee_rate) * _SAFETY
        if room <= 0:
            raise _Reject("insufficient_cash", f"no cash left (after fees and pending orders): {book.cash:.2f}")
        clamp("insufficient_cash", room / unit, f"cash {book.cash:.2f} (after fees) too small")
        qty = _floor_units(qty)
        if qty <= 0 or qty * unit < limits.min_trade_value:
            raise _Reject("min_trade_value", f"buy value {qty * unit:.2f} below {limits.min_trade_value}")
        book.held[sym] = held + qty
        book.value[sym] = (held + qty) * unit
        book.cash -= qty * unit * (1.0 + book.fee_rate)
    book.orders_today += 1
    order = ApprovedOrder.model_validate(
        {
            "order_id": order_id, "run_date": run_date, "symbol": sym, "side": p.side, "quantity": qty,
            "reference_price": price, "currency": quote.currency, "fx_rate": fx, "notional_base": qty * unit,
            "strategy": p.strategy, "reason": p.reason, "clamped": ",".join(notes) or None,
        },
        context={"guard_key": _GUARD_KEY},
    )
    return order, clamps


def _correlation(market: MarketSnapshot, a: str, b: str) -> float | None:
    """The larger of corr[a][b] and corr[b][a] (an asymmetric matrix must not pick the looser side)."""
    found = [market.correlations.get(x, {}).get(y) for x, y in ((a, b), (b, a))]
    values = [float(v) for v in found
              if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    return max(values) if values else None
