"""make_client, TokenBudget, tool_spec and the error types."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from agent.errors import LLM_CAUSES, AgentError, LLMError, redact
from agent.llm.base import TokenBudget, tool_spec
from agent.llm.cache import CachedClient
from agent.llm.factory import NO_KEY_MESSAGE, make_client
from agent.llm.offline import OfflineRulesClient
from agent.llm.openai_client import OpenAIClient
from agent.settings import Settings
from tests.agent._llm_support import FAKE_KEY, IndicatorsInput, analyst_request, get_indicators

BRIEF_CAUSES = {"timeout", "rate_limited", "server_error", "connection", "auth", "budget_exhausted", "refusal",
                "truncated", "malformed", "unknown_tool", "bad_arguments", "cache_miss", "too_many_rounds",
                "schema_mismatch"}


def settings(tmp_path: Path, key: str | None) -> Settings:
    return Settings(home=tmp_path, openai_api_key=SecretStr(key) if key is not None else None, _env_file=None)


def test_no_key_and_no_choice_means_offline(tmp_path: Path) -> None:
    assert isinstance(make_client(settings(tmp_path, None), None), OfflineRulesClient)
    assert isinstance(make_client(settings(tmp_path, "   "), None), OfflineRulesClient)


def test_a_key_and_no_choice_means_openai(tmp_path: Path) -> None:
    client = make_client(settings(tmp_path, FAKE_KEY), None)

    assert isinstance(client, OpenAIClient) and client.provider == "openai" and client.model == "gpt-4o-mini"
    assert FAKE_KEY not in repr(client)


def test_offline_wins_when_asked_even_with_a_key(tmp_path: Path) -> None:
    assert isinstance(make_client(settings(tmp_path, FAKE_KEY), "offline", "record"), OfflineRulesClient)


def test_openai_without_a_key_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(AgentError) as err:
        make_client(settings(tmp_path, None), "openai")

    assert str(err.value) == NO_KEY_MESSAGE == "OPENAI_API_KEY is not set; use --llm offline"


def test_cache_modes_wrap_openai_under_the_settings_cache_dir(tmp_path: Path) -> None:
    client = make_client(settings(tmp_path, FAKE_KEY), "openai", "record", TokenBudget(10))

    assert isinstance(client, CachedClient) and client.mode == "record"
    assert client.cache_dir == tmp_path / "llm_cache" and isinstance(client.inner, OpenAIClient)


def test_replay_needs_no_key_and_never_reaches_a_server(tmp_path: Path) -> None:
    client = make_client(settings(tmp_path, None), "openai", "replay")

    with pytest.raises(LLMError) as err:
        client.complete(analyst_request())

    assert client.provider == "openai" and client.model == "gpt-4o-mini" and err.value.cause == "cache_miss"


def test_the_budget_checks_before_and_charges_after() -> None:
    budget = TokenBudget(100)
    budget.check()
    budget.charge(60)
    budget.charge(40)  # exactly the limit: allowed, but nothing is left
    with pytest.raises(LLMError) as before:
        budget.check()
    with pytest.raises(LLMError) as over:
        budget.charge(1)

    assert before.value.cause == over.value.cause == "budget_exhausted" and budget.used == 101
    with pytest.raises(ValueError):
        TokenBudget(0)


def test_a_tool_spec_takes_its_description_from_the_docstring_and_its_schema_from_the_model() -> None:
    spec = tool_spec("get_indicators", get_indicators, IndicatorsInput)

    assert spec.description == get_indicators.__doc__
    assert spec.parameters["properties"]["window"]["type"] == "integer"
    assert spec.parameters["required"] == ["symbol", "window"] and "title" not in spec.parameters


def test_a_tool_without_a_docstring_is_refused() -> None:
    class Empty(BaseModel):
        pass

    def undocumented(args: Empty) -> Empty:
        return args

    with pytest.raises(ValueError, match="docstring"):
        tool_spec("undocumented", undocumented, Empty)


def test_llm_errors_carry_a_known_cause_on_one_line() -> None:
    err = LLMError("server_error", "HTTP 500:\n  the   engine\nis overloaded " + "x" * 400)

    assert err.cause == "server_error" and isinstance(err, AgentError)
    assert "\n" not in str(err) and len(str(err)) <= 300 and str(err).startswith("LLM server_error: HTTP 500")
    assert BRIEF_CAUSES <= LLM_CAUSES
    with pytest.raises(ValueError):
        LLMError("oops")  # type: ignore[arg-type]


def test_redact_removes_the_key_and_anything_shaped_like_one() -> None:
    text = f"key {FAKE_KEY} or sk-proj-abc***********wxyz or api_key=hunter2hunter2 or Authorization: Bearer abcdefgh"

    cleaned = redact(text, FAKE_KEY)

    assert FAKE_KEY not in cleaned and "sk-proj" not in cleaned and "hunter2" not in cleaned and "abcdefgh" not in cleaned
