"""What each node of the daily graph produces: the shapes every LLM answer is parsed into.

Each model is what a node's LLM (or the offline rule policy) must return as its final JSON answer.
Bounds are enforced here (scores in [-1, 1], weights in [0, 1]): an answer outside them fails
validation and the node abstains, rather than being silently clipped.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SymbolSignal(_Frozen):
    symbol: str
    score: float = Field(ge=-1.0, le=1.0, description="-1 strong sell … 0 neutral … +1 strong buy")
    confidence: float = Field(ge=0.0, le=1.0)
    rationale: str = Field(max_length=600)


class AnalystReport(_Frozen):
    """Technical analyst: one signal per symbol it has an opinion on."""

    signals: list[SymbolSignal]


class SentimentReport(_Frozen):
    """Sentiment: a bounded score per symbol. The node that writes it sees untrusted text and has no tools."""

    signals: list[SymbolSignal]


class QuantReport(_Frozen):
    """Quant models (XGBoost, PPO) turned into a bounded score per symbol."""

    signals: list[SymbolSignal]


class TargetWeight(_Frozen):
    symbol: str
    target_weight: float = Field(ge=0.0, le=1.0, description="fraction of portfolio equity; 0 = no position")
    rationale: str = Field(max_length=600)


class RiskPlan(_Frozen):
    """Risk manager (LLM sizing): target weights. The hard-coded guard still checks every resulting order."""

    targets: list[TargetWeight]
    comment: str = Field(default="", max_length=1000)


class NodeOutcome(_Frozen):
    """What a node did, for the results file: its parsed output, or why it abstained."""

    node: str
    status: Literal["ok", "abstained"]
    output: dict | None = None
    abstain_reason: str | None = None  # a cause slug (agent.errors.LLMCause, or error:<Type>, cache_miss …)
    abstain_detail: str | None = None  # one redacted line for people
    llm: str
    prompt: str | None = None
    prompt_hash: str | None = None
    llm_calls: int = 0
    tokens: int = 0
    seconds: float = 0.0
    tool_calls: list[dict] = Field(default_factory=list)  # each call: tool, arguments, status, output the model saw
