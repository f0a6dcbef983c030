"""Holes a review found in the guard, broker and ledger, each demonstrated first, now closed."""

from __future__ import annotations

import pickle
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel

from portfolio.broker import PaperBroker
from portfolio.errors import LedgerError, RiskConfigError
from portfolio.ledger import Ledger
from portfolio.models import ApprovedOrder, MarketSnapshot, Quote, RiskState, issued_by_guard
from portfolio.risk import CEILINGS, guard, load_limits, tighten

from .helpers import DAY, NEXT, codes, market, run_guard


@pytest.fixture
def ledger(tmp_path: Path):
    with Ledger(tmp_path / "tradeagent.duckdb", base_currency="USD", starting_cash=10_000) as led:
        yield led


def approve(ledger: Ledger, proposals: list[object], mkt: MarketSnapshot, day=DAY, limits=CEILINGS):
    return guard(proposals, portfolio=ledger.snapshot(mkt), market=mkt, limits=limits,
                 state=RiskState(), history=ledger.history(day), run_date=day, fee_bps=15)


def test_a_buy_waits_for_the_same_batch_sell_it_was_sized_on(ledger: Ledger) -> None:
    limits, _ = tighten({"max_open_positions": 2, "max_gross_exposure": 0.5})
    broker = PaperBroker(ledger)
    prices = {"A": 100.0, "B": 100.0, "C": 100.0}
    first = approve(ledger, [{"symbol": s, "side": "buy", "weight": 0.2} for s in ("A", "B")], market(prices),
                    limits=limits)
    broker.submit(first.approved)
    broker.settle(NEXT, prices)
    swap = approve(ledger, [{"symbol": "A", "side": "sell", "weight": 1.0}, {"symbol": "C", "side": "buy",
                   "weight": 0.2}], market(prices, NEXT), NEXT, limits)
    assert [o.side for o in swap.approved] == ["sell", "buy"]  # the buy fits only once A is sold
    broker.submit(swap.approved)
    day3, day4 = NEXT + timedelta(days=1), NEXT + timedelta(days=2)

    assert broker.settle(day3, {"B": 100.0, "C": 100.0}) == []  # no open for A: the buy of C waits with it
    assert {p.symbol for p in ledger.positions()} == {"A", "B"}
    filled = broker.settle(day4, prices)
    assert [(f.symbol, f.side) for f in filled] == [("A", "sell"), ("C", "buy")]
    assert {p.symbol for p in ledger.positions()} == {"B", "C"}


def test_a_base_currency_quote_is_valued_at_fx_one_whatever_it_says() -> None:
    odd = Quote(symbol="AAA", price=100.0, price_date=DAY, currency="USD", fx_rate=0.1)
    mkt = MarketSnapshot(as_of=DAY, base_currency="USD", quotes={"AAA": odd})
    assert mkt.quotes["AAA"].fx_rate == 1.0
    (order,) = run_guard([{"symbol": "AAA", "side": "buy", "weight": 1.0}], mkt=mkt).approved
    assert order.notional_base <= 0.2 * 10_000 + 1e-6 and order.quantity <= 20.0
    foreign = MarketSnapshot(as_of=DAY, base_currency="USD", quotes={"SAP": odd.model_copy(update={
        "symbol": "SAP", "currency": "EUR", "fx_rate": 1.1})})
    assert foreign.quotes["SAP"].fx_rate == 1.1  # other currencies keep their rate


def test_an_absurdly_large_number_in_risk_toml_refuses_to_trade(tmp_path: Path) -> None:
    path = tmp_path / "risk.toml"
    path.write_text("[limits]\nmin_trade_value = 1" + "0" * 400 + "\nmax_position_weight = 0.1\n")
    with pytest.raises(RiskConfigError, match="min_trade_value"):
        load_limits(path)  # not a finite number: which limit the user meant is unknown
    path.write_text("[limits]\nmin_trade_value = 1" + "0" * 5000 + "\n")  # more digits than Python parses
    with pytest.raises(RiskConfigError, match="not valid TOML"):
        load_limits(path)


def test_a_huge_int_override_keeps_the_ceiling_and_the_rest_applies() -> None:
    limits, notes = tighten({"min_trade_value": 10**400, "max_position_weight": 0.1})
    assert limits.min_trade_value == CEILINGS.min_trade_value and limits.max_position_weight == 0.1
    assert any("min_trade_value" in n for n in notes)


def test_an_approval_older_than_the_books_last_activity_is_refused(ledger: Ledger) -> None:
    broker = PaperBroker(ledger)
    kept = approve(ledger, [{"symbol": "AAA", "side": "buy", "weight": 0.2}], market({"AAA": 100.0}))
    later = approve(ledger, [{"symbol": "AAA", "side": "buy", "weight": 0.2}], market({"AAA": 100.0}, NEXT), NEXT)
    broker.submit(later.approved)
    with pytest.raises(LedgerError, match="before the book's last activity"):
        broker.submit(kept.approved)
    assert [o.run_date for o in ledger.orders()] == [NEXT]


def test_only_the_guards_own_objects_reach_the_broker(ledger: Ledger) -> None:
    (order,) = run_guard([{"symbol": "AAA", "side": "buy", "quantity": 1}]).approved
    assert issued_by_guard(order)
    forged = BaseModel.model_construct.__func__(ApprovedOrder, **{**order.__dict__, "quantity": 50.0})  # type: ignore[attr-defined]
    assert type(forged) is ApprovedOrder and not issued_by_guard(forged)
    with pytest.raises(TypeError):
        PaperBroker(ledger).submit([forged])
    with pytest.raises(TypeError):
        pickle.dumps(order)
    assert ledger.orders() == []


def test_a_strategy_name_with_a_trailing_newline_is_rejected() -> None:
    result = run_guard([{"symbol": "AAA", "side": "buy", "quantity": 10, "strategy": "v1\n"}])
    assert codes(result) == ["invalid_strategy"] and result.approved == []
