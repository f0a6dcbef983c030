"""`tradeagent risk` through the real Typer app: a person's resume sticks, recorded text is shown as text.

Each test here failed on the code before it: a `risk resume` after a max_drawdown HALT was undone by the next
daily run (the drawdown was measured from the whole curve's peak), and `risk` printed control characters raw.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.cli import app
from portfolio.ledger import Ledger

# In the demo book traded on these sessions, 2013-03-12 closes 0.10% under 2013-03-11's mark and 2013-03-13
# is still 0.057% under it, but above 2013-03-12's: a 0.05% limit halts on the 12th, and the old peak would
# halt the 13th again right after a resume.
TIGHT = "[limits]\nmax_drawdown = 0.0005\n"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return tmp_path


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def cli_json(*args: str) -> Any:
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def equity_curve(home: Path) -> list[tuple[Any, float]]:
    ledger = Ledger.open_existing(home / "tradeagent.duckdb")
    assert ledger is not None
    try:
        return ledger.equity_curve()
    finally:
        ledger.close()


@pytest.mark.slow
def test_a_resume_after_a_drawdown_halt_survives_the_next_daily_run(home: Path) -> None:
    assert cli_json("demo")["date"] == "2013-02-28"
    (home / "risk.toml").write_text(TIGHT, encoding="utf-8")
    assert cli_json("daily", "--date", "2013-03-11")["risk"]["state"]["mode"] == "ACTIVE"
    halted = cli_json("daily", "--date", "2013-03-12")["risk"]["state"]
    assert halted["mode"] == "HALTED" and halted["changed_by"] == "breaker:max_drawdown"

    resumed = cli_json("risk", "resume", "--reason", "looked at it")
    assert resumed["mode"] == "ACTIVE" and resumed["changed_by"] == "cli"
    assert resumed["since"] == "2013-03-12"  # the book's last equity mark, not the wall clock (2026)

    after = cli_json("daily", "--date", "2013-03-13")
    assert after["risk"]["state"] == resumed
    curve = equity_curve(home)
    old_peak, last = max(v for _, v in curve), curve[-1][1]
    assert 1 - last / old_peak > 0.0005  # the old measure would have halted this run again
    assert cli_json("risk", "status")["mode"] == "ACTIVE"


def test_resume_without_a_ledger_keeps_the_whole_curve_and_says_so(home: Path) -> None:
    code, out, err = cli("risk", "resume")
    assert code == 0, err
    assert "Risk mode ACTIVE (cli)" in out and "whole equity curve" in out and "no ledger" in out
    assert json.loads((home / "risk_state.json").read_text(encoding="utf-8"))["since"] is None
    halted = cli_json("risk", "halt")
    assert halted["mode"] == "HALTED" and halted["since"] is not None  # a halt needs no measure: the wall clock


def test_risk_commands_print_control_characters_escaped(home: Path) -> None:
    code, out, err = cli("risk", "halt", "--reason", "line1\nline2 \x1b[2J")
    assert code == 0, err
    assert "\x1b" not in out and "line1\\x0aline2 \\x1b[2J" in out
    assert len([line for line in out.splitlines() if line.startswith("Risk mode")]) == 1
    state = json.loads((home / "risk_state.json").read_text(encoding="utf-8"))
    (home / "risk_state.json").write_text(json.dumps({**state, "reason": "\u001b[31mred\u0007", "changed_by": "c\rli"}),
                                          encoding="utf-8")
    code, out, err = cli("risk", "status")
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "\\x1b[31mred\\x07" in out and "c\\x0dli" in out
    assert cli_json("risk", "status")["reason"] == "\u001b[31mred\u0007"  # --json stays JSON: escaped by json
