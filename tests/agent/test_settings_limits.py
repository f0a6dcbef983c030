"""Settings refuse numbers no run could use, by name, before anything touches the book.

A zero token budget or deadline, a non-positive timeout or starting cash, negative retries, fees outside
[0, 10000) bps were accepted by the settings and failed (or were silently replaced) deep in the run. Now the
settings refuse them: the CLI prints one line naming the variable and exits 2 with the ledger untouched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.settings import Settings, SettingsError, load_settings
from portfolio.ledger import Ledger

BAD = [
    ("TRADEAGENT_LLM_TOKEN_BUDGET", "0"),
    ("TRADEAGENT_LLM_TOKEN_BUDGET", "-5"),
    ("TRADEAGENT_LLM_RUN_DEADLINE_SECONDS", "0"),
    ("TRADEAGENT_LLM_RUN_DEADLINE_SECONDS", "nan"),
    ("TRADEAGENT_LLM_TIMEOUT_SECONDS", "0"),
    ("TRADEAGENT_LLM_TIMEOUT_SECONDS", "-1"),
    ("TRADEAGENT_LLM_TIMEOUT_SECONDS", "inf"),
    ("TRADEAGENT_LLM_MAX_RETRIES", "-1"),
    ("TRADEAGENT_STARTING_CASH", "0"),
    ("TRADEAGENT_STARTING_CASH", "-100"),
    ("TRADEAGENT_STARTING_CASH", "nan"),
    ("TRADEAGENT_COMMISSION_BPS", "-1"),
    ("TRADEAGENT_COMMISSION_BPS", "10000"),
    ("TRADEAGENT_SLIPPAGE_BPS", "-0.5"),
    ("TRADEAGENT_SLIPPAGE_BPS", "1e6"),
]
EDGES = [  # the smallest and largest values that remain allowed
    ("TRADEAGENT_LLM_TOKEN_BUDGET", "1"),
    ("TRADEAGENT_LLM_MAX_RETRIES", "0"),
    ("TRADEAGENT_LLM_TIMEOUT_SECONDS", "0.5"),
    ("TRADEAGENT_COMMISSION_BPS", "0"),
    ("TRADEAGENT_SLIPPAGE_BPS", "9999.5"),
    ("TRADEAGENT_STARTING_CASH", "0.01"),
]


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder (no stray .env), no TRADEAGENT_*/OPENAI_* variables, TRADEAGENT_HOME inside it."""
    for name in list(os.environ):
        if name.startswith(("TRADEAGENT_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path / "home"))
    return tmp_path


@pytest.mark.parametrize(("name", "value"), BAD)
def test_the_settings_refuse_a_value_no_run_can_use_and_name_it(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"{name}=") and "\n" not in str(caught.value)


@pytest.mark.parametrize(("name", "value"), EDGES)
def test_the_edges_of_each_range_are_allowed(clean_env: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                                             value: str) -> None:
    monkeypatch.setenv(name, value)
    settings = load_settings()
    assert getattr(settings, name.removeprefix("TRADEAGENT_").lower()) == float(value)


def test_the_defaults_are_within_the_ranges(clean_env: Path) -> None:
    defaults = Settings()  # pydantic does not validate defaults: pass them back in explicitly
    numbers = ("llm_timeout_seconds", "llm_max_retries", "llm_token_budget", "llm_run_deadline_seconds",
               "commission_bps", "slippage_bps")
    assert Settings(**{name: getattr(defaults, name) for name in numbers}) == defaults


def _book(path: Path) -> dict[str, Any]:
    ledger = Ledger.open_existing(path)
    assert ledger is not None
    try:
        return {"account": ledger.account(), "orders": ledger.orders(), "fills": ledger.fills(),
                "equity": ledger.equity_curve()}
    finally:
        ledger.close()


def test_a_zero_token_budget_is_refused_by_name_before_the_book_changes(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    demo = runner.invoke(app, ["demo"])
    assert demo.exit_code == 0, demo.output
    db = load_settings().db_path
    before = _book(db)
    assert any(o.status == "pending" for o in before["orders"])  # the next run would settle them

    monkeypatch.setenv("TRADEAGENT_LLM_TOKEN_BUDGET", "0")
    refused = runner.invoke(app, ["daily", "--date", "2013-03-01"])

    assert refused.exit_code == 2
    assert refused.stdout == "" and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("error: TRADEAGENT_LLM_TOKEN_BUDGET=")
    assert _book(db) == before
