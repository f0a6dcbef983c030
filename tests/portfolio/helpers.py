"""Small builders for the portfolio tests: a market, a portfolio snapshot, a guard call with defaults."""

from __future__ import annotations

from datetime import date
from typing import Any

from portfolio.models import (
    GuardResult,
    MarketSnapshot,
    PortfolioSnapshot,
    PositionView,
    Quote,
    RiskLimits,
    RiskState,
    TradingHistory,
)
from portfolio.risk import CEILINGS, guard

DAY = date(2024, 3, 4)  # a Monday
NEXT = date(2024, 3, 5)


def market(prices: dict[str, float], as_of: date = DAY, **quote_kw: Any) -> MarketSnapshot:
    quotes = {s: Quote(symbol=s, price=p, price_date=as_of, **quote_kw) for s, p in prices.items()}
    return MarketSnapshot(as_of=as_of, base_currency="USD", quotes=quotes)


def book(cash: float = 10_000.0, holdings: dict[str, tuple[float, float]] | None = None,
         as_of: date = DAY) -> PortfolioSnapshot:
    """holdings: symbol → (quantity, price); valued at that price."""
    holdings = holdings or {}
    mv = {s: q * p for s, (q, p) in holdings.items()}
    equity = cash + sum(mv.values())
    positions = [PositionView(symbol=s, quantity=q, avg_price=p, market_value=mv[s], weight=mv[s] / equity)
                 for s, (q, p) in holdings.items()]
    return PortfolioSnapshot(as_of=as_of, base_currency="USD", cash=cash, equity=equity, positions=positions,
                             realised_pnl=0.0, unrealised_pnl=0.0, fees=0.0)


def run_guard(proposals: Any, *, portfolio: PortfolioSnapshot | None = None, mkt: MarketSnapshot | None = None,
              limits: RiskLimits = CEILINGS, mode: str = "ACTIVE", history: TradingHistory | None = None,
              run_date: date = DAY) -> GuardResult:
    return guard(
        proposals,
        portfolio=portfolio or book(),
        market=mkt or market({"AAA": 100.0, "BBB": 50.0, "CCC": 20.0}),
        limits=limits,
        state=RiskState(mode=mode),  # type: ignore[arg-type]
        history=history or TradingHistory(run_date=run_date),
        run_date=run_date,
    )


def codes(result: GuardResult) -> list[str]:
    return [r.code for r in result.rejections]


def recompute_from_fills(fills: list[Any], starting_cash: float) -> dict[str, Any]:
    """Independent books from the fills table alone: cash, signed positions, signed cost basis, realised, fees.

    A short is negative units with a negative basis (units × average entry). A fill against the position
    closes up to its size (realising side × (proceeds − basis share)) and opens the rest on the other side.
    """
    cash, realised, fees = starting_cash, 0.0, 0.0
    units: dict[str, float] = {}
    cost: dict[str, float] = {}  # signed total cost basis in base currency
    for f in fills:
        value = f.quantity * f.price * f.fx_rate
        fees += f.commission
        sign = 1.0 if f.side == "buy" else -1.0
        cash -= sign * value + f.commission
        held = units.get(f.symbol, 0.0)
        if held == 0 or (held > 0) == (sign > 0):
            units[f.symbol] = held + sign * f.quantity
            cost[f.symbol] = cost.get(f.symbol, 0.0) + sign * value
            continue
        closed = min(f.quantity, abs(held))
        if f.quantity - closed <= 1e-9:
            closed = f.quantity
        basis = cost[f.symbol] * closed / abs(held)  # signed, like the position
        side = 1.0 if held > 0 else -1.0
        realised += side * closed * f.price * f.fx_rate - basis
        units[f.symbol] = held - side * closed
        cost[f.symbol] -= basis
        rest = f.quantity - closed
        if abs(units[f.symbol]) <= 1e-9:
            units.pop(f.symbol)
            cost.pop(f.symbol)
            if rest > 1e-9:  # crossed zero: the rest opens the other side at the fill price
                units[f.symbol] = sign * rest
                cost[f.symbol] = sign * rest * f.price * f.fx_rate
    return {"cash": cash, "realised": realised, "fees": fees, "units": units, "cost": cost}


def assert_reconciles(ledger: Any, mkt: MarketSnapshot | None = None) -> None:
    """Cash, positions, realised and unrealised P&L and fees match the fills to the cent."""
    books = recompute_from_fills(ledger.fills(), ledger.starting_cash)
    snap = ledger.snapshot(mkt)
    assert abs(snap.cash - books["cash"]) < 0.005, (snap.cash, books["cash"])
    assert abs(snap.realised_pnl - books["realised"]) < 0.005
    assert abs(snap.fees - books["fees"]) < 0.005
    held = {p.symbol: p.quantity for p in snap.positions}
    assert held.keys() == books["units"].keys()
    for sym, q in books["units"].items():
        assert abs(held[sym] - q) < 1e-9
    unrealised = sum(p.market_value for p in snap.positions) - sum(books["cost"].values())
    assert abs(snap.unrealised_pnl - unrealised) < 0.005
    identity = ledger.starting_cash + snap.realised_pnl + snap.unrealised_pnl - snap.fees
    assert abs(snap.equity - identity) < 0.005
    assert snap.cash >= 0
