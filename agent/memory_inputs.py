"""What the analyst and risk nodes read from the memory on day D, and the ``search_memory`` tool they are offered.

``DayMemory`` is the day's point-in-time reader (``DayDeps.memory``): a store bound to D, so that nothing it
returns was decided on or after D and no outcome it shows was known after D (``memory.store`` enforces it
in the query and re-checks every hit). ``prefetch(features)`` is ONE batched query for the whole universe:
one situation text per symbol, the k most similar past decisions for each. It is computed once per day and
shared by the analyst and the risk node (the same texts would give the same answer), and goes into their
prompt context under ``memory`` (so the offline rules read it too); ``search_memory`` answers the LLM's own
questions through the same reader.

Deliberate decisions:
- The situation text is categorical ("uptrend, momentum rising, RSI firm, volatility normal, near its high"),
  built from the day's indicator readings only, without the symbol: similar situations of any instrument
  are what a trader remembers, the embedding model reads words far better than numbers, and a few hundred
  distinct texts cover a whole replay (each is embedded once per process). The numbers are in the record.
- Memory is optional: a failing store never fails a node. ``prefetch`` then returns None (the node proceeds
  as with memory off) and the error is kept for the day's ``results["memory"]``; the tool tells the model
  the memory is unavailable.
- Empty memory, or no hit for any symbol: no ``memory`` key at all, so the prompt is the memory-off prompt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from memory.errors import MemoryStoreError
from memory.models import MemoryHit, Situation, date_int, int_date, is_hit
from memory.store import MemoryStore
from portfolio.storage import reraise_interrupt

K = 5  # past decisions recalled per symbol in the prompt
TREND_FULL_GAP = 0.05


def _num(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if f == f and abs(f) != float("inf") else None


def trend_score(features: Mapping[str, Any]) -> float | None:
    """Mean of close vs SMA 50 and close vs SMA 200 (a 5% gap is full strength), in [-1, 1]."""
    close = _num(features.get("close"))
    parts = []
    for key in ("sma_50", "sma_200"):
        sma = _num(features.get(key))
        if close is not None and sma is not None and sma > 0:
            parts.append(max(-1.0, min(1.0, (close / sma - 1.0) / TREND_FULL_GAP)))
    return sum(parts) / len(parts) if parts else None


def _bucket(value: float | None, edges: tuple[float, ...], words: tuple[str, ...]) -> str:
    if value is None:
        return "unknown"
    for edge, word in zip(edges, words, strict=False):
        if value < edge:
            return word
    return words[-1]


def situation_label(features: Mapping[str, Any]) -> str:
    """The categorical description of one symbol's day that is embedded (see the module doc)."""
    trend = _bucket(trend_score(features), (-0.6, -0.2, 0.2, 0.6),
                    ("strong downtrend", "downtrend", "no clear trend", "uptrend", "strong uptrend"))
    momentum = _bucket(_num(features.get("ret_20d")), (-0.03, 0.03), ("falling", "flat", "rising"))
    rsi = _bucket(_num(features.get("rsi_14")), (30, 45, 55, 70), ("oversold", "soft", "neutral", "firm", "overbought"))
    vol = _bucket(_num(features.get("vol_20")), (0.12, 0.25, 0.45), ("low", "normal", "high", "extreme"))
    dd = _bucket(_num(features.get("drawdown")), (-0.20, -0.05),
                 ("in a deep drawdown", "in a pullback", "near its high"))
    return f"{trend}, momentum {momentum}, RSI {rsi}, volatility {vol}, {dd}"


def situation_of(features: Mapping[str, Any], scores: Mapping[str, float | None] | None = None,
                 models: Mapping[str, str] | None = None) -> Situation:
    """One symbol's situation on the day: its label and readings (and, for a record, the nodes' scores)."""

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 6)

    return Situation(label=situation_label(features), close=r(_num(features.get("close"))),
                     trend=r(trend_score(features)), rsi_14=r(_num(features.get("rsi_14"))),
                     vol_20=r(_num(features.get("vol_20"))), ret_20d=r(_num(features.get("ret_20d"))),
                     drawdown=r(_num(features.get("drawdown"))), scores=dict(scores or {}), models=dict(models or {}))


