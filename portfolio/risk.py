"""The hard-coded risk guard: every proposed order passes here before the broker sees it.

Contract:
- ``guard`` is pure and deterministic, has NO bypass flag or parameter, never raises, and fails closed: an
  internal error rejects every proposal with code ``guard_error``. It is the only code that builds an
  ``ApprovedOrder`` (capability token ``_GUARD_KEY``, see ``portfolio/models.py``).
- Proposals are whatever an LLM produced: ``Order`` objects or mappings with the same keys. Anything else,
  unknown keys, strings for numbers ("10"), bools, NaN/inf, ≤ 0 sizes, weights > 1 are REJECTED, never guessed
  (``portfolio/proposals.py`` reads them).
- ``CEILINGS`` are constants. Configuration can only tighten them (``effective_limits``/``load_limits``); the
  guard itself re-applies the ceilings to whatever ``RiskLimits`` it is given, so a hand-built looser
  ``RiskLimits`` loosens nothing.
- ``load_limits(TRADEAGENT_HOME/risk.toml)`` fails closed: a file that cannot be read or parsed, a table other
  than ``[limits]``, a key that is not a limit (a typo) or a value that is not a finite non-negative number
  raises ``RiskConfigError`` (the caller refuses to trade), because falling back to the ceilings would
  silently drop every limit the user tightened. Only a value LOOSER than its ceiling is not an error: the
  ceiling stays in force and a note says so (the caller shows it). No file means the ceilings.
- ``LIMIT_INFO`` holds each limit's unit and one-line meaning, once, for every place that shows limits.

Deliberate decisions (in the order the checks run):
1. Mode: HALTED rejects everything (``halted``); REDUCING passes only what reduces risk: sells of longs and
   buys that cover a short. Other buys, and sells that open or increase a short, are ``reducing``; an order
   that would cross zero is clamped to the part that closes the position (code ``reducing``).
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
   instrument known and ``tradeable`` (one exception: a quote ``exit_only`` — refused only for a past ``jump``,
   today's close accepted — lets a sell of at most the long held pass, so a name caught in a real crash can be
   sold before the gate's year-long jump window ends), price positive/finite and FRESH (``price_date == market.as_of``: zero
   sessions of staleness), fx positive/finite, price collar for a proposal carrying ``limit_price``.
6. Sells of an instrument whose quote is NOT ``shortable`` (long-only): a sell of a symbol not held is rejected
   (``no_short``); a larger sell is clamped to the held quantity; ``max_order_notional``/``max_order_value``
   clamp a partial sell, but NOT a sell of the whole holding (as proposed, or once cut to it): selling what
   the book holds cannot be a fat finger beyond the book, and a clamp would leave a remnant of a position the
   policy chose to exit (a position grown above the order cap could then never be closed in one order). A
   sell below ``min_trade_value`` is rejected unless it closes the position (so dust can always be sold).
7. Buys, and sells of a ``shortable`` instrument (positions are signed; a short is negative). The part of an
   order that only reduces |position| (a cover, a sale of a long) is risk-reducing: the weight and gross
   limits never clamp it. The part beyond it opens or adds exposure, long or short, and is checked alike: a
   NEW position (from flat) must fit ``max_open_positions`` (shorts count) and have correlation ≤
   ``max_correlation`` with every position held after the batch so far (a position crossing zero keeps only
   its closing part when that fails; adding to a position already held on the same side is not a new position
   and is not checked for correlation: the limits below bound it); volatility above ``high_volatility`` (or non-finite) halves the size
   (never below the closing part); then the size is CLAMPED, in turn, to ``max_order_notional``/
   ``max_order_value`` (except a sell of exactly the long held, as in 6; a cover, or a sell that crosses
   zero into a short, is clamped like any order), the room under ``max_position_weight`` (of |value|) and ``max_gross_exposure``
   (Σ |value|: shorts count) and, for buys (covers too), the cash left after this batch's earlier orders
   including fees. A short sale needs no cash: its fees come out of its proceeds, which are credited to cash
   (so they can fund later buys; the gross limit is what bounds that leverage). A clamp that leaves nothing,
   or less than ``min_trade_value``, rejects with its code, unless what is left exactly closes the position.
   A sell beyond the holding carries ``opens_short=True``: the broker's only licence to go below zero.
8. Pending orders (submitted, not yet filled; ``history.pending``) count as done before the batch: their cash,
   units and exposure are spoken for, valued at today's quote (their reference price when there is none); a
   pending sell counts beyond the holding only when it was approved with ``opens_short``.
   So re-running a day approves nothing its first run did not, and two days' sells cannot sell one lot twice.
9. Fees: the cash check reserves ``max(limits.fee_buffer_bps, fee_bps)`` on every order. Weights are measured
   against equity less the most fees a batch can cost (fee rate × (equity + max(equity, gross held)); long-only
   that is 2 × equity × fee rate), so post-trade weights hold after the broker's actual fees too. Quantities are floored to 1e-6 units (fractional units).
"""

