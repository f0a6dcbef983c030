"""The daily run against what users, files and servers throw at it: dry runs beside real runs, corrupt results
files, failed loads behind a --date, rich-markup lookalikes in symbols and reasons, a home that is a file."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.cli_common import UserError
from agent.daily import run_daily
from agent.settings import Settings
from portfolio.ledger import Ledger
from tools.market_data import sample_frame

TRADED = date(2013, 3, 1)  # the offline rules buy all three demo instruments that day
LATER = date(2013, 3, 4)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    return Settings(home=tmp_path / "home")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def order_ids(settings: Settings) -> list[str]:
    with Ledger(settings.db_path, base_currency="USD", starting_cash=10_000.0) as ledger:
        return [o.order_id for o in ledger.orders()]


def test_a_dry_run_never_overwrites_the_days_real_record(settings: Settings) -> None:
    real = run_daily(settings, universe="demo", run_date=TRADED, llm="offline")
    before = real.path.read_bytes()
    dry = run_daily(settings, universe="demo", run_date=TRADED, llm="offline", dry_run=True)
    assert dry.path.name == "2013-03-01.dry-run.json" and dry.path != real.path
    assert real.path.read_bytes() == before
    again = run_daily(settings, universe="demo", run_date=TRADED, llm="offline")
    assert again.repeated and again.results["placed"] == real.results["placed"]


def test_a_dry_run_cannot_show_an_older_day_todays_book(settings: Settings) -> None:
    run_daily(settings, universe="demo", run_date=TRADED, llm="offline")
    run_daily(settings, universe="demo", run_date=LATER, llm="offline")  # TRADED's orders fill here
    with pytest.raises(UserError, match="cannot go back"):
        run_daily(settings, universe="demo", run_date=date(2013, 2, 15), llm="offline", dry_run=True)
    assert not list(settings.daily_results_dir.glob("2013-02-15*"))


@pytest.mark.parametrize("garbage", [b"{garbage", b"[1, 2]", b"{}", b"\xff\xfe not utf-8", b'{"date": "1999-01-01", "placed": []}'])
def test_a_corrupt_results_file_of_a_traded_day_is_kept_aside_and_rebuilt(settings: Settings, garbage: bytes) -> None:
    first = run_daily(settings, universe="demo", run_date=TRADED, llm="offline")
    first.path.write_bytes(garbage)
    code, out, err = invoke("daily", "--date", "2013-03-01", "--llm", "offline", "--json")
    assert code == 0, err
    rebuilt = json.loads(out)
    assert rebuilt["status"] == "recovered" and rebuilt["placed"] == first.results["placed"]
    assert "moved to 2013-03-01.json.corrupt" in rebuilt["recovered"]
    assert (first.path.parent / "2013-03-01.json.corrupt").read_bytes() == garbage  # nothing is lost
    assert order_ids(settings) == first.results["placed"]  # and nothing traded twice


def test_with_a_date_a_universe_that_fails_to_load_says_why(settings: Settings, tmp_path: Path) -> None:
    toml = tmp_path / "u.toml"
    toml.write_text(f'name = "u"\nbase_currency = "USD"\n[[instruments]]\nsymbol = "X"\n'
                    f'source = "csv:{tmp_path / "missing.csv"}"\ncurrency = "USD"\n')
    code, _, err = invoke("daily", "--universe", str(toml), "--date", "2013-03-01")
    assert code == 2 and "missing.csv" in err and "could be loaded" in err
    assert len(err.strip().splitlines()) == 1


def test_markup_lookalikes_in_symbols_and_reasons_are_printed_as_text(settings: Settings, tmp_path: Path) -> None:
    bars = sample_frame("SP500").loc["2011-01-01":"2012-06-01"]
    csv = tmp_path / "odd.csv"
    bars.rename(columns=str.title).rename_axis("Date").to_csv(csv)
    toml = tmp_path / "odd.toml"
    toml.write_text(f'name = "odd"\nbase_currency = "USD"\n[[instruments]]\nsymbol = "[/b]"\n'
                    f'source = "csv:{csv}"\ncurrency = "USD"\n')
    code, out, err = invoke("daily", "--universe", str(toml), "--date", "2012-06-01", "--llm", "offline")
    assert code == 0, err
    assert "[/b]" in out and "results:" in out
    code, out, err = invoke("risk", "reduce", "--reason", "x[/red]y")
    assert code == 0, err
    code, out, err = invoke("risk", "status")
    assert code == 0 and "x[/red]y" in out, err


def test_a_home_that_is_a_file_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.write_text("I am a file")
    monkeypatch.setenv("TRADEAGENT_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    code, _, err = invoke("demo")
    assert code == 2 and "exists and is not a folder" in err and "unexpected" not in err


def test_a_day_after_today_is_refused_as_wrong_data(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="after today"):
        run_daily(settings, universe="demo", run_date=LATER, llm="offline", today=TRADED)
    bars = sample_frame("SP500").iloc[-60:].copy()
    bars.index = bars.index + (bars.index[0].replace(year=2099) - bars.index[0])  # the same bars, in 2099
    csv = tmp_path / "future.csv"
    bars.rename(columns=str.title).rename_axis("Date").to_csv(csv, date_format="%Y-%m-%d")
    toml = tmp_path / "future.toml"
    toml.write_text(f'name = "future"\nbase_currency = "USD"\n[[instruments]]\nsymbol = "FUT"\n'
                    f'source = "csv:{csv}"\ncurrency = "USD"\n')
    code, _, err = invoke("daily", "--universe", str(toml), "--llm", "offline")
    assert code == 2 and "after today" in err and "2099" in err
    assert not settings.daily_results_dir.exists() or not list(settings.daily_results_dir.iterdir())
