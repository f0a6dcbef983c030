"""The attack on the chat (issue 13): each defect found, pinned by a test on the conftest book (2012-03-01 … 07).

Dates it cannot read and periods it does not know are "I don't know" with the forms it understands; a symbol
in a P&L or guard question is honoured or refused, never dropped; capitalised words are not tickers; the
delisting cash-out is explained as one; IPv6 loopback serves; uploads are refused; /ask is the chat's markdown.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
from gradio_client import Client

from agent.chat.app import EXAMPLES
from agent.chat.dates import find_period
from agent.chat.offline import answer
from agent.chat.reader import Home
from agent.chat.text import plain
from agent.cli_chat import bare_host, url_host
from agent.settings import Settings
from tests.agent.chat.conftest import copy_home, run_cli, serve
from tests.agent.chat.test_offline import ask, ledger_facts
from tests.fakes import ctrl_c_as_in_a_terminal

WEDNESDAY = date(2012, 3, 7)
FORMS_HINT = "I understand a day as 2013-03-05"


# ------------------------------------------------------------------ 1. dates it cannot read


def test_a_date_it_cannot_read_is_i_dont_know_not_another_day(book_home: Path) -> None:
    for question, bad in (("why did you buy GOOG on 03/05/2012?", "03/05/2012"),
                          ("why did you buy GOOG on 2012-02-30?", "2012-02-30")):
        text = ask(book_home, question)
        assert f"I don't know which day you mean by {bad}" in text and FORMS_HINT in text, text
        assert "decision:" not in text and "results/daily/" not in text  # no other day's account


# ------------------------------------------------------------------ 2. periods it does not know


def test_periods_are_recognised_or_refused_never_the_whole_book(book_home: Path) -> None:
    assert "no equity mark in 2011 (2011-01-01 to 2011-12-31)" in ask(book_home, "what is my P&L in 2011?")
    text = ask(book_home, "what is my P&L over the last 2 months?")
    assert "P&L over the last 2 month(s) (2012-01-08 to 2012-03-07)" in text
    curve, _, _, _ = ledger_facts(book_home)
    marks = dict(curve)
    text = ask(book_home, "what is my P&L on March 5?")
    change = marks[date(2012, 3, 5)] - marks[date(2012, 3, 2)]
    assert f"P&L on 2012-03-05: {change:+,.2f} USD" in text
    for question in ("what is my P&L in the first quarter?", "my P&L over the fiscal year?"):
        text = ask(book_home, question)
        assert "I don't know which period you mean" in text and FORMS_HINT in text and "since the start" not in text
    text = ask(book_home, "what trades did I make in 2011?")
    assert "No orders or fills in 2011" in text and "P&L" not in text
    assert "P&L since the start" in ask(book_home, "how much did I make?")


# ------------------------------------------------------------------ 3. a symbol in a P&L or guard question


def test_a_symbol_in_a_pnl_or_guard_question_is_honoured_or_refused(book_home: Path) -> None:
    text = ask(book_home, "what is my P&L on GOOG this month?")
    assert "I can only answer P&L for the whole book, not for GOOG alone" in text and "P&L this month" not in text
    assert "I don't know: the book has no record of AAPL" in ask(book_home, "P&L on AAPL")
    assert "no record of AAPL" in ask(book_home, "which orders did the guard reject for AAPL last week?")
    _, _, guard, _ = ledger_facts(book_home)
    week = [r for r in guard if date(2012, 2, 27) <= r["run_date"] <= date(2012, 3, 4)]  # type: ignore[operator]

    def symbol_of(row: dict[str, object]) -> str:  # a clamp records only its order id (YYYYMMDD-SYM-side-…)
        return str(row["symbol"] or str(row["order_id"]).split("-")[1])

    assert week  # the book has some, or the test would prove nothing
    sym, kind = symbol_of(week[0]), str(week[0]["kind"])
    verb, noun = ("reject", "rejections") if kind == "rejection" else ("clamp", "clamps")
    text = ask(book_home, f"which orders did the guard {verb} for {sym} last week?")
    rows = [line for line in text.splitlines() if line.startswith("- ")]
    expected = [r for r in week if r["kind"] == kind and symbol_of(r) == sym]
    assert f"{noun} for {sym} last week" in text and len(rows) == len(expected) > 0, text
    assert all(f"{'rejected' if kind == 'rejection' else 'clamped'} {sym}" in line for line in rows)


# ------------------------------------------------------------------ 4. IPv6 loopback


def test_ipv6_hosts_are_bracketed_for_the_url_and_the_server() -> None:
    assert bare_host("[::1]") == bare_host(" ::1 ") == "::1" and url_host("::1") == "[::1]"
    assert url_host("127.0.0.1") == "127.0.0.1"


def test_chat_serves_on_ipv6_loopback(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = int(s.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEAGENT_", "OPENAI_"))}
    env["TRADEAGENT_HOME"] = str(tmp_path / "fresh")
    proc = subprocess.Popen([sys.executable, "-m", "agent", "chat", "--host", "[::1]", "--port", str(port)], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrl_c_as_in_a_terminal)
    try:
        assert proc.stdout is not None
        assert f"tradeagent chat on http://[::1]:{port}/" in proc.stdout.readline()
        deadline = time.monotonic() + 60
        while True:
            try:
                client = Client(f"http://[::1]:{port}/", verbose=False)
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.3)
        assert "There is no paper book in this home yet" in client.predict("what do I hold?", api_name="/ask")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert "InvalidURL" not in err and "Traceback" not in err


# ------------------------------------------------------------------ 5. the delisting cash-out


def test_a_delisting_cash_out_is_explained_as_one(book_home: Path, tmp_path: Path) -> None:
    home = copy_home(book_home, tmp_path / "home")
    path = home / "results" / "daily" / "2012-03-06.json"
    results = json.loads(path.read_text())
    reason = "delisted: no GOOG bar since 2012-02-28 (5+ sessions); closed at its last close 600.5"
    results["delisted"] = [{"symbol": "GOOG", "quantity": 2.0, "price": 600.5, "last_bar": "2012-02-28",
                            "reason": reason}]
    results["fills"] = [f for f in results.get("fills", []) if f.get("symbol") != "GOOG"] + [
        {"order_id": "20120306-GOOG-sell-delisting", "symbol": "GOOG", "side": "sell", "quantity": 2.0,
         "price": 600.5, "commission": 0.0, "slippage": 0.0, "fill_date": "2012-03-06"}]
    results["approved"] = [o for o in results.get("approved", []) if o.get("symbol") != "GOOG"]
    results["rejected"] = [{"symbol": "GOOG", "code": "cooldown", "detail": "last order in GOOG on 2012-03-06",
                            "raw": "{'quantity': 2.5, 'side': 'buy', 'symbol': 'GOOG'}"}]
    path.write_text(json.dumps(results))
    text = ask(home, "why did you sell GOOG on 2012-03-06?")
    assert "forced close (delisting cash-out)" in text and reason in text, text
    assert "filled at this day's open: sell 2 GOOG" not in text and "cooldown" not in text  # the buy's rejection
    code, out, err = run_cli(home, "explain", "2012-03-06", "--symbol", "GOOG")
    assert code == 0, err
    assert "delisted sell 2 GOOG" in out and reason in " ".join(out.split())


# ------------------------------------------------------------------ 6. capitalised words are not tickers


def test_capitalised_english_words_are_not_tickers(book_home: Path) -> None:
    text = ask(book_home, "what do I hold NOW?")
    assert "no record" not in text and "Portfolio at the last mark" in text
    assert "no record of EU" not in ask(book_home, "list my trades in the EU session")
    assert "no record of MSFT" in ask(book_home, "why did you buy MSFT on 2012-03-05?")  # a ticker in its slot


# ------------------------------------------------------------------ 7. past week, yesterday, labels


def test_past_week_is_the_last_seven_days_and_yesterday_the_previous_session(book_home: Path) -> None:
    for phrase in ("past week", "past 7 days", "last 7 days"):
        period = find_period(f"trades in the {phrase}", WEDNESDAY)
        assert period is not None and (period.start, period.end) == (date(2012, 3, 1), WEDNESDAY), phrase
    last_week = find_period("last week", WEDNESDAY)
    assert last_week is not None and (last_week.start, last_week.end) == (date(2012, 2, 27), date(2012, 3, 4))
    monday = date(2012, 3, 5)
    yesterday = find_period("yesterday", monday, [date(2012, 3, 1), date(2012, 3, 2), monday])
    assert yesterday is not None and yesterday.start == date(2012, 3, 2)  # the Friday session, not Sunday
    no_sessions = find_period("yesterday", monday)
    assert no_sessions is not None and no_sessions.start == date(2012, 3, 2)
    assert "yesterday (2012-03-06, the session before 2012-03-07)" in ask(book_home, "trades yesterday")
    text = ask(book_home, "which orders did the guard reject on Friday?")
    assert "rejections on Friday 2012-03-02" in text and " in on " not in text
    text = ask(book_home, "P&L since 2012-03-20")
    assert "no equity mark since 2012-03-20 (after the book's last session, 2012-03-07)" in text
    assert " in since " not in text


# ------------------------------------------------------------------ 8. /ask's contract, 9. uploads refused


def test_ask_returns_the_chats_escaped_markdown_and_plain_undoes_it(book_home: Path, tmp_path: Path) -> None:
    home = copy_home(book_home, tmp_path / "home")
    path = home / "results" / "daily" / "2012-03-01.json"
    results = json.loads(path.read_text())
    evil = "<img src=x onerror=alert(1)> [click](javascript:alert(1)) me@evil.example"
    results["nodes"]["analyst"]["output"]["signals"][0]["rationale"] = evil
    path.write_text(json.dumps(results))
    question = "why did you buy GOOG on 2012-03-01?"
    expected = answer(question, Home(Settings(home=home))).text
    with serve(home) as url:
        got = Client(url, verbose=False).predict(question, api_name="/ask")
        upload = httpx.post(url.rstrip("/") + "/gradio_api/upload", headers={"Origin": "http://evil.example"},
                            files={"files": ("big.bin", b"x" * 200_000)}, timeout=10)
        empty = httpx.post(url.rstrip("/") + "/gradio_api/upload", files={"files": ("e.bin", b"")}, timeout=10)
    assert got == expected  # the same markdown the chat shows
    assert "<img" not in got and "&lt;img" in got and "\\[click\\]" in got
    assert evil in plain(got)
    assert upload.status_code == 403 and empty.status_code == 403
    assert "big.bin" not in upload.text and "e.bin" not in empty.text


# ------------------------------------------------------------------ minor


def test_the_first_example_matches_a_demo_book_and_memory_questions_go_to_memory(tmp_path: Path,
                                                                                  book_home: Path) -> None:
    assert "2013-02-28" in EXAMPLES[0]  # `tradeagent demo` decides on the demo universe's last common session
    text = ask(book_home, "similar past decisions for GOOG")
    assert "decision:" not in text and ("memory" in text.lower())
    fresh = ask(tmp_path / "fresh", "risk status")
    assert "Sources: risk_state.json" not in fresh and "no risk_state.json yet" in fresh
