"""Bad files under TRADEAGENT_HOME: a ledger that is not DuckDB (or is locked) and a risk state without a mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portfolio.errors import LedgerError
from portfolio.ledger import Ledger
from portfolio.risk import RiskStateStore
from tests.duckdb_files import held_open_elsewhere, sqlite_file


@pytest.mark.parametrize("kind", ["text", "sqlite"])
def test_a_ledger_file_that_is_not_duckdb_is_a_one_line_ledger_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "tradeagent.duckdb"
    if kind == "sqlite":
        sqlite_file(path, "pf_account")  # DuckDB would try to download its sqlite extension for this one
    else:
        path.write_text("not a database")
    for open_it in (lambda: Ledger(path, base_currency="USD", starting_cash=1_000),
                    lambda: Ledger.open_existing(path), lambda: Ledger.open_existing(path, read_only=False)):
        with pytest.raises(LedgerError, match=r"cannot open the ledger: .* is not a tradeagent DuckDB file") as err:
            open_it()
        assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_ledger_locked_by_another_process_says_so(tmp_path: Path) -> None:
    path = tmp_path / "tradeagent.duckdb"
    Ledger(path, base_currency="USD", starting_cash=1_000).close()
    with held_open_elsewhere(path) as pid, pytest.raises(LedgerError, match=rf"is locked by another process \(PID {pid}\)"):
        Ledger.open_existing(path)
    assert Ledger.open_existing(path) is not None  # released with the other process


@pytest.mark.parametrize("content", ["{}", "[]", "null", "3", '{"reason": "x"}', '{"mode": null}',
                                     '{"mode": "active"}', '{"mode": "ACTIVE", "typo": 1}'])
def test_a_risk_state_without_a_valid_mode_fails_closed(tmp_path: Path, content: str) -> None:
    path = tmp_path / "risk_state.json"
    path.write_text(content)
    state = RiskStateStore(path).load()
    assert state.mode == "HALTED" and state.changed_by == "fail_closed"
    assert str(path) in state.reason and "corrupt risk state file" in state.reason


def test_a_complete_risk_state_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "risk_state.json"
    path.write_text(json.dumps({"mode": "REDUCING", "reason": "by hand"}))
    state = RiskStateStore(path).load()
    assert state.mode == "REDUCING" and state.reason == "by hand"
