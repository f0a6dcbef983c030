"""The ledger answers from its books in memory and writes each transaction to DuckDB when it commits.

What is read back from the file by a fresh process must be exactly what the books in memory said, after
days of orders, fills, cancellations, a delisting, a failed change, a dry run and a re-run; and a book that
lives in memory only (``:memory:``, a replay's) must give the same answers as a file book fed the same days.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from portfolio.broker import PaperBroker
from portfolio.ledger import Ledger
from portfolio.models import RiskState
from portfolio.risk import CEILINGS, guard

from .helpers import DAY, market

SYMBOLS = ("AAA", "BBB", "CCC", "DDD")


def _prices(day: date, rng: random.Random) -> dict[str, float]:
    return {s: round(50 + 10 * i + rng.uniform(-3, 3), 2) for i, s in enumerate(SYMBOLS)}


def _feed(ledger: Ledger, days: int = 25, seed: int = 3) -> list[date]:
    rng, broker, seen = random.Random(seed), PaperBroker(ledger), []
    for k in range(days):
        day = DAY + timedelta(days=k)
        prices = _prices(day, rng)
        broker.settle(day, prices)
        if k == 12:  # a data end: the position is cashed out at its last close
            ledger.close_delisted("DDD", day, prices["DDD"], 1.0, "delisted: no bars")
        mkt = market(prices, day)
        proposals = [{"symbol": s, "side": rng.choice(["buy", "sell"]), "weight": rng.uniform(0.02, 0.2)}
                     for s in rng.sample(SYMBOLS[:3] if k >= 12 else SYMBOLS, 3)]
        result = guard(proposals, portfolio=ledger.snapshot(mkt), market=mkt, limits=CEILINGS, state=RiskState(),
                       history=ledger.history(day), run_date=day, fee_bps=15)
        with ledger.transaction():
            broker.submit(result.approved)
            ledger.record_guard(day, result)
        if k % 7 == 3 and ledger.orders(status="pending"):  # a person cancels one
            broker.cancel([ledger.orders(status="pending")[0].order_id], "cancelled by a person")
        with pytest.raises(RuntimeError), ledger.transaction():  # a failed change leaves nothing behind
            ledger.record_equity(day, ledger.snapshot(market({s: 1.0 for s in SYMBOLS}, day)))
            raise RuntimeError("crash after a write")
        with ledger.scratch():  # a dry run of tomorrow: seen by the block, gone after it
            broker.settle(day + timedelta(days=1), _prices(day, random.Random(k)))
        ledger.record_equity(day, ledger.snapshot(mkt))
        seen.append(day)
    return seen


def _everything(ledger: Ledger, days: list[date]) -> dict[str, Any]:
    return {
        "account": ledger.account(), "positions": ledger.positions(), "costs": ledger.position_costs(),
        "orders": ledger.orders(), "pending": ledger.orders(status="pending"), "fills": ledger.fills(),
        "fills_window": ledger.fills(after=days[1], until=days[3]), "equity": ledger.equity_curve(),
        "guard": ledger.guard_log(), "settled": ledger.settled_through(), "last": ledger.last_activity(),
        "last_fill": ledger.last_fill_date(), "snapshot": ledger.snapshot(),
        "history": [ledger.history(d) for d in [days[0] - timedelta(days=1), *days]],
        "pending_before": [ledger.pending_before(d) for d in days],
        "base": (ledger.base_currency, ledger.starting_cash),
    }


def test_a_reopened_file_reads_back_exactly_what_the_books_in_memory_said(tmp_path: Path) -> None:
    path = tmp_path / "tradeagent.duckdb"
    with Ledger(path, base_currency="USD", starting_cash=10_000) as ledger:
        days = _feed(ledger)
        live = _everything(ledger, days)
    assert len(live["fills"]) > 15 and live["guard"] and any(o.status == "cancelled" for o in live["orders"])
    assert any(o.strategy == "delisting" for o in live["orders"])
    reopened = Ledger.open_existing(path)
    assert reopened is not None
    with reopened:
        assert _everything(reopened, days) == live
    con = duckdb.connect(str(path), read_only=True)  # and the tables themselves, as other tools read them
    try:
        assert con.execute("SELECT count(*) FROM pf_fills").fetchone()[0] == len(live["fills"])  # type: ignore[index]
        assert con.execute("SELECT count(*) FROM pf_equity").fetchone()[0] == len(days)  # type: ignore[index]
        cash = con.execute("SELECT cash FROM pf_account").fetchone()[0]  # type: ignore[index]
        assert cash == pytest.approx(live["account"]["cash"], abs=0)
    finally:
        con.close()


def test_a_book_in_memory_answers_as_a_file_book_fed_the_same_days(tmp_path: Path) -> None:
    with Ledger(tmp_path / "a.duckdb", base_currency="USD", starting_cash=10_000) as on_file:
        days = _feed(on_file)
        expected = _everything(on_file, days)
    with Ledger(Path(":memory:"), base_currency="USD", starting_cash=10_000) as in_memory:
        assert _everything(in_memory, _feed(in_memory)) == expected


def test_a_failed_write_at_commit_restores_the_books_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "tradeagent.duckdb"
    with Ledger(path, base_currency="USD", starting_cash=10_000) as ledger:
        days = _feed(ledger, days=5)
        before = _everything(ledger, days)
        pending = ledger.orders(status="pending")
        with pytest.raises(RuntimeError), ledger.transaction():  # a re-mark of a stored day, then a failure
            ledger.record_equity(days[-1], ledger.snapshot(market({s: 1.0 for s in SYMBOLS}, days[-1])))
            for order in pending:
                ledger.cancel(order.order_id, "changed mind")
            raise RuntimeError("crash after re-marking a stored day")
        assert _everything(ledger, days) == before
        ledger._con.execute("DROP TABLE pf_equity")  # the commit's write of the equity row will fail
        with pytest.raises(duckdb.Error):
            ledger.record_equity(days[-1] + timedelta(days=1), ledger.snapshot())
        assert _everything(ledger, days) == before


def test_windows_and_the_curve_are_right_when_days_arrive_out_of_order() -> None:
    from portfolio.models import Fill

    d1, d2, d3 = DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)
    with Ledger(Path(":memory:"), base_currency="USD", starting_cash=10_000) as ledger:
        with ledger.transaction():
            for n, day in enumerate((d1, d3, d2)):  # booked out of date order
                ledger.apply_fill(Fill(order_id=f"o{n}", symbol="AAA", side="buy", quantity=1, price=10.0,
                                       commission=0.0, slippage=0.0, fill_date=day, currency="USD", fx_rate=1.0),
                                  mark_base=10.0, note=None)
        assert [f.fill_date for f in ledger.fills(after=d1, until=d2)] == [d2]
        assert [f.fill_date for f in ledger.fills(after=d1)] == [d3, d2]  # booking order, not date order
        for day in (d2, d1, d3):
            ledger.record_equity(day, ledger.snapshot())
        assert [d for d, _ in ledger.equity_curve()] == [d1, d2, d3]
