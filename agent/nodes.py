"""The daily graph's nodes. Each is a plain function of (state, deps) returning a partial state update.

Deliberate decisions:
- One LLM conversation per node per day for the WHOLE universe (the prompt carries every symbol's
  features), never one per symbol: cost and latency stay flat as the universe grows.
- Signal nodes (analyst, sentiment, quant) ABSTAIN on any failure: their outcome says why and carries no
  weight. The risk node cannot abstain safely: if it fails, or no signal node produced anything, the day
  ends in hold-all with a ``fallback:<cause>`` reason.
- Except a replay cache miss (``cache_miss``): the day was asked to replay a recording that lacks one of its
  answers, and trading on the other nodes would be a day nobody recorded. Any node's miss, a signal node's
  included, ends the day in hold-all ``fallback:cache_miss``; the risk node asks nothing after a signal miss.
- Sentiment reads the news items available by D's decision time (``agent.news_inputs``: stored offline scores
  per symbol, and the item texts as a JSON list labelled untrusted data) and is offered NO tools. With no news
  store or no item about the universe it abstains (``no_news``). Its output never reaches the risk node: the
  decision node tilts the risk plan's positive targets by at most ``SENTIMENT_CAP`` (``agent.sentiment_tilt``).
- Quant reads the trained models' predictions (``agent.quant_inputs``: XGBoost, and PPO once built) for the
  whole universe in one batched call per model kind, puts them in its prompt context and asks for a
  ``QuantReport``; its outcome also names the model versions used (``models``) and why a kind gave nothing
  (``models_missing``). With no model trained before D it abstains (``no_models``) and carries no weight.
- The decision node is code, not an LLM: it turns the risk plan's target weights into orders, with a
  no-churn band. Every order it proposes still passes the guard, which the LLM cannot reach.
- The node that would read untrusted text (sentiment) is offered no tools at all.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from pydantic import BaseModel

from agent.brake_caps import cap_plan
from agent.llm.base import LLMRequest, tool_spec
from agent.llm.runner import AskFailed, BoundTool, ask
from agent.memory_inputs import SearchMemoryInput, search_memory
from agent.models import AnalystReport, NodeOutcome, QuantReport, RiskPlan, SentimentReport
from agent.news_inputs import WINDOW_HOURS, read_news
from agent.profiles import brake_share
from agent.quant_inputs import read_models
from agent.sentiment_tilt import SENTIMENT_CAP, sentiment_signals, tilt_plan
from agent.state import DayDeps, DayState
from portfolio import outbox
from portfolio.holdall import deliberate_hold, hold_all
from portfolio.risk import guard, stricter
from prompts.loader import load_prompt, render
from tools.errors import DataError
from tools.indicators import indicators_as_of
from tools.market_tools import GetBarsInput, GetIndicatorsInput, get_bars, get_indicators
from tools.portfolio_tools import GetPortfolioInput, GetRiskLimitsInput, get_portfolio, get_risk_limits

# Indicator columns the analyst sees for each symbol (names from tools.indicators).
FEATURES = (
    "close", "sma_20", "sma_50", "sma_200", "ema_12", "ema_26", "rsi_14", "macd_hist",
    "bb_percent", "adx_14", "vol_20", "drawdown",
)  # fmt: skip
REBALANCE_BAND = 0.02  # weight changes smaller than 2% of equity are not traded (no churn)
SIGNAL_NODES = ("analyst", "sentiment", "quant")
RISK_SIGNAL_NODES = ("analyst", "quant")  # sentiment reaches orders only through the capped tilt (agent.sentiment_tilt)
CACHE_MISS = "cache_miss"  # agent.llm.cache.CacheMiss's cause: a replay without a recording holds the whole day


def _round(value: Any) -> float | None:
    """Six significant digits keep prompts short and cache keys stable; NaN/inf become null."""
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(f):
        return None
    return float(f"{f:.6g}")


def _outcome(node: str, deps: DayDeps, **fields: Any) -> dict[str, Any]:
    llm = getattr(deps.client, "provider", "unknown")
    return NodeOutcome(node=node, llm=llm, **fields).model_dump(mode="json")


def abstention(node: str, deps: DayDeps, reason: str) -> dict[str, Any]:
    """The outcome of a node that produced nothing: it says why and carries no weight."""
    return _outcome(node, deps, status="abstained", abstain_reason=reason)


# --------------------------------------------------------------------------- context


def context_node(state: DayState, deps: DayDeps) -> DayState:
    features: dict[str, dict[str, Any]] = {}
    same_day = deps.run_date == deps.view.as_of  # always, in trade_day: then the view's own last rows
    for symbol in deps.universe.symbols:
        if same_day:
            row = deps.view.latest_indicators(symbol) or {}
        else:
            ind = deps.view.indicators.get(symbol)
            row = indicators_as_of(ind, deps.run_date) if ind is not None else {}
        bars = deps.view.bars.get(symbol)
        ret_20d = None
        if bars is not None and len(bars) > 20:
            closes = deps.view.closes(symbol).to_numpy()  # numpy scalars, as ``iloc`` gives, without its cost
            ret_20d = closes[-1] / closes[-21] - 1.0
        feats = {name: _round(row.get(name)) for name in FEATURES}
        feats["ret_20d"] = _round(ret_20d)
        validation = deps.view.validation.get(symbol)
        feats["tradeable"] = bool(validation.tradeable) if validation is not None else False
        features[symbol] = feats
    update: DayState = {"features": features}
    if not any(f["tradeable"] for f in features.values()):
        update["hold"] = hold_all("no_tradeable_data", "no instrument passed the data validation gate").model_dump()
    elif deps.risk_state.mode == "HALTED":
        update["hold"] = deliberate_hold("halted", f"risk state HALTED: {deps.risk_state.reason}").model_dump()
    return update


# --------------------------------------------------------------------------- LLM plumbing


def _bind(name: str, fn: Callable[..., BaseModel], input_model: type[BaseModel], bound: Any) -> BoundTool:
    return BoundTool(spec=_tool_spec(name, fn, input_model), input_model=input_model, fn=partial(_call, fn, bound))


# A spec and a schema depend on the code only; pydantic takes ~1 ms to build each, and a replay binds every
# tool and asks every node once per session. Built once per process, shared read-only.
_tool_spec = functools.cache(tool_spec)


@functools.cache
def _schema(output_model: type[BaseModel]) -> tuple[dict[str, Any], str]:
    """``output_model``'s JSON schema and its sorted JSON text (what the prompt shows)."""
    schema = output_model.model_json_schema()
    return schema, json.dumps(schema, sort_keys=True)


