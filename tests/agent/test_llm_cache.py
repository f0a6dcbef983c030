"""CachedClient: record, replay (never calling the inner client), misses, and what the key covers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.errors import LLMError
from agent.llm.base import TokenBudget, tool_spec
from agent.llm.cache import CachedClient, cache_key
from agent.llm.runner import ask
from agent.models import AnalystReport
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
