"""Helpers for the LLM tests: OpenAI cassettes (tests/data/openai/*.json), a fake key, a tiny bound tool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from agent.llm.base import LLMRequest, tool_spec
from agent.llm.openai_client import OpenAIClient
from agent.llm.runner import BoundTool

CASSETTES = Path(__file__).resolve().parents[1] / "data" / "openai"
BASE_URL = "http://llm.test/v1"
FAKE_KEY = "sk-test-TRADEAGENT-FAKE-KEY-0123456789abcdef"


def cassette(name: str) -> dict[str, Any]:
    return json.loads((CASSETTES / f"{name}.json").read_text())


def replay(name: str) -> httpx.Response:
    """The recorded HTTP response ``name`` as an httpx response for a respx route."""
    c = cassette(name)
    return httpx.Response(c["status"], headers=c["headers"], json=c["body"])


def sent_json(route: Any, index: int = -1) -> dict[str, Any]:
    """The JSON body of the ``index``-th request a respx route received."""
    return json.loads(route.calls[index].request.content)


def make_openai(**overrides: Any) -> tuple[OpenAIClient, list[float]]:
    """An OpenAIClient against BASE_URL with a recording sleep (no real waiting); returns (client, delays)."""
    delays: list[float] = []
    kwargs: dict[str, Any] = {
        "base_url": BASE_URL,
        "api_key": SecretStr(FAKE_KEY),
        "model": "gpt-4o-mini",
        "timeout": 5.0,
        "max_retries": 2,
        "budget": None,
        "sleep": delays.append,
    }
    kwargs.update(overrides)
    return OpenAIClient(**kwargs), delays


def analyst_request(**overrides: Any) -> LLMRequest:
    fields: dict[str, Any] = {
        "node": "analyst",
        "messages": [
            {"role": "system", "content": "You are a cautious analyst. Answer only JSON."},
            {"role": "user", "content": "Analyse SP500 as of 2024-03-01."},
        ],
        "response_schema": {"type": "object", "properties": {"signals": {"type": "array"}}},
    }
    fields.update(overrides)
    return LLMRequest(**fields)


class IndicatorsInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbol: str
    window: int


class IndicatorsOutput(BaseModel):
    symbol: str
    window: int
    sma: float


def get_indicators(args: IndicatorsInput) -> IndicatorsOutput:
    """Simple moving average of a symbol's close over `window` sessions, as of the decision date."""
    return IndicatorsOutput(symbol=args.symbol, window=args.window, sma=4321.5)


def indicator_tools(calls: list[IndicatorsInput] | None = None) -> dict[str, BoundTool]:
    def run(args: IndicatorsInput) -> IndicatorsOutput:
        if calls is not None:
            calls.append(args)
        return get_indicators(args)

    spec = tool_spec("get_indicators", get_indicators, IndicatorsInput)
    return {"get_indicators": BoundTool(spec=spec, input_model=IndicatorsInput, fn=run)}
