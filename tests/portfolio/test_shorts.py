"""Short positions: only for instruments whose quote is ``shortable``; long-only instruments are unchanged."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from portfolio.broker import PaperBroker
from portfolio.errors import LedgerError
from portfolio.ledger import Ledger
from portfolio.models import Fill, MarketSnapshot, Quote, RiskState
from portfolio.risk import CEILINGS, effective_limits, guard

from .helpers import DAY, NEXT, assert_reconciles, book, codes, market, run_guard

SHORTABLE = market({"AAA": 100.0, "BBB": 50.0, "CCC": 20.0}, shortable=True)


# ---------------------------------------------------------------- the guard


def test_a_non_shortable_instrument_still_cannot_be_sold_short() -> None:
    result = run_guard([{"symbol": "AAA", "side": "sell", "quantity": 1}])
    assert codes(result) == ["no_short"] and result.approved == []
    held = run_guard([{"symbol": "AAA", "side": "sell", "quantity": 50}],
                     portfolio=book(cash=9_000, holdings={"AAA": (10, 100.0)}))
    (order,) = held.approved
    assert order.quantity == 10 and not order.opens_short
    assert [c.code for c in held.clamps] == ["exceeds_position"]


def test_a_shortable_instrument_can_be_sold_short_from_flat() -> None:
    (order,) = run_guard([{"symbol": "AAA", "side": "sell", "quantity": 5}], mkt=SHORTABLE).approved
    assert order.side == "sell" and order.quantity == 5 and order.opens_short
    assert order.notional_base == 500


def test_a_sell_beyond_a_long_crosses_zero_without_a_clamp_to_the_holding() -> None:
    result = run_guard([{"symbol": "AAA", "side": "sell", "quantity": 15}],
                       portfolio=book(cash=9_000, holdings={"AAA": (10, 100.0)}), mkt=SHORTABLE)
    (order,) = result.approved
    assert order.quantity == 15 and order.opens_short and result.clamps == []


def test_a_short_is_clamped_by_its_absolute_weight_and_gross_counts_shorts() -> None:
    result = run_guard([{"symbol": "AAA", "side": "sell", "quantity": 1e6}], mkt=SHORTABLE)
    (order,) = result.approved
    assert order.notional_base <= CEILINGS.max_position_weight * 10_000
    assert "max_position_weight" in {c.code for c in result.clamps}
    # Already 90 % gross (a long of 50 % and a short of 40 %): a new short only gets the 10 % left.
    portfolio = book(cash=9_000, holdings={"BBB": (100, 50.0), "CCC": (-200, 20.0)})
    result = run_guard([{"symbol": "AAA", "side": "sell", "quantity": 15}], portfolio=portfolio, mkt=SHORTABLE)
    (order,) = result.approved
    assert order.notional_base <= 0.10 * portfolio.equity
    assert "max_gross_exposure" in {c.code for c in result.clamps}


def test_a_cover_is_risk_reducing_and_never_clamped_by_weight_or_gross() -> None:
    # The short rallied to 30 % of equity, above the 20 % weight and a 20 % gross limit: covering still passes.
    portfolio = book(cash=13_000, holdings={"AAA": (-30, 100.0)})
    result = run_guard([{"symbol": "AAA", "side": "buy", "quantity": 20}], portfolio=portfolio, mkt=SHORTABLE,
                       limits=effective_limits({"max_gross_exposure": 0.2}))
    (order,) = result.approved
    assert order.quantity == 20 and not order.opens_short and result.clamps == []
    # Beyond the cover, the new long is what the limits clamp: cover all 20, then a long of just under 3 %.
    flip = run_guard([{"symbol": "AAA", "side": "buy", "quantity": 24}], portfolio=book(cash=12_000, holdings={
        "AAA": (-20, 100.0)}), mkt=SHORTABLE, limits=effective_limits({"max_position_weight": 0.03}))
    assert 22.9 < flip.approved[0].quantity < 23 and [c.code for c in flip.clamps] == ["max_position_weight"]


def test_reducing_mode_passes_covers_only() -> None:
    portfolio = book(cash=12_000, holdings={"AAA": (-10, 100.0), "BBB": (20, 50.0)})
    proposals = [{"symbol": "AAA", "side": "buy", "quantity": 4},  # partial cover: passes
                 {"symbol": "CCC", "side": "sell", "quantity": 5},  # new short: refused
                 {"symbol": "BBB", "side": "sell", "quantity": 30}]  # crosses zero: only the long part passes
    result = run_guard(proposals, portfolio=portfolio, mkt=SHORTABLE, mode="REDUCING")
    assert codes(result) == ["reducing"] and result.rejections[0].symbol == "CCC"
    orders = {o.symbol: o for o in result.approved}
    assert orders["AAA"].quantity == 4 and orders["BBB"].quantity == 20 and not orders["BBB"].opens_short
    assert [c.code for c in result.clamps] == ["reducing"]
    flip = run_guard([{"symbol": "AAA", "side": "buy", "quantity": 25}], portfolio=portfolio, mkt=SHORTABLE,
                     mode="REDUCING")
    assert flip.approved[0].quantity == 10  # the cover, not the new long
    more = run_guard([{"symbol": "AAA", "side": "sell", "quantity": 1}], portfolio=portfolio, mkt=SHORTABLE,
                     mode="REDUCING")
    assert codes(more) == ["reducing"]


def test_halted_rejects_covers_too() -> None:
    portfolio = book(cash=12_000, holdings={"AAA": (-10, 100.0)})
    result = run_guard([{"symbol": "AAA", "side": "buy", "quantity": 10}], portfolio=portfolio, mkt=SHORTABLE,
                       mode="HALTED")
    assert codes(result) == ["halted"]


def test_new_shorts_face_open_positions_correlation_and_volatility() -> None:
    limits = effective_limits({"max_open_positions": 1})
    portfolio = book(cash=11_000, holdings={"BBB": (-20, 50.0)})  # a short counts as an open position
    assert codes(run_guard([{"symbol": "AAA", "side": "sell", "quantity": 1}], portfolio=portfolio,
                           mkt=SHORTABLE, limits=limits)) == ["max_open_positions"]
    corr = MarketSnapshot(as_of=DAY, base_currency="USD", quotes=SHORTABLE.quotes,
                          correlations={"AAA": {"BBB": 0.99}})
    assert codes(run_guard([{"symbol": "AAA", "side": "sell", "quantity": 1}], portfolio=portfolio,
                           mkt=corr)) == ["max_correlation"]
    wild = market({"CCC": 20.0}, shortable=True, volatility=0.9)
    result = run_guard([{"symbol": "CCC", "side": "sell", "quantity": 10}], mkt=wild)
    assert result.approved[0].quantity == 5 and [c.code for c in result.clamps] == ["high_volatility"]


def test_short_sales_face_notional_min_value_collar_and_cooldown() -> None:
    result = run_guard([{"symbol": "AAA", "side": "sell", "quantity": 15}], mkt=SHORTABLE,
                       limits=effective_limits({"max_order_notional": 0.05}))
    assert result.approved[0].notional_base <= 500 and [c.code for c in result.clamps] == ["max_order_notional"]
    assert codes(run_guard([{"symbol": "CCC", "side": "sell", "quantity": 0.1}], mkt=SHORTABLE)) == [
        "min_trade_value"]
    assert codes(run_guard([{"symbol": "AAA", "side": "sell", "quantity": 1, "limit_price": 150}],
                           mkt=SHORTABLE)) == ["price_collar"]


def test_a_pending_short_sale_is_counted_so_a_rerun_cannot_short_twice(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.duckdb", base_currency="USD", starting_cash=10_000) as ledger:
        day = _approve(ledger, [{"symbol": "AAA", "side": "sell", "weight": 0.15}], SHORTABLE)
        PaperBroker(ledger).submit(day.approved)
        later = DAY + timedelta(days=1)
        mkt = market({"AAA": 100.0}, later, shortable=True)
        again = _approve(ledger, [{"symbol": "AAA", "side": "sell", "weight": 0.15, "strategy": "v2"}], mkt, later)
        (order,) = again.approved  # only the 5 % left under the 20 % position limit
        assert order.notional_base <= 0.05 * 10_000 + 1e-6


# ---------------------------------------------------------------- the ledger, to the cent


def _fill(symbol: str, side: str, qty: float, price: float, commission: float, fx: float = 1.0,
          day: date = NEXT) -> Fill:
    return Fill(order_id=f"{symbol}-{side}-{qty}-{price}", symbol=symbol, side=side, quantity=qty,  # type: ignore[arg-type]
                price=price, commission=commission, slippage=0.0, fill_date=day,
                currency="USD" if fx == 1.0 else "EUR", fx_rate=fx)


@pytest.fixture
def ledger():
    with Ledger(Path(":memory:"), base_currency="USD", starting_cash=10_000) as led:
        yield led


def test_open_increase_partial_cover_and_cross_zero_both_ways_to_the_cent(ledger: Ledger) -> None:
    steps = [
        (_fill("AAA", "sell", 10, 100.0, 1.0), -10, 100.0, 0.0, 10_999.0),  # open a short
        (_fill("AAA", "sell", 5, 110.0, 0.5), -15, 1550 / 15, 0.0, 11_548.5),  # increase it
        (_fill("AAA", "buy", 6, 90.0, 0.6), -9, 1550 / 15, 80.0, 11_007.9),  # partial cover: 6 × (103.33 − 90)
        (_fill("AAA", "buy", 12, 95.0, 1.2), 3, 95.0, 155.0, 9_866.7),  # cover 9 (+75), long 3 at 95
        (_fill("AAA", "sell", 8, 100.0, 0.8), -5, 100.0, 170.0, 10_665.9),  # close 3 (+15), short 5 at 100
    ]
    for fill, qty, avg, realised, cash in steps:
        with ledger.transaction():
            ledger.apply_fill(fill, mark_base=fill.price, note=None, allow_short=True)
        (pos,) = ledger.positions()
        snap = ledger.snapshot(None)
        assert pos.quantity == pytest.approx(qty) and pos.avg_price == pytest.approx(avg)
        assert snap.realised_pnl == pytest.approx(realised, abs=0.005)
        assert snap.cash == pytest.approx(cash, abs=0.005)
        assert_reconciles(ledger)
    snap = ledger.snapshot(market({"AAA": 98.0}, NEXT))
    (view,) = snap.positions
    assert view.market_value == pytest.approx(-490) and view.weight == pytest.approx(-490 / snap.equity)
    assert snap.unrealised_pnl == pytest.approx(10.0) and snap.fees == pytest.approx(4.1)
    assert snap.equity == pytest.approx(10_000 + 170 + 10 - 4.1)
    assert_reconciles(ledger, market({"AAA": 98.0}, NEXT))
    with ledger.transaction():
        ledger.apply_fill(_fill("AAA", "buy", 5, 97.0, 0.5), mark_base=97.0, note=None)  # cover exactly
    assert ledger.positions() == [] and ledger.snapshot(None).realised_pnl == pytest.approx(185.0)
    assert_reconciles(ledger)


def test_short_pnl_is_in_base_currency_at_each_fills_fx(ledger: Ledger) -> None:
    with ledger.transaction():
        ledger.apply_fill(_fill("SAP", "sell", 10, 100.0, 0.0, fx=1.1), mark_base=110.0, note=None,
                          allow_short=True)
        ledger.apply_fill(_fill("SAP", "buy", 10, 90.0, 0.0, fx=1.2), mark_base=108.0, note=None)
    snap = ledger.snapshot(None)
    assert snap.realised_pnl == pytest.approx(10 * (110 - 108)) and snap.cash == pytest.approx(10_020)
    assert_reconciles(ledger)


def test_the_ledger_refuses_to_take_a_long_only_position_below_zero(ledger: Ledger) -> None:
    with ledger.transaction():
        ledger.apply_fill(_fill("AAA", "buy", 5, 100.0, 0.0), mark_base=100.0, note=None)
    with pytest.raises(LedgerError, match="exceeds"), ledger.transaction():
        ledger.apply_fill(_fill("AAA", "sell", 8, 100.0, 0.0, day=NEXT + timedelta(days=1)), mark_base=100.0,
                          note=None)
    assert ledger.positions()[0].quantity == 5 and len(ledger.fills()) == 1


# ---------------------------------------------------------------- through the broker


def _approve(ledger: Ledger, proposals: list[object], mkt: MarketSnapshot, day: date = DAY):
    return guard(proposals, portfolio=ledger.snapshot(mkt), market=mkt, limits=CEILINGS, state=RiskState(),
                 history=ledger.history(day), run_date=day, fee_bps=15)


def test_the_broker_fills_a_short_and_its_cover_with_slippage_against_us(ledger: Ledger) -> None:
    broker = PaperBroker(ledger, commission_bps=10, slippage_bps=5)
    broker.submit(_approve(ledger, [{"symbol": "AAA", "side": "sell", "quantity": 10}], SHORTABLE).approved)
    (short,) = broker.settle(NEXT, {"AAA": 100.0})
    assert short.price == pytest.approx(100 * 0.9995) and short.quantity == 10  # a short sale receives less
    assert ledger.orders()[0].opens_short
    snap = ledger.snapshot(None)
    assert snap.cash == pytest.approx(10_000 + 10 * short.price - short.commission)
    assert snap.positions[0].quantity == -10 and snap.positions[0].weight < 0

    d2, d3 = NEXT + timedelta(days=1), NEXT + timedelta(days=2)
    mkt = market({"AAA": 90.0}, d2, shortable=True)
    cover = _approve(ledger, [{"symbol": "AAA", "side": "buy", "quantity": 10}], mkt, d2)
    assert not cover.approved[0].opens_short
    broker.submit(cover.approved)
    (buy,) = broker.settle(d3, {"AAA": 90.0})
    assert buy.price == pytest.approx(90 * 1.0005)  # a cover pays more
    snap = ledger.snapshot(None)
    assert snap.positions == [] and snap.realised_pnl == pytest.approx(10 * (short.price - buy.price))
    assert_reconciles(ledger)


def test_a_sell_without_short_permission_is_still_capped_at_the_holding(ledger: Ledger) -> None:
    broker = PaperBroker(ledger)
    broker.submit(_approve(ledger, [{"symbol": "AAA", "side": "buy", "quantity": 10}], SHORTABLE).approved)
    broker.settle(NEXT, {"AAA": 100.0})
    d2, d3 = NEXT + timedelta(days=1), NEXT + timedelta(days=2)
    # The instrument is no longer shortable: the sell is clamped to the holding, and fills as a close.
    sell = _approve(ledger, [{"symbol": "AAA", "side": "sell", "quantity": 30}], market({"AAA": 100.0}, d2), d2)
    assert sell.approved[0].quantity == 10 and not sell.approved[0].opens_short
    broker.submit(sell.approved)
    (fill,) = broker.settle(d3, {"AAA": 100.0})
    assert fill.quantity == 10 and ledger.positions() == []
    assert_reconciles(ledger)


def test_shortable_days_reconcile_and_no_long_only_position_goes_negative(ledger: Ledger) -> None:
    import random

    broker = PaperBroker(ledger)
    rng = random.Random(11)
    for k in range(40):
        day = DAY + timedelta(days=k)
        # within the broker's ±10% collar of the day before (a wider market would cancel fills)
        prices = {s: round(base * random.Random(day.toordinal() + i).uniform(96, 104), 2)
                  for i, (s, base) in enumerate((("AAA", 0.3), ("BBB", 1.0), ("CCC", 1.7), ("SAP", 0.8)))}
        quotes = {s: Quote(symbol=s, price=p, price_date=day, shortable=s != "CCC",
                           currency="EUR" if s == "SAP" else "USD", fx_rate=1.1 if s == "SAP" else 1.0)
                  for s, p in prices.items()}
        mkt = MarketSnapshot(as_of=day, base_currency="USD", quotes=quotes)
        broker.settle(day, prices, fx_rates={"EUR": 1.1})
        proposals = [{"symbol": s, "side": rng.choice(["buy", "sell"]), "weight": rng.uniform(0.01, 0.3)}
                     for s in rng.sample(list(prices), 3)]
        broker.submit(_approve(ledger, proposals, mkt, day).approved)
        ledger.record_equity(day, ledger.snapshot(mkt))
        assert_reconciles(ledger, mkt)
        assert all(p.quantity > 0 for p in ledger.positions() if p.symbol == "CCC")
    assert any(f.side == "sell" for f in ledger.fills()) and ledger.orders(status="cancelled") == []
    assert any(o.opens_short for o in ledger.orders())
