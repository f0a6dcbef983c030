"""`tradeagent demo` and `tradeagent daily` through the real Typer app: JSON output, idempotence, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return tmp_path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_demo_runs_offline_on_the_last_session_every_instrument_can_fill_after_and_is_idempotent(home: Path) -> None:
    code, out, _ = invoke("demo", "--json")
    assert code == 0
    first = json.loads(out)
    assert first["llm"] == "offline-rules" and first["universe"] == "demo"
    assert first["date"] == "2013-02-28"  # GOOG's sample history ends on 2013-03-01: its orders fill there
    assert first["status"] == "orders_placed" and first["placed"]
    assert (home / "results" / "daily" / "2013-02-28.json").exists()
    code, out, _ = invoke("demo", "--json")
    second = json.loads(out)
    assert code == 0 and second["repeated"] is True and second["placed"] == first["placed"]
    code, out, _ = invoke("trades", "--json")
    assert code == 0
    trades = json.loads(out)
    ids = [t["order_id"] for t in (trades["orders"] if isinstance(trades, dict) else trades)]
    assert sorted(ids) == sorted(first["placed"])


def test_demo_prints_a_human_summary(home: Path) -> None:
    code, out, _ = invoke("demo")
    assert code == 0
    assert "llm=offline-rules" in out and "orders (after the risk guard)" in out and "results:" in out
    assert "3 order(s) pending: they fill at the next session's open" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("daily", "--date", "2012-13-01"), "is not a date"),
        (("daily", "--universe", "nope"), "unknown universe"),
        (("daily", "--llm", "gpt"), "--llm must be one of"),
        (("daily", "--llm", "openai", "--date", "2012-06-01"), "OPENAI_API_KEY"),
        (("daily", "--date", "1990-01-02"), "error:"),
        (("daily", "--date", "9999-12-31"), "out of range"),
        (("data", "show", "SP500", "--as-of", "9999-12-31"), "out of range"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(home: Path, args: tuple[str, ...], message: str) -> None:
    code, out, err = invoke(*args)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert "Traceback" not in out + err


def test_every_command_has_help(home: Path) -> None:
    for args in (("--help",), ("daily", "--help"), ("demo", "--help")):
        code, out, _ = invoke(*args)
        assert code == 0 and "Usage" in out
