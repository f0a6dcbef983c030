"""Discord delivery against a loopback server standing in for Discord's API: payload, retries, no mentions,
nothing sent twice, and the webhook URL's secret in no output, log or file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from agent.settings import Settings
from portfolio import outbox
from portfolio.storage import connect
from schedules import discord_delivery
from schedules.discord_delivery import Redactor, deliver
from tests.schedules.fake_discord import TOKEN, WEBHOOK_ID, WEBHOOK_URL, fake_discord

HOSTILE = "@everyone look <@876543210987654321> <@&234567890123456789> **bold** `code` \x1b[31mred\x00 ||spoiler||"


def _home(tmp_path: Path, n: int = 3) -> Settings:
    settings = Settings(home=tmp_path / "home", discord_webhook_url=None)
    settings.ensure_home()
    con = connect(settings.db_path)
    outbox.install(con)
    for i in range(n):
        outbox.enqueue(con, kind="summary", title=f"alert {i} {HOSTILE}", body=f"body {i} {HOSTILE}",
                       fields=[("news", HOSTILE), ("n", str(i))], severity="warning")
    con.close()
    return settings


def _with_webhook(settings: Settings, base: str) -> Settings:
    return settings.model_copy(update={"discord_webhook_url": SecretStr(WEBHOOK_URL), "discord_api_base": base})


def _pending(settings: Settings) -> list[outbox.Alert]:
    con = connect(settings.db_path)
    try:
        return outbox.alerts(con, pending_only=True)
    finally:
        con.close()


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_each_alert_is_one_embed_without_mentions_posted_to_the_api_base(tmp_path: Path) -> None:
    settings = _home(tmp_path, n=2)
    with fake_discord() as fake:
        report = deliver(_with_webhook(settings, fake.base))
    assert len(report.delivered) == 2 and report.pending == 0 and report.stopped is None
    assert [r.path for r in fake.requests] == [f"/api/v10/webhooks/{WEBHOOK_ID}/{TOKEN}"] * 2
    body = fake.requests[0].body
    assert body["allowed_mentions"]["parse"] == [] and "content" not in body
    assert body["username"] == "tradeagent"
    embed = body["embeds"][0]
    assert set(embed) >= {"title", "description", "fields", "footer", "color", "timestamp"}
    assert embed["color"] == 0xF39C12  # warning
    assert embed["footer"]["text"].startswith("tradeagent · summary · alert ")
    assert [f["name"] for f in embed["fields"]] == ["news", "n"]
    text = " ".join([embed["title"], embed["description"], *(f["value"] for f in embed["fields"])])
    assert "@everyone" not in text and "<@876543210987654321>" not in text and "<@&" not in text
    assert "@\u200beveryone" in text  # escaped, still readable
    assert "\x1b" not in text and "\x00" not in text
    assert "\\*\\*bold\\*\\*" in text and "\\|\\|spoiler\\|\\|" in text  # markdown shown literally


def test_nothing_is_sent_twice(tmp_path: Path) -> None:
    settings = _home(tmp_path, n=2)
    with fake_discord() as fake:
        first = deliver(_with_webhook(settings, fake.base))
        second = deliver(_with_webhook(settings, fake.base))
    assert len(first.delivered) == 2 and second.delivered == [] and len(fake.requests) == 2


def test_a_429_is_retried_after_retry_after_then_delivered(tmp_path: Path) -> None:
    settings = _home(tmp_path, n=1)
    limited = (429, {"message": "You are being rate limited.", "retry_after": 2.5, "global": False}, {"Retry-After": "3"})
    sleeps = Sleeps()
    with fake_discord([limited]) as fake:
        report = deliver(_with_webhook(settings, fake.base), clock=sleeps.clock, sleep=sleeps.sleep, jitter=lambda: 0.5)
    assert len(report.delivered) == 1 and report.pending == 0
    assert len(fake.requests) == 2 and sleeps.waits == [2.5]  # Discord's retry_after, not less


def test_5xx_backs_off_with_jitter(tmp_path: Path) -> None:
    settings = _home(tmp_path, n=1)
    sleeps = Sleeps()
    with fake_discord([(502, None, {}), (503, None, {})]) as fake:
        report = deliver(_with_webhook(settings, fake.base), clock=sleeps.clock, sleep=sleeps.sleep, jitter=lambda: 1.0)
    assert len(report.delivered) == 1 and len(fake.requests) == 3
    assert sleeps.waits == [0.5, 1.0]  # 0.5 * 2**attempt, full jitter draw
    sleeps = Sleeps()
    with fake_discord([(500, None, {})]) as fake:
        deliver(_with_webhook(_home(tmp_path / "b", n=1), fake.base), clock=sleeps.clock, sleep=sleeps.sleep,
                jitter=lambda: 0.0)
    assert sleeps.waits == [0.25]  # never less than half the backoff


def test_a_500_storm_leaves_alerts_pending_then_a_later_pass_delivers_them_in_order(tmp_path: Path) -> None:
    settings = _home(tmp_path, n=3)
    sleeps = Sleeps()
    with fake_discord() as fake:
        fake.default = (500, {"message": "internal"}, {})
        storm = deliver(_with_webhook(settings, fake.base), clock=sleeps.clock, sleep=sleeps.sleep, jitter=lambda: 1.0)
        assert storm.delivered == [] and storm.pending == 3
        assert storm.stopped is not None and "Discord error 500" in storm.stopped
        assert len(fake.requests) == discord_delivery.MAX_TRIES  # the pass stops at the first alert it cannot send
        assert sleeps.now <= discord_delivery.BUDGET_SECONDS
        pending = _pending(settings)
        assert [a.attempts for a in pending] == [1, 0, 0] and "500" in (pending[0].last_error or "")
        fake.default, fake.requests[:] = (204, None, {}), []
        later = deliver(_with_webhook(settings, fake.base), clock=sleeps.clock, sleep=sleeps.sleep)
    assert later.pending == 0 and len(later.delivered) == 3
    assert [e["title"].split(" ")[1] for e in fake.embeds] == ["0", "1", "2"]  # enqueue order


def test_the_budget_bounds_a_pass_whatever_retry_after_says(tmp_path: Path) -> None:
    settings = _home(tmp_path, n=2)
    sleeps = Sleeps()
    with fake_discord([(429, {"retry_after": 600, "global": True}, {})]) as fake:
        report = deliver(_with_webhook(settings, fake.base), budget_seconds=5, clock=sleeps.clock, sleep=sleeps.sleep)
    assert sleeps.waits == [] and report.pending == 2 and "429" in (report.stopped or "")


def test_a_deleted_webhook_stops_the_pass_and_keeps_everything(tmp_path: Path) -> None:
    settings = _home(tmp_path, n=2)
    with fake_discord([(404, {"message": "Unknown Webhook", "code": 10015}, {})]) as fake:
        report = deliver(_with_webhook(settings, fake.base))
    assert report.pending == 2 and len(fake.requests) == 1 and "404" in (report.stopped or "")


def test_no_webhook_delivers_nothing_and_keeps_the_outbox(tmp_path: Path) -> None:
    settings = _home(tmp_path, n=2)
    report = deliver(settings)
    assert not report.configured and report.pending == 2 and "not set" in report.line()


def test_the_webhook_secret_is_in_no_output_log_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    settings = _home(tmp_path, n=2)
    caplog.set_level(logging.DEBUG)  # urllib3 and discord.py log request URLs at DEBUG
    runner = CliRunner()
    monkeypatch.setenv("TRADEAGENT_HOME", str(settings.home))
    monkeypatch.setenv("TRADEAGENT_DISCORD_WEBHOOK_URL", WEBHOOK_URL)
    from agent.cli import app

    outputs = []
    with fake_discord() as fake:
        fake.default = (404, {"message": "Unknown Webhook"}, {})
        monkeypatch.setenv("TRADEAGENT_DISCORD_API_BASE", fake.base)
        outputs.append(runner.invoke(app, ["alerts", "send"]))
        outputs.append(runner.invoke(app, ["alerts", "send", "--json"]))
    monkeypatch.setenv("TRADEAGENT_DISCORD_API_BASE", "http://127.0.0.1:9/api")  # nothing listens: connection refused
    outputs.append(runner.invoke(app, ["alerts", "send", "--json"]))
    outputs.append(runner.invoke(app, ["alerts", "list", "--json"]))
    outputs.append(runner.invoke(app, ["alerts", "list"]))
    assert [o.exit_code for o in outputs] == [1, 1, 1, 0, 0]
    assert "refused (404)" in outputs[0].output and "connection failed" in outputs[2].output
    texts = [o.output for o in outputs] + [r.getMessage() for r in caplog.records]
    texts += [p.read_bytes().decode("latin-1") for p in settings.home.rglob("*") if p.is_file()]
    assert any(WEBHOOK_ID in r.getMessage() or "***" in r.getMessage() for r in caplog.records)  # the logs were seen
    for secret in (TOKEN, WEBHOOK_ID, WEBHOOK_URL):
        assert not [t for t in texts if secret in t]


def test_the_redactor_hides_token_id_and_url() -> None:
    redact = Redactor(WEBHOOK_URL)
    assert redact(f"POST {WEBHOOK_URL}?wait=false failed; id {WEBHOOK_ID}") == "POST ***?wait=false failed; id ***"
