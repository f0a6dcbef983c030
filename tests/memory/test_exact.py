"""The replays' exact store answers what a brute-force float64 search over the stored vectors answers.

Its scan runs in float32 and rescores a margin of candidates in float64 (``memory.exact``): with coarse
readings many records tie, so ranks, tie-breaks (newest first, then symbol) and similarities are compared
with a plain Python search over ``memory.store._vector``.
"""

from __future__ import annotations

import random

from memory.exact import ExactMemoryStore
from memory.models import MemoryRecord, Situation
from memory.store import _vector
from tests.memory.helpers import WordsEmbedder, situation_text


def _situation(rng: random.Random) -> Situation:
    return Situation(label=situation_text(rng.randrange(12)), trend=rng.choice([-0.5, 0.0, 0.5, None]),
                     rsi_14=rng.choice([30.0, 50.0, 70.0]), vol_20=rng.choice([0.1, 0.2, 0.4]))


def test_the_exact_store_ranks_as_a_brute_force_search_does() -> None:
    rng = random.Random(3)
    embed = WordsEmbedder().embed
    store = ExactMemoryStore(WordsEmbedder())
    stored: list[MemoryRecord] = []
    for d in range(100):
        day = 20100101 + 100 * (d // 25) + d % 25
        recs = []
        for s in range(20):
            situation = _situation(rng)
            recs.append(MemoryRecord(decision_date=day, symbol=f"S{s:02d}", action="buy", quantity=1.0,
                                     weight_before=0.0, situation=situation, text=situation.label))
        store.add(recs)
        stored.extend(recs)
    vectors = {r.id: _vector(v, r.situation) for r, v in zip(stored, embed([r.text for r in stored]), strict=True)}
    for as_of in (20100110, 20100220, 20100420, 20100501):
        queries = [_situation(rng) for _ in range(10)] + [None, None]
        texts = [q.label if q else situation_text(i) for i, q in enumerate(queries)]
        got = store.search(texts, as_of=as_of, k=5, situations=queries)
        for text, situation, hits in zip(texts, queries, got, strict=True):
            q = _vector(embed([text])[0], situation)
            scored = [(round(sum(a * b for a, b in zip(q, vectors[r.id], strict=True)), 6), r)
                      for r in stored if r.decision_date < as_of]
            best = sorted(scored, key=lambda sr: (-sr[0], -sr[1].decision_date, sr[1].symbol))[:5]
            assert [(h.record.id, h.similarity) for h in hits] == [(r.id, sim) for sim, r in best]
    store.close()
