"""Risk profiles: how the risk node sizes positions and when it enters and leaves them.

A profile is four numbers the risk node receives in its context (``profile``) and the offline rules apply
(``prompts/offline_rules.md``, rule 9); an LLM risk node reads them as its brief. The guard's limits still
bound every order: a profile can only choose less risk than ``risk.toml`` and the coded ceilings allow.

Deliberate decisions:
- Conviction opens and closes a position; it does not scale its size. Sizing by score × confidence moved
  every target a little every day and the rebalances that followed cost about a third of the profit
  (issue 14); here a position is sized by volatility alone (``vol_target`` ÷ annualised vol, capped by
  ``max_position_weight``) and resized only when it drifts by more than ``band`` of its own weight.
- ``exit`` below ``entry`` is hysteresis: a held name is kept through a mild dip and closed only when the
  combined score falls to ``exit``.
- ``spread`` (offline rules v6): no position larger than the gross cap's equal share over the names scored
  that day (gross cap ÷ names). With 20 names and a 20% cap the book otherwise filled with the first five
  names to enter and sized the rest out: concentrated, and every exit traded a fifth of the book. With few
  names (``demo``: 3 names × 20% < 95%) it changes nothing.
- ``trend_gate`` (v6): ``"entry"`` opens a position only while the close is above its 200-day average; it won
  the v6 grid (by a hair: within noise of the same profile without it). ``"hold"`` also keeps a held name above
  its average through the exit score; it lost on ``demo`` in sample and no profile uses it (it stays so that
  the grid reproduces).
- The numbers of ``balanced`` were chosen walk-forward: on 1999–2008 only (v4: the demo series; v6: the mean
  Sharpe over ``demo`` and ``synthetic-20``), then reported on 2009–2018 untouched
  (``scripts/results_table.py``, README "Results"). ``conservative`` and ``aggressive`` are the neighbours of
  that choice in the same grid, not tuned on their own.
- ``core`` (v8): the share of the size held whatever the signal. The pre-registered v8 grid (docs/tuning.md)
  chose 1 by its rule (mean in-sample Sharpe over ``demo`` and ``synthetic-20``), but on ``demo`` that profile
  drove the book into the 20% drawdown breaker in 2001 (a frozen book from then on). The rule was amended, after
  that was seen and before any out-of-sample figure of 0.25 was: a candidate that latches a breaker in sample is
  out. That leaves 0.25, tied with 1 on the criterion: a quarter of each name's size is held whatever the signal,
  and the signal moves it to the full size and back. ``v7`` keeps the profile without a core.
- ``brake`` (v9): from ``brake`` x the breaker's ``max_drawdown`` of drawdown, every size is capped at a share that
  falls in a straight line to 0 at ``max_drawdown`` (``brake_share``), so a book sells down as it nears the
  breaker instead of running into it. The pre-registered v9 grid (docs/tuning.md) crossed core {0.25 … 1} with
  brake {0.25, 0.5}; its rule (v8's, breaker-latching candidates out) chose **core 1, brake 0.25**: each name held
  at its volatility size whatever the signal, the whole book cut from 5% of drawdown (with the 20% breaker). With
  core 1 the signal no longer moves a position: the in-sample evidence did not favour timing on the two universes
  together. ``v8`` keeps the quarter core without a brake, ``v7`` the profile without a core.
- ``book_vol`` (v10): the estimated volatility of the book holding every sized name at its size (20-day
  volatilities, 60-day correlations, ``book_volatility``) is kept at or under it by scaling every size by one factor.
  The per-name ``vol_target`` cannot see correlation: on ``demo`` three names correlated about 0.9 sat at the 20%
  position cap whatever the market did. The pre-registered v10 grid (docs/tuning.md) chose **0.06** for ``balanced``
  by v9's rule (in-sample mean Sharpe 0.961 against v9's 0.894, nearly all of it on ``demo``); ``conservative`` and
  ``aggressive`` take the grid's neighbouring steps, 0.04 and 0.08, so the three profiles differ on any universe.
  ``v9`` keeps the profile without it.
- ``balanced`` is the default (settings ``TRADEAGENT_PROFILE``, ``daily --profile``, eval's plain ``agent``): out of
  sample it beat the v3 sizing on Sharpe, return and costs (README, "Results"). ``v3`` (no profile in the
  context) keeps the offline rules of v3 (rules 1–8), so recorded replays and older results keep their meaning.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Profile:
    name: str
    vol_target: float  # annualised volatility one position may carry (its weight = vol_target / vol, capped)
    entry: float  # combined score at or above which a new position opens
    exit: float  # combined score at or below which a held position is closed
    band: float  # a held position is resized only when the new size differs by more than this share of it
    spread: bool = False  # v6: no position above gross cap / names scored (many names: a diversified book)
    trend_gate: str = "off"  # v6: "entry": enter only above the 200-day average; "hold": that, and a held name above it is not exited
    core: float = 0.0  # v8: share of the size held whatever the signal (0: none; 1: always the full size)
    brake: float = 0.0  # v9: share of max_drawdown from which every size shrinks, to 0 at max_drawdown (0: off)
    book_vol: float = 0.0  # v10: the book's estimated annualised volatility at most this; every size scaled (0: off)

    def context(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("brake", "book_vol"):  # left out at 0: such a profile keeps the context (and cache keys) it had
            if not out[key]:
                del out[key]
        return out


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        # balanced: the best mean in-sample Sharpe on demo and synthetic-20 of scripts/tune_profiles.py's grid
        # (docs/tuning.md); the other two are its neighbours, not tuned on their own
        Profile("conservative", vol_target=0.04, entry=0.30, exit=-0.15, band=0.25, spread=True, trend_gate="entry",
                core=1.0, brake=0.25, book_vol=0.04),
        Profile("balanced", vol_target=0.15, entry=0.30, exit=-0.15, band=0.25, spread=True, trend_gate="entry",
                core=1.0, brake=0.25, book_vol=0.06),
        Profile("aggressive", vol_target=0.25, entry=0.15, exit=-0.15, band=0.25, spread=True, trend_gate="entry",
                core=1.0, brake=0.25, book_vol=0.08),
        # v9: balanced before v10's book volatility target; v8: before v9 (a quarter core, no brake); v7: before v8's
        # core (the signal opens and closes positions). Kept to compare against, and for a user who wants the signal
        # to move the book
        Profile("v9", vol_target=0.15, entry=0.30, exit=-0.15, band=0.25, spread=True, trend_gate="entry",
                core=1.0, brake=0.25),
        Profile("v8", vol_target=0.15, entry=0.30, exit=-0.15, band=0.25, spread=True, trend_gate="entry", core=0.25),
        Profile("v7", vol_target=0.15, entry=0.30, exit=-0.15, band=0.25, spread=True, trend_gate="entry"),
    )
}


BRAKE_LOW = 0.1  # a brake share under this leaves the book nearly all cash: said as such (daily, eval)


def brake_share(brake: float, drawdown: float | None, limit: float) -> float:
    """The share of its size a name may hold under rule 9's brake (offline rules v9) at this drawdown.

    1 until the drawdown reaches ``brake`` x ``limit`` (the breaker's ``max_drawdown``), then a straight line
    down to 0 at ``limit``. No brake, or an unknown drawdown: 1.
    """
    if brake <= 0 or drawdown is None:
        return 1.0
    if limit <= 0:  # a zero limit (risk.toml allows it): the breaker halts at any fall, and the brake holds nothing
        return 0.0 if drawdown > 0 else 1.0
    start = min(brake, 1.0) * limit
    if drawdown <= start:
        return 1.0
    return 0.0 if drawdown >= limit else (limit - drawdown) / (limit - start)


def brake_cap(profile: Profile, share: float, vol: float | None, max_weight: float) -> float | None:
    """The most a name may hold while rule 9's brake allows ``share`` of its size, enforced in code on any plan.

    Its size is taken at its loosest, min(``max_weight``, ``vol_target`` / vol, 1): the offline rules' own cap
    (after the spread and memory's halving) is never above it, so only a plan that ignores the brake is cut. No
    volatility estimate: None (the rules do not size such a name either).
    """
    if share >= 1 or vol is None or not vol > 0:
        return None
    return share * min(max_weight, 1.0, profile.vol_target / vol)


def pair_correlation(corr: dict[str, Any], a: str, b: str) -> float | None:
    """The return correlation of ``a`` and ``b`` in a ``{a: {b: r}}`` map (either way round); None when unknown."""
    for x, y in ((a, b), (b, a)):
        value = (corr.get(x) or {}).get(y)
        if value is not None and math.isfinite(c := float(value)):
            return c
    return None


def book_volatility(weights: dict[str, float], vols: dict[str, float], corr: dict[str, Any]) -> float:
    """The annualised volatility of a book of long ``weights``: sqrt(sum of w_a w_b vol_a vol_b r_ab).

    ``vols`` are the names' annualised volatilities, ``corr`` their return correlations; a pair nobody measured
    counts as 1 (no credit for diversification that is not known), r_aa = 1. Names without a positive weight are
    left out.
    """
    names = sorted(s for s, w in weights.items() if w > 0)
    variance = 0.0
    for a in names:  # a replay runs this twice a day over every pair: the row is read directly when it can be
        wa, va, row = weights[a], vols[a], corr.get(a) or {}
        for b in names:
            if a == b:
                rho = 1.0
            else:
                value = row.get(b)
                if value is None or not math.isfinite(rho := float(value)):
                    found = pair_correlation(corr, a, b)
                    rho = 1.0 if found is None else found
                rho = max(-1.0, min(1.0, rho))
            variance += wa * weights[b] * va * vols[b] * rho
    return math.sqrt(max(variance, 0.0))


def book_vol_scale(target: float, sizes: dict[str, float], vols: dict[str, float],
                   corr: dict[str, Any]) -> tuple[float, float]:
    """Rule 9's book volatility target (offline rules v10): the factor every size is scaled by, and the estimate.

    The estimate is ``book_volatility`` of the book holding every sized name at its size. Above ``target`` every
    size is scaled by ``target`` / estimate; at or below it, or with no target (0), by 1.
    """
    estimate = book_volatility(sizes, vols, corr)
    if target <= 0 or estimate <= target:
        return 1.0, estimate
    return target / estimate, estimate


DEFAULT = "balanced"  # what `tradeagent daily` and eval's plain `agent` use unless told otherwise
LEGACY = "v3"  # no profile: the offline rules' v3 sizing (score x confidence), kept to compare against


class UnknownProfile(ValueError):
    """A profile name that is not one of ``PROFILES``; the message lists the known ones."""


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name.strip().lower()]
    except KeyError:
        raise UnknownProfile(f"unknown profile {name!r}; known: {', '.join([*PROFILES, LEGACY])}") from None


def resolve(name: str | None) -> Profile | None:
    """The profile called ``name``; None for ``v3`` (or None): the risk node gets no profile, rules v3 size."""
    if name is None or name.strip().lower() == LEGACY:
        return None
    return get_profile(name)