class ToolError(BaseModel):
    """What the model sees when it asks a tool for something that does not exist (an unknown symbol)."""

    error: str


def _call(fn: Callable[..., BaseModel], bound: Any, inp: BaseModel) -> BaseModel:
    # A wrong question (unknown symbol) is answered, so the model can correct itself; any other failure
    # propagates and the node abstains.
    try:
        return fn(inp, bound)
    except DataError as exc:
        return ToolError(error=str(exc))


def market_tools(deps: DayDeps) -> dict[str, BoundTool]:
    return {
        "get_bars": _bind("get_bars", get_bars, GetBarsInput, deps.view),
        "get_indicators": _bind("get_indicators", get_indicators, GetIndicatorsInput, deps.view),
    }


def book_tools(deps: DayDeps) -> dict[str, BoundTool]:
    return {
        "get_portfolio": _bind("get_portfolio", get_portfolio, GetPortfolioInput, deps.portfolio),
        "get_risk_limits": _bind("get_risk_limits", get_risk_limits, GetRiskLimitsInput, deps.limits),
    }


def _ask_node(
    node: str,
    deps: DayDeps,
    output_model: type[BaseModel],
    context: dict[str, Any],
    tools: Mapping[str, BoundTool],
) -> tuple[BaseModel | None, dict[str, Any]]:
    """Render the node's prompt, run the tool loop, and return (output or None, NodeOutcome dump)."""
    started = time.perf_counter()
    system, template = load_prompt("system"), load_prompt(node)
    schema, schema_json = _schema(output_model)
    context_json = json.dumps(context, sort_keys=True, separators=(",", ":"))
    messages = [
        {"role": "system", "content": system.text},
        {
            "role": "user",
            "content": render(
                template,
                as_of=deps.run_date.isoformat(),
                context_json=context_json,
                schema_json=schema_json,
            ),
        },
    ]
    request = LLMRequest(
        node=node,
        messages=messages,
        tools=[t.spec for t in tools.values()],
        response_schema=schema,
        context=context,
    )
    common = {"prompt": f"{template.name}@v{template.version}", "prompt_hash": template.sha256}
    try:
        result = ask(deps.client, request, output_model, tools)
    except AskFailed as exc:
        outcome = _outcome(
            node, deps, status="abstained", abstain_reason=exc.cause, abstain_detail=str(exc),
            llm_calls=exc.calls, tokens=exc.tokens, tool_calls=exc.tool_trace,
            seconds=round(time.perf_counter() - started, 4), **common,
        )  # fmt: skip
        return None, outcome
    outcome = _outcome(
        node, deps, status="ok", output=result.output.model_dump(mode="json"), llm_calls=result.calls,
        tokens=result.tokens, seconds=round(time.perf_counter() - started, 4), tool_calls=result.tool_trace,
        **common,
    )  # fmt: skip
    return result.output, outcome


