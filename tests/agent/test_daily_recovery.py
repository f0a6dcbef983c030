"""A daily run stopped after placing its orders but before writing its results file loses nothing.

The stop is simulated by a results writer that dies the way a killed process does (it never writes); the
payload it was handed is what the run would have written. The re-run must rebuild the file from the ledger,
say so, place nothing more, and agree with that payload on every order, clamp, rejection and fill.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import agent.daily as daily
from agent.cli import app
from agent.daily import run_daily
from agent.models import AnalystReport, RiskPlan, SymbolSignal, TargetWeight
from agent.settings import Settings
from portfolio.ledger import Ledger
from tests.fakes import ScriptedLLM, final_answer

DAY = date(2012, 6, 1)
NEXT = date(2012, 6, 4)


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing on the way out may swallow it."""


def scripted(**weights: float) -> ScriptedLLM:
    signals = [SymbolSignal(symbol=s, score=0.8, confidence=0.8, rationale="scripted") for s in weights]
    targets = [TargetWeight(symbol=s, target_weight=w, rationale="scripted") for s, w in weights.items()]
    return ScriptedLLM([final_answer(AnalystReport(signals=signals)), final_answer(RiskPlan(targets=targets))])


def orders_of(settings: Settings, day: date) -> list[str]:
    with Ledger(settings.db_path, base_currency="USD", starting_cash=10_000.0) as ledger:
        return [o.order_id for o in ledger.orders() if o.run_date == day]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path)


