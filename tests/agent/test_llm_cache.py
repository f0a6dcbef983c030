"""CachedClient: record, replay (never calling the inner client), misses, and what the key covers."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

import agent.nodes as nodes
from agent.daily import run_daily
from agent.errors import LLMError
from agent.llm.base import LLMRequest, LLMResponse, TokenBudget, tool_spec
from agent.llm.cache import CachedClient, CacheMiss, cache_key
from agent.llm.redaction import redact_text
from agent.llm.runner import ask
from agent.models import AnalystReport, RiskPlan, SymbolSignal, TargetWeight
from agent.settings import Settings
from agent.state import DayDeps, DayState
from portfolio.ledger import Ledger
from tests.agent._llm_support import IndicatorsInput, analyst_request, get_indicators, indicator_tools
from tests.fakes import ScriptedLLM, final_answer, tool_call_response

ANSWER = {"signals": [{"symbol": "SP500", "score": 0.25, "confidence": 0.4, "rationale": "mixed"}]}


def test_record_then_replay_gives_identical_responses_without_calling_the_model(tmp_path: Path) -> None:
    recorder = ScriptedLLM([tool_call_response("get_indicators", {"symbol": "SP500", "window": 5}, call_id="c1"),
                            final_answer(ANSWER)])
    recorded = ask(CachedClient(recorder, tmp_path, "record"), analyst_request(), AnalystReport, indicator_tools())

    silent = ScriptedLLM([])
    replayed = ask(CachedClient(silent, tmp_path, "replay"), analyst_request(), AnalystReport, indicator_tools())

    assert silent.calls == 0 and recorder.calls == 2
    assert replayed.output.model_dump_json() == recorded.output.model_dump_json()
    assert (replayed.calls, replayed.tokens, replayed.tool_trace) == (recorded.calls, recorded.tokens,
                                                                     recorded.tool_trace)
    assert len(list(tmp_path.glob("*/*.json"))) == 2


def test_a_hit_is_marked_cached_and_otherwise_equal(tmp_path: Path) -> None:
    original = final_answer(ANSWER)
    CachedClient(ScriptedLLM([original]), tmp_path, "record").complete(analyst_request())

    hit = CachedClient(ScriptedLLM([]), tmp_path, "replay").complete(analyst_request())

    assert hit.cached is True and hit.model_copy(update={"cached": False}) == original


def test_a_miss_in_replay_is_a_cache_miss_and_never_calls_the_model(tmp_path: Path) -> None:
    inner = ScriptedLLM([final_answer(ANSWER)])

    with pytest.raises(LLMError) as err:
        CachedClient(inner, tmp_path, "replay").complete(analyst_request())

    assert err.value.cause == "cache_miss" and inner.calls == 0 and "analyst" in str(err.value)


def test_a_corrupt_file_is_a_miss_not_an_empty_answer(tmp_path: Path) -> None:
    client = CachedClient(ScriptedLLM([final_answer(ANSWER)]), tmp_path, "record")
    client.complete(analyst_request())
    (path,) = tmp_path.glob("*/*.json")
    path.write_text("{not json")

    with pytest.raises(LLMError) as err:
        CachedClient(ScriptedLLM([]), tmp_path, "replay").complete(analyst_request())

    assert err.value.cause == "cache_miss"


def test_files_are_sharded_by_key_and_leave_no_temporaries(tmp_path: Path) -> None:
    client = CachedClient(ScriptedLLM([final_answer(ANSWER)]), tmp_path, "record")
    client.complete(analyst_request())
    key = cache_key("scripted", "scripted-v1", analyst_request())

    stored = json.loads((tmp_path / key[:2] / f"{key}.json").read_text())
    assert stored["key"] == key and stored["node"] == "analyst" and stored["response"]["cached"] is False
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [f"{key}.json"]


def test_the_key_covers_what_the_model_sees_and_nothing_else() -> None:
    base = analyst_request()
    key = cache_key("openai", "m", base)
    spec = tool_spec("get_indicators", get_indicators, IndicatorsInput)
    changed_messages = base.model_copy(update={"messages": [*base.messages, {"role": "user", "content": "more"}]})

    assert cache_key("openai", "m", base.model_copy(update={"context": {"x": 1}, "node": "quant"})) == key
    assert len({
        key,
        cache_key("openai", "m", changed_messages),
        cache_key("openai", "m", base.model_copy(update={"tools": [spec]})),
        cache_key("openai", "m", base.model_copy(update={"temperature": 0.7})),
        cache_key("openai", "m", base.model_copy(update={"max_tokens": 99})),
        cache_key("openai", "m", base.model_copy(update={"response_schema": None})),
        cache_key("openai", "other-model", base),
        cache_key("openai", "m", base, "json"),
        cache_key("offline-rules", "m", base),
    }) == 9


def test_record_always_asks_the_model_afresh(tmp_path: Path) -> None:
    inner = ScriptedLLM([final_answer(ANSWER), final_answer({"signals": []})])
    client = CachedClient(inner, tmp_path, "record")
    client.complete(analyst_request())
    client.complete(analyst_request())

    replayed = CachedClient(ScriptedLLM([]), tmp_path, "replay").complete(analyst_request())

    assert inner.calls == 2 and json.loads(replayed.content or "") == {"signals": []}


def test_off_is_a_pass_through_that_writes_nothing(tmp_path: Path) -> None:
    inner = ScriptedLLM([final_answer(ANSWER)])

    response = CachedClient(inner, tmp_path / "cache", "off").complete(analyst_request())

    assert inner.calls == 1 and response.cached is False and not (tmp_path / "cache").exists()


def test_replayed_hits_spend_the_recorded_tokens_from_the_budget(tmp_path: Path) -> None:
    CachedClient(ScriptedLLM([final_answer(ANSWER, tokens=30)]), tmp_path, "record").complete(analyst_request())
    budget = TokenBudget(limit=100)
    replayer = CachedClient(ScriptedLLM([]), tmp_path, "replay", budget=budget)

    replayer.complete(analyst_request())
    with pytest.raises(LLMError) as err:
        replayer.complete(analyst_request())  # 120 > 100, as the recording would have

    assert budget.used == 120 and err.value.cause == "budget_exhausted"


# --------------------------------------------------------------------------- secrets in what is stored

SECRET = "sk-live-ECHOED-0123456789abcdef"


def test_a_secret_in_an_answer_is_masked_in_the_cache_file_and_in_what_is_returned(tmp_path: Path) -> None:
    echoed = {"signals": [{"symbol": "SP500", "score": 0.1, "confidence": 0.2, "rationale": f"key {SECRET}"}]}
    recorder = CachedClient(ScriptedLLM([final_answer(echoed)]), tmp_path, "record", secrets=(SECRET,))

    recorded = recorder.complete(analyst_request())
    replayed = CachedClient(ScriptedLLM([]), tmp_path, "replay", secrets=(SECRET,)).complete(analyst_request())

    (path,) = tmp_path.glob("*/*.json")
    assert SECRET not in path.read_text() and "key ***" in path.read_text()
    assert SECRET not in (recorded.content or "") and SECRET not in (replayed.content or "")


def test_a_secret_written_with_json_escapes_is_masked_too(tmp_path: Path) -> None:
    # found by an attacker: "sk-live-ECHOED\u002d…" is not the key as text, but parsing the answer makes it the
    # key again, and it reached the results file, the memory and --json
    escaped = SECRET.replace("-", "\\u002d", 1).replace("s", "\\u0073", 1)
    content = '{"signals": [], "note": "' + escaped + ' and key ' + SECRET.replace("E", "\\u0045") + '"}'
    answer = final_answer({"signals": []}).model_copy(update={"content": content})
    recorded = CachedClient(ScriptedLLM([answer]), tmp_path, "record", secrets=(SECRET,)).complete(analyst_request())

    assert json.loads(recorded.content or "")["note"] == "*** and key ***"
    (path,) = tmp_path.glob("*/*.json")
    assert SECRET not in json.dumps(json.loads(path.read_text()))  # decoded, the file holds no key either
    hook = "https://discord.example/api/webhooks/1/abcdefgh"
    assert redact_text('{"url": "https:\\/\\/discord.example\\/api\\/webhooks\\/1\\/abcdefgh"}', [hook]) == '{"url": "***"}'


def test_a_recording_made_before_redaction_is_masked_when_replayed(tmp_path: Path) -> None:
    leaky = final_answer({"signals": [], "note": SECRET})
    CachedClient(ScriptedLLM([leaky]), tmp_path, "record").complete(analyst_request())  # no secrets known then

    replayed = CachedClient(ScriptedLLM([]), tmp_path, "replay", secrets=(SECRET,)).complete(analyst_request())

    assert SECRET not in replayed.model_dump_json()


# --------------------------------------------------------------------------- a replay miss holds the whole day

DAY = date(2012, 6, 1)


def _orders(settings: Settings) -> list:
    ledger = Ledger(settings.db_path, base_currency="USD", starting_cash=10_000.0)
    try:
        return ledger.orders()
    finally:
        ledger.close()


def test_a_miss_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(CacheMiss) as err:
        CachedClient(ScriptedLLM([]), tmp_path, "replay").complete(analyst_request())
    assert isinstance(err.value, LLMError) and err.value.cause == "cache_miss"


def test_a_replay_with_an_empty_cache_places_nothing_and_says_cache_miss(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)

    day = run_daily(settings, universe="demo", run_date=DAY, llm="openai", cache_mode="replay")

    results = json.loads(day.path.read_text())
    assert results["status"] == "hold" and results["placed"] == [] and _orders(settings) == []
    assert results["hold"]["reason"] == "fallback:cache_miss" and results["hold"]["fallback"] is True
    assert "analyst" in results["hold"]["detail"]


class _MissesTheAnalyst:
    """Replays the risk node's answer but has no recording for the analyst's."""

    provider, model = "openai", "recorded-model"

    def __init__(self) -> None:
        self.nodes: list[str] = []

    def complete(self, request: LLMRequest) -> LLMResponse:
        self.nodes.append(request.node)
        if request.node == "analyst":
            raise CacheMiss("no recorded answer for node 'analyst'")
        plan = RiskPlan(targets=[TargetWeight(symbol="SP500", target_weight=0.1, rationale="recorded")])
        return final_answer(plan)


def test_a_signal_node_miss_holds_the_day_even_when_another_signal_node_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def quant_answers(state: DayState, deps: DayDeps) -> DayState:
        signal = {"symbol": "SP500", "score": 0.9, "confidence": 0.9, "rationale": "model"}
        outcome = nodes._outcome("quant", deps, status="ok", output={"signals": [signal]})
        return {"nodes": {"quant": outcome}}

    monkeypatch.setattr(nodes, "quant_node", quant_answers)
    settings, client = Settings(home=tmp_path), _MissesTheAnalyst()

    day = run_daily(settings, universe="demo", run_date=DAY, client=client)

    assert day.results["hold"]["reason"] == "fallback:cache_miss" and _orders(settings) == []
    assert day.results["nodes"]["analyst"]["abstain_reason"] == "cache_miss"
    assert client.nodes == ["analyst"]  # the risk node asked nothing: the day is not traded on quant alone


def test_a_risk_node_miss_is_tagged_cache_miss_too(tmp_path: Path) -> None:
    class MissesRisk:
        provider, model = "openai", "recorded-model"

        def complete(self, request: LLMRequest) -> LLMResponse:
            if request.node == "risk":
                raise CacheMiss("no recorded answer for node 'risk'")
            signal = SymbolSignal(symbol="SP500", score=0.5, confidence=0.5, rationale="recorded")
            return final_answer(AnalystReport(signals=[signal]))

    settings = Settings(home=tmp_path)
    day = run_daily(settings, universe="demo", run_date=DAY, client=MissesRisk())

    assert day.results["hold"]["reason"] == "fallback:cache_miss" and _orders(settings) == []