# --------------------------------------------------------------------------- signal nodes


def _left_out(node: str, deps: DayDeps) -> DayState | None:
    """The abstention of a signal node this run's policy leaves out, else None."""
    if node in deps.signal_nodes:
        return None
    return {"nodes": {node: abstention(node, deps, "not_in_policy")}}


def analyst_node(state: DayState, deps: DayDeps) -> DayState:
    if (out := _left_out("analyst", deps)) is not None:
        return out
    context = {"as_of": deps.run_date.isoformat(), "symbols": state.get("features", {})}
    _, outcome = _ask_node("analyst", deps, AnalystReport, *_with_memory(state, deps, context, market_tools(deps)))
    return {"nodes": {"analyst": outcome}}


def _with_memory(
    state: DayState, deps: DayDeps, context: dict[str, Any], tools: dict[str, BoundTool]
) -> tuple[dict[str, Any], dict[str, BoundTool]]:
    """Add the day's recalled decisions (context key ``memory``) and the ``search_memory`` tool, when memory is on."""
    if deps.memory is None:
        return context, tools
    if (recalled := deps.memory.prefetch(state.get("features", {}))) is not None:
        context = {**context, "memory": recalled}
    return context, {**tools, "search_memory": _bind("search_memory", search_memory, SearchMemoryInput, deps.memory)}


def sentiment_node(state: DayState, deps: DayDeps) -> DayState:
    if (out := _left_out("sentiment", deps)) is not None:
        return out
    if deps.news is None:
        detail = "no news store (run `tradeagent news fetch`, or `eval --news FILE`)"
        return {"nodes": {"sentiment": _outcome("sentiment", deps, status="abstained", abstain_reason="no_news",
                                                abstain_detail=detail)}}
    readings = read_news(deps.news, deps.universe.symbols, deps.run_date)
    if not readings.symbols:
        detail = f"no news item about the universe in the {WINDOW_HOURS:g} h before {deps.run_date} 23:59:59 UTC"
        return {"nodes": {"sentiment": _outcome("sentiment", deps, status="abstained", abstain_reason="no_news",
                                                abstain_detail=detail)}}
    # Untrusted text travels only inside JSON strings under "untrusted_news" (quotes and control characters
    # escaped, so no item can close its string or the context); the prompt labels that key as data. No tools.
    context = {"as_of": deps.run_date.isoformat(), "symbols": readings.symbols, "untrusted_news": readings.prompt_items}
    _, outcome = _ask_node("sentiment", deps, SentimentReport, context, {})
    return {"nodes": {"sentiment": {**outcome, "news": readings.symbols, "item_ids": readings.item_ids}}}


