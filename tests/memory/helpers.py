"""Memory test helpers: a small deterministic embedder and records built from a few words.

``WordsEmbedder`` hashes words into a 64-dimensional bag of words (unit length): similar situation texts
share words, so they are close, and a test needs no model load. The real MiniLM model is tested on its own
(tests/memory/test_embeddings.py) and used by the CLI, daily and eval tests.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from memory.models import MemoryRecord, Outcome, Situation

DIM = 64
WORDS = ("uptrend", "downtrend", "flat", "rising", "falling", "overbought", "oversold", "neutral", "low", "high")


class WordsEmbedder:
    def __init__(self, name: str = "test-words-64") -> None:
        self.name = name
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        out = []
        for text in texts:
            v = [0.0] * DIM
            for word in text.lower().replace(",", " ").split():
                v[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIM] += 1.0
            norm = math.sqrt(sum(x * x for x in v)) or 1.0
            out.append([x / norm for x in v])
        return out


def situation_text(i: int) -> str:
    """A categorical text that varies with ``i`` (3 words out of WORDS)."""
    return f"{WORDS[i % 3]}, momentum {WORDS[3 + i % 2]}, RSI {WORDS[5 + i % 3]}"


def record(day: int, symbol: str, action: str = "buy", *, text: str | None = None, weight_before: float = 0.0) -> MemoryRecord:
    label = text or situation_text(day + len(symbol))
    return MemoryRecord(decision_date=day, symbol=symbol, action=action,  # type: ignore[arg-type]
                        quantity=1.0 if action != "hold" else 0.0, weight_before=weight_before, target_weight=0.1,
                        situation=Situation(label=label, rsi_14=55.0), rationale="test", prompt_hash="h", text=label)


def outcome(known_at: int, realised: float = 0.02, benchmark: float = 0.01) -> Outcome:
    return Outcome(realised_return=realised, benchmark_return=benchmark, horizon=5, known_at=known_at,
                   reflection="test")
