"""Rule 9's drawdown brake enforced in code on any risk plan, an LLM's included (like ``agent.sentiment_tilt``).

Contract:
- ``cap_plan(plan, tilted, features, positions, max_weight, profile, share)``: while the brake allows ``share`` < 1
  of each size, every target of the plan and of its sentiment-tilted twin is at most ``agent.profiles.brake_cap``
  (share × min(max_weight, vol_target / vol_20, 1)), or the weight held when that is within the profile's band
  above the cap (the rules keep such a weight rather than trade a few points); a held name the plan leaves out
  gets that cap as its target.
  Returns both plans and the cuts made, ``{symbol, plan, cap}`` (``plan`` null for a name left out).
- The offline rules cap their own targets at share × their size, never above this cap: their plans pass
  unchanged, and the cuts list says when an LLM's plan ignored the brake (found by an attacker: the prompt told
  the model, nothing in code held it, and the reports said the sizes were capped).

Deliberate decisions:
- The cap takes the size at its loosest (no spread, no memory halving): it must never cut what the rules decide,
  and it bounds what a model that ignores its brief can do. No volatility estimate: no cap (the rules do not size
  such a name either); the guard's limits and the drawdown breaker still bound it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent.models import RiskPlan, TargetWeight
from agent.profiles import Profile, brake_cap
from portfolio.models import PositionView


def cap_plan(
    plan: RiskPlan, tilted: RiskPlan, features: Mapping[str, Mapping[str, Any]], positions: Sequence[PositionView],
    max_weight: float, profile: Profile, share: float,
) -> tuple[RiskPlan, RiskPlan, list[dict[str, Any]]]:
    weights = {p.symbol: max(0.0, p.weight) for p in positions}
    keep_within = 1.0 - min(max(profile.band, 0.0), 0.99)

    def cap(symbol: str) -> float | None:
        c = brake_cap(profile, share, (features.get(symbol) or {}).get("vol_20"), max_weight)
        if c is None:
            return None
        held = weights.get(symbol, 0.0)  # a weight within the profile's band above the cap may be kept, as the rules
        return max(c, held) if held <= c / keep_within else c  # keep it (no churn); beyond the band: the cap

    cuts: list[dict[str, Any]] = []
    out_plan: list[TargetWeight] = []
    out_tilted: list[TargetWeight] = []
    for planned, target in zip(plan.targets, tilted.targets, strict=True):
        c = cap(planned.symbol)
        if c is not None and planned.target_weight > c + 1e-6:
            cuts.append({"symbol": planned.symbol, "plan": planned.target_weight, "cap": round(c, 6)})
            why = f"{planned.rationale}; capped in code by the drawdown brake at {c:.4f}"[:600]
            planned = planned.model_copy(update={"target_weight": c, "rationale": why})
        if c is not None and target.target_weight > c:
            target = target.model_copy(update={"target_weight": c, "rationale": planned.rationale})
        out_plan.append(planned)
        out_tilted.append(target)
    named = {t.symbol for t in plan.targets}
    for p in positions:
        c = cap(p.symbol)
        if p.symbol not in named and p.quantity > 0 and c is not None and p.weight > c + 1e-6:
            cuts.append({"symbol": p.symbol, "plan": None, "cap": round(c, 6)})
            left_out = TargetWeight(symbol=p.symbol, target_weight=c, rationale=(
                f"not in the risk node's plan; capped in code by the drawdown brake at {c:.4f}"))
            out_plan.append(left_out)
            out_tilted.append(left_out)
    return plan.model_copy(update={"targets": out_plan}), tilted.model_copy(update={"targets": out_tilted}), cuts
