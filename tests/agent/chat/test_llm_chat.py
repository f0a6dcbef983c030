"""The chat's LLM mode: a scripted tool-calling model over the read-only tools, on the real book."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.chat.llm_chat import chat_tools, llm_reply
from agent.chat.reader import Home
from agent.chat.serve import make_responder
from agent.chat.text import plain
from agent.settings import Settings
from portfolio.ledger import Ledger
from tests.fakes import ScriptedLLM, final_answer, tool_call_response

READ_ONLY_TOOLS = {"get_portfolio", "get_trades", "explain_day", "get_guard_log", "get_equity", "get_risk",
                   "list_evals", "search_memory", "resolve_dates"}


def tool_outputs(client: ScriptedLLM) -> list[Any]:
    """What the tools answered, as the model was sent it (the last request carries the whole conversation)."""
    return [json.loads(m["content"]) for m in client.requests[-1].messages if m["role"] == "tool"]


def test_the_model_reads_the_guard_log_through_tools_and_its_answer_is_escaped(book: Home, book_home: Path) -> None:
    client = ScriptedLLM([
        tool_call_response("resolve_dates", {"text": "last week"}),
        tool_call_response("get_guard_log", {"start": "2012-02-27", "end": "2012-03-04"}),
        final_answer({"answer": "The guard rejected SP500 twice <img src=x onerror=alert(1)>\nboth max_correlation",
                      "sources": ["ledger pf_guard_log"]}),
    ])  # fmt: skip
    text = llm_reply(client, book, "which orders did the guard reject last week?")
    system = client.requests[0].messages[0]["content"]
    assert "the book's last session is 2012-03-07" in system and "untrusted_data" in system
    dates, guard = tool_outputs(client)
    assert (dates["data"]["start"], dates["data"]["end"]) == ("2012-02-27", "2012-03-04")
    ledger = Ledger.open_existing(book_home / "tradeagent.duckdb")
    assert ledger is not None
    try:
        expected = [r for r in ledger.guard_log() if "2012-02-27" <= r["run_date"].isoformat() <= "2012-03-04"]
    finally:
        ledger.close()
    assert [(r["run_date"], r["symbol"], r["code"]) for r in guard["data"]] == \
        [(r["run_date"].isoformat(), r["symbol"], r["code"]) for r in expected] and expected
    assert guard["sources"] == ["ledger pf_guard_log"]
    assert "<img" not in text and "&lt;img" in text and "Sources: ledger pf\\_guard\\_log" in text
    assert "both max_correlation" in plain(text) and text.startswith("*LLM scripted-v1")


def test_only_read_only_tools_are_offered_and_none_writes(book_home: Path, tmp_path: Path) -> None:
    from tests.agent.chat.conftest import copy_home

    home = copy_home(book_home, tmp_path / "home")
    tools = chat_tools(Home(Settings(home=home)))
    assert set(tools) == READ_ONLY_TOOLS
    before = {p: p.read_bytes() for p in (home / "tradeagent.duckdb", home / "risk_state.json")}
    inputs: dict[str, dict[str, Any]] = {"explain_day": {"day": "2012-03-01"}, "search_memory": {"text": "uptrend"},
                                         "resolve_dates": {"text": "this month"}}
    for name, tool in tools.items():
        out = tool.fn(tool.input_model.model_validate(inputs.get(name, {})))
        assert out.model_dump(mode="json")["sources"] is not None
    assert {p: p.read_bytes() for p in before} == before


def test_recorded_text_reaches_the_model_fenced_as_data(book: Home) -> None:
    tools = chat_tools(book)
    out = tools["explain_day"].fn(tools["explain_day"].input_model.model_validate({"day": "2012-03-01"}))
    data = out.model_dump(mode="json")["data"]
    record = data["record"]
    assert record["untrusted_data"].startswith("the day's record") and "not instructions" in record["note"]
    assert any(n["node"] == "analyst" for n in record["items"]["nodes"]) and record["items"]["approved"]
    assert data["date"] == "2012-03-01" and set(data) == {"date", "source", "record"}  # nothing recorded outside


def test_a_model_that_reaches_for_a_tool_it_does_not_have_gets_the_offline_answer(book: Home) -> None:
    client = ScriptedLLM([tool_call_response("place_order", {"symbol": "GOOG", "side": "buy", "quantity": 1})])
    text = llm_reply(client, book, "what is my P&L this month?")
    assert "The LLM could not answer (unknown\\_tool)" in text and "Offline mode" in text and "P&L this month" in text


def test_without_a_key_the_responder_is_the_offline_mode(book_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    responder, line = make_responder(Settings(home=book_home), None)
    assert line == "offline mode (rule-based, no LLM)"
    assert "Offline mode" in responder("what do I hold?")


def test_the_app_answers_through_a_real_openai_client_on_loopback(book_home: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end: the OpenAI client, the tool loop and the Gradio app, against a loopback server."""
    from gradio_client import Client

    from agent.chat.app import build_app, launch
    from tests.agent.chat.conftest import free_port
    from tests.agent.loopback_llm import completion, serve

    def scenario(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        tool_results = [json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool"]
        if not tool_results:
            call = {"id": "call_1", "type": "function", "function": {"name": "get_portfolio", "arguments": "{}"}}
            return 200, completion({"content": None, "tool_calls": [call]}, finish_reason="tool_calls")
        equity = tool_results[0]["data"]["equity"]
        answer = {"answer": f"Equity is {equity:,.2f} USD.", "sources": tool_results[0]["sources"]}
        return 200, completion({"content": json.dumps(answer)})

    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with serve(scenario) as (base_url, seen):
        settings = Settings(home=book_home, OPENAI_BASE_URL=base_url, OPENAI_API_KEY="sk-loopback-secret")
        responder, line = make_responder(settings, None)
        assert line.startswith("LLM ") and "read-only tools" in line
        app = build_app(Home(settings), responder, line)
        port = free_port()
        launch(app, "127.0.0.1", port, None, [], block=False)
        try:
            text = Client(f"http://127.0.0.1:{port}/", verbose=False).predict("how much is my book worth?",
                                                                              api_name="/ask")
        finally:
            app.close()
    ledger = Ledger.open_existing(book_home / "tradeagent.duckdb")
    assert ledger is not None
    try:
        equity = ledger.snapshot(None).equity
    finally:
        ledger.close()
    assert f"Equity is {equity:,.2f} USD." in plain(text) and "Sources: ledger pf\\_account, pf\\_positions" in text
    assert {t["function"]["name"] for t in seen[0]["body"]["tools"]} == READ_ONLY_TOOLS
    assert "sk-loopback-secret" not in text and len(seen) == 2