def quant_node(state: DayState, deps: DayDeps) -> DayState:
    if (out := _left_out("quant", deps)) is not None:
        return out
    if deps.quant is None or not deps.quant.kinds:
        return {"nodes": {"quant": abstention("quant", deps, "no_models")}}
    readings = read_models(deps.quant, deps.universe.name, deps.view, deps.run_date)
    if not readings.versions:
        detail = "; ".join(f"{k}: {why}" for k, why in readings.missing.items())
        return {"nodes": {"quant": _outcome("quant", deps, status="abstained", abstain_reason="no_models",
                                            abstain_detail=f"no model usable on {deps.run_date} ({detail})")}}
    context = {"as_of": deps.run_date.isoformat(), "symbols": readings.symbols}
    _, outcome = _ask_node("quant", deps, QuantReport, context, {})
    return {"nodes": {"quant": {**outcome, "models": readings.versions, "models_missing": readings.missing}}}


# --------------------------------------------------------------------------- risk and decision


def _signals(state: DayState) -> dict[str, dict[str, Any]]:
    """Per symbol, the risk node's signal nodes' {score, confidence}, or None where one abstained or was silent.

    Sentiment is not among them: its only path to an order is the capped tilt after the plan.
    """
    signals: dict[str, dict[str, Any]] = {s: dict.fromkeys(RISK_SIGNAL_NODES) for s in state.get("features", {})}
    for node in RISK_SIGNAL_NODES:
        outcome = state.get("nodes", {}).get(node) or {}
        if outcome.get("status") != "ok":
            continue
        for sig in (outcome.get("output") or {}).get("signals", []):
            if sig["symbol"] in signals:
                signals[sig["symbol"]][node] = {"score": sig["score"], "confidence": sig["confidence"]}
    return signals


def _unrealised_return(symbol: str, avg_price: float, deps: DayDeps) -> float | None:
    quote = deps.market.quotes.get(symbol)
    if quote is None or avg_price <= 0:
        return None
    return _round(quote.price / avg_price - 1.0)


def _cache_misses(nodes: Mapping[str, dict[str, Any]]) -> list[str]:
    return [n for n in SIGNAL_NODES if (nodes.get(n) or {}).get("abstain_reason") == CACHE_MISS]


def _long_trend(features: Mapping[str, Any]) -> float | None:
    """Close against its 200-day average (0.05: 5% above it); None when either is unknown or not positive."""
    close, sma = features.get("close"), features.get("sma_200")
    if close is None or sma is None or not (close > 0 and sma > 0):
        return None
    return _round(close / sma - 1.0)


def _high_correlations(deps: DayDeps, floor: float = 0.8) -> dict[str, dict[str, float]]:
    """Pairs of the day's return correlations at or above ``floor`` (the rest would only lengthen the prompt)."""
    out: dict[str, dict[str, float]] = {}
    # _round moves a value by at most 5e-6 of itself: nothing below ``lowest`` can round up to the floor, so
    # only the few pairs above it are rounded and sorted (the same pairs, in the same order).
    lowest = floor - abs(floor) * 1e-5
    for a, row in deps.market.correlations.items():
        near = {b: r for b, c in sorted((b, c) for b, c in row.items() if not c < lowest)
                if (r := _round(c)) is not None and r >= floor}
        if near:
            out[a] = near
    return out


