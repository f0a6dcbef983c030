"""OpenAIClient against recorded chat-completions responses (respx): answers, modes, and every fault."""

from __future__ import annotations

import logging

import httpx
import pytest
import respx

from agent.errors import LLMError
from agent.llm.base import Deadline, TokenBudget
from agent.llm.runner import ask
from agent.models import AnalystReport
from tests.agent._llm_support import (
    BASE_URL,
    FAKE_KEY,
    analyst_request,
    indicator_tools,
    make_openai,
    replay,
    sent_json,
)


@pytest.fixture
def api():
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as mock:
        yield mock


def test_a_direct_final_answer_is_returned_with_its_usage(api) -> None:
    route = api.post("/chat/completions").mock(return_value=replay("final_answer"))
    client, _ = make_openai()

    response = client.complete(analyst_request())

    assert route.call_count == 1
    assert response.tool_calls == []
    assert AnalystReport.model_validate_json(response.content or "").signals[0].symbol == "SP500"
    assert (response.prompt_tokens, response.completion_tokens) == (812, 64)
    assert response.finish_reason == "stop"
    assert response.model == "gpt-4o-mini-2024-07-18"
    assert response.provider == "openai" and response.cached is False


def test_the_request_carries_only_portable_parameters_and_the_key_as_bearer(api) -> None:
    route = api.post("/chat/completions").mock(return_value=replay("final_answer"))
    client, _ = make_openai()

    client.complete(analyst_request(context={"secret_facts": 1}))

    body = sent_json(route)
    assert set(body) == {"model", "messages", "temperature", "max_tokens"}
    assert body["max_tokens"] == 1500 and body["temperature"] == 0.0
    assert "secret_facts" not in route.calls[0].request.content.decode()
    assert route.calls[0].request.headers["authorization"] == f"Bearer {FAKE_KEY}"


def test_tools_are_offered_as_functions_with_tool_choice_auto(api) -> None:
    route = api.post("/chat/completions").mock(return_value=replay("tool_call_indicators"))
    client, _ = make_openai()
    spec = indicator_tools()["get_indicators"].spec

    response = client.complete(analyst_request(tools=[spec]))

    body = sent_json(route)
    assert body["tool_choice"] == "auto"
    assert body["tools"] == [
        {"type": "function", "function": {"name": "get_indicators", "description": spec.description,
                                          "parameters": spec.parameters}}
    ]
    assert "response_format" not in body
    assert [(c.id, c.name) for c in response.tool_calls] == [("call_Xy7kQ2", "get_indicators")]
    assert response.finish_reason == "tool_calls"


def test_the_runner_executes_the_tool_and_sends_its_result_back(api) -> None:
    route = api.post("/chat/completions").mock(side_effect=[replay("tool_call_indicators"), replay("final_answer")])
    client, _ = make_openai()
    executed: list = []

    result = ask(client, analyst_request(), AnalystReport, indicator_tools(executed))

    assert route.call_count == 2 and result.calls == 2
    assert result.tokens == 905 + 23 + 812 + 64
    assert [(a.symbol, a.window) for a in executed] == [("SP500", 50)]
    second = sent_json(route, 1)["messages"]
    assert second[-2]["role"] == "assistant" and second[-2]["tool_calls"][0]["id"] == "call_Xy7kQ2"
    assert second[-1]["role"] == "tool" and second[-1]["tool_call_id"] == "call_Xy7kQ2"
    assert '"sma": 4321.5' in second[-1]["content"]
    assert result.tool_trace[0]["status"] == "ok" and result.tool_trace[0]["output"]["sma"] == 4321.5
    assert isinstance(result.output, AnalystReport)


def test_json_mode_sends_no_tools_and_describes_them_in_the_system_message(api) -> None:
    route = api.post("/chat/completions").mock(side_effect=[replay("json_mode_tool"), replay("json_mode_final")])
    client, _ = make_openai(json_mode=True, model="llama3.1:8b")

    result = ask(client, analyst_request(), AnalystReport, indicator_tools())

    first, second = sent_json(route, 0), sent_json(route, 1)
    for body in (first, second):
        assert "tools" not in body and "tool_choice" not in body
        assert body["response_format"] == {"type": "json_object"}
        assert all(m["role"] in {"system", "user", "assistant"} for m in body["messages"])
    system = first["messages"][0]["content"]
    assert "get_indicators" in system and '"tool": "<name>"' in system and '"signals"' in system
    assert second["messages"][-2] == {
        "role": "assistant",
        "content": '{"tool": "get_indicators", "arguments": {"symbol": "SP500", "window": 50}}',
    }
    assert second["messages"][-1]["role"] == "user" and "4321.5" in second["messages"][-1]["content"]
    assert result.output.signals[0].score == 0.42


