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
- ``balanced`` is the default (settings ``TRADEAGENT_PROFILE``, ``daily --profile``, eval's plain ``agent``): out of
  sample it beat the v3 sizing on Sharpe, return and costs (README, "Results"). ``v3`` (no profile in the
  context) keeps the offline rules of v3 (rules 1–8), so recorded replays and older results keep their meaning.
"""

from __future__ import annotations

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
                core=1.0, brake=0.25),
        Profile("balanced", vol_target=0.15, entry=0.30, exit=-0.15, band=0.25, spread=True, trend_gate="entry",
                core=1.0, brake=0.25),
        Profile("aggressive", vol_target=0.25, entry=0.15, exit=-0.15, band=0.25, spread=True, trend_gate="entry",
                core=1.0, brake=0.25),
        # v8: balanced as it was before v9 (a quarter core, no brake); v7: before v8's core (the signal opens and
        # closes positions). Kept to compare against, and for a user who wants the signal to move the book
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
