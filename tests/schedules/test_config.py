"""``TRADEAGENT_HOME/config.toml``: a typo anywhere (a table, a key) is one line naming it and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli_common import UserError
from schedules.config import load_config


@pytest.mark.parametrize("text,message", [
    ('[schedul]\ndaily = "*/5 * * * *"\n', "unknown table [schedul]"),
    ('[monitr]\nindex_move = 0.05\n', "unknown table [monitr]"),
    ('universe = "demo"\n', "unknown top-level key universe"),
    ('[schedule]\ndialy = "0 22 * * *"\n', "[schedule] has unknown key(s) dialy"),
])  # fmt: skip
def test_an_unknown_table_or_key_is_refused_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str,
                                                        message: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match="known"):
        load_config(home)
    monkeypatch.setenv("TRADEAGENT_HOME", str(home))
    from agent.cli import app

    result = CliRunner().invoke(app, ["serve", "--list"])
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_documented_tables_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[schedule]\nuniverse = "demo"\nnews = "0 21 * * mon-fri"\n'
                                          '[monitor]\nindex_move = 0.05\n', encoding="utf-8")  # fmt: skip
    config = load_config(tmp_path)
    assert config.universe == "demo" and config.thresholds.index_move == 0.05 and config.news == "0 21 * * mon-fri"
    (tmp_path / "config.toml").write_text('[schedule]\nnews = "at ten"\n', encoding="utf-8")
    with pytest.raises(UserError, match="news = 'at ten' is not a crontab"):
        load_config(tmp_path)