@pytest.mark.parametrize(
    ("cassette_name", "cause"),
    [("refusal", "refusal"), ("content_filter", "refusal"), ("truncated", "truncated")],
)
def test_unusable_answers_raise_their_cause_without_retrying(api, cassette_name: str, cause: str) -> None:
    route = api.post("/chat/completions").mock(return_value=replay(cassette_name))
    client, delays = make_openai()

    with pytest.raises(LLMError) as err:
        client.complete(analyst_request())

    assert err.value.cause == cause
    assert route.call_count == 1 and delays == []


def test_malformed_json_answer_fails_in_the_runner(api) -> None:
    api.post("/chat/completions").mock(return_value=replay("malformed"))
    client, _ = make_openai()

    with pytest.raises(LLMError) as err:
        ask(client, analyst_request(), AnalystReport, {})

    assert err.value.cause == "malformed"


def test_an_out_of_bounds_answer_is_a_schema_mismatch(api) -> None:
    api.post("/chat/completions").mock(return_value=replay("schema_mismatch"))
    client, _ = make_openai()

    with pytest.raises(LLMError) as err:
        ask(client, analyst_request(), AnalystReport, {})

    assert err.value.cause == "schema_mismatch" and "signals.0.score" in str(err.value)


def test_an_unknown_tool_is_never_executed(api) -> None:
    route = api.post("/chat/completions").mock(return_value=replay("unknown_tool"))
    client, _ = make_openai()
    executed: list = []

    with pytest.raises(LLMError) as err:
        ask(client, analyst_request(), AnalystReport, indicator_tools(executed))

    assert err.value.cause == "unknown_tool" and "place_order" in str(err.value)
    assert executed == [] and route.call_count == 1


def test_wrong_argument_types_are_fed_back_once_then_fail(api) -> None:
    route = api.post("/chat/completions").mock(side_effect=[replay("bad_arguments"), replay("bad_arguments")])
    client, _ = make_openai()
    executed: list = []

    with pytest.raises(LLMError) as err:
        ask(client, analyst_request(), AnalystReport, indicator_tools(executed))

    assert err.value.cause == "bad_arguments" and route.call_count == 2 and executed == []
    fed_back = sent_json(route, 1)["messages"][-1]
    assert fed_back["role"] == "tool" and "window" in fed_back["content"] and "invalid arguments" in fed_back["content"]


def test_a_429_is_retried_honouring_retry_after_then_succeeds(api) -> None:
    route = api.post("/chat/completions").mock(side_effect=[replay("error_429"), replay("final_answer")])
    client, delays = make_openai()

    response = client.complete(analyst_request())

    assert route.call_count == 2 and response.content
    assert len(delays) == 1 and 2.0 <= delays[0] <= 30.0


@pytest.mark.parametrize(("cassette_name", "cause"), [("error_429", "rate_limited"), ("error_500", "server_error"),
                                                      ("error_503", "server_error")])
def test_retryable_errors_stop_after_the_bounded_retries(api, cassette_name: str, cause: str) -> None:
    route = api.post("/chat/completions").mock(return_value=replay(cassette_name))
    client, delays = make_openai(max_retries=2)

    with pytest.raises(LLMError) as err:
        client.complete(analyst_request())

    assert err.value.cause == cause
    assert route.call_count == 3 and len(delays) == 2
    assert "after 3 attempts" in str(err.value)


def test_backoff_grows_exponentially_when_the_server_gives_no_retry_after(api) -> None:
    api.post("/chat/completions").mock(return_value=replay("error_500"))
    client, delays = make_openai(max_retries=3)

    with pytest.raises(LLMError):
        client.complete(analyst_request())

    assert len(delays) == 3
    assert 0.5 <= delays[0] <= 0.625 and 1.0 <= delays[1] <= 1.25 and 2.0 <= delays[2] <= 2.5


def test_an_exhausted_quota_is_not_retried(api) -> None:
    route = api.post("/chat/completions").mock(return_value=replay("error_429_quota"))
    client, delays = make_openai()

    with pytest.raises(LLMError) as err:
        client.complete(analyst_request())

    assert err.value.cause == "rate_limited" and route.call_count == 1 and delays == []


