"""What news ingestion produces: one ``NewsItem`` per article or post, one ``SourceOutcome`` per feed or subreddit.

Deliberate decisions:
- ``available_at`` is the later of ``published_at`` and ``fetched_at``: an item cannot have been read before it was
  published, nor before we had it. An undated item has no ``available_at`` and is never used by a decision
  (a replay could not tell when it appeared); it is kept for ``news show``.
- ``score`` is the item's offline sentiment (``tools.news.scoring``), computed once at ingestion with the scorer
  named in ``scorer`` and stored with ``scored_at``, so every later day and replay reuses the same number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.news.scoring import label


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NewsItem(_Frozen):
    id: str = Field(min_length=1, max_length=64)
    source: str = Field(max_length=300)  # "rss:<feed>" or "reddit:r/<name>" or "archive:<file>"
    url: str = Field(default="", max_length=2000)
    title: str = Field(max_length=500)
    summary: str = Field(default="", max_length=2000)
    published_at: datetime | None  # naive UTC
    fetched_at: datetime  # naive UTC
    symbols: tuple[str, ...] = ()
    score: float = Field(ge=-1.0, le=1.0)
    scorer: str
    scored_at: datetime

    @property
    def available_at(self) -> datetime | None:
        return None if self.published_at is None else max(self.published_at, self.fetched_at)

    @property
    def label(self) -> Literal["bullish", "neutral", "bearish"]:
        return label(self.score)


class SourceOutcome(_Frozen):
    source: str
    status: Literal["ok", "skipped"]
    items: int = 0  # items read from the source
    new: int = 0  # of which not already stored
    matched: int = 0  # of which about at least one symbol of the universe
    reason: str | None = None  # why it was skipped (one line)
    seconds: float = 0.0