def hit_view(hit: MemoryHit) -> dict[str, Any]:
    """One recalled decision as the prompt (and the offline rules) see it."""
    r, o = hit.record, hit.outcome
    return {
        "date": int_date(r.decision_date).isoformat(),
        "symbol": r.symbol,
        "action": r.action,
        "long_after": r.long_after,
        "weight_before": round(r.weight_before, 4),
        "target_weight": None if r.target_weight is None else round(r.target_weight, 4),
        "situation": r.situation.label,
        "similarity": round(hit.similarity, 3),
        "outcome": None if o is None else {
            "return": round(o.realised_return, 4), "benchmark": round(o.benchmark_return, 4),
            "excess": round(o.excess, 4), "sessions": o.horizon, "known_at": int_date(o.known_at).isoformat(),
            "right": is_hit(r, o), "reflection": o.reflection,
        },
    }


def one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())[:300]
    return text if isinstance(exc, MemoryStoreError) else f"{type(exc).__name__}: {text}"


class DayMemory:
    """The memory as day ``as_of`` may read it (module doc). Thread-safe: signal nodes run in parallel."""

    def __init__(self, store: MemoryStore, as_of: date, *, k: int = K) -> None:
        self.store = store
        self.as_of = as_of
        self.k = k
        self.errors: list[str] = []
        self.queries = 0
        self.recalled = 0
        self.seconds = 0.0  # spent in the store (embedding included): the memory's cost, reported per day
        self._lock = threading.Lock()
        self._prefetched: dict[str, list[dict[str, Any]]] | None = None
        self._done = False

    def prefetch(self, features: Mapping[str, Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]] | None:
        """Symbol -> recalled decisions (only symbols with any); None when the memory failed or has nothing."""
        with self._lock:
            if not self._done:
                self._done = True
                self._prefetched = self._query(features)
            return self._prefetched

    def _query(self, features: Mapping[str, Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]] | None:
        symbols = sorted(s for s, f in features.items() if _num(f.get("close")) is not None)
        if not symbols:
            return None
        started = time.perf_counter()
        try:
            self.queries += 1
            situations = [situation_of(features[s]) for s in symbols]
            hits = self.store.search([x.label for x in situations], as_of=date_int(self.as_of), k=self.k,
                                     situations=situations)
        except Exception as exc:  # optional: whatever failed, the node goes on as with memory off
            reraise_interrupt(exc)
            self.errors.append(f"recall: {one_line(exc)}")
            return None
        finally:
            self.seconds += time.perf_counter() - started
        recalled = {s: [hit_view(h) for h in hs] for s, hs in zip(symbols, hits, strict=True) if hs}
        self.recalled = sum(len(v) for v in recalled.values())
        return recalled or None

    def search(self, text: str, *, symbol: str | None, k: int) -> list[MemoryHit]:
        started = time.perf_counter()
        try:
            return self.store.search([text], as_of=date_int(self.as_of), k=k, symbol=symbol)[0]
        finally:
            with self._lock:
                self.queries += 1
                self.seconds += time.perf_counter() - started


# --------------------------------------------------------------------------- the tool


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SearchMemoryInput(_Frozen):
    query: str = Field(min_length=1, max_length=300,
                       description="a situation in words, e.g. 'strong uptrend, RSI overbought, volatility high'")
    symbol: str | None = Field(default=None, max_length=64, description="only decisions on this symbol")
    k: int = Field(default=5, ge=1, le=10, description="how many past decisions")


class SearchMemoryOutput(_Frozen):
    decisions: list[dict[str, Any]]
    note: str | None = None


def search_memory(inp: SearchMemoryInput, memory: DayMemory) -> SearchMemoryOutput:
    """Past decisions of this agent in situations most similar to `query`, decided before today, with their
    outcome (return vs the benchmark over the following sessions, and a short reflection) when it was already
    known today. Empty when nothing similar was decided before: nothing is invented."""
    try:
        hits = memory.search(inp.query, symbol=inp.symbol, k=inp.k)
    except Exception as exc:  # the model is told, the day's results say why
        reraise_interrupt(exc)
        memory.errors.append(f"search_memory: {one_line(exc)}")
        return SearchMemoryOutput(decisions=[], note="the memory is unavailable today")
    return SearchMemoryOutput(decisions=[hit_view(h) for h in hits],
                              note=None if hits else "no similar past decision before today")
