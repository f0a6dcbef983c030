"""``ask``: the tool-calling loop that turns one node's request into a validated output model.

Contract:
- ``ask(client, request, output_model, tools, max_rounds=4)`` sends ``request`` with the specs of ``tools``
  (and no tool specs at all when ``tools`` is empty; the request's own ``tools`` field is replaced).
- While the model answers with tool calls, each call is validated and executed, and the assistant turn plus
  one ``{"role": "tool", "tool_call_id", "content"}`` message per call are appended; then the model is asked
  again. At most ``max_rounds`` model calls are made; if the last one still wants tools: ``too_many_rounds``.
- The final ``content`` is parsed as JSON (a surrounding ```json fence is stripped; anything else that is not
  JSON: ``malformed``) and validated into ``output_model`` (failure: ``schema_mismatch``).
- At most ``MAX_TOOL_CALLS_PER_ROUND`` tool calls in one answer and ``MAX_TOOL_CALLS_PER_NODE`` in one ``ask``;
  an answer that goes over either is not run at all: ``too_many_rounds`` (the loop's bounds were exceeded).
- Returns ``AskResult(output, calls, tokens, tool_trace)``; ``tool_trace`` is one dict per tool call
  (round, id, tool, arguments, status, and the output or the error fed back) for the results file. Arguments
  and outputs longer than ``TRACE_TEXT_LIMIT`` characters of JSON are kept as the start of that JSON, marked
  as truncated (the model itself gets the whole output).
- Fails with ``AskFailed`` (an ``LLMError`` with the original cause) that still carries the calls, tokens
  and tool calls made before the failure, so an abstaining node's record is as complete as a successful one's.

Deliberate decisions:
- An unknown tool name fails at once (``unknown_tool``): the model is confused about its own powers, and
  a guessed tool is never executed.
- Arguments that are not JSON or fail the tool's pydantic input model are answered ONCE per ``ask`` with a
  tool message describing the validation errors (locations and messages, not the input), so a model can
  fix a typo; a second bad call, of any tool, raises ``bad_arguments``.
- Tool output goes back to the model as the output model's JSON. A tool that raises is an infrastructure
  failure: the exception propagates and the node abstains; it is not shown to the model.
- ``tokens`` counts recorded usage, cached responses included, so a replay reports the same figures.
- The caps exist because a server once answered 300 tool calls a round with usage 0: a 60 MB results file
  and ~1 GB of memory. Together with the client's response-size cap they bound what one node can write.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.errors import AgentError, LLMError
from agent.llm.base import LLMClient, LLMRequest, LLMResponse, ToolCall, ToolSpec

_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)

# The prompt already carries every symbol's features; tools are for a closer look at a few names. Ten calls in
# one answer is more than any of our prompts needs: beyond that the model is looping, not analysing.
MAX_TOOL_CALLS_PER_ROUND = 10
# One node's whole conversation (up to max_rounds answers): bounds the tool work, the history re-sent to the
# model each round and the trace written to the results file.
MAX_TOOL_CALLS_PER_NODE = 20
# Characters of JSON kept per traced argument or output: a screenful shows what was asked and answered, and
# MAX_TOOL_CALLS_PER_NODE entries of it keep a node's trace in the tens of KB.
TRACE_TEXT_LIMIT = 2_000


@dataclass(frozen=True)
class BoundTool:
    """A tool bound to the day's market view: its spec, its input model, and the function to run."""

    spec: ToolSpec
    input_model: type[BaseModel]
    fn: Callable[[Any], BaseModel]


@dataclass(frozen=True)
class AskResult:
    output: BaseModel
    calls: int
    tokens: int
    tool_trace: list[dict[str, Any]] = field(default_factory=list)


class AskFailed(LLMError):
    """An ``ask`` that failed part-way: its cause, and the calls, tokens and tool calls made before it."""

    def __init__(self, error: LLMError, calls: int, tokens: int, tool_trace: list[dict[str, Any]]) -> None:
        AgentError.__init__(self, str(error))
        self.cause = error.cause
        self.calls, self.tokens, self.tool_trace = calls, tokens, tool_trace


@dataclass
class _Progress:
    calls: int = 0
    tokens: int = 0
    trace: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: int = 0
    strikes: int = 0  # bad arguments answered so far


def ask(
    client: LLMClient,
    request: LLMRequest,
    output_model: type[BaseModel],
    tools: Mapping[str, BoundTool],
    *,
    max_rounds: int = 4,
) -> AskResult:
    """Run the tool loop for one node and return its validated output (or raise ``AskFailed``)."""
    if max_rounds < 1:
        raise ValueError("max_rounds must be >= 1")
    for name, bound in tools.items():
        if name != bound.spec.name:
            raise ValueError(f"tool bound as {name!r} but its spec is named {bound.spec.name!r}")
    progress = _Progress()
    try:
        output = _tool_loop(client, request, output_model, tools, max_rounds, progress)
    except LLMError as exc:
        raise AskFailed(exc, progress.calls, progress.tokens, progress.trace) from exc
    return AskResult(output, progress.calls, progress.tokens, progress.trace)


