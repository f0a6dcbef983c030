"""Record a day against an OpenAI-compatible server, then replay it with the server gone: same decisions, bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from tests.agent import loopback_llm as srv

DAY = "2012-06-01"


def _daily(cache: str) -> dict:
    result = CliRunner().invoke(
        app, ["daily", "--universe", "demo", "--date", DAY, "--llm", "openai", "--llm-cache", cache, "--dry-run", "--json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _decisions(results: dict) -> dict:
    """Everything the day decided; node timings are the only part allowed to differ."""
    nodes = {name: {k: v for k, v in n.items() if k != "seconds"} for name, n in results["nodes"].items()}
    return {"nodes": nodes} | {k: results[k] for k in ("proposed", "approved", "rejected", "clamps", "hold", "status")}


def test_a_replay_makes_no_call_and_reproduces_the_recorded_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-replay")
    with srv.serve(srv.reckless_but_valid) as (url, seen):
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        recorded = _daily("record")
        calls_while_recording = len(seen)
    assert calls_while_recording == 2 and recorded["status"] == "dry_run"
    # the server is gone: any network call would fail, so an identical answer proves the replay used the cache
    replayed = _daily("replay")
    assert json.dumps(_decisions(replayed), sort_keys=True) == json.dumps(_decisions(recorded), sort_keys=True)


def test_a_replay_with_nothing_recorded_holds_instead_of_calling_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-replay")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # discard port: nothing listens
    results = _daily("replay")
    assert results["status"] == "hold" and results["nodes"]["analyst"]["abstain_reason"] == "cache_miss"


def test_a_recording_replays_only_in_the_wire_mode_that_made_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-replay")
    with srv.serve(srv.reckless_but_valid) as (url, _):
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        assert _daily("record")["status"] == "dry_run"  # recorded with native tool calling
    monkeypatch.setenv("TRADEAGENT_LLM_JSON_MODE", "1")  # the plain-JSON mode sends other requests
    replayed = _daily("replay")
    assert replayed["status"] == "hold" and replayed["nodes"]["analyst"]["abstain_reason"] == "cache_miss"