def test_a_run_killed_before_its_results_file_is_rebuilt_from_the_ledger(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_daily(settings, universe="demo", run_date=DAY, client=scripted(SP500=0.1, GOOG=0.05))
    lost: dict[str, Any] = {}

    def killed_writer(path: Path, payload: dict[str, Any], **_: Any) -> None:
        lost.update(json.loads(json.dumps(payload, default=str)))
        raise Killed

    monkeypatch.setattr(daily, "write_json_atomic", killed_writer)
    with pytest.raises(Killed):  # NEXT settles DAY's orders, then buys more SP500 (a clamp) and asks for NOPE
        run_daily(settings, universe="demo", run_date=NEXT, client=scripted(SP500=0.5, NOPE=0.1))
    monkeypatch.undo()
    path = settings.daily_results_dir / f"{NEXT}.json"
    assert not path.exists() and lost["placed"] and lost["fills"] and lost["clamps"] and lost["rejected"]
    placed = orders_of(settings, NEXT)
    assert placed == lost["placed"]

    never_asked = ScriptedLLM([])
    again = run_daily(settings, universe="demo", run_date=NEXT, client=never_asked)
    r = again.results
    assert again.repeated and never_asked.calls == 0 and orders_of(settings, NEXT) == placed
    assert r["status"] == "recovered" and "stopped before writing this file" in r["recovered"]
    assert r["placed"] == lost["placed"]
    assert [o["order_id"] for o in r["approved"]] == [o["order_id"] for o in lost["approved"]]
    assert [(o["quantity"], o["clamped"]) for o in r["approved"]] == [(o["quantity"], o["clamped"]) for o in lost["approved"]]
    assert r["clamps"] == lost["clamps"] and r["rejected"] == lost["rejected"] and r["fills"] == lost["fills"]
    assert r["nodes"] == {} and r["prompts"] == {} and r["llm"] == "unknown"  # lost, and said to be
    assert json.loads(path.read_text()) == r

    third = run_daily(settings, universe="demo", run_date=NEXT, client=never_asked)
    assert third.repeated and third.results == r  # from now on the rebuilt file is the day's record


def test_orders_and_their_guard_verdicts_are_stored_together(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import agent.graph as graph
    from portfolio.broker import PaperBroker

    def killed_record(state: Any, deps: Any) -> Any:
        raise Killed  # the process dies right after the broker node

    monkeypatch.setattr(graph, "_record", killed_record)
    with pytest.raises(Killed):
        run_daily(settings, universe="demo", run_date=DAY, client=scripted(SP500=0.5, NOPE=0.1))
    monkeypatch.undo()
    with Ledger(settings.db_path, base_currency="USD", starting_cash=10_000.0) as ledger:
        kinds = sorted({row["kind"] for row in ledger.guard_log(DAY)})
    assert orders_of(settings, DAY) and kinds == ["clamp", "rejection"]  # both survived the kill
    r = run_daily(settings, universe="demo", run_date=DAY, client=ScriptedLLM([])).results
    assert r["status"] == "recovered" and r["clamps"] and [x["symbol"] for x in r["rejected"]] == ["NOPE"]

    def failing_submit(self: Any, orders: Any) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr(PaperBroker, "submit", failing_submit)
    held = run_daily(settings, universe="demo", run_date=NEXT, client=scripted(GOOG=0.1, NOPE=0.1)).results
    assert held["hold"]["reason"] == "fallback:broker_error" and orders_of(settings, NEXT) == []
    with Ledger(settings.db_path, base_currency="USD", starting_cash=10_000.0) as ledger:
        logged = [row["symbol"] for row in ledger.guard_log(NEXT) if row["kind"] == "rejection"]
    assert logged == ["NOPE"]  # the failed submit rolled its copy back; the record node logged the day once


def test_the_summary_says_a_day_was_recovered(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEAGENT_HOME", str(settings.home))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(daily, "write_json_atomic", lambda *a, **k: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        run_daily(settings, universe="demo", run_date=date(2013, 3, 1), llm="offline")
    monkeypatch.undo()
    monkeypatch.setenv("TRADEAGENT_HOME", str(settings.home))
    result = CliRunner().invoke(app, ["daily", "--date", "2013-03-01", "--llm", "offline"])
    assert result.exit_code == 0
    assert "recovered:" in result.stdout and "already traded" in result.stdout
    assert result.stdout.count("placed") >= 3  # the three orders the killed run placed are listed


def _die(*_: Any, **__: Any) -> None:
    raise Killed  # the process dies at this call


def _summaries(settings: Settings, day: date) -> list[str]:
    from portfolio import outbox

    with Ledger(settings.db_path, base_currency="USD", starting_cash=10_000.0) as ledger:
        return [a.body for a in outbox.alerts(ledger._con) if a.kind == "summary" and a.run_date == day]


def test_a_run_killed_before_its_summary_alert_gets_one_from_the_rebuild_and_only_one(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agent.day as day_module

    run_daily(settings, universe="demo", run_date=DAY, client=scripted(SP500=0.1, GOOG=0.05))

    monkeypatch.setattr(day_module.outbox, "enqueue_day", _die)  # dies after its orders, before the summary
    with pytest.raises(Killed):
        run_daily(settings, universe="demo", run_date=NEXT, client=scripted(SP500=0.3))
    monkeypatch.undo()
    assert orders_of(settings, NEXT) and _summaries(settings, NEXT) == []

    again = run_daily(settings, universe="demo", run_date=NEXT, client=ScriptedLLM([]))
    assert again.results["status"] == "recovered" and _summaries(settings, NEXT) == ["recovered"]
    run_daily(settings, universe="demo", run_date=NEXT, client=ScriptedLLM([]))
    assert _summaries(settings, NEXT) == ["recovered"]


def test_a_run_killed_after_its_summary_alert_is_not_summarised_twice(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_daily(settings, universe="demo", run_date=DAY, client=scripted(SP500=0.1, GOOG=0.05))

    monkeypatch.setattr(daily, "write_json_atomic", _die)
    with pytest.raises(Killed):
        run_daily(settings, universe="demo", run_date=NEXT, client=scripted(SP500=0.3))
    monkeypatch.undo()
    assert _summaries(settings, NEXT) == ["orders_placed"]
    run_daily(settings, universe="demo", run_date=NEXT, client=ScriptedLLM([]))
    assert _summaries(settings, NEXT) == ["orders_placed"]
