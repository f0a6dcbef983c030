"""The CLI's edges: --version, Ctrl-C as one line, TRADEAGENT_HOME and bad variables, piped width, `daily -u`."""

from __future__ import annotations

import ast
import io
import os
import subprocess
import sys
import tomllib
import types
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

import agent.__main__ as entry
from agent.cli import app
from agent.cli_common import PIPE_WIDTH, console_width
from agent.settings import DEFAULT_HOME, SettingsError, _describe, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder (no stray .env) and no TRADEAGENT_* or OPENAI_* variables."""
    for name in list(os.environ):
        if name.startswith(("TRADEAGENT_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_version_prints_the_installed_package_version() -> None:
    code, out, _ = invoke("--version")
    assert code == 0 and out == f"tradeagent {version('tradeagent')}\n"


def test_the_console_script_is_the_interrupt_safe_entry() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts == {"tradeagent": "agent.__main__:main"}
    # Nothing but the standard library at module level: an interrupt during the app's imports is caught.
    tree = ast.parse((ROOT / "agent" / "__main__.py").read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert all((isinstance(n, ast.ImportFrom) and n.module == "__future__") or (isinstance(n, ast.Import) and
               all(a.name in sys.stdlib_module_names for a in n.names)) for n in top)


def test_ctrl_c_while_the_cli_is_still_importing_is_one_line_and_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    half_imported = types.ModuleType("agent.cli")

    def interrupted(name: str) -> object:
        raise KeyboardInterrupt

    half_imported.__getattr__ = interrupted  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "agent.cli", half_imported)
    with pytest.raises(SystemExit) as exited:
        entry.main()
    assert exited.value.code == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_ctrl_c_inside_a_command_is_one_line_and_exit_130(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("agent.cli_risk._settings", interrupted)
    monkeypatch.setattr(sys, "argv", ["tradeagent", "risk", "status"])
    with pytest.raises(SystemExit) as exited:
        entry.main()
    assert exited.value.code == 130
    err = capsys.readouterr().err
    assert err.strip() == "interrupted" and "Traceback" not in err


def test_a_tilde_in_tradeagent_home_from_dotenv_is_the_home_folder(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(clean_env / "me"))
    (clean_env / ".env").write_text("TRADEAGENT_HOME=~/trading\n", encoding="utf-8")
    assert load_settings().home == clean_env / "me" / "trading"


def test_an_empty_tradeagent_home_means_the_default_not_the_current_folder(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for empty in ("", "   "):
        monkeypatch.setenv("TRADEAGENT_HOME", empty)
        assert load_settings().home == DEFAULT_HOME
    code, _, err = invoke("risk", "halt", "--reason", "test")
    assert code == 0, err
    assert (clean_env / "data" / "risk_state.json").is_file() and not (clean_env / "risk_state.json").exists()


def test_a_bad_number_names_the_variable_and_its_value_in_one_line(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEAGENT_LLM_MAX_RETRIES", "two")
    (clean_env / ".env").write_text("TRADEAGENT_COMMISSION_BPS=ten\n", encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "TRADEAGENT_LLM_MAX_RETRIES='two'" in str(caught.value)
    assert "TRADEAGENT_COMMISSION_BPS='ten'" in str(caught.value)
    code, out, err = invoke("portfolio")
    assert code == 2 and out == "" and err.startswith("error: TRADEAGENT_") and err.count("\n") == 1
    assert "unexpected" not in err and "ValidationError" not in err
    # the kill switch works whatever else is misconfigured: each bad variable is a warning, its default is used
    code, out, err = invoke("risk", "status")
    assert code == 0 and "Risk mode" in out and err.count("warning: TRADEAGENT_") == 2


def test_a_secret_with_a_bad_value_is_named_but_never_shown() -> None:
    said = _describe({"loc": ("openai_api_key",), "msg": "Input should be a valid string", "input": "sk-SECRET"})
    assert said.startswith("OPENAI_API_KEY") and "SECRET" not in said
    said = _describe({"loc": ("discord_webhook_url",), "msg": "bad", "input": "https://x/hook/SECRET"})
    assert said.startswith("TRADEAGENT_DISCORD_WEBHOOK_URL") and "SECRET" not in said


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_piped_output_is_wide_and_a_terminal_keeps_its_own_width() -> None:
    assert console_width(_Stream(tty=False), {}) == PIPE_WIDTH == 200
    assert console_width(_Stream(tty=True), {}) is None
    assert console_width(_Stream(tty=False), {"COLUMNS": "120"}) is None  # rich reads COLUMNS itself


def test_a_piped_table_is_not_cut_at_80_columns(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEAGENT_", "OPENAI_")) and k != "COLUMNS"}
    env["TRADEAGENT_HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "agent", "risk", "limits"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if "max_gross_exposure" in line)
    assert "sum of |position values|, shorts included (1.0: no leverage)" in row and len(row) > 80


def test_daily_takes_u_like_data(clean_env: Path) -> None:
    code, _, err = invoke("daily", "-u", "no-such-universe", "--dry-run")
    assert code == 2 and "no-such-universe" in err and "No such option" not in err


def test_a_ctrl_c_duckdb_caught_inside_a_node_stops_the_day_instead_of_recording_a_hold_all(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # found by an attacker: DuckDB turns a SIGINT during a query into RuntimeError("Query interrupted"); the graph's
    # fail-closed `except` made it an abstention, and the day went on and was recorded as if nobody had pressed Ctrl-C
    import agent.nodes as nodes  # the node the graph calls (looked up by name on every call)

    def interrupted_query(*_: object, **__: object) -> object:
        raise RuntimeError("Query interrupted")

    monkeypatch.setenv("TRADEAGENT_MEMORY", "off")
    analyst = nodes.analyst_node
    monkeypatch.setattr(nodes, "analyst_node", interrupted_query)
    code, _, err = invoke("daily", "--date", "2012-03-01")
    assert code == 130 and err.strip() == "interrupted"
    assert not (clean_env / "data" / "results" / "daily" / "2012-03-01.json").exists()  # nothing recorded
    monkeypatch.setattr(nodes, "analyst_node", analyst)
    code, _, err = invoke("daily", "--date", "2012-03-01")  # the re-run decides the day
    assert code == 0, err
    assert (clean_env / "data" / "results" / "daily" / "2012-03-01.json").is_file()


def test_a_ctrl_c_duckdb_caught_in_a_command_is_interrupted_not_an_unexpected_error(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted_query() -> None:
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr("agent.cli_risk._settings", interrupted_query)
    code, _, err = invoke("risk", "status")
    assert code == 130 and err.strip() == "interrupted"
    monkeypatch.setattr("agent.cli_risk._settings", lambda: (_ for _ in ()).throw(RuntimeError("something else")))
    code, _, err = invoke("risk", "status")
    assert code == 2 and "unexpected RuntimeError: something else" in err