def test_a_timeout_is_retried_then_reported(api) -> None:
    route = api.post("/chat/completions").mock(side_effect=httpx.ReadTimeout("read timed out"))
    client, delays = make_openai(max_retries=2)

    with pytest.raises(LLMError) as err:
        client.complete(analyst_request())

    assert err.value.cause == "timeout" and route.call_count == 3 and len(delays) == 2


def test_a_refused_connection_is_a_connection_error(api) -> None:
    route = api.post("/chat/completions").mock(side_effect=httpx.ConnectError("connection refused"))
    client, _ = make_openai(max_retries=1)

    with pytest.raises(LLMError) as err:
        client.complete(analyst_request())

    assert err.value.cause == "connection" and route.call_count == 2


@pytest.mark.parametrize(("cassette_name", "cause"), [("error_401", "auth"), ("error_400", "bad_request")])
def test_client_errors_are_never_retried(api, cassette_name: str, cause: str) -> None:
    route = api.post("/chat/completions").mock(return_value=replay(cassette_name))
    client, delays = make_openai()

    with pytest.raises(LLMError) as err:
        client.complete(analyst_request())

    assert err.value.cause == cause and route.call_count == 1 and delays == []


def test_the_api_key_never_appears_in_errors_or_logs(api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api.post("/chat/completions").mock(side_effect=[replay("error_401"), replay("error_429"), replay("error_429"),
                                                    replay("error_429")] + [httpx.ReadTimeout("slow")] * 3)
    client, _ = make_openai()
    messages = []
    for _ in range(3):
        with pytest.raises(LLMError) as err:
            client.complete(analyst_request())
        messages.append(str(err.value))

    assert [m.split(":")[0] for m in messages] == ["LLM auth", "LLM rate_limited", "LLM timeout"]
    everything = " ".join(messages) + caplog.text + repr(client)
    assert FAKE_KEY not in everything and "FAKE-KEY" not in everything and "TKEY" not in everything
    assert "Analyse SP500" not in everything  # no request bodies either


def test_an_exhausted_budget_stops_before_the_next_call(api) -> None:
    route = api.post("/chat/completions").mock(return_value=replay("final_answer"))
    budget = TokenBudget(limit=1000)
    client, _ = make_openai(budget=budget)

    client.complete(analyst_request())  # 876 tokens: within budget
    with pytest.raises(LLMError) as crossing:
        client.complete(analyst_request())  # 1752 > 1000: this answer is not used
    with pytest.raises(LLMError) as after:
        client.complete(analyst_request())

    assert crossing.value.cause == after.value.cause == "budget_exhausted"
    assert route.call_count == 2 and budget.used == 1752 and budget.remaining == 0


def test_a_long_retry_after_is_capped(api) -> None:
    slow_down = httpx.Response(503, headers={"retry-after": "600"}, json={"error": {"message": "overloaded"}})
    api.post("/chat/completions").mock(side_effect=[slow_down, replay("final_answer")])
    client, delays = make_openai()

    client.complete(analyst_request())

    assert delays == [30.0]


def test_a_body_that_is_not_json_is_malformed_and_not_retried(api) -> None:
    route = api.post("/chat/completions").mock(
        return_value=httpx.Response(200, text="<html>502 bad gateway</html>", headers={"content-type": "application/json"})
    )
    client, _ = make_openai()

    with pytest.raises(LLMError) as err:
        client.complete(analyst_request())

    assert err.value.cause == "malformed" and route.call_count == 1
    assert FAKE_KEY not in str(err.value)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_run_deadline_caps_each_attempt_and_stops_the_retries(api) -> None:
    clock = FakeClock()
    seen_read_timeouts: list[float] = []

    def slow_then_timeout(request: httpx.Request) -> httpx.Response:
        seen_read_timeouts.append(request.extensions["timeout"]["read"])
        clock.now += 6.0  # the server sits on each attempt for 6 s
        raise httpx.ReadTimeout("read timed out")

    route = api.post("/chat/completions").mock(side_effect=slow_then_timeout)
    client, delays = make_openai(max_retries=5, timeout=5.0, deadline=Deadline(10.0, clock=clock))

    with pytest.raises(LLMError) as err:
        client.complete(analyst_request())

    assert err.value.cause == "timeout"
    assert route.call_count == 2 and len(delays) == 1  # 5 retries allowed, but the deadline ends it after two
    assert seen_read_timeouts[0] == 5.0 and seen_read_timeouts[1] == pytest.approx(4.0)  # capped at the time left
    with pytest.raises(LLMError, match="deadline of 10 s has passed"):
        client.complete(analyst_request())
    assert route.call_count == 2  # no request at all once the deadline has passed
