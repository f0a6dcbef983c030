"""Why a policy traded, and why it was not invested: breakdowns from a replay's own records (issue 14).

``why_traded(run)``: every fill matched to the order that caused it (same symbol and side, the last approved
order decided before the fill) and classed by what it did to the position — ``entry`` (from flat), ``exit``
(to flat), ``add``, ``trim`` (``trim by the drawdown brake`` when the brake asked for it) — or ``top-up after a clamp`` (a buy of a symbol whose previous order was clamped
by the guard: the plan asked for more the day after). Rows: fills, traded notional, fees and their share.

``why_not_invested(run, symbols, max_weight)``: the equity NOT invested, averaged over the days, split into
causes so that the rows add up to ``1 − average exposure`` exactly:
- ``position cap × names``: ``1 − names × max_weight`` when positive — the most the book can ever hold
  (3 names at 20% leave 40% in cash whatever the signals say);
- per symbol, ``max_weight − weight`` on day D, by the target the risk node set on the decision before D:
  a target of 0 by its stated cause (the rules' own phrases: no signal, exit score, below entry, no volatility
  estimate, open-position limit, a correlated name held, rule 9's drawdown brake, an LLM's own words); a
  positive target splits into ``sized below the cap`` (max_weight − target; ``drawdown brake`` when the brake
  capped it: the size it had before the cap minus the target; ``book volatility target`` when rule 9's book
  volatility target scaled the size: the size before the scaling minus after) and ``not at target`` (target − weight: the rebalance
  band, a clamp or rejection by the guard, price drift since the fill);
- after a breaker latched the kill switch (the replay's notes), every session's shortfall is ``kill switch MODE``:
  a HALTED book trades nothing, a REDUCING one only sells, whatever its last plan said;
- with more names than the equity can hold at the cap (names × max_weight > 1, say 20 names at 20%), a day's
  shortfalls add up to more than its cash: each cause is scaled to its share of that day's cash.

Deliberate decisions:
- Causes are read from the rationale text the risk node wrote (the offline rules use fixed phrases; an LLM's
  free text is ``risk node's own reason``): the breakdown explains the rules, it does not re-run them.
- Shorts are left out of both tables (no built-in universe allows them).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from evals.models import PolicyRun
from evals.replay import latched_modes

BRAKE = "drawdown brake"
BRAKE_TRIM = "trim by the drawdown brake"  # why_traded: a partial sale the brake asked for
# rationale phrase (offline rules, agent/llm/offline.py) -> cause of a zero target
_ZERO_CAUSES = (
    ("brake from", BRAKE),  # first: a braked target's reason also holds the phrases of what it was before the cap
    ("no signal from any source", "no signal from any node"),
    ("exit / stay out", "score at or below the exit"),
    ("below entry score", "score below the entry"),
    ("no volatility estimate", "no volatility estimate"),
    ("beyond max_open_positions", "max open positions"),
    ("one exposure", "correlated with a name held"),
    ("losing with negative momentum", "not adding to a loser"),
)
KILL_SWITCH = "kill switch"  # "kill switch HALTED": the sessions decided after a breaker latched (nothing or only sales)
_BRAKED = re.compile(r"brake from [^)]*\): at most ([0-9.]+) x size")
BOOK_VOL = "book volatility target"  # rule 9 (v10): the part of a size the book's volatility target scaled away
_BOOK_SCALED = re.compile(r"at full size, target [0-9.]+%: size x([0-9.]+) = ([0-9.]+)")
CAP = "position cap × names"
SIZED = "sized below the cap"
OFF_TARGET = "not at target (band, guard, drift)"
UNPLANNED = "in no plan yet (untradeable, no data)"


def target_cause(rationale: str | None) -> str:
    text = rationale or ""
    return next((cause for phrase, cause in _ZERO_CAUSES if phrase in text), "risk node's own reason")


def why_not_invested(run: PolicyRun, symbols: Sequence[str], max_weight: float) -> list[dict[str, Any]]:
    """Rows ``{cause, share}`` (average fraction of equity over the days), largest first; they sum to 1 − exposure."""
    days = list(run.equity.index)
    if not days or not symbols:
        return []
    plans = _plans_by_day(run.targets)
    weights = run.weights
    totals: dict[str, float] = defaultdict(float)
    capacity = len(symbols) * max_weight  # what the names could hold at the cap
    totals[CAP] = max(0.0, 1.0 - capacity) * len(days)
    plan: Mapping[str, tuple[float, str]] = {}
    latches = {day: mode for mode, day in latched_modes(run.notes)}  # the mode a breaker latched on each day
    mode = None
    for day in days:
        key = day.date().isoformat()
        row = weights.loc[day] if weights is not None else None
        today: dict[str, float] = defaultdict(float)
        held = 0.0
        for sym in symbols:
            w = float(row[sym]) if row is not None and sym in row.index else 0.0
            w = max(w, 0.0)
            held += w
            short = max_weight - w
            if mode is not None:  # the decision before D was made under a latched kill switch
                today[f"{KILL_SWITCH} {mode}"] += short
                continue
            if sym not in plan:
                today[UNPLANNED] += short
                continue
            target, why = plan[sym]
            if target <= 0:
                today[target_cause(why)] += short
            else:
                size = _size_before_brake(target, why, max_weight)  # the brake's part of a capped target is its own
                book = _book_vol_part(size, why, max_weight)  # and so is the book volatility target's
                today[SIZED] += max_weight - size - book
                today[BOOK_VOL] += book
                today[BRAKE] += size - target
                today[OFF_TARGET] += target - w
        # More names than the equity can hold at the cap (20 names at 20%): the shortfalls add up to
        # capacity − held, not to the cash 1 − held; each cause keeps its share of that day's cash.
        scale = (1.0 - held) / (capacity - held) if capacity > 1.0 and capacity - held > 1e-12 else 1.0
        for cause, v in today.items():
            totals[cause] += v * scale
        plan = plans.get(key, plan)  # the plan decided on D acts from D+1
        mode = latches.get(key, mode)  # so does the mode a breaker latched on D
    # A book above the cap (whole equity invested in fewer names than the cap allows) would make the cap row
    # negative; exposure counts only what is held, so the residual is what the rows cannot name.
    exposure = float(run.exposure.mean())
    shares = {c: v / len(days) for c, v in totals.items() if abs(v) > 1e-12}
    residual = (1.0 - exposure) - sum(shares.values())
    if abs(residual) > 1e-9:
        shares["shorts, cash held back for fees, rounding"] = residual
    return [{"cause": c, "share": v} for c, v in sorted(shares.items(), key=lambda kv: -kv[1])]


def _size_before_brake(target: float, why: str, max_weight: float) -> float:
    """The size a positive target had before rule 9's brake capped it ("at most S x size = T"), else the target."""
    match = _BRAKED.search(why)
    share = float(match.group(1)) if match else 1.0
    return min(max_weight, target / share) if 0 < share < 1 else target


