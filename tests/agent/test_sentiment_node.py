"""The sentiment node in the daily run: point-in-time news in, bounded scores out, no tools, a capped tilt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.daily import run_daily
from agent.models import RiskPlan, TargetWeight
from agent.sentiment_tilt import SENTIMENT_CAP, tilt_plan
from agent.settings import Settings
from tests.agent._sentiment_support import DAY, NEWS_DATA, ObedientModel, fetch_into, universe_toml
from tools.news.store import NewsStore

FEED = NEWS_DATA / "feeds" / "markets-2013-02.xml"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


def test_daily_on_a_universe_with_a_local_feed_shows_sentiment_ok_with_scores_and_item_ids(
    settings: Settings, tmp_path: Path
) -> None:
    universe = universe_toml(tmp_path, FEED)
    fetch_into(settings, universe)
    r = run_daily(settings, universe=str(universe), run_date=DAY, llm="offline").results

    s = r["nodes"]["sentiment"]
    assert s["status"] == "ok" and s["llm"] == "offline-rules" and s["tool_calls"] == []
    scores = {sig["symbol"]: sig["score"] for sig in s["output"]["signals"]}
    assert scores["GOOG"] > 0.3 and scores["NASDAQ"] > 0.3 and scores["SP500"] < -0.3
    with NewsStore(settings.db_path) as store:
        titles = {i.id: i.title for sym in ("GOOG", "SP500", "NASDAQ") for i in store.about(sym)}
    used = {titles[i] for i in s["item_ids"]}
    assert used == {
        "Google beats fourth-quarter estimates as ad revenue surges",
        "Analysts upgrade Google to outperform after record quarter",
        "S&P 500 slides as budget cuts loom over Washington",
        "Nasdaq rallies as tech shares rebound",
    }  # not the 2013-03-04 item (after D) nor the undated one
    assert s["news"]["GOOG"]["n_items"] == 2 and s["news"]["GOOG"]["bullish"] == 2
    assert s["news"]["SP500"]["bearish"] == 1 and s["news"]["SP500"]["item_ids"]
    risk_context = json.dumps(r["nodes"]["risk"])
    assert "sentiment" not in risk_context  # the risk node never sees sentiment
    for t in s.get("tilt", {}).get("targets", []):
        assert abs(t["tilted"] - t["plan"]) <= SENTIMENT_CAP + 1e-9


def test_without_a_news_table_or_without_items_for_the_day_the_node_abstains(settings: Settings, tmp_path: Path) -> None:
    universe = universe_toml(tmp_path, FEED)
    r = run_daily(settings, universe=str(universe), run_date=DAY, llm="offline").results
    assert (r["nodes"]["sentiment"]["status"], r["nodes"]["sentiment"]["abstain_reason"]) == ("abstained", "no_news")
    assert "no news store" in r["nodes"]["sentiment"]["abstain_detail"]

    fetch_into(settings, universe)
    earlier = run_daily(settings, universe=str(universe), run_date=DAY, llm="offline", dry_run=True).results
    assert earlier["nodes"]["sentiment"]["status"] == "ok"  # the same book, the day of the news: ok
    # a home whose table exists but holds nothing about the day: abstains, and the day still decides
    other = Settings(home=tmp_path / "other")
    other.ensure_home()
    NewsStore(other.db_path).close()
    r2 = run_daily(other, universe=str(universe), run_date=DAY, llm="offline").results
    assert r2["nodes"]["sentiment"]["abstain_reason"] == "no_news" and "72 h before" in r2["nodes"]["sentiment"]["abstain_detail"]
    assert r2["status"] == "orders_placed"


def test_the_sentiment_request_offers_no_tools_and_carries_the_items_as_labelled_json(
    settings: Settings, tmp_path: Path
) -> None:
    universe = universe_toml(tmp_path, FEED)
    fetch_into(settings, universe)
    model = ObedientModel()
    run_daily(settings, universe=str(universe), run_date=DAY, client=model)

    (request,) = model.requests_for("sentiment")
    assert request.tools == []
    prompt = request.messages[-1]["content"]
    assert "UNTRUSTED DATA" in prompt and '"untrusted_news":[' in prompt
    assert json.dumps("Google beats fourth-quarter estimates as ad revenue surges") in prompt  # a JSON string
    assert '"source":"rss:markets-2013-02.xml"' in prompt and str(NEWS_DATA) not in prompt  # no local paths
    for other in model.requests_for("analyst") + model.requests_for("risk"):
        assert "Google beats" not in json.dumps(other.messages) and "sentiment" not in json.dumps(other.context)


def _plan(**weights: float) -> RiskPlan:
    return RiskPlan(targets=[TargetWeight(symbol=s, target_weight=w, rationale="plan") for s, w in weights.items()])


def test_the_tilt_is_capped_never_opens_and_never_holds_back_an_exit() -> None:
    plan = _plan(A=0.10, B=0.0, C=0.01, D=0.19)
    signals = {"A": (1.0, 1.0), "B": (1.0, 1.0), "C": (-1.0, 1.0), "D": (1.0, 0.5), "E": (1.0, 1.0)}
    tilted, records = tilt_plan(plan, signals, max_weight=0.20)
    got = {t.symbol: t.target_weight for t in tilted.targets}

    assert got == {"A": pytest.approx(0.12), "B": 0.0, "C": 0.0, "D": pytest.approx(0.20)}
    assert "E" not in got  # sentiment alone adds no target
    assert {r["symbol"] for r in records} == {"A", "C", "D"}
    assert all(abs(r["tilted"] - r["plan"]) <= SENTIMENT_CAP + 1e-9 for r in records)
    over, _ = tilt_plan(_plan(A=0.50), {"A": (1.0, 1.0)}, max_weight=0.20)
    assert over.targets[0].target_weight == 0.50  # a plan over the limit is never pushed further (the guard clamps it)


def test_a_broken_news_table_is_reported_and_the_day_goes_on(settings: Settings, tmp_path: Path) -> None:
    from portfolio.storage import connect

    settings.ensure_home()
    con = connect(settings.db_path)
    con.execute("CREATE TABLE news (x INTEGER)")  # someone else's table by that name, or a damaged one
    con.close()
    r = run_daily(settings, universe=str(universe_toml(tmp_path, FEED)), run_date=DAY, llm="offline").results

    assert r["nodes"]["sentiment"]["abstain_reason"] == "no_news" and r["status"] == "orders_placed"
    (note,) = [n for n in r["data"]["notes"] if n.startswith("news could not be read")]
    assert "sentiment abstains" in note
