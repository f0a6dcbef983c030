"""Property tests: whatever the proposals, no approved order breaks a limit, and the broker fills exactly them.

Each limit is recomputed here, independently of the guard's own bookkeeping: 15,000 batches against the pure
guard, plus 200 examples × 2 batches (a seed day, then the scenario) through a real in-memory ledger and the
paper broker. GUARD_EXAMPLES / BROKER_EXAMPLES override the counts.
"""

from __future__ import annotations

import math
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portfolio.broker import PaperBroker
from portfolio.ledger import Ledger
from portfolio.models import (
    GuardResult,
    MarketSnapshot,
    Order,
    PortfolioSnapshot,
    PositionView,
    RiskLimits,
    RiskState,
    TradingHistory,
)
from portfolio.risk import CEILINGS, guard

from .helpers import DAY, NEXT, assert_reconciles
from .strategies import FX, Scenario, scenarios

EPS = 1e-9


def _unit(market: MarketSnapshot, sym: str) -> float | None:
    q = market.quotes.get(sym)
    if q is None:
        return None
    u = q.price * q.fx_rate
    return u if math.isfinite(u) and u > 0 else None


def _limit_price(proposal: Any) -> float | None:
    if isinstance(proposal, Order):
        return proposal.limit_price
    return proposal.get("limit_price") if isinstance(proposal, dict) else None


def check_within_limits(result: GuardResult, *, portfolio: PortfolioSnapshot, market: MarketSnapshot,
                        limits: RiskLimits, mode: str, history: TradingHistory, proposals: list[Any]) -> set[str]:
    """Recompute every limit from the proposals' outcome; return the symbols whose |position| grew."""
    f = limits.fee_buffer_bps / 1e4
    assert isinstance(result, GuardResult)
    assert len(result.approved) + len(result.rejections) == len(proposals)
    approved = result.approved
    if mode == "HALTED":
        assert approved == []
    assert history.orders_today + len(approved) <= limits.max_orders_per_day or not approved
    syms = [o.symbol for o in approved]
    assert len(set(syms)) == len(syms)
    assert len({o.order_id for o in approved}) == len(approved)

    held = {p.symbol: p.quantity for p in portfolio.positions if p.quantity != 0}
    value = {p.symbol: p.market_value for p in portfolio.positions if p.quantity != 0}
    equity, cash, fees = portfolio.equity, portfolio.cash, 0.0
    cap = min(limits.max_order_notional * equity, limits.max_order_value)
    grew: set[str] = set()  # |position| increased: opened, added to, or crossed zero
    opened: set[str] = set()  # a new position, or a flip to the other side
    from_flat = False
    for o in sorted(approved, key=lambda o: o.side != "sell"):
        q = market.quotes[o.symbol]
        unit = _unit(market, o.symbol)
        assert q.tradeable and q.price_date == market.as_of and unit is not None
        assert math.isfinite(o.quantity) and o.quantity > 0
        assert math.isclose(o.notional_base, o.quantity * unit, rel_tol=1e-12)
        assert o.reference_price == q.price
        assert o.order_id not in history.order_ids_today
        assert o.strategy not in history.decided_strategies
        last = history.last_trade.get(o.symbol)
        assert last is None or (DAY - last).days >= limits.cooldown_days
        lp = _limit_price(proposals[int(o.reason[1:])]) if o.reason[1:].isdigit() else None
        assert lp is None or abs(lp / q.price - 1) <= limits.max_price_deviation
        before = held.get(o.symbol, 0.0)
        sign = 1.0 if o.side == "buy" else -1.0
        after = before + sign * o.quantity
        reduce = max(-sign * before, 0.0)
        if o.side == "sell" and not q.shortable:  # long-only: never below zero
            assert before > 0 and o.quantity <= before * (1 + EPS)
        assert o.opens_short == (o.side == "sell" and o.quantity > max(before, 0.0))
        assert not o.opens_short or q.shortable
        closing = reduce > 0 and abs(o.quantity - reduce) <= reduce * EPS
        # the per-order caps spare only the sale of a whole long (it cannot reach beyond the book)
        assert o.notional_base <= cap * (1 + EPS) or (o.side == "sell" and before > 0 and closing)
        assert closing or o.notional_base >= limits.min_trade_value
        adds = o.quantity > reduce * (1 + EPS)
        if mode == "REDUCING":
            assert not adds  # only what reduces risk: sells of longs, covers of shorts
        if adds:
            vol = q.volatility
            if vol is not None and (not math.isfinite(vol) or vol > limits.high_volatility):
                assert "high_volatility" in (o.clamped or "")
            grew.add(o.symbol)
            if before == 0 or (before > 0) != (after > 0):
                opened.add(o.symbol)
                from_flat = from_flat or before == 0
        cash -= sign * o.notional_base + o.notional_base * f
        fees += o.notional_base * f
        held[o.symbol] = after
        value[o.symbol] = after * unit
        if abs(after) <= 1e-9:
            held.pop(o.symbol)
            value.pop(o.symbol)
    assert cash >= 0  # after every fee, short sales included
    equity_after = equity - fees
    for sym in grew:
        assert abs(value.get(sym, 0.0)) <= limits.max_position_weight * equity_after * (1 + EPS)
    if grew:
        assert sum(abs(v) for v in value.values()) <= limits.max_gross_exposure * equity_after * (1 + EPS)
    if from_flat:
        assert len(held) <= limits.max_open_positions
    for sym in opened:
        for other in held:
            if other == sym:
                continue
            for a, b in ((sym, other), (other, sym)):
                c = market.correlations.get(a, {}).get(b)
                assert c is None or not math.isfinite(c) or c <= limits.max_correlation
    return grew


