"""The scheduler's jobs with an injected clock on a real DuckDB book: run once per session, holidays, restarts."""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from portfolio import outbox
from portfolio.ledger import Ledger
from portfolio.storage import connect
from schedules import jobs
from tests.schedules.helpers import Clock, context, utc, write_universe


def _orders(home: Path) -> list[str]:
    ledger = Ledger.open_existing(home / "tradeagent.duckdb")
    assert ledger is not None
    try:
        return [o.order_id for o in ledger.orders()]
    finally:
        ledger.close()


def _alerts(home: Path) -> list[outbox.Alert]:
    con = connect(home / "tradeagent.duckdb", read_only=True)
    try:
        return outbox.alerts(con)
    finally:
        con.close()


def test_the_daily_job_trades_each_session_once_across_restarts_and_holidays(tmp_path: Path) -> None:
    universe = write_universe(tmp_path / "data", end=date(2026, 11, 27))
    home, clock = tmp_path / "home", Clock(utc(2026, 11, 24))
    ctx = context(home, universe, clock)

    first = jobs.daily_job(ctx, str(universe))
    assert first.status == "ran" and first.session == date(2026, 11, 24), first.detail
    placed = _orders(home)
    assert placed, "the rising test market should make the offline rules buy"
    assert [a.kind for a in _alerts(home)][:1] == ["orders"] and "summary" in {a.kind for a in _alerts(home)}

    # the scheduler restarts later that night (a new process: a new context on the same home)
    clock.now = utc(2026, 11, 24, 23, 50)
    again = jobs.daily_job(context(home, universe, clock), str(universe))
    assert again.status == "skipped" and "already ran" in again.detail
    # and the job fires twice in a row
    assert jobs.daily_job(ctx, str(universe)).status == "skipped"
    assert _orders(home) == placed

    # Thanksgiving: the ready session is still Wednesday's
    clock.now = utc(2026, 11, 25)
    assert jobs.daily_job(ctx, str(universe)).session == date(2026, 11, 25)
    clock.now = utc(2026, 11, 26)
    holiday = jobs.daily_job(ctx, str(universe))
    assert holiday.status == "skipped" and holiday.session == date(2026, 11, 25)
    clock.now = utc(2026, 11, 27)
    assert jobs.daily_job(ctx, str(universe)).session == date(2026, 11, 27)
    ran = [(r["session"], r["status"]) for r in jobs.history(ctx.settings, "daily") if r["status"] in ("ran", "started")]
    assert ran == [(date(2026, 11, d), s) for d in (24, 25, 27) for s in ("started", "ran")]


def test_a_run_killed_half_way_is_resumed_and_a_lost_record_never_retrades(tmp_path: Path) -> None:
    universe = write_universe(tmp_path / "data", end=date(2026, 11, 24))
    home, clock = tmp_path / "home", Clock(utc(2026, 11, 24))
    ctx = context(home, universe, clock)
    assert jobs.daily_job(ctx, str(universe)).status == "ran"
    placed = _orders(home)
    results = home / "results" / "daily" / "2026-11-24.json"
    # the process died after placing the orders: no "ran" row and no results file survived
    con = connect(home / "tradeagent.duckdb")
    con.execute("DELETE FROM schedule_log WHERE status = 'ran'")
    con.close()
    results.unlink()
    resumed = jobs.daily_job(ctx, str(universe))
    assert resumed.status == "ran" and "already traded: nothing re-run" in resumed.detail
    assert _orders(home) == placed  # the ledger's idempotence: nothing placed twice
    assert json.loads(results.read_text())["status"] == "recovered"


def test_a_failed_daily_run_is_an_error_alert_and_an_outcome(tmp_path: Path) -> None:
    universe = write_universe(tmp_path / "data", end=date(2026, 11, 20))  # data stops a few sessions early
    home, clock = tmp_path / "home", Clock(utc(2026, 11, 24))
    ctx = context(home, universe, clock)
    outcome = jobs.daily_job(ctx, str(universe))
    assert outcome.status == "failed" and "2026-11-24 is not a session" in outcome.detail
    errors = [a for a in _alerts(home) if a.kind == "error"]
    assert len(errors) == 1 and errors[0].severity == "critical" and "2026-11-24" in errors[0].title
    assert jobs.history(ctx.settings, "daily")[-1]["status"] == "failed"


def test_retrain_has_nothing_to_train_until_a_model_exists(tmp_path: Path) -> None:
    universe = write_universe(tmp_path / "data", end=date(2026, 11, 24))
    ctx = context(tmp_path / "home", universe, Clock(utc(2026, 11, 28, 4, 0)))
    calls: list[list[str]] = []

    def runner(argv: list[str]) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, stdout='{"model": {"version": "v2"}}', stderr="")

    outcome = jobs.retrain_job(ctx, str(universe), runner=runner)
    assert outcome.status == "skipped" and "nothing to train" in outcome.detail and calls == []


def test_retrain_retrains_the_kinds_the_universe_has(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    universe = write_universe(tmp_path / "data", end=date(2026, 11, 24), sessions=420)
    home = tmp_path / "home"
    monkeypatch.setenv("TRADEAGENT_HOME", str(home))
    from agent.cli import app

    trained = CliRunner().invoke(app, ["train", "xgb", "--universe", str(universe), "--train-years", "1",
                                       "--test-months", "6", "--max-rounds", "5", "--json"])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    ctx = context(home, universe, Clock(utc(2026, 11, 28, 4, 0)))
    calls: list[list[str]] = []

    def runner(argv: list[str]) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, stdout='{"model": {"version": "xgb-new"}}', stderr="")

    outcome = jobs.retrain_job(ctx, str(universe), runner=runner)
    assert outcome.status == "ran" and outcome.detail == "retrained xgb xgb-new"
    assert [argv[1:] for argv in calls] == [["-m", "agent", "train", "xgb", "--universe", str(universe), "--json"]]

    def broken(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 2, stdout="", stderr="error: no data")

    failed = jobs.retrain_job(ctx, str(universe), runner=broken)
    assert failed.status == "failed" and "train xgb exited 2: error: no data" in failed.detail
    assert [a.kind for a in _alerts(home)] == ["error"]
