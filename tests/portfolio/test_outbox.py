"""The alert outbox in a real DuckDB file: one transaction with what it reports, idempotent ids, delivery marks."""

from __future__ import annotations

from pathlib import Path

import pytest

from portfolio import outbox
from portfolio.ledger import Ledger
from portfolio.models import RiskState
from portfolio.storage import connect
from tests.portfolio.helpers import DAY, run_guard

D = DAY


def _ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger(tmp_path / "t.duckdb", base_currency="USD", starting_cash=10_000)
    with ledger.transaction() as con:
        outbox.install(con)
    return ledger


def test_an_alert_commits_or_rolls_back_with_the_orders_it_reports(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    result = run_guard([{"symbol": "AAA", "side": "buy", "quantity": 2, "reason": "because <@876543210987654321>"},
                        {"symbol": "BBB", "side": "buy", "quantity": 150, "reason": "too big"},  # clamped
                        {"symbol": "ZZZ", "side": "buy", "quantity": 1, "reason": "unknown"}])  # rejected
    assert len(result.approved) == 2 and result.clamps and result.rejections
    with pytest.raises(RuntimeError), ledger.transaction() as con:
        ledger.add_orders(result.approved)
        outbox.enqueue_guard(con, D, "demo", result, [o.order_id for o in result.approved])
        raise RuntimeError("crash before commit")
    assert ledger.orders() == [] and outbox.alerts(ledger._con) == []
    with ledger.transaction() as con:
        placed = ledger.add_orders(result.approved)
        ids = outbox.enqueue_guard(con, D, "demo", result, placed)
    alerts = outbox.alerts(ledger._con)
    assert [a.kind for a in alerts] == ["orders", "guard"] and [a.alert_id for a in alerts] == ids
    assert alerts[0].fields[0][0] == "BUY 2 AAA" and "<@876543210987654321>" in alerts[0].fields[0][1]  # stored as given
    assert alerts[0].title == f"2 order(s) placed · demo · {D}"
    names = [n for n, _ in alerts[1].fields]
    assert alerts[1].severity == "warning" and names[0] == "rejected ZZZ" and names[1].startswith("clamped ")
    # the day re-run: the same alerts, nothing new
    with ledger.transaction() as con:
        assert outbox.enqueue_guard(con, D, "demo", result, placed) == ids
    assert len(outbox.alerts(ledger._con)) == 2
    ledger.close()


def test_a_book_without_an_outbox_enqueues_nothing(tmp_path: Path) -> None:
    ledger = Ledger(Path(":memory:"), base_currency="USD", starting_cash=1_000)  # a replay's book
    with ledger.transaction() as con:
        assert outbox.enqueue(con, kind="summary", title="x") is None
        assert outbox.enqueue_day(con, {"date": D.isoformat(), "universe": "demo", "status": "no_orders"}) == []
    assert outbox.alerts(ledger._con) == []


def test_ids_are_stable_per_key_and_per_content(tmp_path: Path) -> None:
    con = connect(tmp_path / "t.duckdb")
    outbox.install(con)
    a = outbox.enqueue(con, kind="monitor", key="demo:2026-11-24:SP500:market:down", title="SP500 -3.1%")
    b = outbox.enqueue(con, kind="monitor", key="demo:2026-11-24:SP500:market:down", title="SP500 -3.4%")
    c = outbox.enqueue(con, kind="summary", title="day", body="held")
    d = outbox.enqueue(con, kind="summary", title="day", body="orders placed")
    assert a == b and c != d
    assert [x.title for x in outbox.alerts(con)] == ["SP500 -3.1%", "day", "day"]
    with pytest.raises(ValueError):
        outbox.enqueue(con, kind="gossip", title="x")
    con.close()


def test_delivery_marks_each_alert_once_and_counts_failures(tmp_path: Path) -> None:
    con = connect(tmp_path / "t.duckdb")
    outbox.install(con)
    aid = outbox.enqueue(con, kind="error", title="boom", severity="critical")
    assert aid is not None
    outbox.mark_failed(con, aid, "Discord error 503")
    outbox.mark_failed(con, aid, "Discord error 502")
    (pending,) = outbox.alerts(con, pending_only=True)
    assert pending.attempts == 2 and pending.last_error == "Discord error 502"
    assert outbox.mark_delivered(con, aid) is True
    assert outbox.mark_delivered(con, aid) is False  # a second deliverer learns it must not send
    assert outbox.alerts(con, pending_only=True) == [] and outbox.is_delivered(con, aid)
    assert outbox.alerts(con)[0].to_json()["status"] == "delivered"
    con.close()


def test_risk_changes_and_the_day(tmp_path: Path) -> None:
    con = connect(tmp_path / "t.duckdb")
    outbox.install(con)
    active = RiskState(mode="ACTIVE", reason="", changed_by="default")
    halted = RiskState(mode="HALTED", reason="drawdown 21% exceeds 20%", since=D, changed_by="breaker:max_drawdown")
    assert outbox.enqueue_risk_change(con, active, active, run_date=D, source="breaker") is None
    assert outbox.enqueue_risk_change(con, active, halted, run_date=D, source="breaker") is not None
    ids = outbox.enqueue_day(con, {"date": D.isoformat(), "universe": "demo", "status": "hold", "llm": "offline-rules",
                                   "hold": {"reason": "fallback:risk_error", "detail": "the risk node failed",
                                            "fallback": True},
                                   "portfolio": {"equity": 9_000, "cash": 9_000, "base_currency": "USD"}})  # fmt: skip
    kinds = [(a.kind, a.severity) for a in outbox.alerts(con)]
    assert kinds == [("breaker", "critical"), ("hold", "critical"), ("summary", "critical")] and len(ids) == 2
    assert "Cause: the risk node failed" in outbox.alerts(con)[1].body
    con.close()


def test_a_day_under_the_drawdown_brake_is_a_warning_that_says_the_way_out(tmp_path: Path) -> None:
    con = connect(tmp_path / "t.duckdb")
    outbox.install(con)
    day = {"date": D.isoformat(), "universe": "demo", "status": "orders_placed", "llm": "offline-rules",
           "portfolio": {"equity": 9_000, "cash": 5_000, "base_currency": "USD"}}
    planned = {"nodes": {"risk": {"status": "ok"}}}
    outbox.enqueue_day(con, {**day, **planned, "risk": {"state": {"mode": "ACTIVE"}, "drawdown": 0.0, "brake": 1.0}})
    outbox.enqueue_day(con, {**day, **planned, "status": "no_orders",
                             "risk": {"state": {"mode": "ACTIVE"}, "drawdown": 0.125, "brake": 0.5}})
    outbox.enqueue_day(con, {**day, "status": "hold", "hold": {"reason": "hold:halted", "detail": "HALTED"},
                             "risk": {"state": {"mode": "HALTED"}, "drawdown": 0.21, "brake": 0.0}})
    calm, braked, halted = outbox.alerts(con)
    assert "drawdown brake" not in dict(halted.fields)  # no plan was made: the brake capped nothing
    assert calm.severity == "info" and "drawdown brake" not in dict(calm.fields)
    assert braked.severity == "warning"
    assert dict(braked.fields)["drawdown brake"].startswith("each name at most 50% of its size (drawdown 12.5%)")
    assert "risk resume" in dict(braked.fields)["drawdown brake"]
    con.close()
