"""The memory in the shared trading day: point-in-time on every replayed day, outcomes after D change nothing up
to D, dry runs write nothing, a failing memory never fails the day, the nodes' context and tool.

Days run through the real ``agent.day.trade_day`` (graph, guard, paper broker, DuckDB ledger in memory) on the
demo universe with the offline rules, and a real store: the exact in-process store replays use, and for the
point-in-time tests a Chroma store (in-process) too. The embedder is the small deterministic one of
``tests.memory.helpers`` (MiniLM is exercised by the CLI, daily and eval tests).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from agent.day import Book, trade_day
from agent.llm.base import LLMRequest, LLMResponse
from agent.llm.offline import OfflineRulesClient
from agent.memory_day import HORIZON
from agent.memory_inputs import DayMemory, SearchMemoryInput, search_memory
from evals.replay import sessions_between
from memory.errors import MemoryStoreError
from memory.exact import ExactMemoryStore
from memory.models import MemoryHit, MemoryRecord, Outcome, Situation, date_int
from memory.store import ChromaMemoryStore
from portfolio.breakers import MemoryRiskStore
from portfolio.broker import PaperBroker
from portfolio.ledger import Ledger
from portfolio.risk import CEILINGS
from tests.memory.helpers import WordsEmbedder
from tools.cache import MarketCache
from tools.data import UniverseData, load_universe_data
from tools.universe import load_universe
from tools.view import MarketView, precompute_indicators

START, END = date(2011, 1, 3), date(2011, 3, 8)  # 45 sessions


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[UniverseData, dict[str, Any], list[date]]:
    cache = MarketCache(tmp_path_factory.mktemp("cache") / "cache.duckdb")
    try:
        data = load_universe_data(load_universe("demo"), cache, as_of=END, refresh=True)
    finally:
        cache.close()
    return data, precompute_indicators(data), sessions_between(data, START, END)


@dataclass
class Seen:
    """What the nodes were given: per day, the memory context and the tools each LLM request offered."""

    contexts: list[tuple[date, str, Any]] = field(default_factory=list)
    tools: dict[str, set[str]] = field(default_factory=dict)


class RecordingRules(OfflineRulesClient):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen
        self.day = START

    def complete(self, request: LLMRequest) -> LLMResponse:
        self.seen.contexts.append((self.day, request.node, request.context.get("memory")))
        self.seen.tools.setdefault(request.node, set()).update(t.name for t in request.tools)
        return super().complete(request)


class SpyStore:
    """A real store that keeps every search it answered, and can garble outcomes known after ``garble_after``."""

    def __init__(self, garble_after: int | None = None, kind: str = "exact") -> None:
        self.kind = kind
        self.inner: ExactMemoryStore | ChromaMemoryStore = (
            ExactMemoryStore(WordsEmbedder()) if kind == "exact" else ChromaMemoryStore.ephemeral(WordsEmbedder()))
        self.searches: list[tuple[int, list[list[MemoryHit]]]] = []
        self.garble_after = garble_after

    def add(self, records: Sequence[MemoryRecord]) -> int:
        return self.inner.add(records)

    def attach(self, outcomes: Mapping[str, Outcome]) -> int:
        if self.garble_after is not None:  # the future, made up: a huge loss against a huge benchmark gain
            outcomes = {i: o.model_copy(update={"realised_return": -0.5, "benchmark_return": 0.5})
                        if o.known_at > self.garble_after else o for i, o in outcomes.items()}
        return self.inner.attach(outcomes)

    def pending(self, before: int) -> list[MemoryRecord]:
        return self.inner.pending(before)

    def search(self, texts: Sequence[str], *, as_of: int, k: int = 5, symbol: str | None = None,
               situations: Sequence[Situation | None] | None = None) -> list[list[MemoryHit]]:
        hits = self.inner.search(texts, as_of=as_of, k=k, symbol=symbol, situations=situations)
        self.searches.append((as_of, hits))
        return hits

    def records(self) -> list[tuple[MemoryRecord, Outcome | None]]:
        return self.inner.records()

    def count(self) -> int:
        return self.inner.count()


class BrokenStore(SpyStore):
    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise MemoryStoreError("memory search failed (disk on fire)")

    add = attach = pending = search = records = count = _fail  # type: ignore[assignment]


def _book() -> Book:
    ledger = Ledger(Path(":memory:"), base_currency="USD", starting_cash=10_000.0)
    return Book(ledger=ledger, risk_store=MemoryRiskStore(), limits=CEILINGS,
                broker=PaperBroker(ledger, commission_bps=10, slippage_bps=5, collar=CEILINGS.max_price_deviation))


def replay(demo: tuple[UniverseData, dict[str, Any], list[date]], store: Any, client: Any = None,
           days: list[date] | None = None) -> list[dict[str, Any]]:
    data, indicators, sessions = demo
    llm = client or OfflineRulesClient()
    book = _book()
    out = []
    for day in days or sessions:
        if isinstance(llm, RecordingRules):
            llm.day = day
        out.append(trade_day(MarketView.build(data, day, indicators=indicators), data.universe, book, llm,
                             memory=store))
    book.ledger.close()
    return out


def _decided(r: Mapping[str, Any]) -> Any:
    risk = (r["nodes"].get("risk") or {}).get("output")
    return r["date"], risk, [(o["symbol"], o["side"], o["quantity"]) for o in r["approved"]]


@pytest.fixture(scope="module", params=["exact", "chroma"])
def honest(demo: Any, request: pytest.FixtureRequest) -> tuple[Seen, SpyStore, list[dict[str, Any]]]:
    """The window replayed with memory (on each store), every search and every node's context kept."""
    seen, store = Seen(), SpyStore(kind=request.param)
    return seen, store, replay(demo, store, RecordingRules(seen))


