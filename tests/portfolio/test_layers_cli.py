"""The portfolio layer imports nothing of ours; only the guard holds the capability token; the CLI contracts."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from agent.cli_portfolio import register
from portfolio.broker import PaperBroker
from portfolio.ledger import Ledger
from portfolio.models import RiskState
from portfolio.risk import CEILINGS, guard

from .helpers import DAY, NEXT, market

ROOT = Path(__file__).resolve().parents[2]
OURS = {"tools", "agent", "memory", "prompts", "evals", "schedules", "tests"}


def test_portfolio_imports_nothing_of_ours() -> None:
    for path in (ROOT / "portfolio").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in OURS, f"{path.name} imports {name}"


def test_only_the_guard_uses_the_capability_token() -> None:
    users = {p.relative_to(ROOT).as_posix() for folder in ("portfolio", "agent", "tools", "evals", "schedules",
                                                            "memory", "prompts")
             for p in (ROOT / folder).rglob("*.py") if "_GUARD_KEY" in p.read_text(encoding="utf-8")}
    assert users == {"portfolio/models.py", "portfolio/risk.py"}


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no stray .env
    app = typer.Typer()
    app.command("noop")(lambda: None)  # a group needs two commands to keep sub-command names
    register(app)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_portfolio_without_a_ledger(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    result = cli("portfolio", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # the contract's keys first; later keys are additions (as_of, pending, …)
    assert {k: data[k] for k in list(data)[:4]} == {"base_currency": "USD", "cash": 10_000.0, "equity": 10_000.0,
                                                   "positions": []}
    assert "No ledger yet" in cli("portfolio").stdout
    monkeypatch.setenv("TRADEAGENT_STARTING_CASH", "2500")
    assert json.loads(cli("portfolio", "--json").stdout)["cash"] == 2500


def test_portfolio_and_trades_from_the_ledger(cli, tmp_path: Path) -> None:
    with Ledger(tmp_path / "tradeagent.duckdb", base_currency="EUR", starting_cash=10_000) as ledger:
        mkt = market({"AAA": 100.0}).model_copy(update={"base_currency": "EUR"})
        result = guard([{"symbol": "AAA", "side": "buy", "quantity": 10}], portfolio=ledger.snapshot(mkt),
                       market=mkt, limits=CEILINGS, state=RiskState(), history=ledger.history(DAY), run_date=DAY)
        broker = PaperBroker(ledger)
        broker.submit(result.approved)
        broker.settle(NEXT, {"AAA": 100.0})
        ledger.record_equity(NEXT, ledger.snapshot(market({"AAA": 110.0}, NEXT)))
    data = json.loads(cli("portfolio", "--json").stdout)
    assert list(data)[:4] == ["base_currency", "cash", "equity", "positions"] and data["base_currency"] == "EUR"
    (pos,) = data["positions"]
    assert list(pos) == ["symbol", "quantity", "avg_price", "market_value", "weight"]
    assert pos["market_value"] == pytest.approx(1_100)  # the last recorded mark
    assert data["equity"] == pytest.approx(data["cash"] + 1_100)
    assert "AAA" in cli("portfolio").stdout
    trades = json.loads(cli("trades", "--json").stdout)
    assert trades["orders"][0]["status"] == "filled" and len(trades["fills"]) == 1
    assert "20240304-AAA-buy-v1" in cli("trades").stdout


def test_risk_limits_in_force(cli, tmp_path: Path) -> None:
    data = json.loads(cli("risk", "limits", "--json").stdout)
    for key in ("max_position_weight", "max_gross_exposure", "max_open_positions", "max_orders_per_day",
                "max_order_notional"):
        assert data[key] == getattr(CEILINGS, key)
    (tmp_path / "risk.toml").write_text("[limits]\nmax_position_weight = 0.05\nmax_gross_exposure = 5\n")
    result = cli("risk", "limits", "--json")
    data = json.loads(result.stdout)
    assert data["max_position_weight"] == 0.05 and data["max_gross_exposure"] == 1.0
    assert "looser" in result.stderr


def test_the_kill_switch(cli, tmp_path: Path) -> None:
    assert json.loads(cli("risk", "status", "--json").stdout)["mode"] == "ACTIVE"
    halted = json.loads(cli("risk", "halt", "--reason", "fat finger at the desk", "--json").stdout)
    assert halted["mode"] == "HALTED" and halted["changed_by"] == "cli"
    status = json.loads(cli("risk", "status", "--json").stdout)
    assert status["mode"] == "HALTED" and status["reason"] == "fat finger at the desk"
    assert json.loads(cli("risk", "reduce", "--json").stdout)["mode"] == "REDUCING"
    assert json.loads(cli("risk", "resume", "--json").stdout)["mode"] == "ACTIVE"
    (tmp_path / "risk_state.json").write_text("{garbage")
    assert "HALTED" in cli("risk", "status").stdout
    assert cli("risk", "--help").exit_code == 0


def test_a_locked_or_foreign_ledger_is_a_one_line_error(cli, tmp_path: Path) -> None:
    (tmp_path / "tradeagent.duckdb").write_text("not a database")
    result = cli("portfolio", "--json")
    assert result.exit_code == 2 and "error" in result.stderr and "Traceback" not in result.output

