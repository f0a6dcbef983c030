"""The real Gradio app on loopback, driven through gradio_client; the dashboard tabs' data on a book and on none.

Expected figures are read from the ledger and the results files here, independently of the chat's readers.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from agent.chat import views
from agent.chat.reader import Home
from agent.chat.text import plain
from agent.settings import Settings
from portfolio.ledger import Ledger
from tests.agent.chat.conftest import copy_home, free_port, run_cli, serve


def test_the_three_questions_get_correct_answers_through_gradio_client(book_home: Path, served_book: str) -> None:
    ledger = Ledger.open_existing(book_home / "tradeagent.duckdb")
    assert ledger is not None
    try:
        orders, curve, guard, cash = ledger.orders(), ledger.equity_curve(), ledger.guard_log(), ledger.starting_cash
    finally:
        ledger.close()
    client = Client(served_book, verbose=False)

    buy = next(o for o in orders if o.symbol == "GOOG" and o.side == "buy")
    why = plain(client.predict(f"why did you buy GOOG on {buy.run_date}?", api_name="/ask"))
    assert why.startswith("*Offline mode")
    assert f"buy {buy.quantity:g} GOOG" in why and buy.reason in why and f"results/daily/{buy.run_date}.json" in why

    last_day, last_value = curve[-1]
    before = [v for d, v in curve if d < last_day.replace(day=1)]
    change = last_value - (before[-1] if before else cash)
    pnl = plain(client.predict("what is my P&L this month?", api_name="/ask"))
    assert f"{change:+,.2f} USD" in pnl and "ledger pf_equity" in pnl

    expected = {(r["run_date"].isoformat(), r["symbol"], r["code"]) for r in guard
                if r["kind"] == "rejection" and date(2012, 2, 27) <= r["run_date"] <= date(2012, 3, 4)}
    rejected = plain(client.predict("which orders did the guard reject last week?", api_name="/ask"))
    assert expected and set(re.findall(r"^- (\S+) · rejected (\S+): `(\w+)`", rejected, re.M)) == expected


def test_the_api_exposes_only_the_read_only_ask_endpoint(served_book: str) -> None:
    info = Client(served_book, verbose=False).view_api(print_info=False, return_format="dict")
    assert set(info["named_endpoints"]) == {"/ask"} and not info["unnamed_endpoints"]


def test_an_empty_question_and_a_question_to_act_are_answered_without_acting(served_book: str) -> None:
    client = Client(served_book, verbose=False)
    assert "Ask a question about the book" in client.predict("   ", api_name="/ask")
    assert "the chat is read-only" in client.predict("halt trading", api_name="/ask")


def test_a_login_is_required_when_auth_is_given(book_home: Path) -> None:
    from agent.chat.app import build_app, launch

    home = Home(Settings(home=book_home))
    app = build_app(home, lambda q: "pong", "offline")
    port = free_port()
    launch(app, "127.0.0.1", port, ("ann", "s3cret-pass"), [], block=False)
    try:
        url = f"http://127.0.0.1:{port}/"
        assert httpx.get(f"{url}config", timeout=10).status_code in (401, 403)
        with pytest.raises(Exception):  # noqa: B017  (gradio_client raises its own error types for a refused login)
            Client(url, verbose=False, auth=("ann", "wrong"))
        assert Client(url, verbose=False, auth=("ann", "s3cret-pass")).predict("ping", api_name="/ask") == "pong"
    finally:
        app.close()


# ------------------------------------------------------------------ the dashboard's data


def test_each_tab_reads_the_book(book: Home, book_home: Path) -> None:
    status, fig = views.equity_tab(book)
    assert "Equity" in status and fig is not None and len(fig.data) >= 2  # equity and drawdown at least
    status, positions, pending = views.positions_tab(book)
    assert set(positions["symbol"]) and abs(positions["weight"].sum()) < 1.0 and len(pending) >= 1
    status, orders, fills = views.trades_tab(book)
    assert len(orders) >= len(fills) >= 1 and "ledger pf_orders" in status
    status, nodes, stages = views.day_tab(book)
    last = json.loads((book_home / "results" / "daily" / "2012-03-07.json").read_text())
    assert "2012-03-07" in status and set(nodes["node"]) == set(last["nodes"])
    assert set(stages["stage"]) >= {"proposed", "rejected"}
    status, nodes, _ = views.day_tab(book, "2012-03-01")
    assert "results/daily/2012-03-01.json" in status and len(nodes) > 0
    status, guard = views.guard_tab(book)
    assert "rejection" in set(guard["kind"]) and "pf_guard_log" in status
    status, alerts = views.alerts_tab(book)
    assert len(alerts) >= 5 and "alert_outbox" in status  # one summary a day at least
    status, metrics = views.evals_tab(book)
    assert "No eval reports" in status and metrics.empty


def test_a_tab_reads_live_data_not_a_cached_copy(book_home: Path, tmp_path: Path) -> None:
    home = copy_home(book_home, tmp_path / "home")
    reader = Home(Settings(home=home))
    assert "2012-03-07" in views.day_tab(reader)[0]
    code, _, err = run_cli(home, "daily", "--universe", "demo", "--date", "2012-03-08")
    assert code == 0, err
    assert "2012-03-08" in views.day_tab(reader)[0]  # the same reader: nothing kept from the first call


def test_every_tab_has_a_helpful_empty_state_on_a_fresh_home(tmp_path: Path) -> None:
    reader = Home(Settings(home=tmp_path / "fresh"))
    for tab in (views.equity_tab, views.positions_tab, views.trades_tab, views.day_tab, views.guard_tab,
                views.alerts_tab):
        status = tab(reader)[0]
        assert "No paper book yet" in status and "tradeagent demo" in status, tab.__name__
    assert "No eval reports" in views.evals_tab(reader)[0]
    assert not (tmp_path / "fresh").exists()  # reading created nothing


def test_a_tab_failure_is_a_status_line_not_an_exception(book_home: Path, tmp_path: Path) -> None:
    home = copy_home(book_home, tmp_path / "home")
    (home / "tradeagent.duckdb").write_text("not a database")
    status, fig = views.equity_tab(Home(Settings(home=home)))
    assert fig is None and "cannot show this tab" in status and "not a tradeagent DuckDB file" in plain(status)


def test_the_evals_tab_lists_a_report_and_the_app_serves_its_html(book_home: Path, tmp_path: Path) -> None:
    home = copy_home(book_home, tmp_path / "home")
    out = home / "evals" / "demo-2012q1"
    out.mkdir(parents=True)
    report = {"config": {"universe": "demo", "start": "2012-01-03", "end": "2012-03-30"},
              "policies": {"buyhold": {"metrics": {"total_return": 0.12, "sharpe": 2.1, "max_drawdown": -0.05,
                                                   "trades": 3}}}}
    (out / "report.json").write_text(json.dumps(report))
    (out / "report.html").write_text("<html><body>eval report <b>ok</b></body></html>")
    status, metrics = views.evals_tab(Home(Settings(home=home)))
    assert list(metrics["policy"]) == ["buyhold"] and metrics["sharpe"].iloc[0] == 2.1
    assert metrics["total_return"].iloc[0] == "+12.00%"
    link = re.search(r"\]\((/gradio_api/file=[^)]+)\)", status)
    assert link is not None
    with serve(home) as url:
        page = httpx.get(url.rstrip("/") + link.group(1), timeout=10)
        assert page.status_code == 200 and "eval report" in page.text
        secret = httpx.get(url.rstrip("/") + "/gradio_api/file=" + str((home / "risk_state.json").resolve()), timeout=10)
        assert secret.status_code != 200  # only the evals folder is served
