"""Speed of the vector memory (issue 10's targets). Prints figures; asserts nothing.

1. Embedding throughput of the local all-MiniLM-L6-v2 on this machine's CPUs (distinct texts, batches of 64),
   and what the text cache makes of a replay's categorical situation texts.
2. Store latency: one day's write (20 records) and one day's batched query (20 situations, k=5), p50 and
   p95, on both paths of the search (no record dated D or later, the daily and replay case; and a past
   ``--as-of`` where the ``where`` filter is needed), for the replays' exact in-process store
   (``memory.exact``) at 10,000 and 100,000 records, and the user's Chroma store on disk (the daily run's)
   at 10,000. Target: batched query p95 < 50 ms at 10,000.
3. The agent replay of ``synthetic-20`` with memory off and on over the same sessions (default 1,260),
   memory on with a cold text cache (as a fresh ``tradeagent eval`` process): seconds, what the memory adds
   per session, and how many texts it embedded. Target: memory on < 60 s for 1,260 sessions.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_memory.py [--sizes 10000,100000] [--chroma-sizes 10000]
        [--sessions 1260]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from agent.llm.offline import OfflineRulesClient
from agent.memory_inputs import situation_of
from evals.replay import ReplayBook, replay_policy, sessions_between
from memory.embeddings import MiniLMEmbedder, local_embedder
from memory.exact import ExactMemoryStore
from memory.models import MemoryRecord, date_int
from memory.store import ChromaMemoryStore, MemoryStore
from portfolio.risk import CEILINGS
from tools.cache import MarketCache
from tools.data import load_universe_data
from tools.universe import load_universe
from tools.view import precompute_indicators

SYMBOLS = [f"S{i:02d}" for i in range(20)]


def _features(rng: random.Random) -> dict[str, float]:
    close = 100.0
    return {"close": close, "sma_50": close / (1 + rng.gauss(0, 0.05)), "sma_200": close / (1 + rng.gauss(0, 0.1)),
            "rsi_14": rng.uniform(15, 85), "vol_20": rng.uniform(0.05, 0.6), "ret_20d": rng.gauss(0, 0.06),
            "drawdown": -abs(rng.gauss(0, 0.12))}


def _p(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100)[int(q) - 1] * 1000 if len(xs) > 1 else xs[0] * 1000


def bench_embeddings() -> None:
    model = MiniLMEmbedder()
    t0 = time.perf_counter()
    model.embed(["warm up"])
    print(f"MiniLM load (torch import included): {time.perf_counter() - t0:.1f} s")
    rng = random.Random(0)
    texts = [f"{s}: close {rng.uniform(10, 500):.2f}, RSI {rng.uniform(10, 90):.1f}, volatility {rng.uniform(5, 60):.1f}%"
             for s in SYMBOLS for _ in range(25)]
    t0 = time.perf_counter()
    model.embed(texts)
    seconds = time.perf_counter() - t0
    print(f"MiniLM embedding throughput: {len(texts) / seconds:.0f} texts/s ({len(texts)} distinct texts)")
    labels = [situation_of(_features(rng)).label for _ in range(25_200)]
    cached = local_embedder()
    t0 = time.perf_counter()
    for i in range(0, len(labels), 20):  # one replayed day at a time
        cached.embed(labels[i:i + 20])
    seconds = time.perf_counter() - t0
    print(f"a 20 x 1,260 replay's situation texts: {len(set(labels))} distinct in {len(labels)}; embedded in "
          f"{seconds:.1f} s with the cache ({len(labels) / seconds:.0f} records/s)")


def _records(day: date, rng: random.Random) -> list[MemoryRecord]:
    out = []
    for s in SYMBOLS:
        situation = situation_of(_features(rng))
        out.append(MemoryRecord(decision_date=date_int(day), symbol=s, action=rng.choice(["buy", "sell", "hold"]),
                                quantity=1.0, weight_before=0.0, target_weight=0.05, situation=situation,
                                text=situation.label))
    return out


def bench_store(name: str, store: MemoryStore, sizes: list[int]) -> None:
    rng = random.Random(1)
    day, n = date(1990, 1, 1), 0
    for size in sizes:
        t0 = time.perf_counter()
        while n < size - 20 * 50:
            batch = []
            for _ in range(25):
                day += timedelta(days=1)
                batch.extend(_records(day, rng))
            store.add(batch)
            n += len(batch)
        fill = time.perf_counter() - t0
        writes, reads, past = [], [], []
        middle = date_int(date(1990, 1, 1) + (day - date(1990, 1, 1)) / 2)
        for _ in range(50):
            day += timedelta(days=1)
            recs = _records(day, rng)
            t0 = time.perf_counter()
            store.add(recs)
            writes.append(time.perf_counter() - t0)
            n += len(recs)
            query = [situation_of(_features(rng)) for _ in SYMBOLS]
            t0 = time.perf_counter()
            store.search([q.label for q in query], as_of=date_int(day + timedelta(days=1)), k=5, situations=query)
            reads.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            store.search([q.label for q in query], as_of=middle, k=5, situations=query)
            past.append(time.perf_counter() - t0)
        print(f"{name}, {n:,} records (filled in {fill:.0f} s): day write (20 records) p50 {_p(writes, 50):.1f} ms, "
              f"p95 {_p(writes, 95):.1f} ms; batched query (20 situations, k=5) p50 {_p(reads, 50):.1f} ms, "
              f"p95 {_p(reads, 95):.1f} ms (target < 50 ms at 10,000); as of a past date "
              f"p50 {_p(past, 50):.1f} ms, p95 {_p(past, 95):.1f} ms")


def bench_stores(sizes: list[int], chroma_sizes: list[int]) -> None:
    if sizes:
        exact = ExactMemoryStore(local_embedder())
        bench_store("replay store (exact, in-process)", exact, sizes)
        exact.close()
    if chroma_sizes:
        with tempfile.TemporaryDirectory() as tmp:
            bench_store("user's store (Chroma on disk)", ChromaMemoryStore.persistent(Path(tmp) / "memory",
                                                                                      local_embedder()), chroma_sizes)


def bench_replay(sessions: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cache = MarketCache(Path(tmp) / "tradeagent.duckdb")
        try:
            data = load_universe_data(load_universe("synthetic-20"), cache, as_of=None, refresh=True)
        finally:
            cache.close()
    days = sessions_between(data, date(2012, 1, 2), date(2099, 1, 1))[:sessions]
    indicators = precompute_indicators(data)
    llm = OfflineRulesClient()
    seconds, cpu = {}, {}
    for memory in (False, True):
        cache = local_embedder()
        cache.clear()  # memory on starts cold, as a fresh eval process does
        t0, c0 = time.perf_counter(), time.process_time()
        run = replay_policy("agent", data, days, indicators=indicators, limits=CEILINGS, money=ReplayBook(),
                            client_for_day=lambda _d: llm, memory=memory)
        seconds[memory], cpu[memory] = time.perf_counter() - t0, time.process_time() - c0
        print(f"synthetic-20 agent replay, memory {'on' if memory else 'off'}: {len(days)} sessions in "
              f"{seconds[memory]:.1f} s, {cpu[memory]:.1f} s of CPU (other processes share the cores) "
              f"({seconds[memory] / len(days) * 1000:.0f} ms a session)"
              + (f"; {run.notes[-1]}; {cache.misses} distinct texts embedded in {cache.seconds:.1f} s (the model "
                 "was loaded before)" if memory and run.notes else ""))
    added = (seconds[True] - seconds[False]) / len(days) * 1000
    print(f"the memory adds {added:.0f} ms a session ({seconds[True] - seconds[False]:.1f} s over {len(days)} "
          f"sessions, {cpu[True] - cpu[False]:.1f} s of CPU; target: memory on < 60 s for 1,260)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000", help="replay store sizes to measure, comma-separated")
    parser.add_argument("--chroma-sizes", default="10000", help="Chroma store sizes to measure, comma-separated")
    parser.add_argument("--sessions", type=int, default=1260, help="replayed sessions (0: skip the replay)")
    args = parser.parse_args()
    bench_embeddings()
    bench_stores([int(x) for x in args.sizes.split(",") if x], [int(x) for x in args.chroma_sizes.split(",") if x])
    if args.sessions:
        bench_replay(args.sessions)


if __name__ == "__main__":
    main()