def risk_node(state: DayState, deps: DayDeps) -> DayState:
    nodes = state.get("nodes", {})
    if missed := _cache_misses(nodes):
        detail = f"the replay has no recording for node(s) {', '.join(missed)}"
        return {"hold": hold_all(CACHE_MISS, detail).model_dump()}
    if not any(nodes.get(n, {}).get("status") == "ok" for n in RISK_SIGNAL_NODES):
        causes = ",".join(f"{n}={nodes.get(n, {}).get('abstain_reason', 'missing')}" for n in SIGNAL_NODES)
        return {"hold": hold_all("no_signals", f"every signal node abstained ({causes})").model_dump()}
    snap = deps.portfolio
    context: dict[str, Any] = {
        "as_of": deps.run_date.isoformat(),
        "base_currency": snap.base_currency,
        "equity": _round(snap.equity),
        "cash": _round(snap.cash),
        "positions": {p.symbol: _round(p.weight) for p in snap.positions},
        "limits": deps.limits.model_dump(mode="json"),
        "signals": _signals(state),
        "volatility": {s: f.get("vol_20") for s, f in state.get("features", {}).items()},
        "momentum": {s: f.get("ret_20d") for s, f in state.get("features", {}).items()},
        "pnl": {p.symbol: _unrealised_return(p.symbol, p.avg_price, deps) for p in snap.positions},
    }
    if exit_only := sorted(p.symbol for p in snap.positions
                           if (q := deps.market.quotes.get(p.symbol)) is not None and q.exit_only and p.quantity > 0):
        context["exit_only"] = exit_only  # held names the guard lets only be sold (a past jump): rule 10 closes them
    if deps.profile is not None:  # only then: a context without these keys keeps v3's cache keys and rules
        context["profile"] = deps.profile.context()
        context["correlations"] = _high_correlations(deps)
        context["long_trend"] = {s: _long_trend(f) for s, f in state.get("features", {}).items()}
        if deps.profile.brake > 0:  # only then, so that a profile without a brake keeps its cache keys
            context["drawdown"] = _round(deps.drawdown)
        if deps.profile.book_vol > 0:  # rule 9's book volatility target reads every pair (v10), and only it
            context["all_correlations"] = {a: {b: _round(c) for b, c in row.items()}
                                           for a, row in deps.market.correlations.items()}
    plan, outcome = _ask_node("risk", deps, RiskPlan, *_with_memory(state, deps, context, book_tools(deps)))
    update: DayState = {"nodes": {"risk": outcome}}
    if plan is None and outcome["abstain_reason"] == CACHE_MISS:
        update["hold"] = hold_all(CACHE_MISS, "the replay has no recording for node risk").model_dump()
    elif plan is None:
        update["hold"] = hold_all(f"risk_{outcome['abstain_reason']}", "the risk node could not size the day").model_dump()
    return update


def decision_node(state: DayState, deps: DayDeps) -> DayState:
    """Target weights -> orders. Code, not an LLM; unknown symbols pass through so the guard rejects them."""
    plan = RiskPlan.model_validate(state["nodes"]["risk"]["output"])
    sentiment = state.get("nodes", {}).get("sentiment")
    tilted, tilts = tilt_plan(plan, sentiment_signals(sentiment), deps.limits.max_position_weight)
    snap = deps.portfolio
    held = {p.symbol: p for p in snap.positions}
    proposals: list[dict[str, Any]] = []
    share = brake_share(deps.profile.brake, deps.drawdown, deps.limits.max_drawdown) if deps.profile else 1.0
    braking = share < 1
    capped: list[dict[str, Any]] = []
    if braking and deps.profile is not None:  # the brake holds on any plan, an LLM's included
        plan, tilted, capped = cap_plan(plan, tilted, state.get("features", {}), snap.positions,
                                        deps.limits.max_position_weight, deps.profile, share)
    for planned, target in zip(plan.targets, tilted.targets, strict=True):
        current = held.get(target.symbol)
        w0 = current.weight if current is not None else 0.0
        # while rule 9's brake binds, sentiment may lower a target, never lift it above the plan's
        delta = (min(target.target_weight, planned.target_weight) if braking else target.target_weight) - w0
        if target.target_weight == 0.0 and current is not None and current.quantity > 0:
            proposals.append(
                {"symbol": target.symbol, "side": "sell", "quantity": current.quantity, "reason": target.rationale}
            )
            continue
        # The band is judged on the plan's own change; the tilt only resizes a trade the plan makes (same side),
        # so sentiment can neither create an order nor move one by more than SENTIMENT_CAP. With a profile the
        # plan has applied its own band to resizes, and an entry from flat is the whole position: it is traded
        # whatever its size (a 1% cap in risk.toml, or the spread over 48+ names, would otherwise never trade).
        # While the drawdown brake binds, a sale of more than the profile's band of the weight is traded whatever
        # its size: near the breaker the brake's caps are below 2 points, and a band that kept them would carry a
        # few points of every name into the breaker.
        planned_delta = planned.target_weight - w0
        entry = deps.profile is not None and w0 == 0.0 and planned.target_weight > 0.0
        sell_down = braking and w0 > 0 and deps.profile is not None and -planned_delta > deps.profile.band * w0
        if (abs(planned_delta) < REBALANCE_BAND and not (entry or sell_down)) or delta * planned_delta <= 0:
            continue
        quote = deps.market.quotes.get(target.symbol)
        side = "buy" if delta > 0 else "sell"
        if quote is None or not (quote.price > 0 and quote.fx_rate > 0):
            proposals.append({"symbol": target.symbol, "side": side, "weight": abs(delta), "reason": target.rationale})
            continue
        quantity = math.floor(abs(delta) * snap.equity / (quote.price * quote.fx_rate) * 1e4) / 1e4
        if quantity > 0:
            proposals.append({"symbol": target.symbol, "side": side, "quantity": quantity, "reason": target.rationale})
    update: DayState = {"proposals": proposals}
    if tilts and sentiment is not None:
        update["nodes"] = {"sentiment": {**sentiment, "tilt": {"cap": SENTIMENT_CAP, "targets": tilts}}}
    if braking:  # what the brake allowed today, and what of the plan it cut (nothing, for the offline rules)
        risk = {**state["nodes"]["risk"], "brake": {"share": _round(share), "capped": capped}}
        update["nodes"] = {**update.get("nodes", {}), "risk": risk}
    if not proposals:
        update["hold"] = deliberate_hold("no_change", "the plan matches the book within the rebalance band").model_dump()
    return update


