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
from portfolio.ledger import Ledger
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


def _answer_bytes() -> bytes:
    answer = {"signals": [{"symbol": "SP500", "score": 0.5, "confidence": 0.5, "rationale": "slow"}]}
    return json.dumps(srv.completion({"content": json.dumps(answer)})).encode()


def test_a_server_dripping_its_answer_cannot_outlive_the_run_deadline(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # one byte every 0.3 s never trips the 5 s read timeout; only the 2 s run deadline can end the call
    monkeypatch.setenv("TRADEAGENT_LLM_RUN_DEADLINE_SECONDS", "2")
    drip = srv.Drip(_answer_bytes(), interval=0.3, give_up=40.0)
    started = time.monotonic()
    with srv.serve(lambda body: (200, drip)) as (url, seen):
        code, results, output = _run(url, env, monkeypatch)
    assert code == 0, output
    assert results["status"] == "hold" and results["placed"] == []
    assert results["nodes"]["analyst"]["abstain_reason"] == "timeout"
    assert results["nodes"]["analyst"]["seconds"] < 15
    assert time.monotonic() - started < 40
    hang_up_seen_by = time.monotonic() + 10
    while not seen[0]["hung_up"] and time.monotonic() < hang_up_seen_by:
        time.sleep(0.05)
    assert len(seen) == 1 and seen[0]["hung_up"]  # the client closed the socket, it did not read on


def three_hundred_tool_calls_and_no_usage(body: dict) -> tuple[int, dict]:
    calls = [{"id": f"call_{i}", "type": "function",
              "function": {"name": "get_bars", "arguments": json.dumps({"symbol": "SP500", "lookback": 260})}}
             for i in range(300)]
    answer = srv.completion({"content": None, "tool_calls": calls}, finish_reason="tool_calls")
    answer["usage"] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    return 200, answer


def test_a_flood_of_tool_calls_leaves_a_small_results_file_and_still_spends_tokens(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with srv.serve(three_hundred_tool_calls_and_no_usage) as (url, seen):
        code, results, output = _run(url, env, monkeypatch)
    assert code == 0, output
    analyst = results["nodes"]["analyst"]
    assert results["status"] == "hold" and analyst["abstain_reason"] == "too_many_rounds"
    assert analyst["tool_calls"] == [] and len(seen) == 1  # none of the 300 calls was run
    assert analyst["tokens"] > 1000  # usage 0 is not free: the answer's size is charged
    assert (env / "results" / "daily" / f"{DAY}.json").stat().st_size < 200_000


WEBHOOK = "https://discord.com/api/webhooks/987654321/ECHOED-webhook-token-abcdef"


def echoes_the_secrets(body: dict) -> tuple[int, dict]:
    """reckless_but_valid, with the key and the webhook URL in every rationale and in the model's name."""
    status, answer = srv.reckless_but_valid(body)
    assert isinstance(answer, dict)
    content = json.loads(answer["choices"][0]["message"]["content"])
    for item in content.get("signals", content.get("targets", [])):
        item["rationale"] = f"key {FAKE_KEY} hook {WEBHOOK}"
    answer["choices"][0]["message"]["content"] = json.dumps(content)
    answer["model"] = f"model-{FAKE_KEY}"
    return status, answer


def test_secrets_echoed_in_valid_answers_reach_nothing_on_disk(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEAGENT_DISCORD_WEBHOOK_URL", WEBHOOK)
    with srv.serve(echoes_the_secrets) as (url, _seen):
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        result = CliRunner().invoke(app, ["daily", "--universe", "demo", "--date", DAY, "--llm", "openai",
                                          "--llm-cache", "record", "--json"])
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    assert results["placed"], "the answers are valid: the day trades, on redacted reasons"
    leaks = [p for p in env.rglob("*") if p.is_file() and (FAKE_KEY.encode() in p.read_bytes()
                                                            or b"ECHOED-webhook" in p.read_bytes())]
    assert leaks == []
    assert list((env / "llm_cache").rglob("*.json")), "the answers were recorded"
    ledger = Ledger(env / "tradeagent.duckdb", base_currency="USD", starting_cash=10_000.0)
    try:
        reasons = [o.reason for o in ledger.orders()]
    finally:
        ledger.close()
    assert reasons and all(FAKE_KEY not in r and "ECHOED-webhook" not in r for r in reasons)
    assert all("key *** hook ***" in r for r in reasons)
    assert FAKE_KEY not in result.output
