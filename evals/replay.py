"""Replay one graph policy over history through the same day as ``tradeagent daily``: ``replay_policy``.

Contract:
- Each session D of the window runs ``agent.day.trade_day`` (kill switch, settlement at D's open of what was
  decided before, equity mark, breakers, graph, guard, paper broker) on a ledger of the replay's own, in
  memory: the user's book under TRADEAGENT_HOME is never opened. Decisions read D's close; orders fill at the
  next session's open with the broker's commission and slippage.
- The view of D is ``MarketView.build(data, D, indicators=…)``: bars and indicators cut at D. Indicators are
  computed once over the whole history and sliced (every indicator is causal; tests/tools/test_indicators.py
  proves the slice equals a recomputation on data cut at D, and tests/evals/test_point_in_time.py replaces every
  bar after D with garbage and finds every decision up to D unchanged). The validation gate too, once per
  replay (``precompute_validation``; tests/tools/test_validation_timeline.py proves each day's verdict equals
  the gate run on the data truncated at that day).
- A policy is a graph configuration (``POLICY_NODES``): which signal nodes may speak, and (``quant``) which
  trained models the quant node may read. ``xgb`` and ``ppo`` are the quant node with that model alone; a model
  kind that is not built is refused (``PolicyUnavailable``), never replaced by another.
- Listings: before its first bar an instrument is in the view as ``no_data`` (untradeable). Delistings: the
  shared day (``agent.day.close_delisted``) closes a position whose instrument has had no bar for 5 sessions
  at its last close, in the daily run and the replay alike; the run's notes list each one. The rule is
  point-in-time: it uses only the sessions seen so far, never the knowledge that the data will not come back.
- The kill switch of a replay is in memory (``MemoryRiskStore``), starting ACTIVE; breakers latch as live, and
  nobody resumes: each change of mode is a note of the run, and one line (``KILL_SWITCH_NOTE``) counts the
  sessions it could only sell (REDUCING) or not trade (HALTED). ``tradeagent eval`` prints that line.

Deliberate decisions:
- The LLM client comes from ``client_for_day`` (one per session), so a real LLM gets the daily run's per-run
  token budget and deadline; the offline rules are one stateless client.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from agent.day import Book, trade_day
from agent.llm.base import LLMClient
from agent.profiles import BRAKE_LOW, LEGACY, PROFILES, Profile, UnknownProfile, resolve
from agent.quant_inputs import PREDICTORS, QuantSetup
from agent.state import DayDeps
from evals.metrics import realised_pnls
from evals.models import LLMUsage, PolicyRun, Trade
from memory.embeddings import local_embedder
from memory.exact import ExactMemoryStore
from memory.store import MemoryStore, memory_stats
from portfolio.breakers import MemoryRiskStore
from portfolio.broker import PaperBroker
from portfolio.ledger import Ledger
from portfolio.models import RiskLimits
from tools.data import UniverseData
from tools.news.store import LoadedNews
from tools.view import MarketView, precompute_validation

# Graph policies and the signal nodes each lets speak. ``agent`` is every signal node that has inputs.
POLICY_NODES: dict[str, frozenset[str]] = {
    "agent": frozenset({"analyst", "sentiment", "quant"}),
    "analyst": frozenset({"analyst"}),
    "xgb": frozenset({"quant"}),
    "ppo": frozenset({"quant"}),
}
# Model policies: the quant node alone, reading only that kind of model (trained walk-forward by the harness).
MODEL_POLICIES = {"xgb": "xgb", "ppo": "ppo"}
KILL_SWITCH_NOTE = "kill switch latched:"  # a policy's note when a breaker stopped it trading (evals.cli, results)
KILL_SWITCH_CHANGE = ": kill switch "  # "D: kill switch ACTIVE -> HALTED: reason", one note per change of mode
BRAKE_PARKED_SESSIONS = 63  # a quarter of a year in a row under BRAKE_LOW: a warning, like a latched breaker
BRAKE_NOTE = "drawdown brake:"  # a policy's note when rule 9's brake capped its sizes (offline rules v9)
BRAKE_PARKED_NOTE = "drawdown brake parked the book:"  # evals.cli prints it as a warning; results tables mark it
PROFILE_SEP = "@"  # agent@conservative: the policy with that risk profile (agent.profiles)
MEMORY_SUFFIX = "+memory"  # the name of a policy's run with the vector memory (eval --memory on)
# Policies whose inputs cannot exist yet: the one line that says what is missing.
UNAVAILABLE = {
    kind: f"policy {kind} needs the {kind} model kind, which is not built yet"
    for kind in MODEL_POLICIES if kind not in PREDICTORS
}


class PolicyUnavailable(Exception):
    """A policy that cannot run here (unknown, or its inputs do not exist); the message is one line."""


@dataclass(frozen=True)
class ReplayBook:
    """Money and costs of a replay: the daily run's defaults unless the user's settings say otherwise."""

    starting_cash: float = 10_000.0
    commission_bps: float = 10.0
    slippage_bps: float = 5.0


def split_policy(name: str) -> tuple[str, str | None]:
    """``agent@balanced`` → (``agent``, ``balanced``); a name without ``@`` → (name, None): the run's default profile.

    ``PolicyUnavailable`` for a profile that does not exist (``agent@v3`` is the rules without a profile).
    """
    base, sep, profile = name.partition(PROFILE_SEP)
    if not sep:
        return name, None
    try:
        resolve(profile)
    except UnknownProfile as exc:
        raise PolicyUnavailable(f"policy {name!r}: {exc}") from None
    return base, profile


def check_policy(name: str) -> frozenset[str]:
    """The signal nodes of graph policy ``name`` (``base`` or ``base@profile``); ``PolicyUnavailable`` when it cannot run."""
    name, _ = split_policy(name)
    if name in UNAVAILABLE:
        raise PolicyUnavailable(UNAVAILABLE[name])
    if name not in POLICY_NODES:
        raise PolicyUnavailable(f"unknown graph policy {name!r}; known: {', '.join([*POLICY_NODES, *UNAVAILABLE])} "
                                f"(each may take a risk profile: agent@{'|'.join([*PROFILES, LEGACY])})")
    return POLICY_NODES[name]


def sessions_between(data: UniverseData, start: date, end: date) -> list[date]:
    """Days in [start, end] on which at least one instrument has a bar."""
    idx = pd.DatetimeIndex([])
    for bars in data.bars.values():
        idx = idx.union(bars.index[(bars.index >= pd.Timestamp(start)) & (bars.index <= pd.Timestamp(end))])
    return [ts.date() for ts in idx]


def replay_policy(
    name: str,
    data: UniverseData,
    sessions: list[date],
    *,
    indicators: Mapping[str, pd.DataFrame],
    limits: RiskLimits,
    money: ReplayBook,
    client_for_day: Callable[[date], LLMClient],
    on_day: Callable[[], None] | None = None,
    quant: QuantSetup | None = None,
    news: LoadedNews | None = None,
    memory: bool = False,
    default_profile: Profile | None = None,
) -> PolicyRun:
    """Replay graph policy ``name`` over ``sessions`` (sorted) and return its ``PolicyRun``.

    ``default_profile``: the risk profile of a policy named without ``@PROFILE`` (the user's, as in ``daily``).

    ``memory``: the policy with the vector memory of its own past decisions (an in-process Chroma store, empty
    at the first session, filled as the replay goes); its run is named ``name + MEMORY_SUFFIX``.

    ``quant``: the models the quant node may read (a model policy keeps only its own kind of them). ``news``: the
    stored news of the window; each day reads only what was available by its decision time (agent.news_inputs).
    """
    nodes = check_policy(name)
    base, suffix = split_policy(name)
    profile = resolve(suffix) if suffix is not None else default_profile
    if base in MODEL_POLICIES:
        kind = MODEL_POLICIES[base]
        quant = dataclasses.replace(quant, kinds=frozenset({kind})) if quant is not None and kind in quant.kinds else None
    uni = data.universe
    store = ExactMemoryStore(local_embedder()) if memory else None  # exact, reproducible (memory.exact)
    ledger = Ledger(":memory:", base_currency=uni.base_currency, starting_cash=money.starting_cash)  # type: ignore[arg-type]
    try:
        book = Book(ledger=ledger, risk_store=MemoryRiskStore(), limits=limits,
                    broker=PaperBroker(ledger, commission_bps=money.commission_bps, slippage_bps=money.slippage_bps,
                                       collar=limits.max_price_deviation))
        log = _Log()
        validation = precompute_validation(data)
        # What exists now (data, indicators, modules, models) lives through the replay: frozen, the collector
        # stops rescanning it at every collection of the days' short-lived objects (~1 ms a session on 20
        # symbols). Unfrozen after, so nothing is kept longer than it would have been.
        gc.freeze()
        try:
            for day in sessions:
                view = MarketView.build(data, day, indicators=indicators, validation=validation)
                results = trade_day(view, uni, book, client_for_day(day), configure=_policy(nodes, profile),
                                    quant=quant, news=news, memory=store)
                log.add(day, results)
                if on_day is not None:
                    on_day()
        finally:
            gc.unfreeze()
        log.notes.extend(log.kill_switch_notes())
        log.notes.extend(log.brake_notes())
        fills = ledger.fills()
        last_marks = {s: m for s, (_, _, m) in ledger.position_costs().items() if m is not None}
        if store is not None:
            log.notes.extend(log.memory_notes(store))
    finally:
        ledger.close()
        if store is not None:
            store.close()
    trades = tuple(Trade(date=f.fill_date, symbol=f.symbol, side=f.side, quantity=f.quantity,
                         price=f.price * f.fx_rate, fees=f.commission) for f in fills)
    index = pd.DatetimeIndex([pd.Timestamp(d) for d in log.days])
    weights = pd.DataFrame(log.weights, index=index).fillna(0.0) if log.weights else None
    return PolicyRun(
        name=name + (MEMORY_SUFFIX if memory else ""),
        equity=pd.Series(log.equity, index=index, name="equity"),
        exposure=pd.Series(log.exposure, index=index, name="exposure"),
        trades=trades,
        decisions=tuple(log.decisions),
        weights=weights.reindex(columns=sorted(weights.columns)) if weights is not None else None,
        trade_pnls=tuple(realised_pnls(list(trades), last_marks)),
        llm=LLMUsage(calls=log.calls, tokens=log.tokens),
        notes=tuple(log.notes),
        targets=tuple(log.targets),
    )


def latched_modes(notes: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """(mode, day) of each change of a replay's kill switch, read from its notes, in order."""
    out = []
    for note in notes:
        day, sep, rest = note.partition(KILL_SWITCH_CHANGE)
        if sep and " -> " in rest:
            out.append((rest.split(" -> ", 1)[1].split(":", 1)[0], day))
    return out


def _policy(nodes: frozenset[str], profile: Profile | None) -> Callable[[DayDeps], DayDeps]:
    return lambda deps: dataclasses.replace(deps, signal_nodes=nodes, profile=profile)


@dataclass
class _Log:
    """What the replay keeps of each day: equity, exposure, weights, decisions, LLM usage."""

    days: list[date] = dataclasses.field(default_factory=list)
    equity: list[float] = dataclasses.field(default_factory=list)
    exposure: list[float] = dataclasses.field(default_factory=list)
    weights: list[dict[str, float]] = dataclasses.field(default_factory=list)
    decisions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    targets: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    mode: str = "ACTIVE"  # the kill switch as the last session left it (a replay starts ACTIVE)
    latched: dict[str, int] = dataclasses.field(default_factory=dict)  # sessions decided in each non-ACTIVE mode
    braked: list[tuple[date, float, float]] = dataclasses.field(default_factory=list)  # (day, share, drawdown) < 1
    brake_cuts: int = 0  # braked sessions whose plan went above the brake's caps (agent.brake_caps cut it)
    calls: int = 0
    tokens: int = 0
    memory: dict[str, Any] = dataclasses.field(default_factory=lambda: {"days": 0, "recalled": 0, "errors": []})

    def add(self, day: date, r: Mapping[str, Any]) -> None:
        p = r["portfolio"]
        equity = float(p["equity"])
        self.days.append(day)
        self.equity.append(equity)
        self.exposure.append(sum(abs(x["market_value"]) for x in p["positions"]) / equity if equity > 0 else 0.0)
        self.weights.append({x["symbol"]: float(x["weight"]) for x in p["positions"]})
        self.calls += int(r.get("llm_calls", 0))
        self.notes.extend(f"{day}: {d['reason']} ({d['quantity']:g} units)" for d in r.get("delisted", []))
        self.tokens += int(r.get("tokens", 0))
        when = day.isoformat()
        for o in r["approved"]:
            self.decisions.append({"date": when, "symbol": o["symbol"], "action": o["side"], "quantity": o["quantity"],
                                   "clamped": o.get("clamped"), "reason": o.get("reason")})
        for x in r["rejected"]:
            self.decisions.append({"date": when, "symbol": x.get("symbol") or "?", "action": "rejected",
                                   "code": x["code"], "detail": x["detail"]})
        risk = (r.get("nodes") or {}).get("risk") or {}
        for t in (risk.get("output") or {}).get("targets", []) if risk.get("status") == "ok" else []:
            self.targets.append({"date": when, "symbol": t["symbol"], "target": t["target_weight"],
                                 "reason": t.get("rationale")})
        if (m := r.get("memory")) is not None:
            self.memory["days"] += 1
            self.memory["recalled"] += int(m.get("recalled", 0))
            self.memory["errors"].extend(f"{day}: {e}" for e in m.get("errors", []))
        state = (r.get("risk") or {}).get("state") or {}
        mode = str(state.get("mode") or self.mode)
        if mode != self.mode:
            self.notes.append(f"{day}{KILL_SWITCH_CHANGE}{self.mode} -> {mode}: {state.get('reason') or 'no reason given'}")
            self.mode = mode
        if mode != "ACTIVE":
            self.latched[mode] = self.latched.get(mode, 0) + 1
        share = (r.get("risk") or {}).get("brake")
        if share is not None and share < 1 and risk.get("status") == "ok":  # a plan was made under the brake
            self.braked.append((day, float(share), float((r.get("risk") or {}).get("drawdown") or 0.0)))
            self.brake_cuts += bool((risk.get("brake") or {}).get("capped"))  # the plan ignored it: cut in code
        hold = r.get("hold")
        if hold and hold.get("fallback"):  # a failed day, not a deliberate "nothing to change"
            self.decisions.append({"date": when, "symbol": "*", "action": "hold-all", "reason": hold["reason"]})

    def kill_switch_notes(self) -> list[str]:
        """One line when a breaker latched: how many sessions the book could only sell, or not trade at all."""
        if not self.latched:
            return []
        what = {"REDUCING": "REDUCING (only sales pass)", "HALTED": "HALTED (no order: the book is frozen)"}
        parts = ", ".join(f"{n} {what.get(m, m)}" for m, n in self.latched.items())  # in the order they came
        return [f"{KILL_SWITCH_NOTE} {parts} of {len(self.days)} sessions; a replay has no person to run "
                "`tradeagent risk resume`, so the book stays as the breaker left it (risk.toml: daily_loss_limit, "
                "max_drawdown)"]

    def brake_notes(self) -> list[str]:
        """One line when rule 9's brake capped the sizes: on how many sessions, and how far at its deepest."""
        if not self.braked:
            return []
        day, share, drawdown = min(self.braked, key=lambda b: (b[1], b[0]))
        # the longest stretch of sessions planned at under a tenth of the size: a book that can barely earn its way
        # back to its peak (a person's `risk resume` restarts the peak, and with it the brake)
        low = [d for d, s, _ in self.braked if s < BRAKE_LOW]
        index = {d: i for i, d in enumerate(self.days)}
        runs: list[list[date]] = []
        for d in low:
            if runs and index[d] == index[runs[-1][-1]] + 1:
                runs[-1].append(d)
            else:
                runs.append([d])
        longest = max(runs, key=len) if runs else []
        notes = [f"{BRAKE_NOTE} sizes capped on {len(self.braked)} of {len(self.days)} sessions; lowest share "
                 f"{share:.3f} of the size on {day} (drawdown {drawdown:.2%})"
                 + (f"; under {BRAKE_LOW:g} of the size for {len(longest)} session{'s' * (len(longest) != 1)} in a row "
                    f"from {longest[0]} to {longest[-1]}" if longest else "")
                 + (f"; the risk node's plan went above the caps on {self.brake_cuts} sessions (cut in code)"
                    if self.brake_cuts else "")]
        if len(longest) >= BRAKE_PARKED_SESSIONS:  # as good as frozen: said like a latched breaker
            notes.append(f"{BRAKE_PARKED_NOTE} {longest[0]} to {longest[-1]} ({len(longest)} sessions) under "
                         f"{BRAKE_LOW:g} of the size, nearly all cash: a book that can barely earn its way back to its "
                         "peak; a replay has no person to run `tradeagent risk resume`, which restarts the peak")
        return notes

    def memory_notes(self, store: MemoryStore) -> list[str]:
        stats = memory_stats(store)
        m = self.memory
        errors = m["errors"]
        return [f"memory: {stats['records']} decisions recorded, {stats['with_outcome']} with a known outcome; "
                f"{m['recalled']} recalled over {m['days']} sessions"  # no seconds: report.json is reproducible
                + (f"; {len(errors)} error(s), first: {errors[0]}" if errors else "")]