# --------------------------------------------------------------------------- guard, broker, hold


def guard_node(state: DayState, deps: DayDeps) -> DayState:
    result = guard(
        state.get("proposals", []),
        portfolio=deps.portfolio,
        market=deps.market,
        limits=deps.limits,
        state=deps.risk_state,
        history=deps.history,
        run_date=deps.run_date,
        fee_bps=deps.fee_bps,
    )
    return {"guard": result, "can_place": deps.broker is not None}


def broker_node(state: DayState, deps: DayDeps) -> DayState:
    """Place the approved orders, after reading the kill switch again under its lock.

    A ``risk halt`` or ``risk reduce`` issued while this run waited on the LLM is in force here: when the state
    now saved is stricter than the one the day started with, the guard runs again under it (HALTED approves
    nothing, REDUCING only what reduces risk) and only what it approves is placed.
    """
    if deps.broker is None:  # the router never comes here in --dry-run; fail closed if it did
        return {"hold": hold_all("no_broker", "orders approved but no broker in this run").model_dump()}
    result = state["guard"]
    lock = deps.risk_store.locked() if deps.risk_store is not None else contextlib.nullcontext()
    update: DayState = {}
    with lock:
        now = deps.risk_store.load(book_exists=True) if deps.risk_store is not None else deps.risk_state
        if stricter(deps.risk_state, now) is not deps.risk_state:
            result = guard(
                state.get("proposals", []), portfolio=deps.portfolio, market=deps.market, limits=deps.limits,
                state=now, history=deps.history, run_date=deps.run_date, fee_bps=deps.fee_bps,
            )  # fmt: skip
            update["guard"] = result
            update["risk_now"] = now.model_dump(mode="json")  # the results file reports the state in force
            if not result.approved:
                update["hold"] = deliberate_hold(now.mode.lower(), f"risk state {now.mode} mid-run: {now.reason}").model_dump()
        with deps.ledger.transaction() as con:  # the day's verdicts and the orders they approved are stored together or not at all
            deps.ledger.record_guard(deps.run_date, result)
            update["placed"] = deps.broker.submit(result.approved)
            outbox.enqueue_guard(con, deps.run_date, deps.universe.name, result, update["placed"])  # alerts commit with them
    return update


def hold_node(state: DayState, deps: DayDeps) -> DayState:
    if state.get("hold"):
        return {}
    return {"hold": hold_all("unknown", "the graph routed to hold without a reason").model_dump()}
