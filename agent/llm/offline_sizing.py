"""Rule 9's book-level steps of the offline risk rules (``agent.llm.offline``; ``prompts/offline_rules.md``).

Split from the per-symbol rules so that each module stays short: the drawdown brake and the smallest trade it may
leave, the gross step with the rebalance band, and correlated names as one exposure. Pure functions of the
risk node's context and the plan being built; the same inputs give the same outputs.
"""

from __future__ import annotations

import math
from collections.abc import Set as AbstractSet
from typing import Any

from agent.profiles import brake_share, pair_correlation

REBALANCE_BAND = 0.02  # weight changes smaller than 2 points of equity are not traded (no churn)
DEFAULT_MAX_DRAWDOWN = 0.20  # the guard's ceiling, when the context's limits leave it out


def num(value: Any) -> float | None:
    if value is None:
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def smallest_trade(ctx: dict[str, Any], limits: dict[str, Any]) -> float:
    """The guard's ``min_trade_value`` as a share of equity (0 when either is unknown)."""
    equity, smallest = num(ctx.get("equity")), num(limits.get("min_trade_value"))
    return smallest / equity if equity and equity > 0 and smallest and smallest > 0 else 0.0


def brake(profile: dict[str, Any] | None, drawdown: float | None, limits: dict[str, Any]) -> tuple[float, str]:
    """Rule 9's brake (``agent.profiles.brake_share``) and the reason a capped target gives (1, "": no brake).

    The limit is read only when the profile has a brake: without one, the context is read exactly as in v8.
    """
    brake = (num(profile.get("brake")) or 0.0) if profile else 0.0
    if brake <= 0 or drawdown is None:
        return 1.0, ""
    limit = num(limits.get("max_drawdown"))
    limit = DEFAULT_MAX_DRAWDOWN if limit is None else limit
    share = brake_share(brake, drawdown, limit)
    if share >= 1:
        return 1.0, ""
    return share, f"drawdown {drawdown:.1%} (brake from {min(brake, 1.0) * limit:.1%}, 0 at {limit:.1%})"


def gross_step(plan: dict[str, tuple[float, float, str]], positions: dict[str, float], gross_cap: float,
                band: float, braked: AbstractSet[str] = frozenset()) -> dict[str, tuple[float, str]]:
    """Rule 9's last step: fit the plan under ``gross_cap`` by scaling what trades, then apply the band.

    A target equal to the held weight (hysteresis, no signal, no volatility, not adding to a loser) is kept as
    it is. The names that trade (entries and resizes) share the gross left by the kept ones, scaled down
    together when they do not fit: a new name takes only the room the kept ones leave (a full book opens a new
    name as a held one is closed, it does not trim every name to make room). A held name whose scaled size is
    within max(2 points, ``band`` × its weight) of what it holds is then kept too, and the rest are scaled
    again, until nothing changes. Judging
    the band on the scaled size is what stops a universe of many names (whose sizes the cap always scales)
    from trading every name a little every day. A book whose kept names alone exceed the cap is scaled whole.
    A sale of a name the brake cut (``braked``) is judged by ``band`` × its weight alone: the 2-point floor would
    keep a few points of every name near the breaker, which a small further fall then carries into it.
    """
    held = {s: max(0.0, positions.get(s, 0.0)) for s in plan}
    keep = {s for s, (t, _, _) in plan.items() if t > 0 and held[s] > 0 and abs(t - held[s]) < 1e-12}
    while True:
        moving = [s for s, (t, _, _) in plan.items() if t > 0 and s not in keep]
        room = gross_cap - sum(held[s] for s in keep)
        wanted = sum(plan[s][0] for s in moving)
        factor = 1.0 if wanted <= room or wanted <= 0 else max(0.0, room) / wanted
        settled = {s for s in moving if held[s] > 0 and abs(plan[s][0] * factor - held[s]) < max(
            0.0 if s in braked and plan[s][0] * factor < held[s] else REBALANCE_BAND, band * held[s])}
        if not settled:
            break
        keep |= settled
    out: dict[str, tuple[float, str]] = {}
    whole = gross_cap / sum(held[s] for s in keep) if room < 0 < gross_cap else 1.0
    for sym, (t, _, why) in plan.items():
        if sym in keep:
            note = "; within rebalance band: hold" if abs(t - held[sym]) >= 1e-12 else ""
            out[sym] = (held[sym] * whole, why + note + (f"; scaled x{whole:.3f} for gross cap" if whole < 1.0 else ""))
        elif t > 0:
            scale = factor if room >= 0 else 0.0
            out[sym] = (t * scale, why + (f"; scaled x{scale:.3f} for gross cap" if scale < 1.0 else ""))
        else:
            out[sym] = (0.0, why)
    return out


def one_exposure_per_cluster(
    plan: dict[str, tuple[float, float, str]], entries: list[str], positions: dict[str, float],
    ctx: dict[str, Any], limit: float, growing: list[str] | tuple[str, ...] = (),
    cores: dict[str, float] | None = None, bearish: set[str] | None = None,
) -> tuple[list[str], dict[str, list[str]]]:
    """Rule 9: correlated names (above ``limit``) are one exposure, held through the first of them.

    An entry from flat correlated with a held name or a stronger accepted one gets target 0: the guard would
    reject it and the day after the rules would ask again. With a core (``cores``: the core weight of each name
    not open above it), a name growing from its core is one exposure with the names held above their core and
    the stronger names already accepted: it stays at its core. A strong entry (above its own core) correlated
    only with held names at their core whose score is at or below the exit (``bearish``) may take their place:
    it is returned in the second value with those names, which rule 6 closes if it keeps the entry.
    Returns the entries left, strongest first, and those replacements.
    """
    corr = ctx.get("correlations") or {}
    cores, bearish = cores or {}, bearish or set()

    def linked(a: str, b: str) -> bool:
        c = pair_correlation(corr, a, b)
        return c is not None and c > limit

    held = [s for s in plan if plan[s][0] > 0 and positions.get(s, 0.0) > 0]
    accepted: list[str] = []
    left: list[str] = []
    swaps: dict[str, list[str]] = {}
    for sym in sorted([*entries, *growing], key=lambda s: (-plan[s][1], s)):
        if sym in growing:
            others = [*(h for h in held if h not in cores), *accepted]
            other = next((t for t in others if t != sym and linked(sym, t)), None)
            if other is not None:
                plan[sym] = (cores[sym], plan[sym][1], plan[sym][2] + f"; correlated above {limit:g} with {other}: "
                                                                       "one exposure, the core only")
                continue
            accepted.append(sym)
            continue
        blockers = [t for t in [*held, *accepted] if linked(sym, t)]
        strong = plan[sym][0] > cores.get(sym, 0.0) + 1e-12
        taken = {b for bs in swaps.values() for b in bs}
        if (blockers and strong and all(t in held and t in cores and t in bearish and t not in taken
                                        for t in blockers)):
            swaps[sym] = blockers
        elif blockers:
            plan[sym] = (0.0, plan[sym][1], plan[sym][2] + f"; correlated above {limit:g} with {blockers[0]}: one exposure")
            continue
        accepted.append(sym)
        left.append(sym)
    return left, swaps
