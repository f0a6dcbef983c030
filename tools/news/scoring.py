"""Offline sentiment of a headline: VADER (vaderSentiment 3.3.2) with finance terms added to its lexicon.

Contract:
- ``score_text(title, summary)`` is the VADER compound score in [-1, 1] of the title, blended with the summary's
  when there is one (title 0.7, summary 0.3: headlines carry the news, summaries dilute it).
- ``label(score)``: bullish above ``THRESHOLD``, bearish below ``-THRESHOLD``, else neutral (VADER's own ±0.05).
- ``SCORER`` names the lexicon version; it is stored with every item so a change of lexicon is visible.

Deliberate decisions:
- VADER's general-purpose lexicon misses the words markets move on ("beats", "downgrade", "bankruptcy",
  "layoffs") and misreads some ("crush" is negative in general, "crushes estimates" is not). ``FINANCE_TERMS``
  adds or overrides them with valences on VADER's -4..+4 scale. VADER's own negation handling ("not", "never",
  "no") and intensifiers still apply to them.
- The analyser is built once per process (loading the lexicon takes ~50 ms).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

SCORER = "vader-finance-v1"
THRESHOLD = 0.05
TITLE_WEIGHT = 0.7

FINANCE_TERMS: dict[str, float] = {
    # results and guidance
    "beat": 2.0, "beats": 2.0, "topped": 1.8, "tops": 1.5, "exceeds": 1.8, "exceeded": 1.8,
    "miss": -2.0, "misses": -2.0, "missed": -2.0, "shortfall": -2.0, "disappointing": -2.2,
    "record": 1.2, "profit": 1.5, "profits": 1.5, "profitable": 1.8, "loss": -2.0, "losses": -2.0,
    "raises": 1.2, "raised": 1.0, "hikes": 0.8, "lifts": 1.2, "boosts": 1.5, "cuts": -1.2, "cut": -1.0,
    "lowers": -1.5, "lowered": -1.5, "slashes": -2.2, "slashed": -2.2, "warns": -2.0, "warning": -1.8,
    "guidance": 0.0, "outlook": 0.0, "upbeat": 2.0, "gloomy": -2.0, "weak": -1.8, "weaker": -1.8,
    "strong": 1.8, "stronger": 1.8, "robust": 1.8, "solid": 1.2, "resilient": 1.5,
    # analysts
    "upgrade": 2.0, "upgrades": 2.0, "upgraded": 2.0, "downgrade": -2.0, "downgrades": -2.0,
    "downgraded": -2.0, "outperform": 1.8, "underperform": -1.8, "overweight": 1.2, "underweight": -1.2,
    "bullish": 2.2, "bearish": -2.2, "buyback": 1.5, "buybacks": 1.5, "dividend": 1.0,
    # prices
    "surge": 2.2, "surges": 2.2, "surged": 2.2, "soar": 2.4, "soars": 2.4, "soared": 2.4, "jumps": 1.8,
    "jumped": 1.8, "rally": 2.0, "rallies": 2.0, "rallied": 2.0, "gains": 1.5, "gained": 1.5, "climbs": 1.5,
    "climbed": 1.5, "rises": 1.2, "rose": 1.2, "rebound": 1.5, "rebounds": 1.5, "recovers": 1.5, "high": 0.5,
    "highs": 1.0, "plunge": -2.6, "plunges": -2.6, "plunged": -2.6, "plummets": -2.8, "plummeted": -2.8,
    "tumbles": -2.2, "tumbled": -2.2, "slumps": -2.2, "slumped": -2.2, "sinks": -2.0, "sank": -2.0,
    "falls": -1.5, "fell": -1.5, "drops": -1.5, "dropped": -1.5, "slides": -1.5, "slid": -1.5,
    "declines": -1.3, "declined": -1.3, "crash": -3.0, "crashes": -3.0, "crashed": -3.0, "selloff": -2.2,
    "sell-off": -2.2, "lows": -1.0, "volatile": -0.8, "volatility": -0.5,
    # corporate events
    "bankruptcy": -3.2, "bankrupt": -3.2, "insolvency": -3.0, "default": -2.5, "defaults": -2.5,
    "layoffs": -2.0, "lays": -1.0, "fraud": -3.2, "probe": -1.8, "investigation": -1.8, "lawsuit": -2.0,
    "sued": -2.0, "fine": -1.2, "fined": -2.0, "penalty": -1.8, "recall": -2.0, "recalls": -2.0,
    "halted": -1.5, "delisted": -2.5, "scandal": -2.8, "hack": -2.5, "hacked": -2.5, "breach": -2.2,
    "exploit": -2.2, "outage": -2.0, "approval": 2.0, "approved": 1.8, "approves": 1.8, "wins": 2.0,
    "contract": 0.8, "partnership": 1.5, "acquisition": 0.8, "expands": 1.5, "expansion": 1.3,
    "launches": 1.0, "breakthrough": 2.5, "adoption": 1.5, "inflows": 1.5, "outflows": -1.5,
    "bubble": -1.5, "recession": -2.5, "inflation": -1.0, "stagnation": -1.8, "growth": 1.5,
    "beating": 1.8, "missing": -1.5, "blocked": -1.5, "antitrust": -1.2, "capitulate": -2.0, "vanish": -1.5,
    "delay": -1.2, "delays": -1.2, "shortage": -1.5, "shortages": -1.5, "stalls": -1.5, "weakens": -1.5,
    # VADER's general reading that is wrong in market prose
    "crush": 0.0, "crushed": 0.0, "crushing": 0.0, "crushes": 1.5, "killing": 0.0, "bull": 1.5, "bear": -1.5, "short": -0.5,
}  # fmt: skip


@lru_cache(maxsize=1)
def _analyser() -> SentimentIntensityAnalyzer:
    analyser = SentimentIntensityAnalyzer()
    analyser.lexicon.update(FINANCE_TERMS)
    return analyser


def _compound(text: str) -> float:
    return float(_analyser().polarity_scores(text)["compound"]) if text.strip() else 0.0


def score_text(title: str, summary: str = "") -> float:
    """Compound sentiment of a headline (and its summary) in [-1, 1]."""
    title_score = _compound(title)
    if not summary.strip():
        return round(title_score, 4)
    return round(TITLE_WEIGHT * title_score + (1.0 - TITLE_WEIGHT) * _compound(summary), 4)


def label(score: float) -> Literal["bullish", "neutral", "bearish"]:
    if score > THRESHOLD:
        return "bullish"
    if score < -THRESHOLD:
        return "bearish"
    return "neutral"
