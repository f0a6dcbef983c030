"""`tradeagent daily --llm openai` against a misbehaving OpenAI-compatible server on loopback.

Whatever the server does, the run exits 0 with hold-all or guarded orders only, and the results file says why.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from tests.agent import loopback_llm as srv

DAY = "2012-06-01"
FAKE_KEY = "sk-test-DO-NOT-LEAK-1234567890"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path))
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("TRADEAGENT_LLM_TIMEOUT_SECONDS", "5")
    monkeypatch.setenv("TRADEAGENT_LLM_MAX_RETRIES", "1")
    return tmp_path


def _run(base_url: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, dict, str]:
    monkeypatch.setenv("OPENAI_BASE_URL", base_url)
    result = CliRunner().invoke(app, ["daily", "--universe", "demo", "--date", DAY, "--llm", "openai", "--json"])
    payload = json.loads(result.stdout) if result.exit_code == 0 else {}
    return result.exit_code, payload, result.output


@pytest.mark.parametrize(
    ("scenario", "cause"),
    [
        (srv.always_500, "server_error"),
        (srv.garbage_text, "malformed"),
        (srv.not_json_at_all, "malformed"),
        (srv.hostile_tool_arguments, "bad_arguments"),
        (srv.unknown_tool, "unknown_tool"),
    ],
)
def test_a_misbehaving_server_ends_the_day_in_hold_all(env: Path, monkeypatch: pytest.MonkeyPatch, scenario, cause) -> None:
    started = time.monotonic()
    with srv.serve(scenario) as (url, seen):
        code, results, output = _run(url, env, monkeypatch)
    assert code == 0, output
    assert results["status"] == "hold"
    assert results["hold"]["fallback"] is True and results["hold"]["reason"].startswith("fallback:")
    assert results["placed"] == [] and results["approved"] == []
    assert results["nodes"]["analyst"]["status"] == "abstained"
    assert results["nodes"]["analyst"]["abstain_reason"] == cause
    assert len(seen) >= 1 and all(r["path"].endswith("/chat/completions") for r in seen)
    assert FAKE_KEY not in output and FAKE_KEY not in (env / "results" / "daily" / f"{DAY}.json").read_text()
    assert time.monotonic() - started < 60  # bounded retries, no 10-minute default timeout


def test_a_reckless_but_valid_server_gets_only_guarded_orders(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with srv.serve(srv.reckless_but_valid) as (url, _seen):
        code, results, output = _run(url, env, monkeypatch)
    assert code == 0, output
    limits = results["risk"]["limits"]
    equity = results["portfolio"]["equity"]
    assert results["approved"], "the guard should let some (clamped) buying through"
    for order in results["approved"]:
        assert order["notional_base"] <= limits["max_position_weight"] * equity * 1.0001
    rejected_symbols = {r["symbol"] for r in results["rejected"]}
    assert "NOPE" in rejected_symbols  # the unknown symbol never reaches the broker
    assert sum(o["notional_base"] for o in results["approved"]) <= equity
