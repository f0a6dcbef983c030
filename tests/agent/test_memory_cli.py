"""The memory as users meet it: the daily run keeps it in TRADEAGENT_HOME/memory, ``tradeagent memory search|stats``
read it, and ``eval --memory on`` replays each policy with and without it. Real MiniLM embeddings, real Chroma
on disk, the real CLI; the demo universe with the offline rules (no network).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.settings import Settings
from evals.run import EvalConfig, run_eval
from memory.store import ChromaMemoryStore
from tests.memory.helpers import WordsEmbedder, record


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("TRADEAGENT_EMBEDDING_MODEL", raising=False)
    monkeypatch.delenv("TRADEAGENT_MEMORY", raising=False)
    return tmp_path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def daily(day: str) -> dict[str, Any]:
    code, out, err = invoke("daily", "--date", day, "--json")
    assert code == 0, err
    return json.loads(out)


def test_the_daily_run_remembers_across_runs_and_the_cli_reads_it_point_in_time(home: Path) -> None:
    first = daily("2013-02-26")
    assert first["memory"]["status"] == "ok" and first["memory"]["written"] == 3 and first["memory"]["recalled"] == 0
    second = daily("2013-02-27")
    assert second["memory"]["recalled"] > 0 and second["memory"]["written"] == 3
    assert (home / "memory" / "chroma.sqlite3").exists()

    code, out, _ = invoke("memory", "stats", "--json")
    stats = json.loads(out)
    assert code == 0 and stats["records"] == 6 and stats["with_outcome"] == 0
    assert stats["first"] == "2013-02-26" and stats["embedder"] == "all-MiniLM-L6-v2"

    code, out, _ = invoke("memory", "search", "strong uptrend, RSI firm", "--as-of", "2013-02-27", "--json")
    found = json.loads(out)
    assert code == 0 and found["as_of"] == "2013-02-27"
    assert len(found["decisions"]) == 3 and {d["date"] for d in found["decisions"]} == {"2013-02-26"}
    code, out, _ = invoke("memory", "search", "uptrend", "--symbol", "GOOG", "-k", "10", "--json")
    assert [d["symbol"] for d in json.loads(out)["decisions"]] == ["GOOG", "GOOG"]
    code, out, _ = invoke("memory", "search", "uptrend", "--as-of", "2013-02-26", "--json")
    assert json.loads(out)["decisions"] == []  # nothing was decided before the first day
    code, out, _ = invoke("memory", "search", "uptrend, RSI firm")
    assert code == 0 and "GOOG" in out and "not known yet" in out

    dry = json.loads(invoke("daily", "--date", "2013-02-28", "--dry-run", "--json")[1])
    assert dry["memory"]["written"] == 0 and json.loads(invoke("memory", "stats", "--json")[1])["records"] == 6


def test_bad_input_and_a_home_without_memory(home: Path) -> None:
    code, out, _ = invoke("memory", "stats", "--json")
    assert code == 0 and json.loads(out)["records"] == 0
    code, out, _ = invoke("memory", "search", "uptrend", "--json")
    assert code == 0 and json.loads(out)["decisions"] == []
    assert not (home / "memory").exists()  # reading never creates it
    for args, message in ((("-k", "0"), "-k must be between 1 and 50"), (("--as-of", "2013-13-01"), "--as-of")):
        code, _, err = invoke("memory", "search", "uptrend", *args)
        lines = [x for x in err.splitlines() if x.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]


def test_a_memory_of_another_embedding_model_is_refused_and_the_daily_run_goes_on_without_it(home: Path) -> None:
    ChromaMemoryStore.persistent(home / "memory", WordsEmbedder("other-model")).add([record(20130225, "SP500")])
    code, _, err = invoke("memory", "search", "uptrend")
    assert code == 2 and "'other-model'" in err and "all-MiniLM-L6-v2" in err and len(err.strip().splitlines()) == 1
    r = daily("2013-02-26")
    assert r["status"] == "orders_placed"
    assert r["memory"]["status"] == "unavailable" and "other-model" in r["memory"]["reason"]


def test_memory_can_be_switched_off(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEAGENT_MEMORY", "0")
    r = daily("2013-02-26")
    assert r["memory"] == {"status": "off", "reason": "memory is switched off (TRADEAGENT_MEMORY)"}
    assert not (home / "memory").exists()


def test_eval_with_memory_sets_each_policy_beside_its_memory_run(home: Path) -> None:
    files = run_eval(Settings(home=home), EvalConfig(universe="demo", start=date(2012, 1, 3), end=date(2012, 2, 10),
                                                     out=home / "ev", policies=("agent", "buyhold"), memory=True))
    report = files.report
    assert list(report["policies"]) == ["agent", "agent+memory", "buyhold"]
    assert report["config"]["memory"] == "on"
    ablation = report["memory_ablation"]["agent"]
    assert ablation["off"] == report["policies"]["agent"]["metrics"]
    assert ablation["delta"]["trades"] == ablation["on"]["trades"] - ablation["off"]["trades"]
    assert ablation["sharpe_difference"] is None  # fewer than 30 returns: no interval rather than a made-up one
    (note,) = report["policies"]["agent+memory"]["notes"]
    assert note.startswith("memory: ") and "with a known outcome" in note and "error" not in note
    assert not any(n.startswith("memory") for n in report["policies"]["agent"]["notes"])
    assert "<h2>Memory on/off</h2>" in (home / "ev" / "report.html").read_text(encoding="utf-8")