from __future__ import annotations

import difflib
import logging
import math
import numbers
import tomllib
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from portfolio.breakers import RiskStateStore, drawdown_from_peak, stricter, update_breakers
from portfolio.errors import RiskConfigError
from portfolio.models import (
    _GUARD_KEY,
    ApprovedOrder,
    Clamp,
    GuardResult,
    MarketSnapshot,
    PortfolioSnapshot,
    Rejection,
    RiskLimits,
    RiskMode,
    RiskState,
    TradingHistory,
)
from portfolio.proposals import Proposal, Reject, as_items, describe, parse
from portfolio.storage import reraise_interrupt

__all__ = [
    "CEILINGS",
    "LIMIT_INFO",
    "RiskStateStore",
    "drawdown_from_peak",
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

# Unit and one-line meaning of every limit (``risk limits`` shows them; a test keeps the keys == RiskLimits').
LIMIT_INFO: Mapping[str, tuple[str, str]] = {
    "max_position_weight": ("fraction of equity", "largest position, long or short, by |market value|"),
    "max_gross_exposure": ("fraction of equity", "sum of |position values|, shorts included (1.0: no leverage)"),
    "max_open_positions": ("positions", "open positions at most, shorts included"),
    "max_orders_per_day": ("orders", "orders a day at most, all strategies together"),
    "max_order_notional": ("fraction of equity", "one order's value at most; larger ones are clamped "
                                                 "(not the sale of a whole long)"),
    "max_order_value": ("base currency", "one order's value at most; larger ones are clamped "
                                         "(not the sale of a whole long)"),
    "min_trade_value": ("base currency", "a smaller order is rejected (a sell closing a position passes)"),
    "max_price_deviation": ("fraction of the quote", "a limit price further from the quote is rejected"),
    "max_correlation": ("correlation", "a new position more correlated with a held one is rejected"),
    "cooldown_days": ("days", "days between two orders in one symbol"),
    "high_volatility": ("annualised volatility", "above it an order that adds exposure is halved"),
    "daily_loss_limit": ("fraction of equity", "a one-day loss this large latches REDUCING (only sells pass)"),
    "max_drawdown": ("fraction of equity", "a fall from the equity peak this large latches HALTED"),
    "fee_buffer_bps": ("basis points", "fees the cash check reserves per order (at least the broker's)"),
}

# Fields where a LARGER value is tighter; for every other field a smaller value is tighter.
_HIGHER_IS_TIGHTER = frozenset({"min_trade_value", "cooldown_days", "fee_buffer_bps"})
_INT_FIELDS = frozenset({"max_open_positions", "max_orders_per_day", "cooldown_days"})
_MAX_PROPOSALS = 200
_SAFETY = 1.0 - 1e-9  # clamps aim a hair under each limit so float rounding never lands above it


# ---------------------------------------------------------------- limits


def tighten(overrides: Mapping[str, Any] | None) -> tuple[RiskLimits, list[str]]:
    """Apply overrides that are tighter than ``CEILINGS``; report (and ignore) every other one."""
    values = CEILINGS.model_dump()
    notes: list[str] = []
    for key, raw in (overrides or {}).items():
        if key not in values:
            notes.append(f"unknown risk limit {key!r} ignored")
            continue
        value = _finite_non_negative(raw)
        if value is None:
            notes.append(f"{key}={_shown(raw)} is not a finite non-negative number; ceiling {values[key]} kept")
            continue
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


def _finite_non_negative(raw: object) -> float | None:
    """``raw`` as a float when it is a real, finite, non-negative number (an int too big for a float is not)."""
    if isinstance(raw, bool) or not isinstance(raw, numbers.Real):
        return None
    try:
        value = float(raw)
    except (OverflowError, ValueError):
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _shown(raw: object) -> str:
    try:
        return repr(raw)[:40]
    except ValueError:  # an int with more digits than Python will print
        return f"<{type(raw).__name__}>"


def load_limits(path: Path | None) -> tuple[RiskLimits, list[str]]:
    """The limits in force: ``CEILINGS`` tightened by the ``[limits]`` table of the TOML file at ``path``.

    No file (or ``None``): the ceilings, no notes. A value looser than its ceiling keeps the ceiling and
    returns a note. Anything else that is not a known limit with a finite non-negative number raises
    ``RiskConfigError`` (one line naming the file): the caller must refuse to trade.
    """
    if path is None:
        return CEILINGS, []
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return CEILINGS, []
    except (OSError, UnicodeDecodeError) as exc:
        raise _config_error(path, f"cannot be read ({type(exc).__name__})") from None
    try:
        data = tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError; also a 5,000-digit int Python refuses to parse
        raise _config_error(path, f"is not valid TOML ({exc})") from None
    for table in data:
        if table != "limits":
            raise _config_error(path, f"has an unknown table or key {table!r}{_did_you_mean(table, ['limits'])}; "
                                      "the only table is [limits]")
    limits = data.get("limits", {})
    if not isinstance(limits, dict):
        raise _config_error(path, "has 'limits' that is not a table; write [limits] and one limit per line")
    for key, raw in limits.items():
        if key not in LIMIT_INFO:
            raise _config_error(path, f"has an unknown risk limit {key!r}{_did_you_mean(key, list(LIMIT_INFO))}")
        if _finite_non_negative(raw) is None:
            raise _config_error(path, f"has {key} = {_shown(raw)}, not a finite non-negative number")
    return tighten(limits)


def _config_error(path: Path, problem: str) -> RiskConfigError:
    return RiskConfigError(f"risk config {path} {problem}: no order is placed until it is fixed or removed "
                           "(`tradeagent risk limits` lists the limits)")


def _did_you_mean(word: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _within_ceilings(limits: object) -> RiskLimits:
    """Re-apply the ceilings to a RiskLimits of unknown origin (an invalid value takes the ceiling)."""
    if not isinstance(limits, RiskLimits):
        return CEILINGS
    values = CEILINGS.model_dump()
    for key, ceiling in values.items():
        v = _finite_non_negative(getattr(limits, key))
        if v is None:
            continue
        values[key] = max(v, ceiling) if key in _HIGHER_IS_TIGHTER else min(v, ceiling)
    return RiskLimits(**values)


def order_id_for(run_date: date, symbol: str, side: str, strategy: str) -> str:
    """Deterministic order id: re-running a day proposes the same ids, which the ledger stores once."""
    return f"{run_date:%Y%m%d}-{symbol}-{side}-{strategy}"


# ---------------------------------------------------------------- sizing


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
        items = as_items(proposals)
        return _guard(items, portfolio, market, _within_ceilings(limits), mode, history, run_date, fee_bps)
    except Exception as exc:  # fail closed
        reraise_interrupt(exc)
        detail = f"internal guard error ({type(exc).__name__}); every proposal rejected"
        rejections = [Rejection(symbol=None, raw=describe(p), code="guard_error", detail=detail) for p in items]
        if not rejections:
            rejections = [Rejection(symbol=None, raw=describe(proposals), code="guard_error", detail=detail)]
        return GuardResult(approved=[], rejections=rejections, clamps=[], mode=mode)


class _Book:
    """The portfolio as the batch changes it: held units, values in base currency, cash, order count."""

    def __init__(self, portfolio: PortfolioSnapshot, history: TradingHistory, fee_rate: float) -> None:
        # Signed: a short is a negative quantity with a negative value.
        self.held = {p.symbol: float(p.quantity) for p in portfolio.positions if p.quantity != 0}
        self.value = {p.symbol: float(p.market_value) for p in portfolio.positions if p.quantity != 0}
        self.cash = float(portfolio.cash)
        self.equity = float(portfolio.equity)
        # Equity less the most fees one batch can cost. What a batch trades is at most what it reduces (≤ the
        # gross held, G0) plus what it adds (≤ gross room + what it reduced), so ≤ 2·G0 + G·E − G0 ≤ E + G0.
        # Long-only, G0 ≤ E (cash ≥ 0) and this is 2·E as before; shorts can make G0 exceed E.
        gross0 = sum(abs(v) for v in self.value.values())
        self.equity_floor = self.equity - fee_rate * (self.equity + max(self.equity, gross0))
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
            else:  # the broker caps a sell at the holding unless the guard let it open a short
                sold = o.quantity if o.opens_short else min(o.quantity, max(held, 0.0))
                held -= sold
                self.cash += sold * unit * (1.0 - self.fee_rate)
            if abs(held) > 1e-9:
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

    parsed: list[Proposal] = []
    for i, item in enumerate(items):
        if i >= _MAX_PROPOSALS:
            reject(None, describe(item), "too_many_proposals", f"only the first {_MAX_PROPOSALS} are read")
            continue
        try:
            parsed.append(parse(i, item))
        except Reject as r:
            reject(None, describe(item), r.code, r.detail)
        except Exception as exc:  # a hostile mapping must not break the batch
            reject(None, describe(item), "malformed", f"unreadable proposal ({type(exc).__name__})")

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
    kept: list[Proposal] = []
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
        except Reject as r:
            reject(p.symbol, p.raw, r.code, r.detail)
            continue
        approved.append(order)
        clamps.extend(new_clamps)
    return GuardResult(approved=approved, rejections=rejections, clamps=clamps, mode=mode)


def _check(
    p: Proposal,
    book: _Book,
    market: MarketSnapshot,
    limits: RiskLimits,
    mode: RiskMode,
    history: TradingHistory,
    run_date: date,
) -> tuple[ApprovedOrder, list[Clamp]]:
    sym = p.symbol
    order_id = order_id_for(run_date, sym, p.side, p.strategy)
    if mode == "REDUCING" and p.side == "buy" and book.held.get(sym, 0.0) >= 0:
        raise Reject("reducing", "risk mode is REDUCING: only sells and covers of shorts pass")
    if p.strategy in history.decided_strategies:
        raise Reject("already_decided", f"strategy {p.strategy} already stored orders for {run_date}; "
                                         "a re-run of a day adds none")
    if book.orders_today >= limits.max_orders_per_day:
        raise Reject("max_orders_per_day", f"{limits.max_orders_per_day} orders a day at most")
    if order_id in history.order_ids_today:
        raise Reject("already_submitted", f"order {order_id} is already in the ledger")
    last = history.last_trade.get(sym)
    if last is not None and (run_date - last).days < limits.cooldown_days:
        raise Reject("cooldown", f"last order in {sym} on {last}; {limits.cooldown_days} day(s) between orders")
    quote = market.quotes.get(sym)
    if quote is None:
        raise Reject("unknown_symbol", f"{sym} is not in today's market snapshot")
    reducing_only = False
    if not quote.tradeable:
        if not (quote.exit_only and p.side == "sell" and book.held.get(sym, 0.0) > 0):
            raise Reject("untradeable", f"{sym} failed validation: {quote.untradeable_reason or 'no reason given'}")
        reducing_only = True  # a past jump, today's close accepted: only a sale of (part of) the long passes
    price, fx = float(quote.price), float(quote.fx_rate)
    if not (math.isfinite(price) and price > 0 and math.isfinite(fx) and fx > 0):
        raise Reject("invalid_price", f"price {price} / fx {fx} of {sym} is not positive and finite")
    if quote.price_date != market.as_of:
        raise Reject("stale_price", f"price of {sym} is from {quote.price_date}, not {market.as_of}")
    if p.limit_price is not None and abs(p.limit_price / price - 1.0) > limits.max_price_deviation:
        raise Reject("price_collar", f"limit {p.limit_price} is more than {limits.max_price_deviation:.0%} "
                                      f"from the quote {price}")
    unit = price * fx  # base currency per unit
    if not (math.isfinite(unit) and unit > 0):
        raise Reject("invalid_price", f"unit value of {sym} in base currency is {unit}")
    qty = p.quantity if p.quantity is not None else (p.weight or 0.0) * book.equity / unit
    if not (math.isfinite(qty) and qty > 0):
        raise Reject("invalid_quantity", f"size {qty} is not positive and finite")

    clamps: list[Clamp] = []
    notes: list[str] = []

    def clamp(code: str, cap: float, detail: str) -> None:
        nonlocal qty
        if qty > cap:
            to = _floor_units(cap)
            if to <= 0 or (to * unit < limits.min_trade_value and not closing):
                raise Reject(code, f"{detail}; nothing (or less than {limits.min_trade_value}) left to trade")
            clamps.append(Clamp(order_id=order_id, code=code, detail=detail, from_quantity=qty, to_quantity=to))
            notes.append(code)
            qty = to

    held = book.held.get(sym, 0.0)
    if reducing_only and qty > held:  # never beyond the long, even for a shortable instrument
        clamps.append(Clamp(order_id=order_id, code="exceeds_position", from_quantity=qty, to_quantity=held,
                            detail=f"{sym} is untradeable but for selling the {held:g} held (a past jump)"))
        notes.append("exceeds_position")
        qty = held
    cap_value = min(limits.max_order_notional * book.equity, limits.max_order_value) * _SAFETY
    closing = False
    opens_short = False
    if p.side == "sell" and not quote.shortable:
        if held <= 0:
            raise Reject("no_short", f"{sym} is not held and not shortable; the ledger does not short it")
        if qty > held:  # sell everything held, exactly (no flooring: dust must be sellable)
            clamps.append(Clamp(order_id=order_id, code="exceeds_position", from_quantity=qty, to_quantity=held,
                                detail=f"sell of {qty:g} exceeds the {held:g} held"))
            notes.append("exceeds_position")
            qty = held
        closing = qty >= held
        if not closing:  # a sale of the whole holding is exempt: it cannot reach beyond the book
            clamp("max_order_notional", cap_value / unit, f"order value above {cap_value:.2f}")
        closing = qty >= held
        qty = _floor_units(qty) if not closing else held
        if qty <= 0 or (qty * unit < limits.min_trade_value and not closing):
            raise Reject("min_trade_value", f"sell value {qty * unit:.2f} below {limits.min_trade_value}")
        remaining = held - qty
        if remaining <= 1e-9:
            book.held.pop(sym, None)
            book.value.pop(sym, None)
        else:
            book.held[sym] = remaining
            book.value[sym] = remaining * unit
        book.cash += qty * unit * (1.0 - book.fee_rate)
    else:
        qty, opens_short = _size_two_way(p, qty, held, unit, quote.volatility, book, market, limits, mode,
                                         order_id, cap_value, clamps, notes)
    book.orders_today += 1
    order = ApprovedOrder.model_validate(
        {
            "order_id": order_id, "run_date": run_date, "symbol": sym, "side": p.side, "quantity": qty,
            "reference_price": price, "currency": quote.currency, "fx_rate": fx, "notional_base": qty * unit,
            "strategy": p.strategy, "reason": p.reason, "clamped": ",".join(notes) or None,
            "opens_short": opens_short,
        },
        context={"guard_key": _GUARD_KEY},
    )
    return order, clamps


def _size_two_way(
    p: Proposal,
    qty: float,
    held: float,
    unit: float,
    vol: float | None,
    book: _Book,
    market: MarketSnapshot,
    limits: RiskLimits,
    mode: RiskMode,
    order_id: str,
    cap_value: float,
    clamps: list[Clamp],
    notes: list[str],
) -> tuple[float, bool]:
    """Size a buy (of anything) or a sell of a SHORTABLE instrument, where the position may be negative.

    Measured along the trade's direction: ``along`` is the position in that direction (negative when the
    trade reduces it) and ``reduce`` the units that only reduce |position|. That part never needs room under
    the weight or gross limits, so a cover (or a sale of a long) is never clamped by them; everything beyond
    it opens or adds exposure and is checked exactly like a long buy. For a long buy (held ≥ 0) every formula
    below is the long-only one. Returns the quantity and whether the order opens or increases a short.
    """
    sym, side = p.symbol, p.side
    sign = 1.0 if side == "buy" else -1.0
    along = sign * held
    reduce = max(-along, 0.0)

    def clamp(code: str, cap: float, detail: str) -> None:
        nonlocal qty
        if qty > cap:
            to = _floor_units(cap)
            if reduce > 0 and to < reduce <= cap * (1 + 1e-12) + 1e-12:
                to = reduce  # exactly the position: close it, leave no dust
            closes = reduce > 0 and to == reduce
            if to <= 0 or (to * unit < limits.min_trade_value and not closes):
                raise Reject(code, f"{detail}; nothing (or less than {limits.min_trade_value}) left to trade")
            clamps.append(Clamp(order_id=order_id, code=code, detail=detail, from_quantity=qty, to_quantity=to))
            notes.append(code)
            qty = to

    if qty > reduce:  # the order opens or adds exposure
        if mode == "REDUCING":  # only the risk-reducing part may pass
            if reduce <= 0:
                raise Reject("reducing", "risk mode is REDUCING: a sell that opens or increases a short is refused")
            clamp("reducing", reduce, "risk mode is REDUCING: only the part that closes the position passes")
        elif held == 0:  # a NEW position, long or short
            if len(book.held) >= limits.max_open_positions:
                raise Reject("max_open_positions", f"{limits.max_open_positions} open positions at most")
            corr, other = _max_correlation(market, sym, book.held)
            if corr is not None and corr > limits.max_correlation:
                raise Reject("max_correlation", f"correlation {corr:.2f} with {other} above {limits.max_correlation}")
        elif reduce > 0:  # crosses zero: the other side is a new position too; the closing part still passes
            corr, other = _max_correlation(market, sym, book.held)
            if corr is not None and corr > limits.max_correlation:
                clamp("max_correlation", reduce, f"correlation {corr:.2f} with {other} above "
                                                 f"{limits.max_correlation}: only the closing part passes")
    if qty > reduce and vol is not None and (not math.isfinite(vol) or vol > limits.high_volatility):
        clamp("high_volatility", max(reduce, qty / 2.0), f"volatility {vol} above {limits.high_volatility}: "
                                                         "size halved")
    if not (side == "sell" and reduce > 0 and reduce <= qty <= reduce * (1 + 1e-12)):  # sale of a whole long
        clamp("max_order_notional", cap_value / unit, f"order value above {cap_value:.2f}")
    room = (limits.max_position_weight * book.equity_floor - along * unit) * _SAFETY
    clamp("max_position_weight", max(reduce, room / unit),
          f"position above {limits.max_position_weight:.0%} of equity")
    gross = sum(abs(v) for v in book.value.values())
    room = (limits.max_gross_exposure * book.equity_floor - gross) * _SAFETY
    clamp("max_gross_exposure", max(reduce, room / unit + (abs(held) - along)),
          f"gross exposure above {limits.max_gross_exposure:.0%}")
    if side == "buy":  # a short sale needs no cash: its fees come out of its proceeds
        room = book.cash / (1.0 + book.fee_rate) * _SAFETY
        if room <= 0:
            raise Reject("insufficient_cash", f"no cash left (after fees and pending orders): {book.cash:.2f}")
        clamp("insufficient_cash", room / unit, f"cash {book.cash:.2f} (after fees) too small")
    if reduce > 0 and reduce <= qty <= reduce * (1 + 1e-12):
        qty = reduce
    elif qty > reduce:
        qty = max(_floor_units(qty), reduce)
    else:
        qty = _floor_units(qty)
    closes = reduce > 0 and qty == reduce
    if qty <= 0 or (qty * unit < limits.min_trade_value and not closes):
        raise Reject("min_trade_value", f"{side} value {qty * unit:.2f} below {limits.min_trade_value}")
    new = held + sign * qty
    if abs(new) <= 1e-9:
        book.held.pop(sym, None)
        book.value.pop(sym, None)
    else:
        book.held[sym], book.value[sym] = new, new * unit
    book.cash += -sign * qty * unit * (1.0 + sign * book.fee_rate)
    return qty, side == "sell" and qty > max(held, 0.0)


def _max_correlation(market: MarketSnapshot, sym: str, held: Mapping[str, float]) -> tuple[float | None, str]:
    """The first held position whose correlation with ``sym`` is above the others' (None when unknown)."""
    best: tuple[float | None, str] = (None, "")
    for other in held:
        if other == sym:
            continue
        corr = _correlation(market, sym, other)
        if corr is not None and (best[0] is None or corr > best[0]):
            best = (corr, other)
    return best


def _correlation(market: MarketSnapshot, a: str, b: str) -> float | None:
    """The larger of corr[a][b] and corr[b][a] (an asymmetric matrix must not pick the looser side)."""
    found = [market.correlations.get(x, {}).get(y) for x, y in ((a, b), (b, a))]
    values = [float(v) for v in found
              if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    return max(values) if values else None
