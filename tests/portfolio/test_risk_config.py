"""risk.toml fails closed: a typo, a table that is not [limits], a non-number or a file that does not parse
refuses to trade (``RiskConfigError``) instead of silently falling back to the looser coded ceilings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from agent.cli_portfolio import register
from portfolio.errors import PortfolioError, RiskConfigError
from portfolio.models import RiskLimits
from portfolio.risk import CEILINGS, LIMIT_INFO, load_limits

TIGHT = "[limits]\nmax_position_weight = 0.05\n"


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "risk.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[limit]\nmax_position_weight = 0.05\n", "unknown table or key 'limit' (did you mean 'limits'?)"),
        ("max_position_weight = 0.05\n", "unknown table or key 'max_position_weight'"),
        (TIGHT + "[news]\nfeeds = []\n", "unknown table or key 'news'"),
        ("[limits]\nmax_position_wieght = 0.05\n", "did you mean 'max_position_weight'?"),
        ("[limits\nmax_position_weight = 0.05\n", "not valid TOML"),
        ("limits = 0.05\n", "not a table"),
        ("[limits]\nmax_position_weight = '0.05'\n", "max_position_weight = '0.05', not a finite non-negative"),
        ("[limits]\nmax_position_weight = true\n", "not a finite non-negative number"),
        ("[limits]\nmax_position_weight = nan\n", "not a finite non-negative number"),
        ("[limits]\nmax_drawdown = -0.1\n", "not a finite non-negative number"),
        (b"[limits]\nmax_position_weight = 0.05 # \xff\n", "cannot be read"),
    ],
)
def test_a_risk_toml_that_cannot_be_trusted_refuses_to_trade(tmp_path: Path, text: str | bytes, says: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RiskConfigError) as caught:
        load_limits(path)
    message = str(caught.value)
    assert says in message and str(path) in message and "no order is placed" in message
    assert "\n" not in message
    assert isinstance(caught.value, PortfolioError)  # the CLI prints it as one line, exit 2


def test_tighter_values_apply_and_looser_ones_keep_the_ceiling_with_a_note(tmp_path: Path) -> None:
    limits, notes = load_limits(write(tmp_path, TIGHT + "max_gross_exposure = 3\ncooldown_days = 2\n"))
    assert limits.max_position_weight == 0.05 and limits.cooldown_days == 2
    assert limits.max_gross_exposure == CEILINGS.max_gross_exposure
    assert notes == ["max_gross_exposure=3 is looser than the ceiling 1.0; ceiling kept"]
    assert load_limits(write(tmp_path, "")) == (CEILINGS, [])  # an empty file tightens nothing
    assert load_limits(tmp_path / "absent.toml") == (CEILINGS, [])
    assert load_limits(None) == (CEILINGS, [])


def test_every_limit_has_a_unit_and_a_meaning() -> None:
    assert list(LIMIT_INFO) == list(RiskLimits.model_fields)
    assert all(unit and meaning and "\n" not in meaning for unit, meaning in LIMIT_INFO.values())


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    app = typer.Typer()
    app.command("noop")(lambda: None)
    register(app)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_risk_limits_shows_a_bad_risk_toml_as_one_line_and_exit_2(cli, tmp_path: Path) -> None:
    write(tmp_path, "[limit]\nmax_position_weight = 0.05\n")
    for args in (("risk", "limits"), ("risk", "limits", "--json")):
        result = cli(*args)
        assert result.exit_code == 2 and result.stdout == ""
        assert result.stderr.startswith("error: risk config") and result.stderr.count("\n") == 1
        assert "did you mean 'limits'?" in result.stderr and "Traceback" not in result.output


def test_risk_limits_shows_units_and_meanings_and_json_keeps_plain_numbers(cli, tmp_path: Path) -> None:
    write(tmp_path, TIGHT)
    data = json.loads(cli("risk", "limits", "--json").stdout)
    assert data == {**CEILINGS.model_dump(), "max_position_weight": 0.05}
    assert all(isinstance(v, int | float) for v in data.values())
    out = cli("risk", "limits").stdout
    for header in ("limit", "in force", "ceiling", "unit", "meaning"):
        assert header in out
    row = next(line for line in out.splitlines() if "max_position_weight" in line)
    assert "0.05" in row and "0.2" in row and "fraction of equity" in row and "largest position" in row
    assert "1,000,000" in next(line for line in out.splitlines() if "max_order_value" in line)
