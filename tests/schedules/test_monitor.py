"""``tradeagent monitor`` on CSV prices with a bar dated today: thresholds, the portfolio's day, exit codes, the
outbox, once-a-day alerts, and that it never trades."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.settings import Settings
from portfolio import outbox
from portfolio.ledger import Ledger
from portfolio.models import Fill
from portfolio.storage import connect
from schedules.config import Thresholds
from schedules.monitor import run_monitor
from tests.schedules.helpers import write_universe

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def _book(home: Path, holdings: dict[str, tuple[float, float]]) -> None:
    """A paper book holding ``symbol: (quantity, price)`` bought the day before, all cash otherwise."""
    home.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(home / "tradeagent.duckdb", base_currency="USD", starting_cash=10_000)
    with ledger.transaction():
        for symbol, (qty, price) in holdings.items():
            ledger.apply_fill(Fill(order_id=f"o-{symbol}", symbol=symbol, side="buy", quantity=qty, price=price,
                                   commission=0, slippage=0, fill_date=date(2026, 11, 23), currency="USD",
                                   fx_rate=1.0), mark_base=price, note=None)  # fmt: skip
    ledger.close()


def _closes(folder: Path, symbol: str) -> list[float]:
    return [float(line.split(",")[4]) for line in (folder / f"{symbol}.csv").read_text().splitlines()[1:]]


def test_moves_beyond_each_threshold_are_alerted_once_a_day_and_nothing_is_traded(tmp_path: Path) -> None:
    data = tmp_path / "data"
    universe = write_universe(data, end=TODAY, symbols=("AAA", "BBB", "CCC"),
                              last_moves={"AAA": -0.025, "BBB": 0.025, "CCC": -0.035})  # fmt: skip
    home = tmp_path / "home"
    prev_aaa = _closes(data, "AAA")[-2]
    _book(home, {"AAA": (8_000 / prev_aaa, prev_aaa)})  # 80% of the book in AAA: -2.5% on it is -2% on the book
    settings = Settings(home=home, discord_webhook_url=None)

    report = run_monitor(settings, str(universe), now=NOW, thresholds=Thresholds())
    checks = {c["symbol"]: c for c in report.checks}
    assert checks["AAA"]["held"] and checks["AAA"]["alert"] and checks["AAA"]["move"] == pytest.approx(-0.025)
    assert not checks["BBB"]["held"] and not checks["BBB"]["alert"]  # +2.5% is inside the market's ±3%
    assert checks["CCC"]["alert"] and checks["CCC"]["threshold"] == 0.03
    assert report.portfolio["alert"] and report.portfolio["move"] < -0.015
    assert [a["new"] for a in report.alerts] == [True, True, True]

    con = connect(settings.db_path, read_only=True)
    stored = outbox.alerts(con)
    orders = con.execute("SELECT count(*) FROM pf_orders").fetchone()
    con.close()
    assert [a.kind for a in stored] == ["monitor"] * 3 and orders == (0,)
    assert stored[0].title.startswith("AAA -2.50% since the 2026-11-23 close")

    again = run_monitor(settings, str(universe), now=NOW.replace(hour=17), thresholds=Thresholds())
    assert [a["new"] for a in again.alerts] == [False, False, False]  # the next pass: same moves, no new alert
    con = connect(settings.db_path, read_only=True)
    assert len(outbox.alerts(con)) == 3
    con.close()

    tighter = run_monitor(settings, str(universe), now=NOW, thresholds=Thresholds(index_move=0.02))
    assert {c["symbol"] for c in tighter.checks if c["alert"]} == {"AAA", "BBB", "CCC"}


def test_the_cli_exits_0_1_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("TRADEAGENT_HOME", str(home))
    from agent.cli import app

    # a bar dated the real today (the CLI's clock) for a move, and one without any move
    today = datetime.now(UTC).date()
    quiet = write_universe(tmp_path / "quiet", end=today, last_moves={"AAA": 0.001, "BBB": 0.0})
    runner = CliRunner()
    result = runner.invoke(app, ["monitor", "--universe", str(quiet), "--json"])
    out = json.loads(result.stdout)
    has_bar = any(c["status"] == "ok" for c in out["checks"])  # today may be a weekend or holiday: no bar, no move
    assert result.exit_code == 0 and out["alerts"] == [] and (has_bar or all(c["status"] == "no bar today" for c in out["checks"]))
    assert runner.invoke(app, ["monitor", "--universe", str(tmp_path / "missing.toml")]).exit_code == 2
    assert not home.exists()  # nothing to report: nothing written
    home.mkdir()
    (home / "config.toml").write_text("[monitor]\nindex_move = 3\n", encoding="utf-8")
    bad = runner.invoke(app, ["monitor", "--universe", str(quiet)])
    assert bad.exit_code == 2 and "[monitor] index_move must be a fraction between 0 and 1" in bad.stderr


def test_the_cli_exit_1_on_an_alert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path / "home"))
    from agent.cli import app

    # the 24/5 pseudo-calendar has a bar every weekday; a weekend has none, so write the bar on today whatever it is
    today = datetime.now(UTC).date()
    folder = tmp_path / "moving"
    folder.mkdir()
    rows = ["Date,Open,High,Low,Close,Volume", f"{date.fromordinal(today.toordinal() - 1)},100,101,99,100,1000",
            f"{today},100,100.5,95,96,1000"]  # fmt: skip
    (folder / "X.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "u.toml").write_text(f'name = "moving"\nbase_currency = "USD"\n[[instruments]]\nsymbol = "X"\n'
                                   f'source = "csv:{folder / "X.csv"}"\ncurrency = "USD"\n', encoding="utf-8")  # fmt: skip
    result = CliRunner().invoke(app, ["monitor", "--universe", str(folder / "u.toml")])
    assert result.exit_code == 1, result.output
    assert "ALERT X: -4.00% since" in result.stdout and "1 alert(s)" in result.stdout
