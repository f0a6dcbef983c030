"""``tradeagent news fetch|show`` through the real CLI (local feed files; no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from tests.agent._sentiment_support import NEWS_DATA, universe_toml

FEED = NEWS_DATA / "feeds" / "markets-2013-02.xml"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path / "home"))
    for name in ("TRADEAGENT_REDDIT_CLIENT_ID", "TRADEAGENT_REDDIT_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_fetch_reports_each_source_and_skips_reddit_without_credentials(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_bytes(b"<rss><channel><item>")
    universe = universe_toml(tmp_path, FEED, broken)
    text = universe.read_text(encoding="utf-8").replace("subreddits = []", 'subreddits = ["stocks"]')
    universe.write_text(text, encoding="utf-8")

    code, out, _ = invoke("news", "fetch", "--universe", str(universe), "--json")
    report = json.loads(out)
    assert code == 0 and report["universe"] == "demo-news" and report["stored"] == 6
    assert [(s["status"], s["items"]) for s in report["sources"]] == [("ok", 6), ("skipped", 0)]
    assert "not well-formed XML" in report["sources"][1]["reason"]
    assert report["reddit"].startswith("skipped: TRADEAGENT_REDDIT_CLIENT_ID")

    code, out, err = invoke("news", "fetch", "--universe", str(universe))
    assert code == 0 and "6 items, 0 new" in err and "skipped" in err and "reddit: skipped" in err


def test_show_gives_the_point_in_time_reading_and_items(tmp_path: Path) -> None:
    universe = universe_toml(tmp_path, FEED)
    assert invoke("news", "fetch", "--universe", str(universe), "--json")[0] == 0

    code, out, _ = invoke("news", "show", "GOOG", "--as-of", "2013-02-28", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["reading"]["n_items"] == 2 and shown["reading"]["bullish"] == 2
    assert [i["title"] for i in shown["items"]] == [
        "Analysts upgrade Google to outperform after record quarter",
        "Google beats fourth-quarter estimates as ad revenue surges",
    ]
    assert set(shown["reading"]["item_ids"]) == {i["id"] for i in shown["items"]}

    code, out, _ = invoke("news", "show", "GOOG", "--as-of", "2013-02-20")
    assert code == 0 and "no item in the 72 h before 2013-02-20 23:59:59 UTC" in out
    code, out, _ = invoke("news", "show", "GOOG", "--as-of", "2013-03-05")
    assert code == 0 and "Google faces EU antitrust probe" in out


@pytest.mark.parametrize("args,message", [
    (("news", "fetch", "--universe", "demo"), "universe 'demo' has no [news] feeds or subreddits"),
    (("news", "show", "GOOG"), "no news stored yet"),
    (("news", "show", "GOOG", "--as-of", "2013-13-01"), "--as-of '2013-13-01' is not a date"),
    (("news", "show", "NOPE", "--universe", "demo"), "'NOPE' is not in universe 'demo'"),
])  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    code, _, err = invoke(*args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
