"""``tradeagent news show`` refuses a symbol its universe does not have, in one line naming the known ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize("args,message", [
    (("ZZZZ",), "'ZZZZ' is not in universe 'demo' (known: GOOG, NASDAQ, SP500"),
    (("goog",), "'goog' is not in universe 'demo'; did you mean GOOG? (known: GOOG, NASDAQ, SP500"),
    (("goog", "--universe", "demo", "--json"), "did you mean GOOG?"),
])  # fmt: skip
def test_an_unknown_or_miscased_symbol_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    result = CliRunner().invoke(app, ["news", "show", *args])
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""
