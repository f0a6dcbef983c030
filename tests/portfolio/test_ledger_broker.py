"""The ledger and the paper broker: transactions, idempotent days, fills at the next open, reconciliation."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from portfolio.broker import Broker, PaperBroker
from portfolio.errors import LedgerError, PortfolioError
from portfolio.ledger import Ledger
from portfolio.models import MarketSnapshot, Order, Quote, RiskState
from portfolio.risk import CEILINGS, guard

from .helpers import DAY, NEXT, assert_reconciles, market


@pytest.fixture
def ledger(tmp_path: Path):
    with Ledger(tmp_path / "tradeagent.duckdb", base_currency="USD", starting_cash=10_000) as led:
        yield led


def approve(ledger: Ledger, proposals: list[object], mkt: MarketSnapshot, day: date = DAY):
    return guard(proposals, portfolio=ledger.snapshot(mkt), market=mkt, limits=CEILINGS,
                 state=RiskState(), history=ledger.history(day), run_date=day, fee_bps=15)


def test_the_ledger_shares_the_file_and_keeps_other_tables(tmp_path: Path) -> None:
    path = tmp_path / "tradeagent.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE ohlcv (symbol VARCHAR, close DOUBLE)")
    con.execute("INSERT INTO ohlcv VALUES ('AAA', 1.0)")
    con.close()
    Ledger(path, base_currency="usd", starting_cash=5_000).close()
    with Ledger(path, base_currency="USD", starting_cash=999) as led:
        assert led.base_currency == "USD" and led.starting_cash == 5_000  # stored on creation
    con = duckdb.connect(str(path))
    assert con.execute("SELECT * FROM ohlcv").fetchall() == [("AAA", 1.0)]
    con.close()
    with pytest.raises(LedgerError, match="EUR") as err:
        Ledger(path, base_currency="EUR", starting_cash=5_000)
    assert isinstance(err.value, PortfolioError)


def test_open_existing_is_read_only_and_none_without_a_ledger(tmp_path: Path) -> None:
    assert Ledger.open_existing(tmp_path / "nothing.duckdb") is None
    path = tmp_path / "tradeagent.duckdb"
    duckdb.connect(str(path)).close()
    assert Ledger.open_existing(path) is None
    Ledger(path, base_currency="USD", starting_cash=10).close()
    led = Ledger.open_existing(path)
    assert led is not None and led.snapshot().cash == 10
    led.close()


def test_a_failed_change_rolls_back_everything(ledger: Ledger) -> None:
    mkt = market({"AAA": 100.0, "BBB": 50.0})
    result = approve(ledger, [{"symbol": "AAA", "side": "buy", "quantity": 5},
                              {"symbol": "BBB", "side": "buy", "quantity": 5}], mkt)
    with pytest.raises(RuntimeError), ledger.transaction():
        ledger.add_orders(result.approved)
        raise RuntimeError("crash between two writes")
    assert ledger.orders() == []
    broker = PaperBroker(ledger)
    broker.submit(result.approved)
    calls = 0
    real = ledger.apply_fill

    def flaky(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    ledger.apply_fill = flaky  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        broker.settle(NEXT, {"AAA": 100.0, "BBB": 50.0})
    ledger.apply_fill = real  # type: ignore[method-assign]
    assert ledger.fills() == [] and len(broker.pending()) == 2 and ledger.snapshot().cash == 10_000
    assert len(broker.settle(NEXT, {"AAA": 100.0, "BBB": 50.0})) == 2


def test_the_broker_accepts_only_approved_orders(ledger: Ledger) -> None:
    broker = PaperBroker(ledger)
    assert isinstance(broker, Broker)
    for fake in (Order(symbol="AAA", side="buy", quantity=1), {"symbol": "AAA", "side": "buy", "quantity": 1},
                 "AAA", None):
        with pytest.raises(TypeError):
            broker.submit([fake])  # type: ignore[list-item]
    assert ledger.orders() == []


def test_orders_fill_at_the_next_open_with_slippage_and_commission(ledger: Ledger) -> None:
    broker = PaperBroker(ledger, commission_bps=10, slippage_bps=5)
    result = approve(ledger, [{"symbol": "AAA", "side": "buy", "quantity": 10}], market({"AAA": 100.0}))
    assert broker.submit(result.approved) == ["20240304-AAA-buy-v1"]
    assert broker.submit(result.approved) == ["20240304-AAA-buy-v1"]  # idempotent
    assert len(ledger.orders()) == 1
    assert broker.settle(DAY, {"AAA": 100.0}) == []  # decided on DAY: not before DAY's own open
    assert broker.settle(NEXT, {}) == [] and len(broker.pending()) == 1  # no open price: stays pending
    (fill,) = broker.settle(NEXT, {"AAA": 102.0})
    assert fill.price == pytest.approx(102.0 * 1.0005) and fill.fill_date == NEXT
    assert fill.commission == pytest.approx(10 * 102.0 * 1.0005 * 0.001)
    assert fill.slippage == pytest.approx(10 * 102.0 * 0.0005)
    snap = ledger.snapshot(None)
    assert snap.cash == pytest.approx(10_000 - 10 * fill.price - fill.commission)
    assert snap.positions[0].market_value == pytest.approx(1_020)  # marked at the open it filled at

    later = NEXT + timedelta(days=1)
    sell = approve(ledger, [{"symbol": "AAA", "side": "sell", "quantity": 10}], market({"AAA": 110.0}, later), later)
    broker.submit(sell.approved)
    (out,) = broker.settle(later + timedelta(days=1), {"AAA": 110.0})
    assert out.price == pytest.approx(110 * 0.9995)
    snap = ledger.snapshot(None)
    assert snap.positions == [] and snap.realised_pnl == pytest.approx(10 * (out.price - fill.price))
    assert_reconciles(ledger)


def test_a_gap_up_scales_a_buy_to_the_cash_and_never_goes_negative(ledger: Ledger) -> None:
    broker = PaperBroker(ledger)
    mkt = market({f"S{i}": 100.0 for i in range(6)})
    result = approve(ledger, [{"symbol": f"S{i}", "side": "buy", "weight": 0.19} for i in range(6)], mkt)
    broker.submit(result.approved)
    fills = broker.settle(NEXT, {f"S{i}": 109.0 for i in range(6)})  # +9 % overnight, inside the collar
    snap = ledger.snapshot(None)
    assert snap.cash >= 0
    notes = [o.status_reason for o in ledger.orders()]
    assert any(n and "insufficient cash" in n for n in notes)
    assert len(fills) + len(ledger.orders(status="cancelled")) == len(result.approved)
    assert_reconciles(ledger)


def test_an_open_beyond_the_collar_cancels_the_order_instead_of_filling_it(ledger: Ledger) -> None:
    """One bad opening print (x50) filled a $237 order for $7,121 and drained the cash."""
    broker = PaperBroker(ledger, collar=0.10)
    mkt = market({"AAA": 100.0, "BBB": 100.0, "CCC": 100.0})
    result = approve(ledger, [{"symbol": s, "side": "buy", "quantity": 2} for s in ("AAA", "BBB", "CCC")], mkt)
    broker.submit(result.approved)
    fills = broker.settle(NEXT, {"AAA": 5_000.0, "BBB": 89.0, "CCC": 108.0})
    assert [f.symbol for f in fills] == ["CCC"]  # +8%: inside the collar
    reasons = {o.symbol: o.status_reason for o in ledger.orders(status="cancelled")}
    assert set(reasons) == {"AAA", "BBB"}
    assert "+4900.0% from the close 100" in reasons["AAA"] and "beyond the ±10% collar" in reasons["AAA"]
    assert "-11.0%" in reasons["BBB"]
    assert ledger.account()["cash"] == pytest.approx(10_000 - fills[0].quantity * fills[0].price - fills[0].commission)
    assert_reconciles(ledger)


def test_a_sell_never_exceeds_what_is_held_at_fill_time(ledger: Ledger) -> None:
    broker = PaperBroker(ledger)
    broker.submit(approve(ledger, [{"symbol": "AAA", "side": "buy", "quantity": 10}], market({"AAA": 100.0})).approved)
    broker.settle(NEXT, {"AAA": 100.0})
    d2, d3, d4 = NEXT, NEXT + timedelta(days=1), NEXT + timedelta(days=2)
    broker.submit(approve(ledger, [{"symbol": "AAA", "side": "sell", "quantity": 10}], market({"AAA": 100.0}, d2),
                          d2).approved)
    # The open is missing on d3: the sell stays pending, and the guard counts it, so d3 cannot sell again.
    assert broker.settle(d3, {}) == []
    again = approve(ledger, [{"symbol": "AAA", "side": "sell", "quantity": 10}], market({"AAA": 100.0}, d3), d3)
    assert [r.code for r in again.rejections] == ["no_short"]
    (fill,) = broker.settle(d4, {"AAA": 99.0})
    assert fill.quantity == 10 and ledger.positions() == []
    assert_reconciles(ledger)


def test_a_session_already_settled_is_skipped_and_an_older_day_is_refused(ledger: Ledger) -> None:
    broker = PaperBroker(ledger)
    broker.submit(approve(ledger, [{"symbol": "AAA", "side": "buy", "quantity": 1}], market({"AAA": 100.0})).approved)
    broker.settle(NEXT, {"AAA": 100.0})
    before = (ledger.account(), ledger.fills())
    assert broker.settle(DAY, {"AAA": 90.0}) == [] and broker.settle(NEXT, {"AAA": 90.0}) == []
    assert (ledger.account(), ledger.fills()) == before and ledger.settled_through() == NEXT
    old = approve(ledger, [{"symbol": "BBB", "side": "buy", "quantity": 1}], market({"BBB": 10.0}, DAY))
    assert [r.code for r in old.rejections] == ["out_of_order"]


def _run_day(ledger: Ledger, broker: PaperBroker, day: date, rng: random.Random) -> None:
    day_rng = random.Random(day.toordinal())  # the market is the day's; the proposals are the "LLM"'s
    # within the broker's ±10% collar of the day before (a wider market would cancel most fills)
    prices = {s: round(base * day_rng.uniform(96, 104), 2)
              for s, base in (("AAA", 0.3), ("BBB", 1.0), ("CCC", 1.7), ("SAP", 0.8))}
    quotes = {s: Quote(symbol=s, price=p, price_date=day, currency="EUR" if s == "SAP" else "USD",
                       fx_rate=1.1 if s == "SAP" else 1.0) for s, p in prices.items()}
    mkt = MarketSnapshot(as_of=day, base_currency="USD", quotes=quotes)
    broker.settle(day, prices, fx_rates={"EUR": 1.1})
    proposals = [{"symbol": s, "side": rng.choice(["buy", "sell"]), "weight": rng.uniform(0.01, 0.2)}
                 for s in rng.sample(list(prices), 3)]
    result = approve(ledger, proposals, mkt, day)
    broker.submit(result.approved)
    ledger.record_guard(day, result)
    ledger.record_equity(day, ledger.snapshot(mkt))


def test_many_days_reconcile_to_the_cent_and_a_rerun_day_changes_nothing(ledger: Ledger) -> None:
    broker = PaperBroker(ledger)
    rng = random.Random(7)
    days = [DAY + timedelta(days=k) for k in range(30)]
    for day in days:
        _run_day(ledger, broker, day, rng)
        assert_reconciles(ledger)
    before = (ledger.orders(), ledger.fills(), ledger.equity_curve())
    _run_day(ledger, broker, days[-1], random.Random(99))  # re-run the last day with other "LLM" output
    assert (ledger.orders(), ledger.fills(), ledger.equity_curve()) == before
    assert len(ledger.fills()) > 20 and ledger.snapshot().realised_pnl != 0
    assert [d for d, _ in ledger.equity_curve()] == days
    log = ledger.guard_log(days[-1])
    assert log and {row["kind"] for row in ledger.guard_log()} <= {"rejection", "clamp"}


def test_history_reports_todays_orders_and_last_trades(ledger: Ledger) -> None:
    broker = PaperBroker(ledger)
    broker.submit(approve(ledger, [{"symbol": "AAA", "side": "buy", "quantity": 1}], market({"AAA": 100.0})).approved)
    h = ledger.history(DAY)
    assert h.order_ids_today == ["20240304-AAA-buy-v1"] and h.last_trade == {"AAA": DAY}
    assert h.latest_activity == DAY and [o.order_id for o in h.pending] == ["20240304-AAA-buy-v1"]
    assert ledger.history(NEXT).order_ids_today == []


def test_record_equity_replaces_a_rerun_and_stores_marks(ledger: Ledger) -> None:
    broker = PaperBroker(ledger)
    broker.submit(approve(ledger, [{"symbol": "AAA", "side": "buy", "quantity": 10}], market({"AAA": 100.0})).approved)
    broker.settle(NEXT, {"AAA": 100.0})
    ledger.record_equity(NEXT, ledger.snapshot(market({"AAA": 120.0}, NEXT)))
    ledger.record_equity(NEXT, ledger.snapshot(market({"AAA": 130.0}, NEXT)))
    assert len(ledger.equity_curve()) == 1
    assert ledger.snapshot(None).positions[0].market_value == pytest.approx(1_300)


def test_a_ledger_of_another_schema_version_is_refused_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "ledger.duckdb"
    Ledger(path, base_currency="USD", starting_cash=1_000).close()
    opened = Ledger.open_existing(path)
    assert opened is not None
    opened.close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE pf_meta SET value = '999' WHERE key = 'schema_version'")
    con.close()
    for open_it in (lambda: Ledger(path, base_currency="USD", starting_cash=1_000), lambda: Ledger.open_existing(path)):
        with pytest.raises(LedgerError, match="schema v999; this tradeagent reads schema v1") as err:
            open_it()
        assert "\n" not in str(err.value)
    # the refusal released the file: it can still be opened (and repaired) by hand
    duckdb.connect(str(path)).close()
