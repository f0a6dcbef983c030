"""The daily graph end to end on the demo universe, with a scripted LLM standing in for the model."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

import agent.nodes as nodes
from agent.cli_common import UserError
from agent.daily import run_daily
from agent.errors import LLMError
from agent.graph import topology
from agent.models import AnalystReport, RiskPlan, SymbolSignal, TargetWeight
from agent.settings import Settings
from portfolio.ledger import Ledger
from portfolio.models import RiskState
from portfolio.risk import RiskStateStore
from tests.fakes import ScriptedLLM, final_answer, tool_call_response

DAY = date(2012, 6, 1)  # a Friday; the next demo session is Monday 2012-06-04
NEXT = date(2012, 6, 4)
SNAPSHOT = Path(__file__).resolve().parents[1] / "data" / "graph_topology.mmd"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path)


def analyst_says(**scores: float) -> object:
    return final_answer(
        AnalystReport(
            signals=[SymbolSignal(symbol=s, score=v, confidence=0.8, rationale="scripted") for s, v in scores.items()]
        )
    )


def risk_targets(**weights: float) -> object:
    return final_answer(
        RiskPlan(targets=[TargetWeight(symbol=s, target_weight=w, rationale="scripted") for s, w in weights.items()])
    )


def ledger_orders(settings: Settings) -> list:
    ledger = Ledger(settings.db_path, base_currency="USD", starting_cash=10_000.0)
    try:
        return ledger.orders()
    finally:
        ledger.close()


def guard_log(settings: Settings) -> list[dict]:
    ledger = Ledger(settings.db_path, base_currency="USD", starting_cash=10_000.0)
    try:
        return ledger.guard_log()
    finally:
        ledger.close()


def test_the_record_node_logs_every_rejection_and_clamp_in_the_ledger(settings: Settings) -> None:
    llm = ScriptedLLM([analyst_says(SP500=0.9), risk_targets(SP500=1.0, NOPE=0.1)])
    r = run_daily(settings, universe="demo", run_date=DAY, client=llm).results
    assert r["clamps"] and r["rejected"]
    logged = {(row["kind"], row["code"]) for row in guard_log(settings)}
    assert ("clamp", r["clamps"][0]["code"]) in logged and ("rejection", r["rejected"][0]["code"]) in logged


def test_the_graph_topology_matches_its_snapshot() -> None:
    assert topology() == SNAPSHOT.read_text(encoding="utf-8")


def test_scripted_answers_become_guarded_orders_with_one_call_per_node(settings: Settings) -> None:
    llm = ScriptedLLM([analyst_says(SP500=0.8, NASDAQ=-0.2), risk_targets(SP500=0.15, NASDAQ=0.0)])
    result = run_daily(settings, universe="demo", run_date=DAY, client=llm)
    r = result.results
    assert r["status"] == "orders_placed"
    assert [(o["symbol"], o["side"]) for o in r["approved"]] == [("SP500", "buy")]
    order = r["approved"][0]
    assert order["notional_base"] == pytest.approx(0.15 * r["portfolio"]["equity"], rel=0.01)
    assert r["placed"] == [order["order_id"]]
    assert llm.calls == 2 and r["llm_calls"] == 2
    offered = {req.node: {t.name for t in req.tools} for req in llm.requests}
    assert offered == {"analyst": {"get_bars", "get_indicators", "search_memory"},  # the daily run's memory
                       "risk": {"get_portfolio", "get_risk_limits", "search_memory"}}
    assert r["nodes"]["sentiment"]["status"] == "abstained" and r["nodes"]["sentiment"]["abstain_reason"] == "no_news"
    quant = r["nodes"]["quant"]  # no model trained before DAY in this home
    assert quant["status"] == "abstained" and quant["abstain_reason"] == "no_models"
    assert "no model usable on 2012-06-01" in quant["abstain_detail"]
    assert r["prompts"]["analyst"]["sha256"] == r["nodes"]["analyst"]["prompt_hash"]
    assert result.path == settings.daily_results_dir / "2012-06-01.json" and result.path.exists()
    assert [o.order_id for o in ledger_orders(settings)] == [order["order_id"]]


def test_the_analyst_may_call_its_tools_before_answering(settings: Settings) -> None:
    llm = ScriptedLLM(
        [tool_call_response("get_indicators", {"symbol": "SP500"}), analyst_says(SP500=0.5), risk_targets(SP500=0.1)]
    )
    r = run_daily(settings, universe="demo", run_date=DAY, client=llm).results
    second = llm.requests[1].messages
    tool_messages = [m for m in second if m.get("role") == "tool"]
    assert len(tool_messages) == 1 and '"rsi_14"' in tool_messages[0]["content"]
    assert "2012-06-04" not in tool_messages[0]["content"]  # nothing after the run date reaches the model
    assert r["nodes"]["analyst"]["llm_calls"] == 2 and r["status"] == "orders_placed"
    [call] = r["nodes"]["analyst"]["tool_calls"]  # the results file keeps what the model asked and saw
    assert call["tool"] == "get_indicators" and call["arguments"] == {"symbol": "SP500"} and call["status"] == "ok"


def test_an_analyst_failure_leaves_no_signal_and_ends_in_hold_all(settings: Settings) -> None:
    llm = ScriptedLLM([LLMError("timeout", "read timed out")])
    r = run_daily(settings, universe="demo", run_date=DAY, client=llm).results
    assert r["status"] == "hold" and r["hold"]["reason"] == "fallback:no_signals" and r["hold"]["fallback"] is True
    assert r["nodes"]["analyst"]["abstain_reason"] == "timeout"
    assert "risk" not in r["nodes"] and r["placed"] == [] and ledger_orders(settings) == []


def test_an_analyst_that_fails_after_using_a_tool_keeps_its_calls_in_the_results(settings: Settings) -> None:
    llm = ScriptedLLM([tool_call_response("get_indicators", {"symbol": "SP500"}), final_answer("I think SP500 is up")])
    r = run_daily(settings, universe="demo", run_date=DAY, client=llm).results
    analyst = r["nodes"]["analyst"]
    assert analyst["status"] == "abstained" and analyst["abstain_reason"] == "malformed"
    assert "not JSON" in analyst["abstain_detail"] and analyst["llm_calls"] == 2 and analyst["tokens"] > 0
    assert [c["tool"] for c in analyst["tool_calls"]] == ["get_indicators"] and r["llm_calls"] == 2


def test_a_risk_node_failure_ends_in_hold_all_with_its_cause(settings: Settings) -> None:
    llm = ScriptedLLM([analyst_says(SP500=0.9), LLMError("malformed", "not JSON")])
    r = run_daily(settings, universe="demo", run_date=DAY, client=llm).results
    assert r["hold"]["reason"] == "fallback:risk_malformed" and ledger_orders(settings) == []


def test_a_crashing_node_is_a_tagged_hold_not_a_traceback(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(state, deps):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    monkeypatch.setattr(nodes, "decision_node", explode)
    llm = ScriptedLLM([analyst_says(SP500=0.9), risk_targets(SP500=0.2)])
    r = run_daily(settings, universe="demo", run_date=DAY, client=llm).results
    assert r["hold"]["reason"] == "fallback:decision_error" and ledger_orders(settings) == []


def test_no_change_is_a_deliberate_hold_kept_apart_from_a_fallback(settings: Settings) -> None:
    llm = ScriptedLLM([analyst_says(SP500=0.1), risk_targets(SP500=0.0)])
    r = run_daily(settings, universe="demo", run_date=DAY, client=llm).results
    assert r["hold"]["reason"] == "hold:no_change" and r["hold"]["fallback"] is False


def test_a_halted_book_asks_no_llm_and_holds(settings: Settings) -> None:
    RiskStateStore(settings.risk_state_path).save(RiskState(mode="HALTED", reason="manual", since=DAY, changed_by="cli"))
    llm = ScriptedLLM([])
    r = run_daily(settings, universe="demo", run_date=DAY, client=llm).results
    assert r["hold"]["reason"] == "hold:halted" and llm.calls == 0


def test_rerunning_a_traded_day_places_nothing_twice(settings: Settings) -> None:
    traded_day = date(2013, 3, 1)  # the offline rules buy all three demo instruments that day
    first = run_daily(settings, universe="demo", run_date=traded_day, llm="offline")
    orders_after_first = ledger_orders(settings)
    second = run_daily(settings, universe="demo", run_date=traded_day, llm="offline")
    assert first.results["llm"] == "offline-rules" and len(first.results["placed"]) == 3
    assert second.repeated is True and second.results == first.results
    assert [o.order_id for o in ledger_orders(settings)] == [o.order_id for o in orders_after_first]


def test_orders_fill_at_the_next_sessions_open(settings: Settings) -> None:
    run_daily(settings, universe="demo", run_date=DAY, client=ScriptedLLM([analyst_says(SP500=0.9), risk_targets(SP500=0.1)]))
    r = run_daily(settings, universe="demo", run_date=NEXT, client=ScriptedLLM([analyst_says(SP500=0.9), risk_targets(SP500=0.1)])).results
    assert len(r["fills"]) == 1
    fill = r["fills"][0]
    assert fill["symbol"] == "SP500" and fill["fill_date"] == NEXT.isoformat()
    from arch.data import sp500

    open_next = float(sp500.load().loc["2012-06-04", "Open"])
    assert fill["price"] == pytest.approx(open_next * (1 + settings.slippage_bps / 1e4), rel=1e-9)
    assert r["portfolio"]["positions"][0]["symbol"] == "SP500"


def test_a_dry_run_changes_nothing(settings: Settings) -> None:
    llm = ScriptedLLM([analyst_says(SP500=0.9), risk_targets(SP500=0.1)])
    r = run_daily(settings, universe="demo", run_date=DAY, client=llm, dry_run=True).results
    assert r["status"] == "dry_run" and r["approved"] and r["placed"] == []
    assert ledger_orders(settings) == [] and guard_log(settings) == []


def test_a_day_that_is_not_a_session_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(UserError, match="not a session"):
        run_daily(settings, universe="demo", run_date=date(2012, 6, 2), llm="offline")


def test_a_daily_run_cannot_go_back_before_the_books_last_activity(settings: Settings) -> None:
    run_daily(settings, universe="demo", run_date=NEXT, llm="offline")
    with pytest.raises(UserError, match="cannot go back"):
        run_daily(settings, universe="demo", run_date=DAY, llm="offline")


def test_a_tool_asked_about_an_unknown_symbol_answers_with_an_error_the_model_can_read(settings: Settings) -> None:
    llm = ScriptedLLM([tool_call_response("get_bars", {"symbol": "AAPL"}), analyst_says(SP500=0.5), risk_targets(SP500=0.1)])
    r = run_daily(settings, universe="demo", run_date=DAY, client=llm).results
    tool_message = next(m for m in llm.requests[1].messages if m.get("role") == "tool")
    assert "AAPL" in tool_message["content"] and '"error"' in tool_message["content"]
    assert r["nodes"]["analyst"]["status"] == "ok"


def test_an_order_whose_instrument_never_trades_again_expires_instead_of_reserving_cash(settings: Settings) -> None:
    first = run_daily(settings, universe="demo", run_date=date(2013, 3, 1), llm="offline").results  # GOOG's last bar
    goog = next(o["order_id"] for o in first["approved"] if o["symbol"] == "GOOG")
    later = run_daily(settings, universe="demo", run_date=date(2013, 3, 8), llm="offline").results
    assert [e["order_id"] for e in later["expired"]] == [goog] and "no GOOG session" in later["expired"][0]["reason"]
    assert {f["symbol"] for f in later["fills"]} == {o["symbol"] for o in first["approved"]} - {"GOOG"}
    statuses = {o.order_id: o.status for o in ledger_orders(settings)}
    assert statuses[goog] == "cancelled"


def test_buys_held_back_by_a_sell_that_never_fills_are_cancelled_with_it(settings: Settings) -> None:
    silent = [LLMError("timeout", "no answer")]  # a day that decides nothing
    run_daily(settings, universe="demo", run_date=date(2013, 2, 27), client=ScriptedLLM([analyst_says(GOOG=0.9), risk_targets(GOOG=0.15)]))
    run_daily(settings, universe="demo", run_date=date(2013, 2, 28), client=ScriptedLLM(list(silent)))  # GOOG fills
    swap = run_daily(settings, universe="demo", run_date=date(2013, 3, 1),  # GOOG's last bar: its sell can never fill
                     client=ScriptedLLM([analyst_says(GOOG=-0.9, SP500=0.9), risk_targets(GOOG=0.0, SP500=0.15)])).results
    assert [(o["symbol"], o["side"]) for o in swap["approved"]] == [("GOOG", "sell"), ("SP500", "buy")]
    later = run_daily(settings, universe="demo", run_date=date(2013, 3, 4),
                      client=ScriptedLLM([analyst_says(NASDAQ=0.9), risk_targets(NASDAQ=0.1)])).results
    assert later["fills"] == []  # the SP500 buy waits for the GOOG sell it was sized on
    nasdaq = later["placed"]
    for day in (5, 6, 7, 8):
        r = run_daily(settings, universe="demo", run_date=date(2013, 3, day), client=ScriptedLLM(list(silent))).results
        # no order fills; on the 8th the GOOG position itself is cashed out (5 sessions without a bar)
        assert [f["order_id"] for f in r["fills"]] == ([] if day < 8 else ["20130308-GOOG-sell-delisting"])
    reasons = {e["symbol"]: e["reason"] for e in r["expired"]}
    assert reasons["GOOG"].startswith("expired: no GOOG session") and reasons["SP500"].startswith("expired")
    assert reasons["NASDAQ"] == "cancelled: a sell decided on 2013-03-01 that this buy was sized on expired"
    statuses = {o.order_id: o.status for o in ledger_orders(settings)}
    assert statuses[nasdaq[0]] == "cancelled" and not [s for s in statuses.values() if s == "pending"]


def test_the_offline_rules_run_the_signal_nodes_inline_to_the_same_day(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from langgraph._internal._constants import CONFIG_KEY_RUNNER_SUBMIT

    import agent.graph as graph
    from agent.llm.offline import OfflineRulesClient

    assert graph.RUNNER_SUBMIT == CONFIG_KEY_RUNNER_SUBMIT  # LangGraph still reads the hook under that name
    threads: dict[str, set[int]] = {}
    for name in nodes.SIGNAL_NODES:
        real = getattr(nodes, f"{name}_node")

        def on_thread(state: object, deps: object, _real: object = real, _name: str = name) -> object:
            threads.setdefault(_name, set()).add(threading.get_ident())
            return _real(state, deps)  # type: ignore[operator]

        monkeypatch.setattr(nodes, f"{name}_node", on_thread)

    def day() -> dict:
        r = run_daily(settings, universe="demo", run_date=DAY, client=OfflineRulesClient(), dry_run=True).results
        def timeless(x: object) -> object:
            if isinstance(x, dict):
                return {k: timeless(v) for k, v in x.items() if k not in ("timings", "seconds")}
            return [timeless(v) for v in x] if isinstance(x, list) else x

        return timeless(r)  # type: ignore[return-value]

    inline = day()
    assert {t for ts in threads.values() for t in ts} == {threading.get_ident()}
    assert inline["nodes"]["analyst"]["status"] == inline["nodes"]["risk"]["status"] == "ok"
    threads.clear()
    monkeypatch.setattr(graph, "INLINE_PROVIDERS", frozenset())
    assert day() == inline
    assert threading.get_ident() not in {t for ts in threads.values() for t in ts}  # the pool, as before