def _tool_loop(
    client: LLMClient,
    request: LLMRequest,
    output_model: type[BaseModel],
    tools: Mapping[str, BoundTool],
    max_rounds: int,
    progress: _Progress,
) -> BaseModel:
    messages: list[dict[str, Any]] = list(request.messages)
    specs = [t.spec for t in tools.values()]
    for round_no in range(1, max_rounds + 1):
        response = client.complete(request.model_copy(update={"messages": list(messages), "tools": specs}))
        progress.calls += 1
        progress.tokens += response.prompt_tokens + response.completion_tokens
        if not response.tool_calls:
            return _parse_final(response, output_model)
        _check_tool_call_caps(len(response.tool_calls), round_no, progress)
        messages.append(_assistant_turn(response))
        for call in response.tool_calls:
            reply = _run_tool_call(call, tools, round_no, progress)
            if reply is not None:
                messages.append(_tool_message(call, reply))
    raise LLMError("too_many_rounds", f"still calling tools after {max_rounds} rounds")


def _check_tool_call_caps(count: int, round_no: int, progress: _Progress) -> None:
    if count > MAX_TOOL_CALLS_PER_ROUND:
        raise LLMError(
            "too_many_rounds", f"{count} tool calls in round {round_no} (at most {MAX_TOOL_CALLS_PER_ROUND})"
        )
    progress.tool_calls += count
    if progress.tool_calls > MAX_TOOL_CALLS_PER_NODE:
        raise LLMError("too_many_rounds", f"more than {MAX_TOOL_CALLS_PER_NODE} tool calls in one node")


def _run_tool_call(call: ToolCall, tools: Mapping[str, BoundTool], round_no: int, progress: _Progress) -> Any:
    """Run (or refuse) one tool call, trace it, and return what the model is told; raise to end the node."""
    tool = tools.get(call.name)
    entry: dict[str, Any] = {"round": round_no, "id": call.id[:64], "tool": call.name[:64]}
    if tool is None:
        offered = ", ".join(sorted(tools)) or "none"
        progress.trace.append({**entry, "arguments": _clip(call.arguments), "status": "unknown_tool"})
        raise LLMError("unknown_tool", f"model called {call.name[:64]!r}; tools offered: {offered}")
    try:
        args = tool.input_model.model_validate_json(call.arguments)
    except ValidationError as exc:
        progress.strikes += 1
        problem = _describe_validation(exc)
        progress.trace.append({**entry, "arguments": _clip(call.arguments), "status": "bad_arguments", "error": problem})
        if progress.strikes > 1:
            raise LLMError("bad_arguments", f"{call.name}: {problem}") from None
        return {"error": f"invalid arguments: {problem}. Fix and retry."}
    payload = tool.fn(args).model_dump(mode="json")
    arguments = args.model_dump(mode="json")
    progress.trace.append({**entry, "arguments": _bounded(arguments), "status": "ok", "output": _bounded(payload)})
    return payload


def _clip(text: str) -> str:
    if len(text) <= TRACE_TEXT_LIMIT:
        return text
    return f"{text[:TRACE_TEXT_LIMIT]}… [truncated from {len(text)} characters]"


def _bounded(value: Any) -> Any:
    """``value`` itself when its JSON fits in ``TRACE_TEXT_LIMIT`` characters, else the start of that JSON."""
    text = json.dumps(value, sort_keys=True)
    return value if len(text) <= TRACE_TEXT_LIMIT else _clip(text)


def parse_json_answer(content: str | None) -> Any:
    """The JSON value in ``content`` (a ```json fence is allowed around it); ``malformed`` otherwise."""
    if content is None or not content.strip():
        raise LLMError("malformed", "empty answer")
    text = content.strip()
    if match := _FENCE.match(text):
        text = match.group(1)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LLMError("malformed", f"answer is not JSON ({exc.msg} at char {exc.pos})") from None


def _parse_final(response: LLMResponse, output_model: type[BaseModel]) -> BaseModel:
    obj = parse_json_answer(response.content)
    try:
        return output_model.model_validate(obj)
    except ValidationError as exc:
        raise LLMError("schema_mismatch", f"{output_model.__name__}: {_describe_validation(exc)}") from None


def _describe_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _assistant_turn(response: LLMResponse) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": response.content,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in response.tool_calls
        ],
    }


def _tool_message(call: ToolCall, payload: Any) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call.id, "content": json.dumps(payload, sort_keys=True)}
