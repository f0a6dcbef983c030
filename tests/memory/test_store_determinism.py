"""Replays must be bit-identical: a store built twice the same way answers every search the same way.

The replays' store (``memory.exact``) searches exactly, so its answers cannot depend on how records were
written; it takes a day in one call, in any order. Chroma's local index inserts the records of one write call
in parallel over a randomly ordered hash map, so its in-process store writes one record a call
(``memory.store``'s module doc, "Determinism"). These stores pass 3,000 records, three times Chroma's default
``sync_threshold`` and far past the point where two Chroma demo replays diverged (~2,000), with coarse
readings so that many records are exact ties.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from memory.exact import ExactMemoryStore
from memory.models import MemoryRecord, Situation
from memory.store import ChromaMemoryStore
from tests.memory.helpers import WordsEmbedder, situation_text

SYMBOLS = [f"S{i:02d}" for i in range(20)]
DAYS = 150  # x 20 symbols = 3,000 records
Answers = list[list[list[tuple[str, float]]]]
STORES: dict[str, Callable[[], ChromaMemoryStore | ExactMemoryStore]] = {
    "chroma": lambda: ChromaMemoryStore.ephemeral(WordsEmbedder()),
    "exact": lambda: ExactMemoryStore(WordsEmbedder()),
}


def _situation(rng: random.Random) -> Situation:
    return Situation(label=situation_text(rng.randrange(12)), trend=rng.choice([-0.5, 0.0, 0.5]),
                     rsi_14=rng.choice([30.0, 50.0, 70.0]), vol_20=rng.choice([0.1, 0.2, 0.4]))


def _replay(kind: str, *, seed: int = 7, shuffle: int | None = None) -> Answers:
    """A replay in miniature: a day's 20 records in one call, then a batched search, day after day.
    ``shuffle``: each day's records reach the store in another order (seeded)."""
    rng = random.Random(seed)
    order = random.Random(shuffle)
    store = STORES[kind]()
    answers = []
    try:
        for d in range(DAYS):
            day = 20000101 + 100 * (d // 25) + d % 25  # 2000-01-01 ... 2000-06-25
            recs = []
            for s in SYMBOLS:
                situation = _situation(rng)
                recs.append(MemoryRecord(decision_date=day, symbol=s, action=rng.choice(["buy", "sell", "hold"]),
                                         quantity=1.0, weight_before=0.0, target_weight=0.05,
                                         situation=situation, text=situation.label))
            if shuffle is not None:
                order.shuffle(recs)
            store.add(recs)
            if d % 10 == 9 or d == DAYS - 1:
                queries = [_situation(rng) for _ in range(20)]
                hits = store.search([q.label for q in queries], as_of=day + 1, k=5, situations=queries)
                answers.append([[(h.record.id, h.similarity) for h in row] for row in hits])
        assert store.count() == DAYS * len(SYMBOLS)
    finally:
        store.close()
    return answers


@pytest.mark.parametrize("kind", sorted(STORES))
def test_two_stores_built_the_same_way_past_the_sync_threshold_search_identically(kind: str) -> None:
    first, second = _replay(kind), _replay(kind)
    assert all(len(row) == 5 for day in first for row in day)
    assert first == second
    assert first != _replay(kind, seed=8)  # the comparison can fail: other records, other answers


def test_the_exact_store_answers_the_same_whatever_order_a_day_is_written_in() -> None:
    assert _replay("exact") == _replay("exact", shuffle=1) == _replay("exact", shuffle=2)
