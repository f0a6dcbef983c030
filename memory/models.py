"""What the vector memory holds: one ``MemoryRecord`` per decided symbol and day, its ``Outcome`` once known.

Contract:
- Dates are integers ``YYYYMMDD`` (``date_int``): Chroma's range filters take numbers only.
- A record is built from schema-validated fields only (indicator readings, node scores, the guard's verdict,
  the risk node's validated rationale, prompt hashes); raw news and free text that failed validation never
  reach it. ``text`` is what is embedded: a short categorical description of the situation.
- ``Outcome.known_at`` is the session whose close made the outcome knowable; a reader on day D sees an
  outcome only when ``known_at <= D`` and a record only when ``decision_date < D`` (``memory.store``).
- A stored vector is the embedding of ``text`` followed by ``NUMERIC_WEIGHT`` x ``readings(situation)``,
  normalised: situations with the same words are told apart (and ordered) by their numbers, so two records
  are never exact ties in a day's search and a replay is deterministic. A query in words only (the tool, the
  CLI) has zeros there and compares the words alone.
- ``MemoryHit`` is one retrieved record: the record, its outcome when visible at the reader's date (else
  None), and its cosine similarity to the query.

Deliberate decisions:
- ``hit`` (was the decision right?) compares the symbol with the benchmark over the same days, so a rising
  market does not make every buy look clever: a buy is right when the name beat the benchmark, a sell when
  it lagged it, a hold when being in (or out of) the name was the better side of that comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from memory.errors import MemoryStoreError

Action = Literal["buy", "sell", "hold"]
REFLECTION_MAX = 400


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def date_int(day: date) -> int:
    """``date(2013, 2, 28)`` -> ``20130228``."""
    return day.year * 10_000 + day.month * 100 + day.day


def int_date(value: int) -> date:
    """``20130228`` -> ``date(2013, 2, 28)``."""
    return date(value // 10_000, value // 100 % 100, value % 100)


class Situation(_Frozen):
    """The readings the decision was made on (None: not available that day)."""

    label: str = Field(max_length=200)  # the categorical description that is embedded
    close: float | None = None
    trend: float | None = None  # close vs SMA 50 / SMA 200, a 5% gap is full strength, in [-1, 1]
    rsi_14: float | None = None
    vol_20: float | None = None  # annualised
    ret_20d: float | None = None
    drawdown: float | None = None
    scores: dict[str, float | None] = Field(default_factory=dict)  # signal node -> score (None: abstained)
    models: dict[str, str] = Field(default_factory=dict)  # model kind -> version the quant node read


NUMERIC_WEIGHT = 0.3  # how much the readings weigh in a situation's vector against its text (norm 1)


def readings(situation: Situation) -> list[float]:
    """The situation's readings on one scale, each clipped to [-1, 1] (0 when unknown): trend, RSI around 50,
    volatility around 20%, 20-day return per 10%, drawdown around -10% per 10%."""

    def scaled(x: float | None, centre: float, unit: float) -> float:
        return 0.0 if x is None else max(-1.0, min(1.0, (x - centre) / unit))

    s = situation
    return [scaled(s.trend, 0.0, 1.0), scaled(s.rsi_14, 50.0, 50.0), scaled(s.vol_20, 0.2, 0.2),
            scaled(s.ret_20d, 0.0, 0.1), scaled(s.drawdown, -0.1, 0.1)]


class Outcome(_Frozen):
    realised_return: float  # the symbol's close-to-close return from the decision day over the horizon
    benchmark_return: float  # the benchmark's return over the same days
    horizon: int = Field(gt=0)  # sessions
    known_at: int  # YYYYMMDD of the session whose close made it known
    reflection: str = Field(max_length=REFLECTION_MAX)

    @property
    def excess(self) -> float:
        return self.realised_return - self.benchmark_return


class MemoryRecord(_Frozen):
    decision_date: int  # YYYYMMDD
    symbol: str = Field(min_length=1, max_length=64)
    action: Action
    quantity: float = Field(ge=0.0)  # approved by the guard (0 for a hold)
    weight_before: float
    target_weight: float | None = None  # the risk node's target (None: it gave none)
    situation: Situation
    rationale: str = Field(default="", max_length=600)  # the risk node's validated rationale for this symbol
    prompt_hash: str = Field(default="", max_length=128)
    text: str = Field(min_length=1, max_length=500)  # embedded

    @property
    def id(self) -> str:
        return f"{self.decision_date}:{self.symbol}"

    @property
    def long_after(self) -> bool:
        """Whether the decision left (or meant to leave) the book long the name."""
        if self.action == "buy":
            return True
        if self.action == "sell":
            return False
        return self.weight_before > 0


def is_hit(record: MemoryRecord, outcome: Outcome) -> bool:
    """Was the decision right against the benchmark (see the module doc)?"""
    if record.action == "buy":
        return outcome.excess > 0
    if record.action == "sell":
        return outcome.excess < 0
    return (outcome.excess > 0) == record.long_after


class MemoryHit(_Frozen):
    record: MemoryRecord
    outcome: Outcome | None  # None: not known yet on the reader's date
    similarity: float  # cosine similarity, 1 = identical situation text


def search_situations(texts: Sequence[str], k: int,
                      situations: Sequence[Situation | None] | None) -> list[Situation | None]:
    """A store's search arguments checked (``MemoryStoreError``): one situation (or None) per query text."""
    if k < 1:
        raise MemoryStoreError(f"k must be at least 1, not {k}")
    extra: list[Situation | None] = list(situations) if situations is not None else [None] * len(texts)
    if len(extra) != len(texts):
        raise MemoryStoreError(f"{len(texts)} texts but {len(extra)} situations")
    return extra
