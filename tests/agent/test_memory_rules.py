"""Offline rule 8: recalled similar long decisions that mostly lagged the benchmark halve the confidence."""

from __future__ import annotations

from typing import Any

import pytest

from agent.llm.base import LLMRequest
from agent.llm.offline import MEMORY_DAMPING, OfflineRulesClient
from agent.models import RiskPlan

BASE: dict[str, Any] = {
    "equity": 10_000.0, "cash": 10_000.0, "positions": {},
    "limits": {"max_position_weight": 0.2, "max_gross_exposure": 1.0, "max_open_positions": 5},
    "signals": {"AAA": {"analyst": {"score": 0.6, "confidence": 0.5}, "sentiment": None, "quant": None}},
    "volatility": {"AAA": 0.5},
}


def recalled(excess: float, *, long_after: bool = True, known: bool = True) -> dict[str, Any]:
    return {"date": "2020-01-02", "symbol": "ZZZ", "action": "buy", "long_after": long_after,
            "outcome": {"excess": excess, "return": excess, "benchmark": 0.0} if known else None}


def plan(**extra: Any) -> RiskPlan:
    request = LLMRequest(node="risk", messages=[], context={**BASE, **extra})
    return RiskPlan.model_validate_json(OfflineRulesClient().complete(request).content or "")


def test_mostly_losing_similar_long_decisions_halve_the_size() -> None:
    plain = plan().targets[0]
    damped = plan(memory={"AAA": [recalled(-0.02), recalled(-0.01), recalled(0.03)]}).targets[0]
    # size = min(1, 10% / vol) x score x confidence: halving the confidence halves the size
    assert damped.target_weight == pytest.approx(plain.target_weight * MEMORY_DAMPING, abs=1e-4)
    assert "memory: 2 of 3 similar long decisions lagged the benchmark" in damped.rationale


def test_too_few_known_outcomes_a_winning_record_or_no_memory_key_change_nothing() -> None:
    plain = plan()
    assert plan(memory={"AAA": [recalled(-0.02), recalled(-0.01)]}) == plain  # two are not enough
    assert plan(memory={"AAA": [recalled(-0.02), recalled(-0.01), recalled(-0.01, known=False)]}) == plain
    assert plan(memory={"AAA": [recalled(-0.02), recalled(-0.01), recalled(-0.01, long_after=False)]}) == plain
    assert plan(memory={"AAA": [recalled(-0.02), recalled(0.01), recalled(0.03), recalled(0.0)]}) == plain
    assert plan(memory={"BBB": [recalled(-0.02)] * 5}) == plain  # another symbol's recall
    assert plan(memory={}) == plain
