"""``tradeagent demo`` end to end with alerts: with a webhook it posts the day's summary; without one the outbox
keeps every alert and ``alerts list`` shows them; a dry run enqueues nothing; ``risk halt`` is an alert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from tests.schedules.fake_discord import TOKEN, WEBHOOK_URL, fake_discord


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path / "home"))
    for name in ("OPENAI_API_KEY", "TRADEAGENT_DISCORD_WEBHOOK_URL", "TRADEAGENT_DISCORD_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def _alerts(pending: bool = False) -> list[dict[str, object]]:
    result = CliRunner().invoke(app, ["alerts", "list", "--json", *(["--pending"] if pending else [])])
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout)["alerts"])


def test_demo_with_a_webhook_posts_the_days_summary(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_discord() as fake:
        monkeypatch.setenv("TRADEAGENT_DISCORD_WEBHOOK_URL", WEBHOOK_URL)
        monkeypatch.setenv("TRADEAGENT_DISCORD_API_BASE", fake.base)
        result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    titles = [e["title"] for e in fake.embeds]
    assert "daily summary · demo · 2013-02-28" in titles
    assert any(" order(s) placed · demo · 2013-02-28" in t for t in titles)
    summary = next(e for e in fake.embeds if e["title"].startswith("daily summary"))
    assert {f["name"]: f["value"] for f in summary["fields"]}["status"] == "orders\\_placed"  # "_" escaped
    assert f"alerts: {len(titles)} delivered to Discord, 0 pending" in result.stderr
    assert _alerts(pending=True) == [] and TOKEN not in result.output


def test_without_a_webhook_the_outbox_keeps_the_alerts_and_alerts_list_shows_them(home: Path) -> None:
    dry = CliRunner().invoke(app, ["daily", "--date", "2013-02-28", "--dry-run", "--json"])
    assert dry.exit_code == 0 and _alerts() == []  # a dry run enqueues nothing
    result = CliRunner().invoke(app, ["demo", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["status"] == "orders_placed"
    assert result.stderr == ""  # nothing configured: silent
    kinds = [a["kind"] for a in _alerts(pending=True)]
    assert kinds[0] == "orders" and kinds[-1] == "summary" and set(kinds) <= {"orders", "guard", "summary"}
    shown = CliRunner().invoke(app, ["alerts", "list"])
    assert "daily summary · demo · 2013-02-28" in shown.stdout and "pending" in shown.stdout
    send = CliRunner().invoke(app, ["alerts", "send"])
    assert send.exit_code == 1
    assert f"{len(kinds)} pending in the outbox (TRADEAGENT_DISCORD_WEBHOOK_URL is not set)" in send.stdout
    again = CliRunner().invoke(app, ["demo", "--json"])  # the day again: already traded, no new alert
    assert again.exit_code == 0 and [a["kind"] for a in _alerts()] == kinds

    halt = CliRunner().invoke(app, ["risk", "halt", "--reason", "going on holiday @everyone"])
    assert halt.exit_code == 0
    last = _alerts()[-1]
    assert last["kind"] == "kill_switch" and last["severity"] == "critical" and last["title"] == "risk ACTIVE → HALTED"
    resume = CliRunner().invoke(app, ["risk", "resume"])
    assert resume.exit_code == 0 and _alerts()[-1]["title"] == "risk HALTED → ACTIVE"
