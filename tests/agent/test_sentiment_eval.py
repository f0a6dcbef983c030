"""``eval --news``: an archive imported for a backtest is replayed point-in-time, day by day."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from agent.settings import Settings
from evals.run import EvalConfig, run_eval
from tests.agent._sentiment_support import NEWS_DATA

START, END = date(2013, 2, 20), date(2013, 3, 8)
LATE = date(2013, 3, 6)
UNIVERSE = str(NEWS_DATA / "demo-news.toml")


def _decisions(tmp_path: Path, name: str, archive: Path | None) -> list[dict]:
    settings = Settings(home=tmp_path / name)
    cfg = EvalConfig(universe=UNIVERSE, start=START, end=END, out=tmp_path / name / "out", policies=("agent",), news=archive)
    report = run_eval(settings, cfg).report
    return report["policies"]["agent"]["decisions"], report["notes"]


def test_an_archive_replays_point_in_time_and_later_items_never_change_earlier_days(tmp_path: Path) -> None:
    feeds = NEWS_DATA / "feeds"
    late = tmp_path / "late.jsonl"  # strong news dated after LATE: no day before it may react to it
    late.write_text("\n".join(json.dumps({"title": t, "published_at": f"{LATE}T15:00:00Z"}) for t in (
        "Google plunges as regulators open fraud probe", "S&P 500 crashes on recession fears",
        "Nasdaq tumbles in a brutal selloff")) + "\n", encoding="utf-8")  # fmt: skip
    both = tmp_path / "both"
    both.mkdir()
    (both / "markets.xml").write_bytes((feeds / "markets-2013-02.xml").read_bytes())
    (both / "late.jsonl").write_bytes(late.read_bytes())

    none, _ = _decisions(tmp_path, "none", None)
    early, notes = _decisions(tmp_path, "early", feeds)
    later, _ = _decisions(tmp_path, "later", both)

    assert any("6 items read from" in n for n in notes) and any("dated items available in the window" in n for n in notes)
    assert early != none  # the news did reach the orders (through the capped tilt)
    before = [d for d in early if date.fromisoformat(d["date"]) < LATE]
    assert before == [d for d in later if date.fromisoformat(d["date"]) < LATE]
    assert early != later  # ... and the late items did matter, from their own day on
