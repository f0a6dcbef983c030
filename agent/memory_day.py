"""The memory's part of the trading day (``agent.day``): outcomes before the graph, the day's records after it.

Contract:
- ``open_day`` (after settlement, before the graph) attaches every due outcome: a record decided on day T
  whose symbol has had ``HORIZON`` sessions since T gets the symbol's close-to-close return from T to the
  ``HORIZON``-th session after T (E), the benchmark's return over the same days, a reflection, and
  ``known_at = E``. It reads only the day's ``MarketView`` (nothing after D), so E <= D always. It returns
  the day's ``DayMemory`` reader and the report that becomes ``results["memory"]``.
- ``close_day`` (after the graph) writes one record per symbol the risk node gave a target for: action
  (``buy``/``sell`` from the orders the guard approved, else ``hold``), approved quantity, weight before,
  target weight, the situation (indicator readings, each signal node's score, the quant model versions), the
  risk node's rationale for that symbol and its prompt hash. A day that held before the risk node decided
  anything (halted, no data, every node abstained, a failure) writes nothing: nothing was decided.
- A dry run attaches and writes nothing. Any memory failure is caught, reported under ``errors`` and the
  day goes on: the ledger never depends on the memory.

Deliberate decisions:
- The benchmark is the universe itself, equal weight: the mean of each instrument's close-to-close return
  over the same days (each at its last close on or before T and E). It is what the agent could have held
  instead, in any universe, without naming an index.
- The reflection is a template (the offline policy's and, for now, the LLM's too): it states the decision,
  both returns and whether the decision was right against the benchmark. Asking the LLM to write it is a
  seam left for later (it would cost one call per day and belongs with the prompt templates).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from agent.memory_inputs import DayMemory, K, one_line, situation_of
from memory.models import MemoryRecord, Outcome, date_int, int_date, is_hit
from memory.store import MemoryStore
from portfolio.storage import reraise_interrupt
from tools.view import MarketView

HORIZON = 5  # sessions after the decision at whose close its outcome is known
SIGNAL_NODES = ("analyst", "sentiment", "quant")


class _Closes:
    """Each instrument's session dates and closes as arrays, read once per day (pandas lookups per record cost
    ~0.2 ms each; a day settles up to 20 records against 20 instruments)."""

    def __init__(self, view: MarketView) -> None:
        self.days = {s: b.index.values for s, b in view.bars.items() if not b.empty}
        self.closes = {s: b["close"].to_numpy(dtype="float64") for s, b in view.bars.items() if not b.empty}
        self._bench: dict[tuple[date, date], float | None] = {}

    def on_or_before(self, symbol: str, day: date) -> float | None:
        i = int(np.searchsorted(self.days[symbol], np.datetime64(day), side="right"))
        return float(self.closes[symbol][i - 1]) if i > 0 else None

    def benchmark(self, start: date, end: date) -> float | None:
        """The equal-weight universe's return from ``start``'s close to ``end``'s (module doc)."""
        if (start, end) not in self._bench:
            rets = [b / a - 1.0 for s in self.days
                    if (a := self.on_or_before(s, start)) is not None and a > 0
                    and (b := self.on_or_before(s, end)) is not None]
            self._bench[(start, end)] = sum(rets) / len(rets) if rets else None
        return self._bench[(start, end)]


def reflection(record: MemoryRecord, outcome: Outcome) -> str:
    """The template reflection (module doc)."""
    target = "" if record.target_weight is None else f" (target weight {record.target_weight:.1%})"
    verdict = "right" if is_hit(record, outcome) else "wrong"
    side = "long" if record.long_after else "out of"
    return (f"{record.action} {record.symbol}{target} when {record.situation.label}: {record.symbol} "
            f"{outcome.realised_return:+.1%} vs benchmark {outcome.benchmark_return:+.1%} over {outcome.horizon} "
            f"sessions; being {side} the name was {verdict}")[:400]


