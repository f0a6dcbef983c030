"""The LLM protocol every client speaks, and the token budget shared by one run.

Contract:
- A node renders its prompt into ``LLMRequest.messages`` (OpenAI chat format) and keeps the structured facts
  the prompt was rendered from in ``LLMRequest.context``. Only the offline rule policy reads ``context``: it is
  never sent to a server and is not part of the cache key (the rendered messages are).
- ``LLMClient.complete`` makes ONE model call and returns an ``LLMResponse``: tool calls to run, or final
  ``content``. The tool loop lives in ``runner.ask``, not in clients.
- Failures raise ``agent.errors.LLMError`` with a cause slug; a client never returns an empty response to
  mean "failed".
- ``TokenBudget`` is shared by all nodes of one run. It is checked before every call (an exhausted budget
  makes no call) and charged after it; the charge that crosses the limit raises ``budget_exhausted``, so
  the answer that overspent is not used either.

Deliberate decisions:
- ``tool_spec`` takes the tool's description from its function's docstring (DESIGN: "its docstring is the
  description the LLM sees") and its JSON schema from the pydantic input model, so the two cannot drift.
- The budget is a plain class with a lock: it is mutable and the graph may run nodes in parallel threads.
- ``estimate_tokens`` (characters / 4, rounded up: OpenAI's rule of thumb for English) stands in for a usage
  count a server does not report. It undercounts JSON and non-Latin text; it is there so that a server
  reporting nothing cannot spend the budget for free, not to bill precisely.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from agent.errors import LLMError


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolSpec(_Frozen):
    """A tool as the model sees it: name, description, JSON schema of its arguments."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str
    parameters: dict[str, Any]


class ToolCall(_Frozen):
    """One tool call the model asked for; ``arguments`` is the raw JSON text the model wrote."""

    id: str
    name: str
    arguments: str


class LLMRequest(_Frozen):
    node: str
    messages: list[dict[str, Any]]
    tools: list[ToolSpec] = Field(default_factory=list)
    response_schema: dict[str, Any] | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    temperature: float = 0.0
    max_tokens: int = Field(default=1500, gt=0)


class LLMResponse(_Frozen):
    content: str | None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str
    provider: str
    cached: bool = False

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@runtime_checkable
class LLMClient(Protocol):
    provider: str  # "openai" | "offline-rules"
    model: str

    def complete(self, request: LLMRequest) -> LLMResponse: ...


CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb for English text; good enough to make the budget bite


def estimate_tokens(text: str) -> int:
    """A rough token count of ``text`` (characters / ``CHARS_PER_TOKEN``, rounded up), for unreported usage."""
    return -(-len(text) // CHARS_PER_TOKEN)


def tool_spec(name: str, fn: Callable[..., Any], input_model: type[BaseModel]) -> ToolSpec:
    """The ``ToolSpec`` of ``fn``: description from its docstring, parameters from ``input_model``'s schema."""
    description = inspect.getdoc(fn)
    if not description:
        raise ValueError(f"tool {name!r}: its function needs a docstring (the model reads it)")
    schema = input_model.model_json_schema()
    schema.pop("title", None)  # the model needs the shape, not the Python class name
    return ToolSpec(name=name, description=description, parameters=schema)


class TokenBudget:
    """Prompt + completion tokens allowed to one run, across all nodes and threads."""

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("token budget limit must be positive")
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self._used)

    @property
    def exhausted(self) -> bool:
        return self._used >= self.limit

    def check(self) -> None:
        """Raise ``budget_exhausted`` before a call when nothing is left."""
        if self.exhausted:
            raise LLMError("budget_exhausted", f"token budget of {self.limit} already spent")

    def charge(self, tokens: int) -> None:
        """Add ``tokens``; raise ``budget_exhausted`` once the total exceeds the limit."""
        with self._lock:
            self._used += max(0, tokens)
            used = self._used
        if used > self.limit:
            raise LLMError("budget_exhausted", f"used {used} of {self.limit} tokens")


class Deadline:
    """Wall-clock seconds allowed to one run's LLM calls, across all nodes, retries and tool rounds.

    Timeouts and retries bound one call; this bounds the day: a server that answers just under the timeout
    on every attempt of every round cannot stretch a daily run past ``seconds``.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not seconds > 0:
            raise ValueError("deadline seconds must be positive")
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - self._clock())

    def check(self) -> float:
        """The seconds left; ``timeout`` when none are."""
        left = self.remaining()
        if left <= 0:
            raise LLMError("timeout", f"the run's LLM deadline of {self.seconds:g} s has passed")
        return left
