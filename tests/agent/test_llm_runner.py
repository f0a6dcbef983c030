"""runner.ask: the tool loop, against a scripted model."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from agent.errors import LLMError
from agent.llm.base import LLMRequest, LLMResponse, ToolCall, tool_spec
from agent.llm.runner import (
    MAX_TOOL_CALLS_PER_NODE,
    MAX_TOOL_CALLS_PER_ROUND,
    TRACE_TEXT_LIMIT,
    AskFailed,
    BoundTool,
    ask,
    parse_json_answer,
)
from agent.models import AnalystReport, SymbolSignal
from tests.agent._llm_support import IndicatorsInput, analyst_request, get_indicators, indicator_tools
from tests.fakes import ScriptedLLM, final_answer, tool_call_response

REPORT = AnalystReport(signals=[SymbolSignal(symbol="SP500", score=0.3, confidence=0.5, rationale="trend up")])


def test_a_final_answer_without_tools_sends_no_tool_specs() -> None:
    llm = ScriptedLLM([final_answer(REPORT, tokens=7)])

    result = ask(llm, analyst_request(), AnalystReport, {})

    assert result.output == REPORT and result.calls == 1 and result.tokens == 14 and result.tool_trace == []
    assert llm.requests[0].tools == []


def test_the_request_offers_exactly_the_bound_tools() -> None:
    llm = ScriptedLLM([final_answer(REPORT)])
    stale = tool_spec("stale_tool", get_indicators, IndicatorsInput)

    ask(llm, analyst_request(tools=[stale]), AnalystReport, indicator_tools())

    assert [t.name for t in llm.requests[0].tools] == ["get_indicators"]
    assert llm.requests[0].tools[0].description.startswith("Simple moving average")


def test_a_tool_round_appends_the_call_and_its_result_then_asks_again() -> None:
    llm = ScriptedLLM([tool_call_response("get_indicators", {"symbol": "SP500", "window": 20}, call_id="c1"),
                       final_answer(REPORT)])

    result = ask(llm, analyst_request(), AnalystReport, indicator_tools())

    assert result.calls == 2 and result.tokens == 40
    second = llm.requests[1].messages
    assert len(second) == len(analyst_request().messages) + 2
    assert second[-2]["tool_calls"][0]["function"] == {"name": "get_indicators",
                                                       "arguments": '{"symbol": "SP500", "window": 20}'}
    assert second[-1] == {"role": "tool", "tool_call_id": "c1",
                          "content": '{"sma": 4321.5, "symbol": "SP500", "window": 20}'}
    assert result.tool_trace == [{"round": 1, "id": "c1", "tool": "get_indicators",
                                  "arguments": {"symbol": "SP500", "window": 20}, "status": "ok",
                                  "output": {"symbol": "SP500", "window": 20, "sma": 4321.5}}]


def test_bad_arguments_get_one_second_chance() -> None:
    llm = ScriptedLLM([tool_call_response("get_indicators", {"symbol": "SP500"}, call_id="c1"),
                       tool_call_response("get_indicators", {"symbol": "SP500", "window": 50}, call_id="c2"),
                       final_answer(REPORT)])
    executed: list[IndicatorsInput] = []

    result = ask(llm, analyst_request(), AnalystReport, indicator_tools(executed))

    assert result.output == REPORT and [a.window for a in executed] == [50]
    assert [t["status"] for t in result.tool_trace] == ["bad_arguments", "ok"]
    error_message = llm.requests[1].messages[-1]
    assert error_message["tool_call_id"] == "c1" and "window: Field required" in error_message["content"]


def test_arguments_that_are_not_json_count_as_bad_arguments() -> None:
    llm = ScriptedLLM([tool_call_response("get_indicators", "{symbol: SP500"),
                       tool_call_response("get_indicators", "not json either")])

    with pytest.raises(LLMError) as err:
        ask(llm, analyst_request(), AnalystReport, indicator_tools())

    assert err.value.cause == "bad_arguments" and llm.calls == 2


def test_a_model_that_never_stops_calling_tools_is_cut_off() -> None:
    llm = ScriptedLLM([tool_call_response("get_indicators", {"symbol": "SP500", "window": w}) for w in range(1, 4)])

    with pytest.raises(LLMError) as err:
        ask(llm, analyst_request(), AnalystReport, indicator_tools(), max_rounds=3)

    assert err.value.cause == "too_many_rounds" and llm.calls == 3


def test_an_unknown_tool_fails_at_once_even_with_no_tools_bound() -> None:
    llm = ScriptedLLM([tool_call_response("place_order", {"symbol": "SP500"}), final_answer(REPORT)])

    with pytest.raises(LLMError) as err:
        ask(llm, analyst_request(), AnalystReport, {})

    assert err.value.cause == "unknown_tool" and llm.calls == 1 and "tools offered: none" in str(err.value)


def test_a_tool_that_raises_propagates_as_an_infrastructure_failure() -> None:
    def broken(args: IndicatorsInput) -> IndicatorsInput:
        raise OSError("duckdb file is locked")

    tools = {"get_indicators": BoundTool(spec=tool_spec("get_indicators", get_indicators, IndicatorsInput),
                                         input_model=IndicatorsInput, fn=broken)}
    llm = ScriptedLLM([tool_call_response("get_indicators", {"symbol": "SP500", "window": 5})])

    with pytest.raises(OSError, match="locked"):
        ask(llm, analyst_request(), AnalystReport, tools)


def test_a_tool_bound_under_another_name_is_a_programming_error() -> None:
    tools = {"indicators": indicator_tools()["get_indicators"]}

    with pytest.raises(ValueError, match="spec is named"):
        ask(ScriptedLLM([]), analyst_request(), AnalystReport, tools)


@pytest.mark.parametrize("content", ['```json\n{"signals": []}\n```', '```\n{"signals": []}\n```',
                                     '  {"signals": []}  '])
def test_fenced_or_padded_json_is_accepted(content: str) -> None:
    result = ask(ScriptedLLM([final_answer(content)]), analyst_request(), AnalystReport, {})

    assert result.output == AnalystReport(signals=[])


@pytest.mark.parametrize("content", ["", "I think SP500 will go up.", '{"signals": [', "```json\n{oops}\n```"])
def test_answers_that_are_not_json_are_malformed(content: str) -> None:
    with pytest.raises(LLMError) as err:
        ask(ScriptedLLM([final_answer(content)]), analyst_request(), AnalystReport, {})

    assert err.value.cause == "malformed"


@pytest.mark.parametrize("obj", [{"signal": []}, [], {"signals": [{"symbol": "X", "score": 1.5, "confidence": 0.1,
                                                                    "rationale": ""}]}])
def test_json_that_does_not_fit_the_output_model_is_a_schema_mismatch(obj: object) -> None:
    with pytest.raises(LLMError) as err:
        ask(ScriptedLLM([final_answer(obj)]), analyst_request(), AnalystReport, {})

    assert err.value.cause == "schema_mismatch"


def test_parse_json_answer_returns_the_value() -> None:
    assert parse_json_answer('```json\n{"a": [1, 2]}\n```') == {"a": [1, 2]}


def test_scripted_errors_pass_through_untouched() -> None:
    llm = ScriptedLLM([LLMError("rate_limited", "slow down")])

    with pytest.raises(LLMError) as err:
        ask(llm, LLMRequest(node="quant", messages=[{"role": "user", "content": "x"}]), AnalystReport, {})

    assert err.value.cause == "rate_limited"


def test_a_failure_part_way_keeps_the_calls_tokens_and_tool_calls_made_before_it() -> None:
    llm = ScriptedLLM([tool_call_response("get_indicators", {"symbol": "SP500", "window": 20}, call_id="c1"),
                       LLMError("timeout", "read timed out")])

    with pytest.raises(AskFailed) as caught:
        ask(llm, analyst_request(), AnalystReport, indicator_tools())

    failed = caught.value
    assert isinstance(failed, LLMError) and failed.cause == "timeout" and "read timed out" in str(failed)
    assert failed.calls == 1 and failed.tokens == 20
    assert [(t["id"], t["tool"], t["status"]) for t in failed.tool_trace] == [("c1", "get_indicators", "ok")]


def test_an_unknown_tool_is_traced_before_the_node_gives_up() -> None:
    llm = ScriptedLLM([tool_call_response("place_order", {"symbol": "SP500", "quantity": 1e9}, call_id="x")])

    with pytest.raises(AskFailed) as caught:
        ask(llm, analyst_request(), AnalystReport, indicator_tools())

    assert caught.value.cause == "unknown_tool" and caught.value.calls == 1
    [entry] = caught.value.tool_trace
    assert entry["tool"] == "place_order" and entry["status"] == "unknown_tool" and "1000000000" in entry["arguments"]


def _many_calls(count: int, window: int = 5) -> LLMResponse:
    calls = [ToolCall(id=f"c{i}", name="get_indicators", arguments=json.dumps({"symbol": "SP500", "window": window}))
             for i in range(count)]
    return LLMResponse(content=None, tool_calls=calls, finish_reason="tool_calls", model="m", provider="scripted")


def test_a_round_with_more_tool_calls_than_the_cap_runs_none_of_them() -> None:
    llm = ScriptedLLM([_many_calls(300), final_answer(REPORT)])
    executed: list[IndicatorsInput] = []

    with pytest.raises(AskFailed) as caught:
        ask(llm, analyst_request(), AnalystReport, indicator_tools(executed))

    assert caught.value.cause == "too_many_rounds" and "300 tool calls in round 1" in str(caught.value)
    assert executed == [] and caught.value.tool_trace == [] and llm.calls == 1


def test_tool_calls_are_capped_across_the_rounds_of_one_node() -> None:
    per_round = MAX_TOOL_CALLS_PER_ROUND
    rounds = MAX_TOOL_CALLS_PER_NODE // per_round + 1
    llm = ScriptedLLM([_many_calls(per_round) for _ in range(rounds)] + [final_answer(REPORT)])
    executed: list[IndicatorsInput] = []

    with pytest.raises(AskFailed) as caught:
        ask(llm, analyst_request(), AnalystReport, indicator_tools(executed), max_rounds=rounds + 1)

    assert caught.value.cause == "too_many_rounds"
    assert len(executed) == len(caught.value.tool_trace) <= MAX_TOOL_CALLS_PER_NODE


class BigOutput(BaseModel):
    closes: list[float]


def test_the_trace_keeps_only_the_start_of_a_large_output_while_the_model_gets_all_of_it() -> None:
    def closes(args: IndicatorsInput) -> BigOutput:
        return BigOutput(closes=[1234.5678] * 20_000)

    tools = {"get_indicators": BoundTool(spec=tool_spec("get_indicators", get_indicators, IndicatorsInput),
                                         input_model=IndicatorsInput, fn=closes)}
    llm = ScriptedLLM([tool_call_response("get_indicators", {"symbol": "SP500", "window": 5}), final_answer(REPORT)])

    result = ask(llm, analyst_request(), AnalystReport, tools)

    [entry] = result.tool_trace
    assert isinstance(entry["output"], str) and len(entry["output"]) < TRACE_TEXT_LIMIT + 100
    assert entry["output"].startswith('{"closes": [1234.5678') and "truncated" in entry["output"]
    assert entry["arguments"] == {"symbol": "SP500", "window": 5}  # small values stay as they are
    assert len(llm.requests[1].messages[-1]["content"]) > 100_000  # the model saw the whole output


def test_long_raw_arguments_of_a_refused_call_are_cut_in_the_trace() -> None:
    llm = ScriptedLLM([tool_call_response("place_order", {"note": "x" * 50_000})])

    with pytest.raises(AskFailed) as caught:
        ask(llm, analyst_request(), AnalystReport, indicator_tools())

    [entry] = caught.value.tool_trace
    assert len(entry["arguments"]) < TRACE_TEXT_LIMIT + 100
