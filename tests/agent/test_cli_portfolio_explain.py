"""`tradeagent portfolio`, the daily summary and `tradeagent explain` through the real Typer app.

Two books are built once per module (a daily run costs seconds): the demo's (three orders pending) and a copy
of it traded on 2013-03-11 (the demo's orders filled on 2013-03-01, GOOG's data ended then, so it is stale;
one NASDAQ order clamped and placed). Tests only read them; a test that changes a book works on its own copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.cli_daily import render_summary
from agent.daily import DailyResult
from portfolio.ledger import Ledger
from tools.cache import MarketCache
from tools.market_data import sample_frame

CONTRACT = {"base_currency", "cash", "equity", "positions"}
POSITION_KEYS = {"symbol", "quantity", "avg_price", "market_value", "weight"}
ADDED = {"as_of", "starting_cash", "realised_pnl", "unrealised_pnl", "fees", "return_since_start", "max_drawdown",
         "pending", "benchmark"}
TRADED_DAY = "2013-03-11"


def invoke(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"TRADEAGENT_HOME": str(home), "OPENAI_API_KEY": None})
    return result.exit_code, result.stdout, result.stderr


def invoke_json(home: Path, *args: str) -> Any:
    code, out, err = invoke(home, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def copy_home(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


@pytest.fixture(scope="module")
def after_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("after_demo")
    code, _, err = invoke(home, "demo")
    assert code == 0, err
    return home


@pytest.fixture(scope="module")
def traded(after_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The demo's book after a daily run on 2013-03-11, and that run's human summary."""
    home = copy_home(after_demo, tmp_path_factory.mktemp("traded") / "home")
    code, out, err = invoke(home, "daily", "--date", TRADED_DAY)
    assert code == 0, err
    return home, out


