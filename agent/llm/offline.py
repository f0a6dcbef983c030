"""``OfflineRulesClient``: a deterministic, documented rule policy that speaks the LLM protocol.

It is NOT an LLM and is never presented as one: its provider is ``"offline-rules"`` and its model
``"offline-rules-v1"``. It ignores the messages and reads ``request.node`` and ``request.context`` (the facts
the prompt was rendered from), and answers with final JSON ``content`` matching the node's model in
``agent.models``. Same context -> byte-identical content. It makes no tool calls and uses no tokens.
The same rules, for readers, are in ``prompts/offline_rules.md``; its version (front-matter line) is bumped
whenever a rule changes, so results that record it say which rules decided.

analyst (context ``symbols: {SYM: {close, sma_20, sma_50, sma_200, ema_12, ema_26, rsi_14, macd_hist,
bb_percent, adx_14, vol_20, drawdown, ret_20d, tradeable}}``) -> AnalystReport. Untradeable symbols and
symbols without a close are skipped.
- trend = mean of the available parts: close vs sma_50, close vs sma_200, sma_50 vs sma_200, each the
  relative gap scaled so a 5 % gap is full strength, clipped to [-1, 1].
- momentum = mean of the available parts: ret_20d / 10 % (clipped), sign of macd_hist, sign of ema_12 - ema_26.
- score = 0.6 trend + 0.4 momentum (one alone when the other is missing; both missing: no opinion);
  RSI > 70 halves a positive score, RSI < 30 halves a negative one (mean reversion: never chase).
- confidence = (0.2 + 0.6 agreement) x ADX factor x volatility factor, where agreement is the share of the
  non-zero parts with the score's sign, ADX factor = clip(adx_14 / 40, 0.25, 1) (0.5 when missing), and
  volatility factor = clip(0.30 / vol_20, 0.4, 1) (0.8 when missing; vol_20 is annualised).
  bb_percent, sma_20 and drawdown are shown in the prompt but not used by the rules.
sentiment (``symbols: {SYM: {score, n_items}}``) -> SentimentReport: the score clipped to [-1, 1];
confidence = n / (n + 5); a null score or zero items: no opinion (omitted).
quant (``symbols: {SYM: {xgb_prob_up, ppo_action}}``) -> QuantReport: score = mean of the available of
2 p - 1 and the PPO action (clipped to [-1, 1]); confidence 0.4 with one source, 0.4 + 0.4 (1 - |a - b| / 2)
with two; neither: omitted.
risk (``equity, cash, positions {SYM: weight}, limits, signals {SYM: {analyst|sentiment|quant: {score,
confidence} | null}}, volatility {SYM: annual vol | null}``, optional ``pnl {SYM: unrealised return}`` and
``momentum {SYM: ret_20d}``) -> RiskPlan, one target per symbol in signals or positions:
1. combined score = confidence-weighted mean of the present sources; combined confidence = sum c^2 / sum c.
   A missing, null or zero-confidence source carries no weight at all.
2. no source at all: hold the current weight (capped at max_position_weight); combined <= 0: target 0.
3. size = min(1, 10 % / vol) x combined x confidence, capped at max_position_weight. No volatility
   estimate: no new risk (a held position is kept, capped).
4. hysteresis: a new position needs combined >= 0.15; a held one with 0 < combined < 0.15, or whose new
   size is within 2 percentage points of its weight, keeps its weight (capped) - no churn.
5. loss aversion, countered: a position that is losing (pnl < 0) with negative momentum is never added to.
6. max_open_positions limits NEW entries only: every held name that keeps a weight keeps its slot (a held
   one with no source too, under rule 2: it is never cut to make room, which would sell on no evidence);
   new names fill the max_open_positions - (held names kept) free slots, strongest combined x confidence
   first (ties: symbol order). A book already at or over the limit (it was tightened) opens nothing new and
   is not cut by this rule. Gross is scaled down to 0.95 x max_gross_exposure. Weights are floored to 4
   decimals.
   Missing limits default to max_position_weight 0.10, max_gross_exposure 1.0, max_open_positions 5.
8. memory (optional context ``memory {SYM: [recalled decision {long_after, outcome {excess} | null}]}``): when
   at least 3 recalled similar past decisions that left the book long have a known outcome and more than
   half of them lagged the benchmark (excess < 0), the symbol's combined confidence is halved (so is its
   size). No ``memory`` key: the rules are exactly those above.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from agent.errors import LLMError
from agent.llm.base import LLMRequest, LLMResponse
from agent.llm.offline_sizing import (
    DEFAULT_MAX_DRAWDOWN,
    REBALANCE_BAND,
    brake,
    gross_step,
    one_exposure_per_cluster,
    smallest_trade,
)
from agent.llm.offline_sizing import num as _num
from agent.models import AnalystReport, QuantReport, RiskPlan, SentimentReport, SymbolSignal, TargetWeight
from agent.profiles import book_vol_scale

PROVIDER = "offline-rules"
MODEL = "offline-rules-v1"

TREND_FULL_GAP = 0.05
RET_FULL = 0.10
TREND_WEIGHT, MOMENTUM_WEIGHT = 0.6, 0.4
RSI_OVERBOUGHT, RSI_OVERSOLD, RSI_DAMPING = 70.0, 30.0, 0.5
ADX_STRONG, VOL_CALM = 40.0, 0.30
SENTIMENT_HALF_ITEMS = 5
VOL_TARGET = 0.10
ENTRY_SCORE = 0.15
GROSS_HEADROOM = 0.95
MEMORY_MIN_OUTCOMES, MEMORY_DAMPING = 3, 0.5
DEFAULT_LIMITS = {"max_position_weight": 0.10, "max_gross_exposure": 1.0, "max_open_positions": 5,
                  "max_drawdown": DEFAULT_MAX_DRAWDOWN}


class OfflineRulesClient:
    """The documented rule policy behind ``--llm offline``; answers every node from its ``context``."""

    provider: str = PROVIDER
    model: str = MODEL

    def complete(self, request: LLMRequest) -> LLMResponse:
        rule = _RULES.get(request.node)
        if rule is None:
            raise LLMError("bad_request", f"offline-rules has no rule for node {request.node!r}")
        try:
            output = rule(request.context)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise LLMError(
                "bad_request", f"offline-rules: bad context for node {request.node!r} ({type(exc).__name__}: {exc})"
            ) from None
        return LLMResponse(
            content=output.model_dump_json(),
            tool_calls=[],
            finish_reason="stop",
            prompt_tokens=0,
            completion_tokens=0,
            model=MODEL,
            provider=PROVIDER,
        )


# -- helpers ---------------------------------------------------------------------------------------------


def _clip(x: float, lo: float = -1.0, hi: float = 1.0) -> float:
    return min(hi, max(lo, x))


def _r(x: float) -> float:
    return round(x, 4) + 0.0  # + 0.0 turns -0.0 into 0.0 for stable JSON


def _floor4(x: float) -> float:
    return math.floor(x * 10_000 + 1e-9) / 10_000 + 0.0


def _sign(x: float) -> float:
    return 1.0 if x > 0 else -1.0 if x < 0 else 0.0


def _gap(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return _clip((a / b - 1.0) / TREND_FULL_GAP)


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _symbols(ctx: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return sorted((str(s), v or {}) for s, v in ctx["symbols"].items())


# -- analyst ---------------------------------------------------------------------------------------------


def _analyst_signal(sym: str, f: dict[str, Any]) -> SymbolSignal | None:
    close = _num(f.get("close"))
    if not f.get("tradeable", True) or close is None:
        return None
    sma50, sma200 = _num(f.get("sma_50")), _num(f.get("sma_200"))
    trend_parts = [p for p in (_gap(close, sma50), _gap(close, sma200), _gap(sma50, sma200)) if p is not None]
    ret, macd = _num(f.get("ret_20d")), _num(f.get("macd_hist"))
    ema12, ema26 = _num(f.get("ema_12")), _num(f.get("ema_26"))
    mom_parts = []
    if ret is not None:
        mom_parts.append(_clip(ret / RET_FULL))
    if macd is not None:
        mom_parts.append(_sign(macd))
    if ema12 is not None and ema26 is not None:
        mom_parts.append(_sign(ema12 - ema26))
    trend, momentum = _mean(trend_parts), _mean(mom_parts)
    if trend is None and momentum is None:
        return None
    if trend is None or momentum is None:
        score = trend if trend is not None else momentum
        assert score is not None
    else:
        score = TREND_WEIGHT * trend + MOMENTUM_WEIGHT * momentum
    notes = [
        f"trend {_r(trend):+.2f}" if trend is not None else "trend n/a",
        f"momentum {_r(momentum):+.2f}" if momentum is not None else "momentum n/a",
    ]
    rsi = _num(f.get("rsi_14"))
    if rsi is not None and ((rsi > RSI_OVERBOUGHT and score > 0) or (rsi < RSI_OVERSOLD and score < 0)):
        score *= RSI_DAMPING
        notes.append(f"RSI {rsi:.0f} {'overbought' if rsi > RSI_OVERBOUGHT else 'oversold'}: damped")
    parts = [p for p in trend_parts + mom_parts if p != 0]
    agreement = sum(1 for p in parts if _sign(p) == _sign(score)) / len(parts) if parts and score else 0.0
    adx, vol = _num(f.get("adx_14")), _num(f.get("vol_20"))
    adx_factor = _clip(adx / ADX_STRONG, 0.25, 1.0) if adx is not None else 0.5
    vol_factor = _clip(VOL_CALM / vol, 0.4, 1.0) if vol is not None and vol > 0 else 0.8
    confidence = _clip((0.2 + 0.6 * agreement) * adx_factor * vol_factor, 0.0, 1.0)
    notes.append(f"agreement {agreement:.2f}")
    notes.append(f"ADX {adx:.0f}" if adx is not None else "ADX n/a")
    notes.append(f"vol {vol:.0%}" if vol is not None else "vol n/a")
    return SymbolSignal(symbol=sym, score=_r(_clip(score)), confidence=_r(confidence), rationale="; ".join(notes))


def _analyst(ctx: dict[str, Any]) -> AnalystReport:
    signals = [s for sym, f in _symbols(ctx) if (s := _analyst_signal(sym, f)) is not None]
    return AnalystReport(signals=signals)


# -- sentiment and quant ------------------------------------------------------------------------------------


def _sentiment(ctx: dict[str, Any]) -> SentimentReport:
    signals = []
    for sym, f in _symbols(ctx):
        score, n = _num(f.get("score")), int(f.get("n_items") or 0)
        if score is None or n <= 0:
            continue
        signals.append(
            SymbolSignal(
                symbol=sym,
                score=_r(_clip(score)),
                confidence=_r(n / (n + SENTIMENT_HALF_ITEMS)),
                rationale=f"mean sentiment {score:+.2f} over {n} items",
            )
        )
    return SentimentReport(signals=signals)


def _quant(ctx: dict[str, Any]) -> QuantReport:
    signals = []
    for sym, f in _symbols(ctx):
        prob, action = _num(f.get("xgb_prob_up")), _num(f.get("ppo_action"))
        parts, notes = [], []
        if prob is not None:
            parts.append(2.0 * _clip(prob, 0.0, 1.0) - 1.0)
            notes.append(f"xgb P(up) {prob:.2f}")
        if action is not None:
            parts.append(_clip(action))
            notes.append(f"ppo action {action:+.2f}")
        if not parts:
            continue
        confidence = 0.4 if len(parts) == 1 else 0.4 + 0.4 * (1.0 - abs(parts[0] - parts[1]) / 2.0)
        signals.append(
            SymbolSignal(
                symbol=sym, score=_r(sum(parts) / len(parts)), confidence=_r(confidence), rationale="; ".join(notes)
            )
        )
    return QuantReport(signals=signals)


# -- risk ------------------------------------------------------------------------------------------------------


def _combine(sources: dict[str, Any]) -> tuple[float, float, list[str]] | None:
    """Confidence-weighted score and confidence of the present sources; None when none is present."""
    present = []
    for name in sorted(sources):
        s = sources[name]
        if not s:
            continue
        score, conf = _num(s.get("score")), _num(s.get("confidence"))
        if score is None or conf is None or conf <= 0:
            continue
        present.append((name, _clip(score), _clip(conf, 0.0, 1.0)))
    if not present:
        return None
    total = sum(c for _, _, c in present)
    combined = sum(s * c for _, s, c in present) / total
    confidence = sum(c * c for _, _, c in present) / total
    return combined, confidence, [f"{n} {s:+.2f}@{c:.2f}" for n, s, c in present]


def _memory_lesson(recalled: Any, conf: float) -> tuple[float, str]:
    """Rule 8: halve the confidence when similar past long decisions mostly lagged the benchmark."""
    known = [h for h in recalled or [] if isinstance(h, dict) and h.get("long_after") and isinstance(h.get("outcome"), dict)]
    lagged = sum(1 for h in known if (_num(h["outcome"].get("excess")) or 0.0) < 0)
    if len(known) < MEMORY_MIN_OUTCOMES or 2 * lagged <= len(known):
        return conf, ""
    return conf * MEMORY_DAMPING, (f"; memory: {lagged} of {len(known)} similar long decisions lagged the "
                                   f"benchmark, confidence x{MEMORY_DAMPING}")


def _risk(ctx: dict[str, Any]) -> RiskPlan:
    limits = {**DEFAULT_LIMITS, **{k: v for k, v in (ctx.get("limits") or {}).items() if v is not None}}
    max_w = _clip(float(limits["max_position_weight"]), 0.0, 1.0)
    gross_cap = GROSS_HEADROOM * float(limits["max_gross_exposure"])
    max_n = int(limits["max_open_positions"])
    positions = {str(s): float(w or 0.0) for s, w in (ctx.get("positions") or {}).items()}
    signals = ctx.get("signals") or {}
    vols, pnl, mom = ctx.get("volatility") or {}, ctx.get("pnl") or {}, ctx.get("momentum") or {}
    memory = ctx.get("memory") or {}
    profile = ctx.get("profile") or None  # rule 9: sized by volatility alone, entry/exit hysteresis
    entry = float(profile["entry"]) if profile else ENTRY_SCORE
    exit_at = float(profile["exit"]) if profile else 0.0
    # rule 9's trend gate: close vs its 200-day average (unknown: no gate for that symbol)
    gate = str(profile.get("trend_gate") or "off") if profile else "off"  # "off" | "entry" | "hold" (both)
    long_trend = (ctx.get("long_trend") or {}) if gate in ("entry", "hold") else {}
    core = _clip(float(profile.get("core") or 0.0), 0.0, 1.0) if profile else 0.0  # v8: strategic share of the size
    band_share = float(profile["band"]) if profile else 0.0  # rule 9's relative rebalance band
    # rule 9's brake (v9): every size shrinks as the book's drawdown nears the breaker's max_drawdown
    throttle, brake_why = brake(profile, _num(ctx.get("drawdown")), limits)

    plan: dict[str, tuple[float, float, str]] = {}  # symbol -> (target, strength, rationale)
    symbols = sorted(set(positions) | {str(s) for s in signals})
    combos = {sym: _combine(signals.get(sym) or {}) for sym in symbols}
    scored = sum(1 for c in combos.values() if c is not None)
    size_cap = max_w  # rule 9's spread: no name above the gross cap's equal share over the names scored
    if profile and profile.get("spread") and scored:
        size_cap = min(max_w, gross_cap / scored)
    exit_only = {str(s) for s in ctx.get("exit_only") or ()}  # rule 10
    cores: dict[str, float] = {}  # rule 9's core: symbol -> its core weight, for names not open above it
    bearish: set[str] = set()  # combined score at or below the exit: a core held only because it is the core
    braked: set[str] = set()  # rule 9's brake cut these: a sale down to the cap needs no 2-point band

    def size_of(sym: str) -> float | None:
        """Rule 9's size (after the spread; memory's halving still halves it), before the book volatility target."""
        combo, vol = combos[sym], _num(vols.get(sym))
        if not profile or combo is None or vol is None or vol <= 0:
            return None
        conf, _ = _memory_lesson(memory.get(sym), combo[1])
        return min(size_cap, min(1.0, float(profile["vol_target"]) / vol) * conf / combo[1])

    # rule 9's book volatility target (v10): every size scaled so that the book of all sized names stays under it
    sizes = {s: w for s in symbols if (w := size_of(s)) is not None}
    book_target = float(profile.get("book_vol") or 0.0) if profile else 0.0
    book_scale, book_est = 1.0, 0.0
    if book_target > 0:  # a name rule 10 closes is not in the book
        counted = {s: w for s, w in sizes.items() if s not in exit_only}
        book_scale, book_est = book_vol_scale(book_target, counted, {s: float(_num(vols.get(s)) or 0.0) for s in counted},
                                              ctx.get("all_correlations") or {})
    for sym in symbols:
        held = max(0.0, positions.get(sym, 0.0))
        keep = min(held, max_w)
        if sym in exit_only and held > 0:
            plan[sym] = (0.0, 0.0, "refused by the data gate since a price jump (untradeable for up to a year, "
                                   "no signal can judge it): only a sale passes, close it")
            continue
        combo = combos[sym]
        if combo is None:
            plan[sym] = (keep, 0.0, "no signal from any source: hold current weight")
            continue
        combined, conf0, used = combo
        conf, lesson = _memory_lesson(memory.get(sym), conf0)
        why = f"combined {combined:+.3f} conf {conf:.2f} ({', '.join(used)})" + lesson
        vol = _num(vols.get(sym))
        lt = _num(long_trend.get(sym))
        full = sizes.get(sym)  # rule 9's size, scaled by the book volatility target, and its core share (v8)
        if full is not None and book_scale < 1:
            full *= book_scale
            why += f"; book vol {book_est:.1%} at full size, target {book_target:.1%}: size x{book_scale:.3f} = {full:.4f}"
        # with a core, a position at its core is not "open" for the entry and the trend gate: growing it to the
        # full size is an entry (a held name within the band of its core size counts as at the core)
        core_w = core * full if core > 0 and full is not None else 0.0
        opened = held > 0 and not (core_w > 0 and held <= core_w + max(REBALANCE_BAND, band_share * core_w))
        if core_w > 0 and not opened:
            cores[sym] = core_w
        instead = "the core only" if core_w > 0 else ""  # what a name below its full size gets, with a core
        if combined <= exit_at and opened and gate == "hold" and lt is not None and lt > 0:
            target, why = keep, why + f"; at or below the exit score but {lt:+.1%} above its 200-day average: hold"
        elif combined <= exit_at:
            bearish.add(sym)
            target, why = 0.0, why + (f"; at or below the exit score: {instead or 'exit / stay out'}" if profile
                                      else "; not positive: exit / stay out")
        elif not opened and lt is not None and lt <= 0:
            target, why = 0.0, why + f"; {lt:+.1%} against its 200-day average: {instead or 'no entry below it'}"
        elif vol is None or vol <= 0:
            target, why = keep, why + "; no volatility estimate: no new risk"
        else:
            if full is not None:  # rule 9: conviction gates, volatility sizes
                sized = full
                band = max(REBALANCE_BAND, band_share * held)
            else:
                sized = min(max_w, min(1.0, VOL_TARGET / vol) * combined * conf)
                band = REBALANCE_BAND
            why += f"; vol {vol:.0%} -> size {sized:.4f}"
            if combined < entry:
                target = keep
                why += "; below entry score: " + ("hold (hysteresis)" if opened or (held and not core_w)
                                                  else instead or "no entry")
            elif profile:  # rule 9: the band judges the traded change, after the gross step (gross_step)
                target = sized
            elif held and abs(sized - held) < band:
                target, why = keep, why + "; within rebalance band: hold"
            else:
                target = sized
        if target < core_w:  # rule 9's core: the floor of the position, whatever the score and the trend
            target, why = core_w, why + f"; core {core:.4g} x size {full:.4f} = {core_w:.4f}"
        loss = _num(pnl.get(sym))
        down = _num(mom.get(sym))
        if target > held > 0 and loss is not None and loss < 0 and down is not None and down < 0:
            target, why = keep, why + "; losing with negative momentum: not adding"
        if book_scale < 1 and full is not None and target > full:  # rule 9's book target binds: no name above its size
            target, why = full, why + f"; held above its scaled size: at most {full:.4f}"
        if throttle < 1 and full is not None and target > throttle * full:  # rule 9's brake: at most throttle x size
            target, why = throttle * full, why + f"; {brake_why}: at most {throttle:.3f} x size = {throttle * full:.4f}"
            braked.add(sym)
            # the guard refuses a trade under min_trade_value (a whole close passes): a cap under twice that is 0, so
            # that a book near the breaker neither keeps leftovers it cannot sell nor reopens them a few dollars at a time
            if 0 < target < 2 * smallest_trade(ctx, limits):
                target, why = 0.0, why + "; under twice the smallest trade (min_trade_value): close / stay out"
        plan[sym] = (target, combined * conf, why)

    # Rule 6: max_open_positions limits NEW entries only. A held name that keeps a weight keeps its slot (even
    # one no node spoke about); new names take the slots left, strongest first. Cutting a held name to make
    # room would sell a position on no evidence against it, and the guard refuses only new positions too.
    entries = sorted((s for s in plan if plan[s][0] > 0 and positions.get(s, 0.0) <= 0), key=lambda s: (-plan[s][1], s))
    swaps: dict[str, list[str]] = {}  # rule 9's core: a strong new name -> the bearish cores it would replace
    if profile:  # rule 9: a name too correlated with one kept or a stronger entry is the same exposure
        growing = [s for s in plan if s in cores and positions.get(s, 0.0) > 0 and plan[s][0] > cores[s] + 1e-12]
        entries, swaps = one_exposure_per_cluster(plan, entries, positions, ctx,
                                                   float(limits.get("max_correlation", 1.0)), growing=growing,
                                                   cores=cores, bearish=bearish)
    kept = sum(1 for s in plan if plan[s][0] > 0 and positions.get(s, 0.0) > 0)
    free = max(0, max_n - kept)
    # rule 9's core: a name held only as its core with a score at or below the exit gives its slot to a strong new
    # name (one above its own core), weakest first, else the core would keep the book's names fixed for good
    idle = sorted((s for s in bearish if s in cores and plan[s][0] > 0 and positions.get(s, 0.0) > 0
                   and not any(s in b for b in swaps.values())), key=lambda s: (plan[s][1], s))
    count, gone = kept, []
    # the gross the held names take at most (gross_step keeps a held name within its band first): a core sold for
    # a new name that this leaves no room would be sold for nothing (a book already at its gross cap)
    fixed = sum(positions[s] for s in plan if positions.get(s, 0.0) > 0 and plan[s][0] > 0)

    def room_without(names: list[str]) -> bool:
        return gross_cap - fixed + sum(positions[b] for b in names) > 0

    for sym in entries:
        strong = plan[sym][0] > cores.get(sym, 0.0) + 1e-12
        if sym in swaps and count + 1 - len(swaps[sym]) <= max_n and room_without(swaps[sym]):  # takes their place
            count += 1 - len(swaps[sym])
            gone += [(b, f"; correlated above {float(limits.get('max_correlation', 1.0)):g} with {sym}, a stronger new name: exit")
                     for b in swaps[sym]]
        elif sym not in swaps and count < max_n:
            count += 1
        elif sym not in swaps and strong and idle and count <= max_n and room_without(idle[:1]):  # the weakest
            gone.append((idle.pop(0), "; its slot goes to a stronger new name: exit"))  # bearish core makes room
        else:
            plan[sym] = (0.0, plan[sym][1], plan[sym][2] + f"; beyond max_open_positions ({kept} held, {free} free)")
    for sym, note in gone:
        plan[sym] = (0.0, plan[sym][1], plan[sym][2] + note)
    if profile:  # rule 9: the gross cap scales what trades, the band is judged on the scaled size
        final = gross_step(plan, positions, gross_cap, float(profile["band"]), braked)
    else:
        gross = sum(t for t, _, _ in plan.values())
        factor = gross_cap / gross if gross > gross_cap > 0 else (0.0 if gross_cap <= 0 else 1.0)
        final = {sym: (t * factor, why + (f"; scaled x{factor:.3f} for gross cap" if factor < 1.0 and t > 0 else ""))
                 for sym, (t, _, why) in plan.items()}
    def said(t: float, why: str) -> str:  # a kept weight above the position cap: its target is the cap, said so
        note = f"; above max_position_weight {max_w:g}: target capped at it" if t > max_w + 1e-12 else ""
        return why[:600 - len(note)] + note

    targets = [TargetWeight(symbol=sym, target_weight=_floor4(_clip(t, 0.0, max_w)), rationale=said(t, why))
               for sym, (t, why) in sorted(final.items())]
    final_gross = sum(t.target_weight for t in targets)
    n_open = sum(1 for t in targets if t.target_weight > 0)
    sizing = (f"profile {profile['name']}: vol target {float(profile['vol_target']):.0%}, entry {entry}, exit {exit_at}, "
              f"band {float(profile['band']):.0%}" + (f", core {core:.0%}" if core else "")
              + (f", brake x{throttle:.3f}" if throttle < 1 else "")
              + (f", book vol {book_est:.1%} > {book_target:.1%}: sizes x{book_scale:.3f}" if book_scale < 1 else "")
              if profile
              else f"vol target {VOL_TARGET:.0%}, entry {ENTRY_SCORE}, band {REBALANCE_BAND}")
    comment = f"offline-rules: {n_open} positions, gross {final_gross:.4f} (cap {gross_cap:.4f}); {sizing}"
    return RiskPlan(targets=targets, comment=comment)


_RULES: dict[str, Callable[[dict[str, Any]], BaseModel]] = {
    "analyst": _analyst,
    "sentiment": _sentiment,
    "quant": _quant,
    "risk": _risk,
}