def due_outcomes(records: list[MemoryRecord], view: MarketView, horizon: int = HORIZON) -> dict[str, Outcome]:
    """Outcomes of ``records`` that ``view`` (day D) already knows (module doc)."""
    out: dict[str, Outcome] = {}
    if not records:
        return out
    closes = _Closes(view)
    for record in records:
        if record.symbol not in closes.days:
            continue
        decided = int_date(record.decision_date)
        days = closes.days[record.symbol]
        first_after = int(np.searchsorted(days, np.datetime64(decided), side="right"))  # = on_or_before's index
        if len(days) - first_after < horizon or first_after == 0:
            continue
        start = float(closes.closes[record.symbol][first_after - 1])
        if start <= 0:
            continue
        exit_day = pd.Timestamp(days[first_after + horizon - 1]).date()
        realised = float(closes.closes[record.symbol][first_after + horizon - 1]) / start - 1.0
        bench = closes.benchmark(decided, exit_day)
        if bench is None:
            continue
        draft = Outcome.model_construct(realised_return=round(realised, 6), benchmark_return=round(bench, 6),
                                        horizon=horizon, known_at=date_int(exit_day), reflection="-")
        out[record.id] = Outcome.model_validate({**draft.__dict__, "reflection": reflection(record, draft)})
    return out


def open_day(store: MemoryStore, view: MarketView, *, dry_run: bool, k: int = K) -> tuple[DayMemory, dict[str, Any]]:
    """Attach due outcomes (not in a dry run); the day's reader and its report."""
    started = time.perf_counter()
    report: dict[str, Any] = {"status": "ok", "attached": 0, "written": 0, "recalled": 0, "errors": []}
    if not dry_run:
        try:
            report["attached"] = store.attach(due_outcomes(store.pending(date_int(view.as_of)), view))
        except Exception as exc:  # optional: reported, never fails the day
            reraise_interrupt(exc)
            report["errors"].append(f"outcomes: {one_line(exc)}")
    report["seconds"] = time.perf_counter() - started
    return DayMemory(store, view.as_of, k=k), report


def _signal_scores(nodes: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    scores: dict[str, dict[str, float | None]] = {}
    for node in SIGNAL_NODES:
        outcome = nodes.get(node) or {}
        if outcome.get("status") != "ok":
            continue
        for sig in (outcome.get("output") or {}).get("signals", []):
            scores.setdefault(sig["symbol"], {})[node] = sig["score"]
    return scores


def day_records(run_date: date, features: Mapping[str, Mapping[str, Any]], results: Mapping[str, Any]) -> list[MemoryRecord]:
    """The records of one decided day (module doc); empty when the risk node decided nothing."""
    risk = (results.get("nodes") or {}).get("risk") or {}
    if risk.get("status") != "ok":
        return []
    approved: dict[str, tuple[str, float]] = {}
    for order in results.get("approved") or []:
        side, qty = order["side"], float(order["quantity"])
        prev = approved.get(order["symbol"])
        approved[order["symbol"]] = (side, qty + (prev[1] if prev and prev[0] == side else 0.0))
    weights = {p["symbol"]: float(p["weight"]) for p in (results.get("portfolio") or {}).get("positions", [])}
    scores = _signal_scores(results.get("nodes") or {})
    models = dict(((results.get("nodes") or {}).get("quant") or {}).get("models") or {})
    records = []
    for target in (risk.get("output") or {}).get("targets", []):
        symbol = target["symbol"]
        f = features.get(symbol) or {}
        side, qty = approved.get(symbol, ("hold", 0.0))
        situation = situation_of(f, {n: (scores.get(symbol) or {}).get(n) for n in SIGNAL_NODES}, models)
        records.append(MemoryRecord(
            decision_date=date_int(run_date), symbol=symbol, action=side,  # type: ignore[arg-type]
            quantity=qty, weight_before=weights.get(symbol, 0.0), target_weight=target.get("target_weight"),
            situation=situation, rationale=str(target.get("rationale") or "")[:600],
            prompt_hash=str(risk.get("prompt_hash") or ""), text=situation.label))
    return records


def close_day(store: MemoryStore, day: DayMemory, report: dict[str, Any], features: Mapping[str, Mapping[str, Any]],
              results: Mapping[str, Any], *, dry_run: bool) -> dict[str, Any]:
    """Write the day's records (not in a dry run); the finished ``results["memory"]``."""
    started = time.perf_counter()
    if not dry_run:
        try:
            report["written"] = store.add(day_records(day.as_of, features, results))
        except Exception as exc:  # optional: reported, never fails the day (the orders are already in the ledger)
            reraise_interrupt(exc)
            report["errors"].append(f"records: {one_line(exc)}")
    report["recalled"] = day.recalled
    report["queries"] = day.queries
    report["errors"].extend(day.errors)
    report["seconds"] = round(report["seconds"] + day.seconds + time.perf_counter() - started, 4)
    report["status"] = "degraded" if report["errors"] else "ok"
    return report
