"""The memory stores: point-in-time search, outcomes, persistence across processes and a killed writer.

The contract tests run on both stores: Chroma (the user's memory; in-process here) and the exact in-process
store the replays use (``memory.exact``). Persistence tests use a Chroma store on disk. The embedder is the
small deterministic one from ``tests.memory.helpers`` (the MiniLM model has its own tests).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory.errors import MemoryStoreError
from memory.exact import ExactMemoryStore
from memory.models import MemoryRecord, Outcome, is_hit
from memory.store import ChromaMemoryStore, MemoryStore, _vector, memory_stats
from tests.memory.helpers import WordsEmbedder, outcome, record, situation_text

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ("AAA", "BBB", "CCC")
DAYS = [20200100 + i for i in range(1, 21)]  # 2020-01-01 … 2020-01-20 as integers


def _filled(store: MemoryStore) -> dict[str, tuple[MemoryRecord, Outcome]]:
    """20 days x 3 symbols; each outcome becomes known 5 days after its decision."""
    everything = {}
    for i, day in enumerate(DAYS):
        recs = [record(day, s, ("buy", "sell", "hold")[(i + j) % 3]) for j, s in enumerate(SYMBOLS)]
        store.add(recs)
        for r in recs:
            everything[r.id] = (r, outcome(DAYS[i + 5] if i + 5 < len(DAYS) else 20200201,
                                           realised=0.01 * ((i * 7 + len(r.symbol)) % 5 - 2)))
    store.attach({i: o for i, (_, o) in everything.items()})
    return everything


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.fixture(params=["chroma", "exact"])
def store(request: pytest.FixtureRequest) -> Iterator[ChromaMemoryStore | ExactMemoryStore]:
    s = ChromaMemoryStore.ephemeral(WordsEmbedder()) if request.param == "chroma" else ExactMemoryStore(WordsEmbedder())
    yield s
    s.close()


def test_search_sees_only_decisions_before_d_and_outcomes_known_by_d(store: MemoryStore) -> None:
    everything = _filled(store)
    embed = WordsEmbedder().embed
    queries = [situation_text(i) for i in range(6)]
    qv = embed(queries)
    stripped = with_outcome = 0
    for as_of in [20200101, *DAYS[1:], 20200125]:  # the last: after every decision (the store's fast path)
        results = store.search(queries, as_of=as_of, k=4)
        assert len(results) == len(queries)
        visible = [r for r, _ in everything.values() if r.decision_date < as_of]
        for q, hits in zip(qv, results, strict=True):
            assert all(h.record.decision_date < as_of for h in hits)
            for h in hits:
                truth = everything[h.record.id][1]
                if truth.known_at <= as_of:
                    assert h.outcome == truth
                    with_outcome += 1
                else:
                    assert h.outcome is None
                    stripped += 1
            # the k most similar of the visible records, by brute force (compared by similarity: they may tie)
            vs = [_vector(v, r.situation) for v, r in zip(embed([r.text for r in visible]), visible, strict=True)]
            best = sorted((round(_cos(_vector(q, None), v), 5) for v in vs), reverse=True)[:4]
            assert [round(h.similarity, 5) for h in hits] == pytest.approx(best, abs=1e-4)
    assert with_outcome > 0 and stripped > 0  # both sides of the outcome rule were exercised


def test_exact_ties_come_back_newest_first_and_the_same_every_time(store: MemoryStore) -> None:
    # identical records (same words, same readings), fewer than the over-fetch: all are ranked, newest first
    store.add([record(day, "AAA", text="uptrend, RSI neutral") for day in DAYS[:8]])
    first = store.search(["uptrend, RSI neutral"], as_of=20200107, k=3)[0]
    assert [h.record.decision_date for h in first] == [20200106, 20200105, 20200104]
    assert store.search(["uptrend, RSI neutral"], as_of=20200107, k=3)[0] == first


def test_readings_tell_apart_situations_described_by_the_same_words(store: MemoryStore) -> None:
    calm, wild = (record(20200102, s, text="uptrend, RSI firm").situation.model_copy(update={"vol_20": v})
                  for s, v in (("AAA", 0.10), ("BBB", 0.60)))
    store.add([record(20200102, "AAA", text="uptrend, RSI firm").model_copy(update={"situation": calm}),
               record(20200102, "BBB", text="uptrend, RSI firm").model_copy(update={"situation": wild})])
    (near_calm,), (near_wild,) = store.search(["uptrend, RSI firm"] * 2, as_of=20200103, k=1,
                                              situations=[calm.model_copy(update={"vol_20": 0.12}), wild])
    assert near_calm.record.symbol == "AAA" and near_wild.record.symbol == "BBB"


def test_a_symbol_filter_returns_only_that_symbol(store: MemoryStore) -> None:
    _filled(store)
    hits = store.search(["uptrend"], as_of=20200112, k=5, symbol="BBB")[0]
    assert hits and {h.record.symbol for h in hits} == {"BBB"} and all(h.record.decision_date < 20200112 for h in hits)


def test_an_empty_memory_returns_nothing(store: MemoryStore) -> None:
    assert store.search(["uptrend", "downtrend"], as_of=20200110, k=3) == [[], []]
    assert store.pending(20200110) == [] and memory_stats(store)["records"] == 0
    store.add([record(20200110, "AAA")])
    assert store.search(["uptrend"], as_of=20200110, k=3) == [[]]  # decided on D itself: not visible on D


def test_pending_lists_records_without_outcome_and_a_rewritten_day_keeps_its_outcome(store: MemoryStore) -> None:
    store.add([record(20200102, "AAA"), record(20200102, "BBB"), record(20200103, "AAA")])
    assert [r.id for r in store.pending(20200103)] == ["20200102:AAA", "20200102:BBB"]
    store.attach({"20200102:AAA": outcome(20200109)})
    assert [r.id for r in store.pending(20200110)] == ["20200102:BBB", "20200103:AAA"]
    assert store.add([record(20200102, "AAA", "sell"), record(20200102, "BBB", "sell")]) == 1  # AAA has an outcome
    rows = {r.id: (r, o) for r, o in store.records()}
    assert rows["20200102:AAA"][0].action == "buy" and rows["20200102:AAA"][1] == outcome(20200109)
    assert rows["20200102:BBB"][0].action == "sell" and store.count() == 3


def test_stats_give_the_hit_rate_per_action_against_the_benchmark(store: MemoryStore) -> None:
    store.add([record(20200102, "AAA", "buy"), record(20200102, "BBB", "buy"), record(20200102, "CCC", "sell"),
               record(20200102, "DDD", "hold", weight_before=0.1), record(20200103, "AAA", "buy")])
    store.attach({"20200102:AAA": outcome(20200109, 0.05, 0.01), "20200102:BBB": outcome(20200109, 0.0, 0.01),
                  "20200102:CCC": outcome(20200109, -0.03, 0.01), "20200102:DDD": outcome(20200109, -0.02, 0.01)})
    stats = memory_stats(store)
    assert stats["records"] == 5 and stats["with_outcome"] == 4
    assert stats["actions"]["buy"] == {"records": 3, "with_outcome": 2, "hits": 1, "hit_rate": 0.5,
                                       "mean_excess_return": 0.015}
    assert stats["actions"]["sell"]["hit_rate"] == 1.0  # sold a name that then lagged
    assert stats["actions"]["hold"]["hit_rate"] == 0.0  # held a name that lagged
    assert is_hit(record(1, "X", "hold"), outcome(2, -0.05, 0.01))  # staying out of a laggard is right


def test_a_memory_written_with_one_embedding_model_refuses_another(tmp_path: Path) -> None:
    ChromaMemoryStore.persistent(tmp_path / "memory", WordsEmbedder("model-a")).add([record(20200102, "AAA")])
    with pytest.raises(MemoryStoreError) as err:
        ChromaMemoryStore.persistent(tmp_path / "memory", WordsEmbedder("model-b"))
    message = str(err.value)
    assert "\n" not in message and "'model-a'" in message and "'model-b'" in message and "aside" in message
    assert ChromaMemoryStore.persistent(tmp_path / "memory", None).count() == 1  # read-only use still works


_WRITER = """
import sys, time
sys.path.insert(0, {root!r})
from memory.store import ChromaMemoryStore
from tests.memory.helpers import WordsEmbedder, record
store = ChromaMemoryStore.persistent(__import__("pathlib").Path({path!r}), WordsEmbedder())
for i in range({batches}):
    day = 20200101 + i % 28 + 100 * (i // 28)
    store.add([record(day, f"S{{j:03d}}") for j in range(50)])
    print(i + 1, flush=True)
time.sleep(60)
"""


def _writer(path: Path, batches: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _WRITER.format(root=str(ROOT), path=str(path), batches=batches)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_memory_persists_across_processes(tmp_path: Path) -> None:
    proc = _writer(tmp_path / "memory", 2)
    try:
        assert proc.stdout is not None
        assert [proc.stdout.readline().strip() for _ in range(2)] == ["1", "2"]
    finally:
        proc.kill()
        proc.wait()
    store = ChromaMemoryStore.persistent(tmp_path / "memory", WordsEmbedder())
    assert store.count() == 100
    hits = store.search([situation_text(0)], as_of=20200103, k=3)[0]
    assert len(hits) == 3 and {h.record.decision_date for h in hits} <= {20200101, 20200102}


def test_a_writer_killed_mid_write_leaves_a_memory_the_next_run_opens_and_extends(tmp_path: Path) -> None:
    proc = _writer(tmp_path / "memory", 10_000)
    try:
        assert proc.stdout is not None
        done = 0
        deadline = time.monotonic() + 60
        while done < 5 and time.monotonic() < deadline:
            done = int(proc.stdout.readline().strip() or done)
        time.sleep(0.05)  # let it be inside the next write
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    store = ChromaMemoryStore.persistent(tmp_path / "memory", WordsEmbedder())
    n = store.count()
    assert n >= 250 and n % 50 == 0  # every batch is all there or not at all
    assert len(store.records()) == n
    store.add([record(20300101, "NEW")])
    assert store.count() == n + 1
    assert store.search(["uptrend"], as_of=20300102, k=2)[0]


def test_similarity_is_cosine(store: MemoryStore) -> None:
    rec = record(20200102, "AAA", text="uptrend, momentum rising")
    store.add([rec])
    (hit,) = store.search([rec.text], as_of=20200103, k=1, situations=[rec.situation])[0]
    assert math.isclose(hit.similarity, 1.0, abs_tol=1e-5)
    (words_only,) = store.search([rec.text], as_of=20200103, k=1)[0]
    assert 0.9 < words_only.similarity < 1.0  # the readings count too