def _book_vol_part(size: float, why: str, max_weight: float) -> float:
    """What rule 9's book volatility target took from a weight of ``size``: the size before the scaling ("size xF =
    Z": Z / F, at most ``max_weight``) less the larger of the scaled size and ``size`` (a weight the band kept above
    the scaled size was not cut by it). 0 without the phrase."""
    match = _BOOK_SCALED.search(why)
    if match is None or not 0 < float(match.group(1)) < 1:
        return 0.0
    factor, scaled = float(match.group(1)), float(match.group(2))
    return max(0.0, min(max_weight, scaled / factor) - max(scaled, size))


def why_traded(run: PolicyRun) -> list[dict[str, Any]]:
    """Rows ``{cause, fills, notional, fees, fee_share}``, by notional traded."""
    orders = [d for d in run.decisions if d.get("action") in ("buy", "sell")]
    orders.sort(key=lambda d: d["date"])
    held: dict[str, float] = defaultdict(float)
    last_clamped: dict[str, bool] = {}
    by_symbol: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for o in orders:
        by_symbol[(o["symbol"], o["action"])].append(o)
    rows: dict[str, dict[str, float]] = defaultdict(lambda: {"fills": 0, "notional": 0.0, "fees": 0.0})
    for t in sorted(run.trades, key=lambda t: t.date):
        before = held[t.symbol]
        after = before + (t.quantity if t.side == "buy" else -t.quantity)
        cause_order = _last_before(by_symbol[(t.symbol, t.side)], t.date.isoformat())
        if t.side == "buy" and last_clamped.get(t.symbol) and before > 0:
            cause = "top-up after a clamp"
        elif before <= 1e-9:
            cause = "entry"
        elif abs(after) <= 1e-9:
            cause = "exit"
        elif t.side == "sell" and _braked_sale(cause_order):
            cause = BRAKE_TRIM
        else:
            cause = "add" if t.side == "buy" else "trim"
        last_clamped[t.symbol] = bool(cause_order and cause_order.get("clamped"))
        held[t.symbol] = after
        r = rows[cause]
        r["fills"] += 1
        r["notional"] += t.quantity * t.price
        r["fees"] += t.fees
    total_fees = sum(r["fees"] for r in rows.values()) or 1.0
    return sorted(({"cause": c, "fills": int(r["fills"]), "notional": r["notional"], "fees": r["fees"],
                    "fee_share": r["fees"] / total_fees} for c, r in rows.items()), key=lambda r: -r["notional"])


def _braked_sale(order: Mapping[str, Any] | None) -> bool:
    """A partial sale the drawdown brake asked for (the rules' reason, or the cap the code put on a plan)."""
    reason = str((order or {}).get("reason") or "")
    return "brake from" in reason or "capped in code by the drawdown brake" in reason


def _plans_by_day(targets: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, tuple[float, str]]]:
    plans: dict[str, dict[str, tuple[float, str]]] = defaultdict(dict)
    for t in targets:
        plans[t["date"]][t["symbol"]] = (float(t["target"]), str(t.get("reason") or ""))
    return plans


def _last_before(orders: Sequence[Mapping[str, Any]], when: str) -> Mapping[str, Any] | None:
    found = None
    for o in orders:
        if o["date"] < when:
            found = o
        else:
            break
    return found
