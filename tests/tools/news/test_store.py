"""The news table: dedup by id, symbols merged, point-in-time windows, undated items never used, archives."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from tests.tools.news.conftest import NEWS_DATA
from tools.news.archive import read_archive
from tools.news.models import NewsItem
from tools.news.store import LoadedNews, NewsStore, news_table_exists
from tools.universe import load_universe

T0 = datetime(2013, 2, 28, 12, 0)


def _item(id_: str, *, published: datetime | None, fetched: datetime | None = None,
          symbols: tuple[str, ...] = ("GOOG",), score: float = 0.5) -> NewsItem:
    fetched = fetched or published or T0  # fetched when published unless a test says otherwise
    return NewsItem(id=id_, source="rss:test", url=f"https://x.test/{id_}", title=f"title {id_}", summary="",
                    published_at=published, fetched_at=fetched, symbols=symbols, score=score,
                    scorer="vader-finance-v1", scored_at=fetched)


def test_upsert_counts_new_ids_keeps_the_first_text_and_merges_symbols(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    assert not news_table_exists(db) and not db.exists()  # asking never creates the file
    with NewsStore(db) as store:
        assert store.upsert([_item("a", published=T0), _item("b", published=T0)]) == 2
        again = _item("a", published=T0 + timedelta(days=9), symbols=("MC.PA",), score=-0.9)
        assert store.upsert([again]) == 0
        (a,) = [i for i in store.about("MC.PA")]
        twice = [_item("c", published=T0, symbols=("GOOG",)), _item("c", published=T0, symbols=("SP500",))]
        assert store.upsert(iter(twice)) == 1  # one id seen twice in a batch (any iterable): one row
        (c,) = [i for i in store.about("SP500")]
    assert news_table_exists(db) and c.id == "c" and c.symbols == ("GOOG", "SP500")
    assert a.symbols == ("GOOG", "MC.PA") and a.published_at == T0 and a.score == 0.5  # stored facts never change


def test_a_window_holds_only_items_available_by_its_end_and_never_undated_ones(tmp_path: Path) -> None:
    items = [
        _item("old", published=T0 - timedelta(hours=80)),
        _item("in", published=T0 - timedelta(hours=1)),
        _item("late-fetch", published=T0 - timedelta(hours=2), fetched=T0 + timedelta(hours=1)),
        _item("future", published=T0 + timedelta(minutes=1)),
        _item("undated", published=None),
        _item("other", published=T0, symbols=("SP500",)),
    ]
    with NewsStore(tmp_path / "t.duckdb") as store:
        store.upsert(items)
        loaded = store.load(T0 - timedelta(days=10), T0 + timedelta(days=10))
    assert isinstance(loaded, LoadedNews) and "undated" not in {i.id for i in loaded.items}
    assert [i.id for i in loaded.about(["GOOG"], T0, hours=72)] == ["in"]
    assert [i.id for i in loaded.about(["GOOG"], T0 + timedelta(hours=1), hours=72)] == ["late-fetch", "future", "in"]
    assert [i.id for i in loaded.about(["GOOG", "SP500"], T0, hours=72)] == ["other", "in"]


def test_a_jsonl_archive_is_trusted_for_availability_and_bad_lines_are_counted(tmp_path: Path) -> None:
    archive = tmp_path / "news.jsonl"
    lines = [
        {"title": "Google beats estimates", "published_at": "2013-02-27T21:30:00Z", "url": "https://x.test/1"},
        {"title": "Google shares fall", "published_at": "2013-02-28T09:00:00+01:00"},
        {"title": "Undated Google note"},
        {"summary": "no title"},
    ]
    archive.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n", encoding="utf-8")
    items, outcomes = read_archive(archive, load_universe(str(NEWS_DATA / "demo-news.toml")))

    by_title = {i.title: i for i in items}
    assert by_title["Google beats estimates"].available_at == datetime(2013, 2, 27, 21, 30)
    assert by_title["Google shares fall"].available_at == datetime(2013, 2, 28, 8, 0)  # converted to UTC
    assert by_title["Undated Google note"].available_at is None
    assert outcomes[0].status == "ok" and outcomes[0].reason == "2 bad line(s) skipped (first: line 4)"


def test_a_folder_archive_reads_every_feed_and_skips_a_bad_one(tmp_path: Path) -> None:
    (tmp_path / "good.xml").write_bytes((NEWS_DATA / "feeds" / "markets-2013-02.xml").read_bytes())
    (tmp_path / "bad.xml").write_bytes(b"<rss><channel><item>")
    items, outcomes = read_archive(tmp_path, load_universe(str(NEWS_DATA / "demo-news.toml")))
    assert len(items) == 6
    assert {o.source: o.status for o in outcomes} == {"archive:bad.xml": "skipped", "archive:good.xml": "ok"}


def test_loaded_news_survives_pickling_for_replay_worker_processes() -> None:
    import pickle

    loaded = LoadedNews.of([_item("x", published=T0), _item("y", published=T0 - timedelta(hours=3), symbols=("SP500",))])
    again = pickle.loads(pickle.dumps(loaded))
    assert [i.id for i in again.about(["GOOG", "SP500"], T0, hours=72)] == ["x", "y"] and len(again) == 2