def day_results(home: Path, day: str) -> dict[str, Any]:
    return json.loads((home / "results" / "daily" / f"{day}.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------ portfolio


def test_portfolio_right_after_demo_lists_the_demo_orders_as_pending(after_demo: Path) -> None:
    data = invoke_json(after_demo, "portfolio")
    assert set(data) >= CONTRACT | ADDED
    placed = day_results(after_demo, "2013-02-28")["placed"]
    assert sorted(o["order_id"] for o in data["pending"]) == sorted(placed) and len(placed) == 3
    assert all(o["status"] == "pending" for o in data["pending"])
    assert data["as_of"] == "2013-02-28" and data["positions"] == []
    assert data["return_since_start"] == pytest.approx(data["equity"] / data["starting_cash"] - 1) == 0.0
    assert data["max_drawdown"] == 0.0
    code, out, _ = invoke(after_demo, "portfolio")
    assert code == 0 and "pending orders" in out and all(order_id in out for order_id in placed)


def test_portfolio_json_after_a_daily_run_agrees_with_the_ledger(traded: tuple[Path, str]) -> None:
    home, _ = traded
    data = invoke_json(home, "portfolio")
    ledger = Ledger.open_existing(home / "tradeagent.duckdb")
    assert ledger is not None
    try:
        snap, start, curve = ledger.snapshot(None), ledger.starting_cash, ledger.equity_curve()
        pending = [o.order_id for o in ledger.orders(status="pending")]
    finally:
        ledger.close()
    assert list(data)[:4] == ["base_currency", "cash", "equity", "positions"]  # the contract's keys, first
    # GOOG had no bar for 6 sessions by then: the day cashed it out at its last close
    assert all(set(p) == POSITION_KEYS for p in data["positions"]) and len(data["positions"]) == 2
    assert data["as_of"] == TRADED_DAY and data["starting_cash"] == start
    assert data["equity"] == pytest.approx(snap.equity) and data["fees"] == pytest.approx(snap.fees)
    assert data["fees"] > 0 and data["unrealised_pnl"] == pytest.approx(snap.unrealised_pnl)
    assert data["realised_pnl"] + data["unrealised_pnl"] - data["fees"] == pytest.approx(data["equity"] - start)
    assert data["return_since_start"] == pytest.approx(data["equity"] / start - 1)
    assert data["return_since_start"] != 0
    peaks = [max(v for _, v in curve[: i + 1]) for i in range(len(curve))]
    assert data["max_drawdown"] == pytest.approx(min(v / p - 1 for (_, v), p in zip(curve, peaks, strict=True)))
    assert data["max_drawdown"] <= 0
    assert [o["order_id"] for o in data["pending"]] == pending == ["20130311-NASDAQ-buy-v1"]


def test_portfolio_benchmark_is_equal_weight_buy_and_hold_of_the_universe_over_the_marks(
    traded: tuple[Path, str],
) -> None:
    home, _ = traded
    bench = invoke_json(home, "portfolio")["benchmark"]
    assert bench["name"] == "equal-weight buy-and-hold, no fees" and bench["universe"] == "demo"
    assert (bench["start"], bench["end"]) == ("2013-02-28", TRADED_DAY)
    assert bench["symbols"] == ["GOOG", "NASDAQ", "SP500"] and bench["skipped"] == {}
    with MarketCache(home / "tradeagent.duckdb") as cache:
        closes = {s: cache.bars(s, as_of=date(2013, 3, 11), source="sample")["close"] for s in bench["symbols"]}
    # GOOG's data ends on 2013-03-01: held at its last close, as the book marks it
    expected = sum(c.iloc[-1] / c.loc[:"2013-02-28"].iloc[-1] - 1 for c in closes.values()) / 3
    assert bench["return"] == pytest.approx(expected) and bench["return"] != 0


def test_portfolio_text_shows_return_drawdown_benchmark_and_pending(traded: tuple[Path, str]) -> None:
    home, _ = traded
    data = invoke_json(home, "portfolio")
    code, out, _ = invoke(home, "portfolio")
    assert code == 0
    assert f"as of {TRADED_DAY}" in out and f"fees {data['fees']:,.2f}" in out
    assert f"Return since start {data['return_since_start']:+.2%}" in out
    assert f"max drawdown {data['max_drawdown']:.2%}" in out
    assert f"Buy-and-hold {data['benchmark']['return']:+.2%}" in out and "equal-weight buy-and-hold, no fees" in out
    assert "20130311-NASDAQ-buy-v1" in out


def _no_results(home: Path) -> None:
    shutil.rmtree(home / "results")


def _universe_named(name: str) -> Any:
    """A results file written before ``universe_source``: only the universe's name is recorded."""

    def edit(home: Path) -> None:
        path = home / "results" / "daily" / "2013-02-28.json"
        results = json.loads(path.read_text(encoding="utf-8"))
        results.pop("universe_source", None)
        path.write_text(json.dumps({**results, "universe": name}))

    return edit


@pytest.mark.parametrize(
    ("break_it", "why"),
    [
        (_no_results, "no daily results file"),
        (_universe_named("mine"), "universe 'mine'"),  # a TOML universe: only its name is recorded
        (_universe_named("etf-eu"), "no cached closes"),  # nothing of it was ever fetched
    ],
)
def test_portfolio_without_a_benchmark_says_why_in_one_line_and_shows_the_rest(
    after_demo: Path, tmp_path: Path, break_it: Any, why: str
) -> None:
    home = copy_home(after_demo, tmp_path / "home")
    break_it(home)
    data = invoke_json(home, "portfolio")
    assert data["benchmark"] is None and len(data["pending"]) == 3
    code, out, err = invoke(home, "portfolio")
    assert code == 0 and not err.strip()
    notes = [line for line in out.splitlines() if line.startswith("benchmark unavailable:")]
    assert len(notes) == 1 and why in notes[0]
    assert "Return since start" in out and "pending orders" in out


def test_portfolio_with_the_file_held_by_another_reader_says_the_cache_is_locked(
    after_demo: Path, tmp_path: Path
) -> None:
    home = copy_home(after_demo, tmp_path / "home")
    holder = subprocess.Popen(  # another process reading the file (a chat, say): the cache cannot open it
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
         "print('ready', flush=True); sys.stdin.read()", str(home / "tradeagent.duckdb")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        code, out, _ = invoke(home, "portfolio")
    finally:
        holder.communicate(timeout=30)  # closing its stdin ends it
    assert code == 0 and "Return since start" in out
    assert "benchmark unavailable: cannot open the market cache" in out and "locked by another process" in out


def _csv_universe(folder: Path) -> Path:
    """A TOML universe of two csv instruments (SP500's and NASDAQ's sample bars of 2012), under ``folder``."""
    lines = ['name = "mine"', 'base_currency = "USD"']
    for symbol in ("SP500", "NASDAQ"):
        csv = folder / f"{symbol.lower()}.csv"
        sample_frame(symbol).loc["2012-01-01":"2012-12-31"].rename(columns=str.title).rename_axis("Date").to_csv(csv)
        lines += ["[[instruments]]", f'symbol = "{symbol}"', f'source = "csv:{csv}"', 'currency = "USD"']
    toml = folder / "mine.toml"
    toml.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return toml


def test_portfolio_benchmark_of_a_toml_universe_reloads_it_from_the_recorded_path(tmp_path: Path) -> None:
    home, toml = tmp_path / "home", _csv_universe(tmp_path)
    for day in ("2012-06-01", "2012-06-08"):
        code, _, err = invoke(home, "daily", "--universe", str(toml), "--date", day)
        assert code == 0, err
    assert day_results(home, "2012-06-08")["universe_source"] == str(toml)
    bench = invoke_json(home, "portfolio")["benchmark"]
    assert bench is not None and bench["universe"] == "mine" and bench["symbols"] == ["NASDAQ", "SP500"]
    assert (bench["start"], bench["end"]) == ("2012-06-01", "2012-06-08") and bench["skipped"] == {}
    expected = [sample_frame(s)["close"] for s in ("NASDAQ", "SP500")]
    assert bench["return"] == pytest.approx(sum(c["2012-06-08"] / c["2012-06-01"] - 1 for c in expected) / 2)
    code, out, _ = invoke(home, "portfolio")
    assert code == 0 and "Buy-and-hold" in out and "of mine (NASDAQ, SP500)" in out

    toml.unlink()  # the universe file was moved away since
    assert invoke_json(home, "portfolio")["benchmark"] is None
    code, out, err = invoke(home, "portfolio")
    notes = [line for line in out.splitlines() if line.startswith("benchmark unavailable:")]
    assert code == 0 and not err.strip() and len(notes) == 1
    assert f"the universe file {toml} of the last results file no longer exists" in " ".join(out.split())


def test_portfolio_without_a_ledger_keeps_the_contract(tmp_path: Path) -> None:
    data = invoke_json(tmp_path, "portfolio")
    assert set(data) >= CONTRACT | ADDED
    assert data["positions"] == [] and data["pending"] == [] and data["benchmark"] is None
    assert data["return_since_start"] == 0.0 and data["max_drawdown"] is None


# ------------------------------------------------------------------ the daily summary


def test_daily_summary_shows_the_agents_reason_and_the_untradeable_symbol(traded: tuple[Path, str]) -> None:
    home, out = traded
    order = day_results(home, TRADED_DAY)["approved"][0]
    assert order["symbol"] == "NASDAQ" and order["reason"][:60] in out
    assert "clamped: max_position_weight" in out
    assert "untradeable GOOG: stale: last bar 2013-03-01" in out


def test_daily_summary_shows_kill_switch_cancellations_and_risk_toml_notes(after_demo: Path, tmp_path: Path) -> None:
    home = copy_home(after_demo, tmp_path / "home")
    assert invoke(home, "risk", "halt", "--reason", "earnings week")[0] == 0
    (home / "risk.toml").write_text("[limits]\nmax_position_weight = 0.5\n")
    code, out, err = invoke(home, "daily", "--date", "2013-03-01")
    assert code == 0, err
    assert "cancelled 20130228-GOOG-buy-v1 (GOOG): risk mode HALTED (earnings week)" in out
    assert "risk.toml: max_position_weight" in out
    code, out, _ = invoke(home, "explain", "2013-03-01", "--symbol", "SP500")
    assert code == 0 and "cancelled 20130228-SP500-buy-v1 (SP500): risk mode HALTED" in out and "GOOG" not in out


def test_summary_prints_recorded_text_as_text_and_cuts_long_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    reason = "[bold red]not markup[/] \x1b[2J" + "x" * 200
    results = {
        "date": "2020-01-02", "universe": "u", "llm": "offline-rules", "dry_run": False, "hold": None,
        "nodes": {}, "rejected": [], "placed": ["o1"], "fills": [], "cancelled": [],
        "approved": [{"order_id": "o1", "symbol": "AAA", "side": "buy", "quantity": 1.0, "reason": reason,
                      "clamped": None}],
        "expired": [{"order_id": "o0", "symbol": "BBB", "reason": "expired: no BBB session to fill at"}],
        "data": {"untradeable": {"CCC": ["nan_close"]}, "errors": {"DDD": "no cached bars"}, "notes": []},
        "portfolio": {"base_currency": "USD", "equity": 1.0, "cash": 1.0, "positions": []},
        "risk": {"state": {"mode": "ACTIVE"}, "notes": []}, "timings": {},
    }  # fmt: skip
    render_summary(DailyResult(run_date=date(2020, 1, 2), path=Path("r.json"), results=results))
    out = capsys.readouterr().out
    assert "[bold red]not markup[/] \\x1b[2J" in out and "\x1b" not in out
    shown = "[bold red]not markup[/] \\x1b[2J" + "x" * 48 + "…"  # cut at 80 characters, the escape counted as 4
    assert shown in out and "x" * 49 not in out
    assert "expired o0 (BBB): no BBB session to fill at" in out
    assert "untradeable CCC: nan_close" in out and "data error DDD: no cached bars" in out


# ------------------------------------------------------------------ explain


def test_explain_tells_the_day_node_by_node(traded: tuple[Path, str]) -> None:
    home, _ = traded
    results = day_results(home, TRADED_DAY)
    code, out, _ = invoke(home, "explain", TRADED_DAY)
    assert code == 0
    lines = out.splitlines()
    starts = [next(i for i, line in enumerate(lines) if line.startswith(f"  {n} ")) for n in
              ("analyst", "sentiment", "quant", "risk")]
    assert starts == sorted(starts)
    assert "  sentiment abstained" in out and results["nodes"]["sentiment"]["abstain_reason"] in out
    signal = next(s for s in results["nodes"]["analyst"]["output"]["signals"] if s["symbol"] == "NASDAQ")
    assert f"NASDAQ score {signal['score']:+.2f} conf {signal['confidence']:.2f}: {signal['rationale']}" in out
    target = results["nodes"]["risk"]["output"]["targets"][0]
    assert f"{target['symbol']} target {target['target_weight']:.1%}: {target['rationale']}" in out
    assert "approved buy 0.377291 NASDAQ (20130311-NASDAQ-buy-v1, placed)" in out
    assert "clamped NASDAQ 0.3797 → 0.377291: max_position_weight" in out
    assert "filled buy 2.48627 GOOG" in out and "untradeable GOOG: stale" in out
    assert f"equity {results['portfolio']['equity']:,.2f} USD" in out


def test_explain_symbol_keeps_only_that_symbols_lines(traded: tuple[Path, str]) -> None:
    home, _ = traded
    code, out, _ = invoke(home, "explain", TRADED_DAY, "--symbol", "goog")
    assert code == 0
    assert "NASDAQ" not in out and "SP500" not in out
    assert "nothing on GOOG" in out  # a stale GOOG got no analyst signal
    assert "GOOG target" in out and "untradeable GOOG" in out and "filled buy 2.48627 GOOG" in out


def test_explain_json_is_the_account_cut_to_the_symbol(traded: tuple[Path, str]) -> None:
    home, _ = traded
    full = invoke_json(home, "explain", TRADED_DAY)
    assert [n["node"] for n in full["nodes"]] == ["analyst", "sentiment", "quant", "risk"]
    assert full["status"] == "orders_placed" and full["dry_run"] is False and len(full["fills"]) == 4  # + GOOG's cash-out
    acc = invoke_json(home, "explain", TRADED_DAY, "--symbol", "nasdaq")
    assert acc["symbol"] == "NASDAQ"
    items = [x for n in acc["nodes"] for x in n["signals"] + n["targets"]]
    items += acc["proposed"] + acc["approved"] + acc["clamps"] + acc["fills"] + acc["portfolio"]["positions"]
    assert items and {x["symbol"] for x in items} == {"NASDAQ"}
    assert acc["approved"][0]["placed"] is True
    assert acc["clamps"][0]["from_quantity"] > acc["clamps"][0]["to_quantity"]


def _write_results(home: Path, name: str, results: Mapping[str, Any]) -> None:
    folder = home / "results" / "daily"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(results), encoding="utf-8")


def test_explain_prefers_the_real_file_and_falls_back_to_the_dry_run(tmp_path: Path) -> None:
    _write_results(tmp_path, "2020-01-02.json", {"date": "2020-01-02", "status": "no_orders"})
    _write_results(tmp_path, "2020-01-02.dry-run.json", {"date": "2020-01-02", "status": "dry_run"})
    _write_results(tmp_path, "2020-01-03.dry-run.json", {"date": "2020-01-03", "status": "dry_run"})
    assert invoke_json(tmp_path, "explain", "2020-01-02")["status"] == "no_orders"
    code, out, _ = invoke(tmp_path, "explain", "2020-01-03")
    assert code == 0 and "dry run: no real run on 2020-01-03; this is 2020-01-03.dry-run.json" in out


def test_explain_prints_llm_text_as_text(tmp_path: Path) -> None:
    rationale = "[bold]buy[/bold] [link=http://x]now[/link] \x1b]8;;http://evil\x07"
    _write_results(tmp_path, "2020-01-02.json", {"date": "2020-01-02", "nodes": {"analyst": {
        "status": "ok", "output": {"signals": [{"symbol": "AAA", "score": 0.5, "confidence": 0.5,
                                                "rationale": rationale}]}}}})
    code, out, _ = invoke(tmp_path, "explain", "2020-01-02")
    assert code == 0
    assert "[bold]buy[/bold] [link=http://x]now[/link] \\x1b]8;;http://evil\\x07" in out
    assert "\x1b" not in out and "\x07" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("2013-13-11",), "is not a date"),
        (("2013-03-05",), "no results file for 2013-03-05; the nearest days with results: 2013-02-28 (before), "
                          "2013-03-11 (after)"),
        ((TRADED_DAY, "--symbol", "MSFT"), "MSFT does not appear in the results of 2013-03-11 (symbols there: "
                                           "GOOG, NASDAQ, SP500)"),
    ],
)
def test_explain_bad_input_is_one_line_and_exit_2(traded: tuple[Path, str], args: tuple[str, ...], message: str) -> None:
    home, _ = traded
    code, out, err = invoke(home, "explain", *args)
    assert code == 2 and message in one_error_line(err) and not out.strip()


def test_explain_without_results_or_with_a_broken_file_is_one_line(tmp_path: Path) -> None:
    code, _, err = invoke(tmp_path, "explain", "2020-01-02")
    assert code == 2 and "no daily results under" in one_error_line(err)
    _write_results(tmp_path, "2020-01-02.json", {})
    (tmp_path / "results" / "daily" / "2020-01-02.json").write_text("{not json")
    code, _, err = invoke(tmp_path, "explain", "2020-01-02")
    assert code == 2 and "cannot read" in one_error_line(err)