def _snapshot(scn: Scenario) -> PortfolioSnapshot:
    """The scenario's book; a short's sale proceeds sit in cash on top of the scenario's free cash."""
    mv = {s: q * (_unit(scn.market, s) or 10.0) for s, q in scn.holdings.items()}
    cash = scn.cash - sum(v for v in mv.values() if v < 0)
    equity = cash + sum(mv.values())
    positions = [PositionView(symbol=s, quantity=q, avg_price=1.0, market_value=mv[s],
                              weight=mv[s] / equity if equity > 0 else 0.0)
                 for s, q in scn.holdings.items()]
    return PortfolioSnapshot(as_of=DAY, base_currency="USD", cash=cash, equity=equity, positions=positions,
                             realised_pnl=0, unrealised_pnl=0, fees=0)


@settings(max_examples=int(os.environ.get('GUARD_EXAMPLES', 15_000)), deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios())
def test_no_approved_order_breaks_a_limit_and_the_guard_never_raises(scn: Scenario) -> None:
    portfolio = _snapshot(scn)
    result = guard(scn.proposals, portfolio=portfolio, market=scn.market, limits=scn.limits,
                   state=RiskState(mode=scn.mode), history=scn.history, run_date=DAY)  # type: ignore[arg-type]
    assert not any(r.code == "guard_error" for r in result.rejections)
    again = guard(scn.proposals, portfolio=portfolio, market=scn.market, limits=scn.limits,
                  state=RiskState(mode=scn.mode), history=scn.history, run_date=DAY)  # type: ignore[arg-type]
    assert again == result  # deterministic
    check_within_limits(result, portfolio=portfolio, market=scn.market, limits=scn.limits, mode=scn.mode,
                        history=scn.history, proposals=scn.proposals)


def _opens(market: MarketSnapshot) -> dict[str, float]:
    return {s: q.price for s, q in market.quotes.items() if _unit(market, s) is not None}


@settings(max_examples=int(os.environ.get('BROKER_EXAMPLES', 200)), deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios(), st.floats(1_000, 1e6))
def test_the_broker_fills_exactly_what_the_guard_approved(scn: Scenario, start: float) -> None:
    ledger = Ledger(Path(":memory:"), base_currency="USD", starting_cash=start)
    broker = PaperBroker(ledger, commission_bps=10, slippage_bps=5)
    try:
        # Day 0: build some positions through the guard itself.
        seed_day = DAY - timedelta(days=1)
        seed_market = MarketSnapshot(as_of=seed_day, base_currency="USD", correlations={}, quotes={
            s: q.model_copy(update={"price_date": seed_day, "tradeable": True, "volatility": None})
            for s, q in scn.market.quotes.items()})
        seed = [{"symbol": s, "side": "buy" if w > 0 else "sell", "weight": abs(w), "reason": "seed"}
                for s, w in scn.seed_weights.items()]
        rounds = [(seed_market, seed, CEILINGS, "ACTIVE", seed_day, DAY), (scn.market, scn.proposals, scn.limits,
                                                                         scn.mode, DAY, NEXT)]
        for mkt, proposals, limits, mode, day, session in rounds:
            portfolio = ledger.snapshot(mkt)
            history = ledger.history(day)
            result = guard(proposals, portfolio=portfolio, market=mkt, limits=limits, state=RiskState(mode=mode),
                           history=history, run_date=day, fee_bps=broker.cost_bps)  # type: ignore[arg-type]
            grew = check_within_limits(result, portfolio=portfolio, market=mkt, limits=limits, mode=mode,
                                       history=history, proposals=proposals)
            broker.submit(result.approved)
            fills = broker.settle(session, _opens(mkt), fx_rates=FX)
            assert len(fills) == len(result.approved)
            assert sorted((f.order_id, f.quantity) for f in fills) == sorted(
                (o.order_id, o.quantity) for o in result.approved)
            assert broker.pending() == [] and ledger.orders(status="cancelled") == []
            after = ledger.snapshot(mkt)
            assert after.cash >= 0
            for p in after.positions:
                if p.symbol in grew:  # a short's weight is negative: the limit is on its size
                    assert abs(p.weight) <= limits.max_position_weight * (1 + EPS)
                if p.quantity < 0:
                    assert mkt.quotes[p.symbol].shortable and p.weight <= 0
            assert_reconciles(ledger, mkt)
    finally:
        ledger.close()
