"""Position sizing helpers: pure functions, weights as fractions of equity, always clipped to [0, cap].

Deliberate decisions: any non-finite or out-of-domain input sizes to 0 (no bet), never raises. These only
PROPOSE a size; the risk guard still clamps every order.
"""

from __future__ import annotations

import math


def _finite(*xs: float) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in xs)


def fractional_kelly(win_prob: float, win_loss_ratio: float, fraction: float = 0.5) -> float:
    """Kelly fraction ``p - (1 - p) / b`` scaled by ``fraction`` and clipped to [0, 1]."""
    if not _finite(win_prob, win_loss_ratio, fraction) or not 0 <= win_prob <= 1 or win_loss_ratio <= 0:
        return 0.0
    kelly = win_prob - (1.0 - win_prob) / win_loss_ratio
    if not math.isfinite(kelly):  # a subnormal ratio overflows to -inf, and -inf × 0 would be NaN
        return 0.0
    return min(max(kelly * max(fraction, 0.0), 0.0), 1.0)


def volatility_target_weight(volatility: float, target_volatility: float = 0.15, cap: float = 1.0) -> float:
    """Weight that scales a position to ``target_volatility`` (annualised): ``target / volatility``, capped."""
    if not _finite(volatility, target_volatility, cap) or volatility <= 0 or target_volatility <= 0 or cap <= 0:
        return 0.0
    return min(target_volatility / volatility, cap)


def volatility_adjusted_kelly(
    win_prob: float,
    win_loss_ratio: float,
    *,
    volatility: float,
    target_volatility: float = 0.15,
    fraction: float = 0.5,
) -> float:
    """Fractional Kelly, shrunk when the asset is more volatile than the target (never scaled up)."""
    kelly = fractional_kelly(win_prob, win_loss_ratio, fraction)
    scale = volatility_target_weight(volatility, target_volatility, cap=1.0)
    return min(max(kelly * scale, 0.0), 1.0)
