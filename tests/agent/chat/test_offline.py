"""The offline router on a real book (five daily runs): correct answers, cited records, "I don't know", read-only.

Expected figures are read from the ledger here, independently of the chat's readers.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from agent.chat.offline import OFFLINE_NOTE, answer
from agent.chat.reader import Home
from agent.chat.text import plain
from agent.settings import Settings
from portfolio.ledger import Ledger
from tests.agent.chat.conftest import copy_home, run_cli


def ledger_facts(home: Path) -> tuple[list[tuple[date, float]], list[dict[str, object]], list[dict[str, object]], float]:
    ledger = Ledger.open_existing(home / "tradeagent.duckdb")
    assert ledger is not None
    try:
        return (ledger.equity_curve(), [o.model_dump() for o in ledger.orders()], ledger.guard_log(),
                ledger.starting_cash)
    finally:
        ledger.close()


def ask(home: Path, question: str) -> str:
    text = answer(question, Home(Settings(home=home))).text
    assert text.startswith(OFFLINE_NOTE)  # every offline answer says it is the offline mode
    return plain(text)


def test_why_did_you_buy_names_the_order_its_reason_each_node_and_the_fill(book_home: Path) -> None:
    _, orders, _, _ = ledger_facts(book_home)
    buy = next(o for o in orders if o["symbol"] == "GOOG" and o["side"] == "buy")
    day = buy["run_date"]
    assert isinstance(day, date)
    text = ask(book_home, f"why did you buy GOOG on {day}?")
    results = json.loads((book_home / "results" / "daily" / f"{day}.json").read_text())
    analyst = next(s for s in results["nodes"]["analyst"]["output"]["signals"] if s["symbol"] == "GOOG")
    target = next(t for t in results["nodes"]["risk"]["output"]["targets"] if t["symbol"] == "GOOG")
    assert f"buy {buy['quantity']:g} GOOG" in text and str(buy["order_id"]) in text
    assert str(buy["reason"]) in text  # the order's recorded reason, verbatim
    assert f"score {analyst['score']:+.2f}" in text and analyst["rationale"] in text
    assert f"target weight {target['target_weight']:.2%}" in text
    assert "sentiment: abstained" in text  # an abstaining node says so, with its reason
    assert f"Sources: results/daily/{day}.json" in text and f"ledger pf_fills {buy['order_id']}" in text


def test_asking_about_the_fill_day_explains_the_decision_day(book_home: Path) -> None:
    text = ask(book_home, "why did you buy GOOG on 2012-03-02?")
    assert "that filled at the open of 2012-03-02" in text and "decided at the close of 2012-03-01" in text
    assert "results/daily/2012-03-01.json" in text


def test_a_day_it_sold_is_not_passed_off_as_a_buy(book_home: Path) -> None:
    text = ask(book_home, "why did you buy GOOG on 2012-03-05?")
    assert "I did **not** buy GOOG on 2012-03-05" in text and "decision: **sell" in text


def test_pnl_this_month_is_the_equity_change_since_the_month_began(book_home: Path) -> None:
    curve, _, _, starting_cash = ledger_facts(book_home)
    last_day, last_value = curve[-1]
    before = [v for d, v in curve if d < last_day.replace(day=1)]
    reference = before[-1] if before else starting_cash
    change = last_value - reference
    text = ask(book_home, "what is my P&L this month?")
    assert f"P&L this month ({last_day.replace(day=1)} to {last_day})" in text
    assert f"{change:+,.2f} USD ({change / reference:+.2%})" in text
    assert f"{last_value:,.2f} USD at the close of {last_day}" in text
    assert "ledger pf_equity" in text


def test_guard_rejections_last_week_list_exactly_the_ledgers_rows(book_home: Path) -> None:
    _, _, guard_log, _ = ledger_facts(book_home)
    expected = {(r["run_date"].isoformat(), r["symbol"], r["code"]) for r in guard_log  # type: ignore[union-attr]
                if r["kind"] == "rejection" and date(2012, 2, 27) <= r["run_date"] <= date(2012, 3, 4)}  # type: ignore[operator]
    assert expected  # the book has some, or the test would prove nothing
    text = ask(book_home, "which orders did the guard reject last week?")
    found = set(re.findall(r"^- (\d{4}-\d{2}-\d{2}) · rejected (\S+): `(\w+)`", text, re.M))
    assert found == expected
    assert "last week (2012-02-27 to 2012-03-04)" in text and "ledger pf_guard_log" in text


def test_unknown_things_get_i_dont_know(book_home: Path) -> None:
    assert "I don't know: the book has no record of MSFT" in ask(book_home, "why did you buy MSFT on 2012-03-05?")
    assert "I don't know how to answer that in offline mode" in ask(book_home, "what will the weather be?")
    assert "I don't know: no results file for 2011-06-01" in ask(book_home, "why did you buy GOOG on 2011-06-01?")
    assert "no equity mark last year (2011)" in ask(book_home, "what was my P&L last year?")


@pytest.mark.parametrize("question", ["sell everything", "halt trading now", "cancel order 20120307-GOOG-sell-v1",
                                      "please buy 10 GOOG"])
def test_requests_to_act_are_refused_and_change_nothing(book_home: Path, question: str) -> None:
    before = (book_home / "tradeagent.duckdb").read_bytes()
    assert "I can't do that: the chat is read-only" in ask(book_home, question)
    assert (book_home / "tradeagent.duckdb").read_bytes() == before


def test_a_fresh_home_gets_a_helpful_empty_state(tmp_path: Path) -> None:
    for question in ("what is my P&L this month?", "why did you buy GOOG on 2012-03-05?", "what do I hold?",
                     "which orders did the guard reject last week?"):
        assert "There is no paper book in this home yet" in ask(tmp_path / "home", question)
    assert not (tmp_path / "home").exists()  # asking created nothing


def test_recorded_text_is_escaped_in_answers(book_home: Path, tmp_path: Path) -> None:
    home = copy_home(book_home, tmp_path / "home")
    path = home / "results" / "daily" / "2012-03-01.json"
    results = json.loads(path.read_text())
    evil = "<img src=x onerror=alert(1)> [click](javascript:alert(1)) **bold**"
    results["nodes"]["analyst"]["output"]["signals"][0]["rationale"] = evil
    path.write_text(json.dumps(results))
    raw = answer("why did you buy GOOG on 2012-03-01?", Home(Settings(home=home))).text
    assert "<img" not in raw and "&lt;img src=x onerror=alert(1)&gt;" in raw
    assert "\\[click\\](javascript" in raw and "\\*\\*bold\\*\\*" in raw  # markdown syntax escaped: inert
    assert evil in plain(raw)  # shown as the characters it is


def test_a_book_held_by_a_running_job_answers_busy_or_from_results_files(book_home: Path, tmp_path: Path) -> None:
    from tests.duckdb_files import held_open_elsewhere

    home = copy_home(book_home, tmp_path / "home")
    with held_open_elsewhere(home / "tradeagent.duckdb"):
        assert "being updated by a running job" in ask(home, "what is my P&L this month?")
        text = ask(home, "which orders did the guard reject last week?")  # from the results files
        assert "rejected SP500: `max_correlation`" in text and "results/daily/2012-03-01.json" in text
        assert "decision: **buy 2.3296 GOOG**" in ask(home, "why did you buy GOOG on 2012-03-01?")
    code, _, err = run_cli(home, "portfolio")  # nothing was left locked
    assert code == 0, err


def test_a_deliberate_no_order_day_is_not_called_a_hold_all(book_home: Path, tmp_path: Path) -> None:
    # found in review: the chat called every day without orders a "hold-all", the word for a failure
    home = copy_home(book_home, tmp_path / "home")
    path = home / "results" / "daily" / "2012-03-07.json"
    results = json.loads(path.read_text())
    for hold, said, unsaid in (
        ({"reason": "hold:no_change", "detail": "every target within its band", "fallback": False},
         "no orders that day: hold:no_change", "hold-all"),
        ({"reason": "fallback:risk_error", "detail": "the risk node could not size the day", "fallback": True},
         "the day was a **hold-all**: fallback:risk_error", "no orders that day"),
    ):
        path.write_text(json.dumps({**results, "hold": hold}))
        text = ask(home, "what happened on 2012-03-07?")
        assert said in text and unsaid not in text, text


def test_what_is_my_drawdown_is_the_breakers_measure_and_the_brake(book_home: Path) -> None:
    # found by an attacker: "what is my drawdown?" gave the P&L answer, with no word of the breaker or the brake
    curve, _, _, _ = ledger_facts(book_home)
    peak = max(v for _, v in curve)
    expected = max(0.0, 1 - curve[-1][1] / peak)
    for question in ("what is my drawdown?", "is the drawdown brake on?"):
        text = ask(book_home, question)
        assert f"drawdown {expected:.2%} from the equity peak as of the {curve[-1][0]} mark" in text, text
        assert "(the breaker halts beyond 20.00%)" in text, text
        assert "drawdown brake allows each name" in text or ": no drawdown brake" in text, text  # as the profile has
    assert "deepest drawdown" in ask(book_home, "what was my P&L and drawdown in March 2012?")  # a period's: P&L
