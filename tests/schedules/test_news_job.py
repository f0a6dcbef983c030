"""The scheduler's news job: ``news fetch`` for the configured universe from a local feed file; skipped with a
note when the universe has no feeds; a failure is an ``error`` alert and an outcome, never an exception."""

from __future__ import annotations

import shutil
from pathlib import Path

from portfolio import outbox
from portfolio.storage import connect
from schedules import jobs
from schedules.config import ScheduleConfig
from schedules.serve import list_jobs
from tests.schedules.helpers import Clock, context, utc

NEWS = Path(__file__).resolve().parents[1] / "data" / "news"


def _universe(tmp_path: Path, feed: str = "feeds/markets-2013-02.xml") -> Path:
    folder = tmp_path / "uni"
    shutil.copytree(NEWS / "feeds", folder / "feeds")
    text = (NEWS / "demo-news.toml").read_text(encoding="utf-8").replace("feeds/markets-2013-02.xml", feed)
    (folder / "news.toml").write_text(text, encoding="utf-8")
    return folder / "news.toml"


def _news_count(db: Path) -> int:
    con = connect(db, read_only=True)
    try:
        row = con.execute("SELECT count(*) FROM news").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def test_the_news_job_fetches_the_universes_feeds(tmp_path: Path) -> None:
    universe = _universe(tmp_path)
    ctx = context(tmp_path / "home", universe, Clock(utc(2026, 11, 27, 22, 0)))
    outcome = jobs.news_job(ctx, str(universe))
    assert outcome.status == "ran" and outcome.detail.startswith("1 source(s) read, 6 new item(s)"), outcome.detail
    assert _news_count(ctx.settings.db_path) == 6
    assert jobs.news_job(ctx, str(universe)).detail.startswith("1 source(s) read, 0 new item(s)")  # dedup by id
    assert [r["status"] for r in jobs.history(ctx.settings, "news")] == ["ran", "ran"]


def test_a_universe_without_feeds_is_skipped_with_a_note(tmp_path: Path) -> None:
    ctx = context(tmp_path / "home", "demo", Clock(utc(2026, 11, 27, 22, 0)))
    outcome = jobs.news_job(ctx, "demo")
    assert outcome.status == "skipped" and "no [news] feeds or subreddits in demo" in outcome.detail


def test_a_failed_fetch_is_an_error_alert_not_a_crash(tmp_path: Path) -> None:
    universe = _universe(tmp_path, feed="feeds/missing.xml")
    ctx = context(tmp_path / "home", universe, Clock(utc(2026, 11, 27, 22, 0)))
    outcome = jobs.news_job(ctx, str(universe))
    assert outcome.status == "failed" and "every source was skipped" in outcome.detail
    con = connect(ctx.settings.db_path, read_only=True)
    try:
        errors = [a for a in outbox.alerts(con) if a.kind == "error"]
    finally:
        con.close()
    assert len(errors) == 1 and errors[0].title.startswith("news fetch failed")
    broken = jobs.news_job(ctx, str(tmp_path / "no-such-universe.toml"))
    assert broken.status == "failed"


def test_serve_list_shows_the_news_job_before_the_daily_run(tmp_path: Path) -> None:
    ctx = context(tmp_path / "home", "demo", Clock(utc(2026, 11, 27, 12, 0)))
    by_id = {j["id"]: j for j in list_jobs(ctx)}
    assert by_id["news"]["next_run"] == "2026-11-27T22:00:00+00:00" and by_id["daily"]["next_run"] == "2026-11-27T22:30:00+00:00"
    custom = jobs.Context(settings=ctx.settings, config=ScheduleConfig(news="15 21 * * *"), clock=ctx.clock)
    assert {j["id"]: j for j in list_jobs(custom)}["news"]["next_run"] == "2026-11-27T21:15:00+00:00"