def test_every_day_every_recalled_record_and_outcome_is_point_in_time(demo: Any, honest: Any) -> None:
    seen, store, results = honest
    assert all(r["memory"]["status"] == "ok" for r in results)
    assert sum(r["memory"]["written"] for r in results) == store.count() > 80
    assert sum(r["memory"]["attached"] for r in results) > 50
    # the store's answers (the nodes' pre-fetch and any tool call go through it)
    outcomes = {r.id: o for r, o in store.records() if o is not None}
    shown = hidden = 0
    for as_of, per_text in store.searches:
        for hit in (h for hits in per_text for h in hits):
            assert hit.record.decision_date < as_of
            if hit.outcome is not None:
                assert hit.outcome.known_at <= as_of
                shown += 1
            elif hit.record.id in outcomes:
                assert outcomes[hit.record.id].known_at > as_of  # known later: rightly not shown yet
                hidden += 1
    assert shown > 0 and hidden > 0
    # what the analyst and risk node were given on each day
    given = [(day, node, m) for day, node, m in seen.contexts if m]
    assert {node for _, node, _ in given} == {"analyst", "risk"}
    for day, _, memory in given:
        for recalled in memory.values():
            for d in recalled:
                assert date.fromisoformat(d["date"]) < day
                assert d["outcome"] is None or date.fromisoformat(d["outcome"]["known_at"]) <= day
    # an outcome is known HORIZON sessions after its decision, at that session's close
    sessions = demo[2]
    for rid, o in outcomes.items():
        decided = date.fromisoformat(f"{rid[:4]}-{rid[4:6]}-{rid[6:8]}")
        assert o.known_at == date_int(sessions[sessions.index(decided) + HORIZON])


def test_garbled_outcomes_known_after_d_change_nothing_decided_up_to_d(demo: Any, honest: Any) -> None:
    sessions = demo[2]
    cut = sessions[25]
    kind, honest = honest[1].kind, honest[2]
    garbled = replay(demo, SpyStore(garble_after=date_int(cut), kind=kind))
    upto = [i for i, d in enumerate(sessions) if d <= cut]
    assert [_decided(honest[i]) for i in upto] == [_decided(garbled[i]) for i in upto]
    # not vacuous: the made-up future does change later decisions (offline rule 8 reads the outcomes)
    after = [i for i, d in enumerate(sessions) if d > cut]
    assert [_decided(honest[i]) for i in after] != [_decided(garbled[i]) for i in after]


def test_the_nodes_get_the_memory_and_the_tool_only_when_memory_is_on(demo: Any) -> None:
    days = demo[2][:12]
    on, off = Seen(), Seen()
    with_memory = replay(demo, SpyStore(), RecordingRules(on), days=days)
    without = replay(demo, None, RecordingRules(off), days=days)
    assert "search_memory" in on.tools["analyst"] and "search_memory" in on.tools["risk"]
    assert all("search_memory" not in t for t in off.tools.values())
    assert all(m is None for _, _, m in off.contexts) and all("memory" not in r for r in without)
    assert not any(m for d, _, m in on.contexts if d == days[0])  # empty memory: no memory key at all
    assert any(m for _, _, m in on.contexts)
    assert with_memory[0]["memory"]["recalled"] == 0 and with_memory[-1]["memory"]["recalled"] > 0


def test_the_search_memory_tool_answers_only_from_before_its_day(demo: Any) -> None:
    store = SpyStore()
    replay(demo, store, days=demo[2][:15])
    day = demo[2][8]
    out = search_memory(SearchMemoryInput(query="uptrend, RSI firm", k=10), DayMemory(store, day))
    assert out.decisions and all(date.fromisoformat(d["date"]) < day for d in out.decisions)
    assert search_memory(SearchMemoryInput(query="uptrend"), DayMemory(store, demo[2][0])).decisions == []
    broken = search_memory(SearchMemoryInput(query="uptrend"), DayMemory(BrokenStore(), day))
    assert broken.decisions == [] and broken.note == "the memory is unavailable today"


def test_a_dry_run_reads_the_memory_but_writes_nothing(demo: Any) -> None:
    store = SpyStore()
    days = demo[2][:10]
    data, indicators, _ = demo
    book = _book()
    for day in days[:-1]:
        trade_day(MarketView.build(data, day, indicators=indicators), data.universe, book, OfflineRulesClient(),
                  memory=store)
    before = (store.count(), store.records())
    r = trade_day(MarketView.build(data, days[-1], indicators=indicators), data.universe, book, OfflineRulesClient(),
                  memory=store, dry_run=True)
    assert r["memory"]["written"] == 0 and r["memory"]["attached"] == 0 and r["memory"]["recalled"] > 0
    assert (store.count(), store.records()) == before


def test_a_failing_memory_is_reported_and_the_day_decides_as_without_memory(demo: Any) -> None:
    days = demo[2][:8]
    broken = replay(demo, BrokenStore(), days=days)
    plain = replay(demo, None, days=days)
    assert [_decided(r) for r in broken] == [_decided(r) for r in plain]
    assert all(r["memory"]["status"] == "degraded" and r["memory"]["errors"] for r in broken)
    assert any("disk on fire" in e for e in broken[-1]["memory"]["errors"])
    assert [r["placed"] != [] for r in broken] == [r["placed"] != [] for r in plain]
