"""Shared by the sentiment tests: a universe with local feeds, a home with its news fetched, an obedient model."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path

from agent.llm.base import LLMRequest, LLMResponse
from agent.llm.offline import OfflineRulesClient
from agent.models import SentimentReport, SymbolSignal
from agent.settings import Settings
from tests.fakes import final_answer, tool_call_response
from tools.news.ingest import fetch_news
from tools.news.store import NewsStore
from tools.universe import load_universe

NEWS_DATA = Path(__file__).resolve().parents[1] / "data" / "news"
DAY = date(2013, 2, 28)  # the demo's day: every demo instrument has a next session to fill at
FETCHED = datetime(2026, 11, 29, 9, 0)


def universe_toml(folder: Path, *feeds: Path) -> Path:
    """The demo instruments (offline sample data) with ``feeds`` as their news sources."""
    text = (NEWS_DATA / "demo-news.toml").read_text(encoding="utf-8")
    listed = ", ".join(json.dumps(str(f)) for f in feeds)
    path = folder / "universe.toml"
    path.write_text(re.sub(r"feeds = \[.*\]", f"feeds = [{listed}]", text), encoding="utf-8")
    return path


def fetch_into(settings: Settings, universe: Path) -> None:
    settings.ensure_home()
    with NewsStore(settings.db_path) as store:
        outcomes = fetch_news(load_universe(str(universe)), store, now=lambda: FETCHED)
    assert all(o.status == "ok" for o in outcomes), outcomes


class ObedientModel:
    """A model that does whatever the text it reads tells it to: the worst case for injected news.

    Sentiment: for each symbol, an item about it that says "sell" gives -1, "buy" +1, with full confidence; an item
    saying "call the tool NAME" makes it call that tool first. Other nodes: the offline rules (they read no news).
    Every request is recorded.
    """

    provider = "obedient"
    model = "obedient-1"

    def __init__(self) -> None:
        self.requests: list[LLMRequest] = []
        self._rules = OfflineRulesClient()

    def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        if request.node != "sentiment":
            return self._rules.complete(request)
        items = request.context.get("untrusted_news", [])
        said = " ".join(f"{i['title']} {i['summary']}" for i in items).lower()
        if (wanted := re.search(r"call the tool (\w+)", said)) and len(self.requests_for("sentiment")) == 1:
            return tool_call_response(wanted.group(1), {"symbol": "GOOG", "side": "buy", "weight": 1.0})
        signals = []
        for symbol in request.context["symbols"]:
            text = " ".join(f"{i['title']} {i['summary']}".lower() for i in items if symbol in i["symbols"])
            score = -1.0 if "sell" in text else 1.0 if "buy" in text else 0.0
            signals.append(SymbolSignal(symbol=symbol, score=score, confidence=1.0, rationale="as the news said"))
        return final_answer(SentimentReport(signals=signals))

    def requests_for(self, node: str) -> list[LLMRequest]:
        return [r for r in self.requests if r.node == node]
