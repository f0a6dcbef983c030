"""Brokers: the ``Broker`` protocol and the paper broker that fills against the ledger.

Contract:
- ``submit`` accepts ONLY ``ApprovedOrder`` (anything else raises ``TypeError``), stores them as pending and is
  idempotent: an order id already stored is not stored again.
- ``settle(session, open_prices)`` settles each session once: a session at or before the ledger's settlement
  watermark returns no fills (already settled), one older than the last fill raises ``LedgerError``.
- ``expire``, ``cancel`` (by hand: ``tradeagent orders cancel``) and ``cancel_for_mode`` (the kill switch:
  HALTED cancels every pending order, REDUCING those that add risk) cancel with a reason stored on the order,
  and cancel with a sell every buy held back for it.
- ``settle(session, open_prices)`` fills every pending order decided BEFORE ``session`` at that session's OPEN,
  all in one ledger transaction. Orders decided on day D therefore fill at the next session's open.

Deliberate decisions:
- Sells fill before buys (as the guard assumed), so a sell's proceeds can fund a buy of the same session.
- A buy never fills ahead of a sell decided on or before its own decision day that is still pending (no open
  price for it yet): the guard sized that buy on the sell having freed cash, a position slot and gross
  exposure. The buy waits with it, and ``expire`` cancels it with that sell if the sell never fills.
- Slippage: a buy pays ``open × (1 + slippage_bps)``, a sell receives ``open × (1 - slippage_bps)``; commission
  is ``commission_bps`` of the traded value in base currency. Both are recorded on the fill.
- A sell never exceeds the quantity held at fill time (scaled down; cancelled when nothing is held) — unless
  the guard approved it with ``opens_short`` (a shortable instrument): then it fills in full, opening or
  increasing a short, and a short sale receives ``open × (1 - slippage_bps)`` like any sell. A cover is a buy:
  it pays ``open × (1 + slippage_bps)`` and needs the cash, like any buy. The ledger re-checks that no sell
  without ``opens_short`` takes a position below zero (defence in depth).
- A buy that cash cannot pay at fill time (the open gapped up) is scaled down to what cash pays, fees included,
  or cancelled with a reason when nothing is left: cash never goes negative.
- Price collar: an open more than ``collar`` (the guard's ``max_price_deviation``, 10%) away from the order's
  reference price (the close it was decided on) cancels the order with the move in its reason: every order is
  in effect a limit order at ±10%. One bad opening print (×50) had filled a $237 order for $7,121 and drained
  the cash. A risk-reducing sell is cancelled too; the next run decides again on the new close.
- No usable open price (missing, ≤ 0, non-finite), or no fx rate for a foreign currency when the order's own
  rate is unusable: the order stays pending. ``fx_rates`` is keyed by currency code; when it lacks the order's
  currency, the fx rate the guard saw is used.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Protocol, runtime_checkable

from portfolio.errors import LedgerError
from portfolio.ledger import Ledger
from portfolio.models import ApprovedOrder, Fill, OrderRecord, issued_by_guard

# An order fills only at an open within this fraction of the close it was decided on: the guard's price collar
# (``CEILINGS.max_price_deviation``). A bad print or a huge gap must not fill an order sized on another price.
DEFAULT_COLLAR = 0.10


@runtime_checkable
class Broker(Protocol):
    def submit(self, orders: Sequence[ApprovedOrder]) -> list[str]: ...

    def settle(
        self, session: date, open_prices: Mapping[str, float], fx_rates: Mapping[str, float] | None = None
    ) -> list[Fill]: ...

    def pending(self) -> list[OrderRecord]: ...


class PaperBroker:
    """Fills approved orders in the ledger at the next session's open, with slippage and commission."""

    def __init__(
        self, ledger: Ledger, *, commission_bps: float = 10, slippage_bps: float = 5, collar: float = DEFAULT_COLLAR
    ) -> None:
        for name, bps in (("commission_bps", commission_bps), ("slippage_bps", slippage_bps)):
            if not math.isfinite(bps) or not 0 <= bps < 10_000:
                raise ValueError(f"{name} must be in [0, 10000), got {bps}")
        if not (math.isfinite(collar) and 0 < collar < 1):
            raise ValueError(f"collar must be in (0, 1), got {collar}")
        self.ledger = ledger
        self.collar = collar
        self.commission = commission_bps / 10_000.0
        self.slippage = slippage_bps / 10_000.0

    @property
    def cost_bps(self) -> float:
        """Commission + slippage, for the guard's cash check."""
        return (self.commission + self.slippage) * 10_000.0

    def submit(self, orders: Sequence[ApprovedOrder]) -> list[str]:
        items = list(orders)
        for o in items:
            if not issued_by_guard(o):
                raise TypeError(f"the broker accepts only ApprovedOrder from the risk guard, got {type(o).__name__}")
        return self.ledger.add_orders(items)

    def pending(self) -> list[OrderRecord]:
        return self.ledger.orders(status="pending")

    def settle(
        self, session: date, open_prices: Mapping[str, float], fx_rates: Mapping[str, float] | None = None
    ) -> list[Fill]:
        fills: list[Fill] = []
        base = self.ledger.base_currency
        through = self.ledger.settled_through()
        if through is not None and session <= through:
            return []  # settled already (a resumed run, a session shared with an earlier run)
        last = self.ledger.last_fill_date()
        if last is not None and session < last:
            raise LedgerError(f"cannot settle {session}: the ledger already has fills of {last}")
        with self.ledger.transaction():
            waiting_sells: list[date] = []  # decision days of sells that cannot fill at this session
            for order in self.ledger.pending_before(session):  # by decision day, sells first
                if _held_back(order, waiting_sells):
                    continue
                open_price = _usable(open_prices.get(order.symbol))
                fx = 1.0 if order.currency == base else _usable((fx_rates or {}).get(order.currency, order.fx_rate))
                if open_price is None or fx is None:
                    if order.side == "sell":
                        waiting_sells.append(order.run_date)
                    continue
                if abs(open_price / order.reference_price - 1.0) > self.collar:
                    self.ledger.cancel(order.order_id, _outside_collar(order, open_price, self.collar))
                    continue
                fill, note = self._fill(order, session, open_price, fx)
                if fill is None:
                    self.ledger.cancel(order.order_id, note or "not fillable")
                    continue
                self.ledger.apply_fill(fill, mark_base=open_price * fx, note=note, allow_short=order.opens_short)
                fills.append(fill)
            if any(_usable(p) is not None for p in open_prices.values()):  # a session with no prices is not one
                self.ledger.mark_settled(session)
        return fills

    def expire(self, sessions: Sequence[date], after: int) -> list[dict[str, str]]:
        """Cancel pending orders that ``after`` of ``sessions`` passed without filling, and the buys held back for them.

        ``sessions`` are the universe's sessions (any set that holds every session after the pending orders'
        decision days, up to today). A buy waiting on an expired sell (see ``settle``) is cancelled with it:
        the guard sized it on that sell, which will never fill. Returns ``{"order_id", "symbol", "reason"}``
        per cancelled order.
        """
        ordered = sorted(sessions)
        doomed: dict[str, str] = {}
        for order in self.ledger.pending_before(date.max):
            waited = len(ordered) - bisect.bisect_right(ordered, order.run_date)
            if waited >= after:
                doomed[order.order_id] = (f"expired: no {order.symbol} session to fill at in the {waited} "
                                          f"sessions after {order.run_date}")
        return self._cancel_cascading(doomed)

    def cancel(self, order_ids: Sequence[str] | None, reason: str) -> list[dict[str, str]]:
        """Cancel pending orders by id (``None``: every pending order), and the buys held back for a cancelled sell.

        Unknown or no-longer-pending ids are left alone (the result lists what was cancelled).
        """
        pending = {o.order_id for o in self.ledger.pending_before(date.max)}
        wanted = pending if order_ids is None else [i for i in order_ids if i in pending]
        return self._cancel_cascading(dict.fromkeys(wanted, reason))

    def cancel_for_mode(self, mode: str, why: str) -> list[dict[str, str]]:
        """Cancel what the kill switch forbids: everything when HALTED; orders that add risk when REDUCING.

        Adding risk: a buy while the position is flat or long, and a sell approved to open or increase a
        short. Sells of longs and covers of shorts stay: they reduce risk. ACTIVE cancels nothing.
        """
        if mode == "ACTIVE":
            return []
        held = {s: q for s, (q, _, _) in self.ledger.position_costs().items()}
        doomed: dict[str, str] = {}
        for order in self.ledger.pending_before(date.max):
            adds = (order.side == "buy" and held.get(order.symbol, 0.0) >= 0) or order.opens_short
            if mode != "REDUCING" or adds:
                doomed[order.order_id] = f"cancelled: risk mode {mode} ({why})"
        return self._cancel_cascading(doomed)

    def _cancel_cascading(self, doomed: Mapping[str, str]) -> list[dict[str, str]]:
        """Cancel ``doomed`` (id → reason) in one transaction, plus every buy held back for a cancelled sell."""
        cancelled: list[dict[str, str]] = []
        if not doomed:  # nothing cancelled, so no sell died and no buy waits on one
            return cancelled
        dead_sells: list[date] = []  # decision days of sells cancelled just now
        how = "was cancelled"
        with self.ledger.transaction():
            for order in self.ledger.pending_before(date.max):  # by decision day, sells first
                reason = doomed.get(order.order_id)
                if reason is None and _held_back(order, dead_sells):
                    reason = f"cancelled: a sell decided on {min(dead_sells)} that this buy was sized on {how}"
                if reason is None:
                    continue
                if self.ledger.cancel(order.order_id, reason):
                    cancelled.append({"order_id": order.order_id, "symbol": order.symbol, "reason": reason})
                    if order.side == "sell":
                        how = "expired" if not dead_sells and reason.startswith("expired") else how
                        dead_sells.append(order.run_date)
        return cancelled

    def _fill(self, order: OrderRecord, session: date, open_price: float, fx: float) -> tuple[Fill | None, str | None]:
        held = self.ledger.position_costs().get(order.symbol, (0.0, 0.0, None))[0]
        qty, note = order.quantity, None
        if order.side == "sell":
            price = open_price * (1.0 - self.slippage)
            if order.opens_short:
                pass  # the guard sized the short against the limits: fill it in full
            elif held <= 0:
                return None, "cancelled: nothing held at fill time"
            elif qty > held:
                qty, note = held, f"scaled from {order.quantity:g} to the {held:g} held at fill time"
        else:
            price = open_price * (1.0 + self.slippage)
            cash = self.ledger.account()["cash"]
            unit_cost = price * fx * (1.0 + self.commission)
            if qty * unit_cost > cash:
                qty = math.floor(cash / unit_cost * 1e6 * (1.0 - 1e-12)) / 1e6
                if qty <= 0:
                    return None, f"cancelled: insufficient cash ({cash:.2f}) at fill time"
                note = f"scaled from {order.quantity:g} to {qty:g}: insufficient cash at fill time"
        value = qty * price * fx
        fill = Fill(order_id=order.order_id, symbol=order.symbol, side=order.side, quantity=qty, price=price,
                    commission=value * self.commission, slippage=qty * open_price * self.slippage * fx,
                    fill_date=session, currency=order.currency, fx_rate=fx)
        return fill, note


def _outside_collar(order: OrderRecord, open_price: float, collar: float) -> str:
    move = open_price / order.reference_price - 1.0
    return (f"cancelled: the {order.symbol} open {open_price:g} is {move:+.1%} from the close {order.reference_price:g} "
            f"the order was decided on, beyond the ±{collar:.0%} collar (decide again on fresh prices)")


def _held_back(order: OrderRecord, sell_days: Sequence[date]) -> bool:
    """A buy decided on or after one of ``sell_days`` (days of unfilled sells) was sized on that sell: it waits."""
    return order.side == "buy" and any(day <= order.run_date for day in sell_days)


def _usable(x: object) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    f = float(x)
    return f if math.isfinite(f) and f > 0 else None
