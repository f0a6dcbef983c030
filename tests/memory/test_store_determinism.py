"""Replays must be bit-identical: a store built twice the same way answers every search the same way.

Chroma's local index inserts the records of one write call in parallel, so a graph built from many-record
upserts depends on thread timing (``memory.store``'s module doc, "Determinism"); the store writes one record a
call. These stores pass 3,000 records, three times the default ``sync_threshold`` and far past the point where
two demo replays diverged (~2,000), with coarse readings so that many records are exact ties.
"""

from __future__ import annotations

import random

from memory.models import MemoryRecord, Situation
from memory.store import ChromaMemoryStore
from tests.memory.helpers import WordsEmbedder, situation_text

SYMBOLS = [f"S{i:02d}" for i in range(20)]
DAYS = 150  # x 20 symbols = 3,000 records


def _situation(rng: random.Random) -> Situation:
    return Situation(label=situation_text(rng.randrange(12)), trend=rng.choice([-0.5, 0.0, 0.5]),
                     rsi_14=rng.choice([30.0, 50.0, 70.0]), vol_20=rng.choice([0.1, 0.2, 0.4]))


def _replay() -> list[list[list[tuple[str, float]]]]:
    """A replay in miniature: a day's 20 records, then a batched search, day after day."""
    rng = random.Random(7)
    store = ChromaMemoryStore.ephemeral(WordsEmbedder())
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
            store.add(recs)
            if d % 10 == 9 or d == DAYS - 1:
                queries = [_situation(rng) for _ in range(20)]
                hits = store.search([q.label for q in queries], as_of=day + 1, k=5, situations=queries)
                answers.append([[(h.record.id, h.similarity) for h in row] for row in hits])
        assert store.count() == DAYS * len(SYMBOLS)
    finally:
        store.close()
    return answers


def test_two_stores_built_the_same_way_past_the_sync_threshold_search_identically() -> None:
    first, second = _replay(), _replay()
    assert all(len(row) == 5 for day in first for row in day)
    assert first == second
