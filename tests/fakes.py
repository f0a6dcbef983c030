"""Shared test fakes. Names read as sentences: ``ScriptedLLM([tool_call_response(...), final_answer(...)])``.

- ``ScriptedLLM``: an ``LLMClient`` that plays back a script of responses (or raises scripted exceptions)
  and records every request it was sent, so a test can assert what a node asked.
- ``FixedClock``: a clock that says what time it is only when told; ``advance`` moves it.
- ``tool_call_response(name, args)`` / ``final_answer(obj)``: the two kinds of model answer.
"""

from __future__ import annotations

import itertools
import json
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from agent.llm.base import LLMRequest, LLMResponse, ToolCall

_ids = itertools.count(1)


class ScriptedLLM:
    """Answers each ``complete`` with the next scripted response; an exception in the script is raised."""

    provider = "scripted"

    def __init__(self, responses: list[LLMResponse | Exception], model: str = "scripted-v1") -> None:
        self.model = model
        self._script = list(responses)
        self.requests: list[LLMRequest] = []

    @property
    def calls(self) -> int:
        return len(self.requests)

    @property
    def remaining(self) -> int:
        return len(self._script)

    def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        if not self._script:
            raise AssertionError(f"ScriptedLLM ran out of responses at call {len(self.requests)}")
        item = self._script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


class FixedClock:
    """A clock frozen at ``now`` until ``advance`` is called; callable like ``datetime.now``."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def __call__(self) -> datetime:
        return self._now

    def now(self) -> datetime:
        return self._now

    def today(self) -> date:
        return self._now.date()

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def tool_call_response(
    name: str, args: dict[str, Any] | str, *, call_id: str | None = None, tokens: int = 10
) -> LLMResponse:
    """A model answer asking for one tool call (``args`` as a dict, or raw text to fake bad JSON)."""
    arguments = args if isinstance(args, str) else json.dumps(args)
    return LLMResponse(
        content=None,
        tool_calls=[ToolCall(id=call_id or f"call_{next(_ids)}", name=name, arguments=arguments)],
        finish_reason="tool_calls",
        prompt_tokens=tokens,
        completion_tokens=tokens,
        model="scripted-v1",
        provider="scripted",
    )


def final_answer(obj: BaseModel | dict[str, Any] | list[Any] | str, *, tokens: int = 10) -> LLMResponse:
    """A model's final answer: ``obj`` as JSON (a str is sent verbatim, to fake malformed answers)."""
    if isinstance(obj, BaseModel):
        content = obj.model_dump_json()
    elif isinstance(obj, str):
        content = obj
    else:
        content = json.dumps(obj)
    return LLMResponse(
        content=content,
        tool_calls=[],
        finish_reason="stop",
        prompt_tokens=tokens,
        completion_tokens=tokens,
        model="scripted-v1",
        provider="scripted",
    )


def ctrl_c_as_in_a_terminal() -> None:
    """``preexec_fn`` of a child the test stops with SIGINT: a child inherits an IGNORED SIGINT from a suite started
    in the background (``make test &``, nohup), and Python then installs no KeyboardInterrupt handler, so the
    child would never see the test's Ctrl-C. A terminal's Ctrl-C reaches a default handler: restore it."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
