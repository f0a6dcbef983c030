"""OpenAIClient against a loopback server that drips, floods or echoes the key: the real socket path, no respx."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from pydantic import SecretStr

from agent.errors import LLMError
from agent.llm.base import Deadline, TokenBudget
from agent.llm.openai_client import MAX_RESPONSE_BYTES, OpenAIClient
from tests.agent import loopback_llm as srv
from tests.agent._llm_support import FAKE_KEY, analyst_request

ANSWER = {"signals": [{"symbol": "SP500", "score": 0.1, "confidence": 0.5, "rationale": "flat"}]}
WEBHOOK = "https://discord.com/api/webhooks/123456/SECRET-webhook-token"


def _client(url: str, **overrides: Any) -> OpenAIClient:
    kwargs: dict[str, Any] = {"base_url": url, "api_key": SecretStr(FAKE_KEY), "model": "gpt-4o-mini",
                              "timeout": 2.0, "max_retries": 0}
    kwargs.update(overrides)
    return OpenAIClient(**kwargs)


def _answer_bytes() -> bytes:
    return json.dumps(srv.completion({"content": json.dumps(ANSWER)})).encode()


def _wait_for_hang_up(record: dict[str, Any], seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if record.get("hung_up"):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("drip_headers", [False, True], ids=["body", "headers"])
def test_a_server_dripping_one_byte_at_a_time_is_cut_at_the_call_timeout(drip_headers: bool) -> None:
    # a byte every 0.3 s never trips a 2 s read timeout: only a bound on the whole exchange ends this
    drip = srv.Drip(_answer_bytes(), interval=0.3, drip_headers=drip_headers, give_up=40.0)
    with srv.serve(lambda body: (200, drip)) as (url, seen):
        started = time.monotonic()
        with pytest.raises(LLMError) as err:
            _client(url, timeout=2.0).complete(analyst_request())
        elapsed = time.monotonic() - started
        assert err.value.cause == "timeout"
        assert elapsed < 15
        assert _wait_for_hang_up(seen[0]), "the client must close the socket, not leave a read running"


def test_the_run_deadline_cuts_a_dripping_answer_before_the_call_timeout() -> None:
    drip = srv.Drip(_answer_bytes(), interval=0.3, give_up=40.0)
    with srv.serve(lambda body: (200, drip)) as (url, seen):
        started = time.monotonic()
        with pytest.raises(LLMError) as err:
            _client(url, timeout=30.0, max_retries=3, deadline=Deadline(2.0)).complete(analyst_request())
        assert err.value.cause == "timeout" and time.monotonic() - started < 15
        assert len(seen) == 1  # no retry once the deadline is spent


@pytest.mark.parametrize("content_length", [True, False], ids=["declared", "read-until-close"])
def test_an_oversized_answer_is_refused_before_it_is_read_whole(content_length: bool) -> None:
    total = 16 * MAX_RESPONSE_BYTES
    body = json.dumps(srv.completion({"content": "x" * total})).encode()
    flood = srv.Drip(body, chunk=1 << 16, content_length=content_length)
    with srv.serve(lambda _: (200, flood)) as (url, seen):
        with pytest.raises(LLMError) as err:
            _client(url, timeout=10.0, max_retries=2).complete(analyst_request())
        assert err.value.cause == "malformed" and "larger than" in str(err.value)
        assert _wait_for_hang_up(seen[0])
        assert seen[0]["written"] < total / 2  # socket buffers hold some MB; the rest was never sent
        assert len(seen) == 1  # an oversized answer is not retried


def test_a_server_reporting_no_usage_is_charged_an_estimate() -> None:
    def no_usage(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        answer = srv.completion({"content": json.dumps(ANSWER) + " " * 4000})
        answer["usage"] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        return 200, answer

    budget = TokenBudget(100_000)
    with srv.serve(no_usage) as (url, _):
        response = _client(url, budget=budget).complete(analyst_request())
    assert response.completion_tokens >= 1000 and response.prompt_tokens > 0
    assert budget.used == response.prompt_tokens + response.completion_tokens


def test_a_key_echoed_inside_a_valid_answer_never_leaves_the_client() -> None:
    def echo(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        rationale = f"your key is {FAKE_KEY} and your hook {WEBHOOK}"
        answer = {"signals": [{"symbol": "SP500", "score": 0.1, "confidence": 0.5, "rationale": rationale}]}
        call = {"id": f"call-{FAKE_KEY}", "type": "function",
                "function": {"name": "get_indicators", "arguments": json.dumps({"symbol": FAKE_KEY, "window": 5})}}
        return 200, srv.completion({"content": json.dumps(answer), "tool_calls": [call]}, model=f"m-{FAKE_KEY}")

    with srv.serve(echo) as (url, _):
        response = _client(url, secrets=(WEBHOOK,)).complete(analyst_request())
    dumped = response.model_dump_json()
    assert FAKE_KEY not in dumped and WEBHOOK not in dumped and "SECRET-webhook" not in dumped
    assert "your key is ***" in (response.content or "")
    assert json.loads(response.tool_calls[0].arguments) == {"symbol": "***", "window": 5}


def test_an_attempt_cut_by_the_watchdog_is_retried_within_the_bounded_retries() -> None:
    drip = srv.Drip(_answer_bytes(), interval=0.3, give_up=40.0)
    with srv.serve(lambda body: (200, drip)) as (url, seen):
        started = time.monotonic()
        with pytest.raises(LLMError) as err:
            _client(url, timeout=1.0, max_retries=1, sleep=lambda _s: None).complete(analyst_request())
        assert err.value.cause == "timeout" and "after 2 attempts" in str(err.value)
        assert len(seen) == 2 and time.monotonic() - started < 15
