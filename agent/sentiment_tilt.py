"""The only way the sentiment node's output reaches an order: a bounded tilt of the risk plan's targets, in code.

Contract (rule 7 of prompts/offline_rules.md; it applies to an LLM's plan exactly as to the offline rules'):
- The risk node never sees the sentiment node's scores (``agent.nodes._signals`` gives it analyst and quant).
- ``tilt_plan(plan, signals, max_weight)``: for each target the plan gives a POSITIVE weight, and only those,
  ``target' = clip(target + SENTIMENT_CAP × score × confidence, 0, max_weight)`` with the sentiment node's
  score in [-1, 1] and confidence in [0, 1]. A target of 0 (exit, or stay out) is never changed, and a symbol
  the plan does not list gets no target: sentiment alone never opens a position, nor holds back an exit.
- The decision node judges the rebalance band on the plan's own change (target - held weight) and, when that
  passes the band, trades the tilted change if it has the same sign (else nothing). So, against the same day
  without news, an order's weight differs by at most ``SENTIMENT_CAP`` per symbol, no order appears that the
  plan did not already make, and no order changes side. ``SENTIMENT_CAP`` = 0.02 (2 points of equity).

Deliberate decisions:
- The cap bounds what injected text can do even if the model reading it obeys it completely: the sentiment
  node's schema bounds the score to [-1, 1], and this function bounds what that score can move.
"""

from __future__ import annotations

from typing import Any

from agent.models import RiskPlan, TargetWeight

SENTIMENT_CAP = 0.02


def sentiment_signals(outcome: dict[str, Any] | None) -> dict[str, tuple[float, float]]:
    """symbol -> (score, confidence) from the sentiment node's outcome; empty when it abstained."""
    if not outcome or outcome.get("status") != "ok":
        return {}
    out: dict[str, tuple[float, float]] = {}
    for sig in (outcome.get("output") or {}).get("signals", []):
        score = max(-1.0, min(1.0, float(sig["score"])))
        confidence = max(0.0, min(1.0, float(sig["confidence"])))
        out.setdefault(str(sig["symbol"]), (score, confidence))  # a symbol given twice: the first one counts
    return out


def tilt_plan(
    plan: RiskPlan, signals: dict[str, tuple[float, float]], max_weight: float
) -> tuple[RiskPlan, list[dict[str, Any]]]:
    """The plan with its positive targets tilted (see the module doc), and one record per tilted target."""
    targets: list[TargetWeight] = []
    records: list[dict[str, Any]] = []
    for target in plan.targets:
        sig = signals.get(target.symbol)
        if sig is None or target.target_weight <= 0.0:
            targets.append(target)
            continue
        score, confidence = sig
        shift = SENTIMENT_CAP * score * confidence
        tilted = min(max(target.target_weight + shift, 0.0), max(target.target_weight, max_weight))
        tilted = round(tilted, 6)
        if tilted == target.target_weight:
            targets.append(target)
            continue
        why = f"; sentiment {score:+.2f}@{confidence:.2f} tilts {target.target_weight:.4f} -> {tilted:.4f}"
        rationale = target.rationale[: 600 - len(why)] + why
        targets.append(target.model_copy(update={"target_weight": tilted, "rationale": rationale}))
        records.append({"symbol": target.symbol, "plan": target.target_weight, "tilted": tilted,
                        "score": score, "confidence": confidence})
    return plan.model_copy(update={"targets": targets}), records
