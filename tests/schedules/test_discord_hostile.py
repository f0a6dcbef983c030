"""Delivery against a hostile or broken Discord (or proxy): an answer that never ends, a huge answer, a 2xx
whose body is not JSON. The pass keeps its time budget, reads a bounded number of bytes, and never holds the
DuckDB file while it talks to Discord."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.settings import Settings
from schedules import alerts
from schedules.discord_delivery import DeliveryReport, deliver
from tests.schedules.fake_discord import Drip, Flood, fake_discord
from tests.schedules.test_discord_delivery import _home, _pending, _with_webhook

ROOT = Path(__file__).resolve().parents[2]
SLACK = 2.5  # seconds beyond the budget: opening the DuckDB file, marking the attempt, thread scheduling

_OPEN_READ_WRITE = """
import sys
from portfolio.storage import connect
con = connect(sys.argv[1], wait_seconds=0)
con.execute("SELECT count(*) FROM alert_outbox").fetchall()
con.close()
"""


def _within(seconds: float, call: Callable[[], DeliveryReport]) -> DeliveryReport:
    """``call()``'s report, failing the test (not hanging it) when it runs longer than ``seconds``."""
    done: list[DeliveryReport] = []
    thread = threading.Thread(target=lambda: done.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert done, f"the pass ran longer than {seconds} s"
    return done[0]


def _open_from_another_process(db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _OPEN_READ_WRITE, str(db)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


@pytest.mark.parametrize("drip", [Drip(every=0.5), Drip(every=0.5, headers_too=True)], ids=["body", "headers"])
def test_an_answer_that_never_ends_is_cut_at_the_budget_and_the_file_stays_free(tmp_path: Path, drip: Drip) -> None:
    settings = _with_webhook(_home(tmp_path, n=2), "")
    budget = 4.0
    with fake_discord([drip]) as fake:
        settings = settings.model_copy(update={"discord_api_base": fake.base})
        done: list[DeliveryReport] = []
        started = time.monotonic()
        thread = threading.Thread(target=lambda: done.append(deliver(settings, budget_seconds=budget)), daemon=True)
        thread.start()
        while not fake.requests and time.monotonic() - started < budget:
            time.sleep(0.02)
        assert fake.requests, "the pass should be talking to Discord by now"
        other = _open_from_another_process(settings.db_path)  # e.g. the next `tradeagent daily` on this home
        thread.join(budget + SLACK)
        elapsed = time.monotonic() - started
    assert other.returncode == 0, other.stderr  # the pass does not hold the DuckDB file while it waits on Discord
    assert done and elapsed <= budget + SLACK, f"the pass ran {elapsed:.1f} s on a {budget} s budget"
    (report,) = done
    assert report.delivered == [] and report.pending == 2
    assert "time budget" in (report.stopped or "")
    assert len(_pending(settings)) == 2 and len(fake.requests) == 1  # no retry: the budget is spent


def test_the_delivery_after_a_daily_run_keeps_its_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alerts, "AFTER_RUN_BUDGET", 2.0)
    settings = _home(tmp_path, n=1)
    with fake_discord() as fake:
        fake.default = Drip(every=0.5)
        started = time.monotonic()
        done: list[DeliveryReport | None] = []
        thread = threading.Thread(target=lambda: done.append(alerts.after_daily(_with_webhook(settings, fake.base), None)),
                                  daemon=True)  # fmt: skip
        thread.start()
        thread.join(2.0 + SLACK)
        elapsed = time.monotonic() - started
    assert done and elapsed <= 2.0 + SLACK, f"the pass ran {elapsed:.1f} s on a 2 s budget"
    assert done[0] is not None and done[0].pending == 1


def test_a_huge_answer_is_read_only_up_to_a_cap_and_a_2xx_counts_as_delivered(tmp_path: Path) -> None:
    settings = _home(tmp_path, n=1)
    with fake_discord([Flood(claimed=300_000_000, send=40_000_000)]) as fake:
        report = _within(30, lambda: deliver(_with_webhook(settings, fake.base)))
        time.sleep(0.2)  # let the server notice the closed connection
    assert len(report.delivered) == 1 and report.pending == 0, report.to_json()
    # the socket buffers hold a few MB at most: the client stopped reading long before the 40 MB were written
    assert fake.sent_bytes < 20_000_000


def test_a_huge_error_answer_is_cut_too_and_stays_pending(tmp_path: Path) -> None:
    settings = _home(tmp_path, n=1)
    with fake_discord([Flood(status=400, claimed=300_000_000, send=40_000_000)]) as fake:
        report = _within(30, lambda: deliver(_with_webhook(settings, fake.base)))
        time.sleep(0.2)
    assert report.delivered == [] and report.pending == 1 and fake.sent_bytes < 20_000_000
    assert "refused this alert (400)" in next(iter(report.failed.values()))


@pytest.mark.parametrize("answer", [
    (200, b"{not json", {"Content-Type": "application/json"}),
    (200, b"\xff\xfe garbage", {"Content-Type": "text/html"}),
    (204, None, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "100000"}),
])  # fmt: skip
def test_a_2xx_whose_body_does_not_parse_counts_as_delivered(tmp_path: Path, answer: tuple[int, bytes | None, dict[str, str]]) -> None:
    settings = _home(tmp_path, n=2)
    with fake_discord([answer]) as fake:  # discord.py's own sleep on an exhausted rate-limit bucket never runs
        report = _within(10, lambda: deliver(_with_webhook(settings, fake.base), budget_seconds=5))
    assert len(report.delivered) == 2 and report.pending == 0 and len(fake.requests) == 2, report.to_json()


def test_an_error_answer_that_is_not_json_is_this_alerts_failure_not_the_passs(tmp_path: Path) -> None:
    settings = _home(tmp_path, n=2)
    with fake_discord([(400, b"<html>bad", {"Content-Type": "application/json"})]) as fake:
        report = deliver(_with_webhook(settings, fake.base))
    assert len(report.delivered) == 1 and report.pending == 1 and report.stopped is None and len(fake.requests) == 2


def test_a_mark_that_cannot_be_written_is_kept_and_never_sent_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from portfolio import outbox

    settings: Settings = _home(tmp_path, n=2)
    real = outbox.mark_delivered

    def busy(*args: object, **kwargs: object) -> bool:
        from portfolio.storage import StorageError

        raise StorageError("tradeagent.duckdb is locked by another process (PID 1); wait for it to finish or stop it")

    with fake_discord() as fake:
        monkeypatch.setattr(outbox, "mark_delivered", busy)
        first = deliver(_with_webhook(settings, fake.base))
        assert len(fake.requests) == 1 and first.delivered == [] and "recorded on the next pass" in (first.stopped or "")
        monkeypatch.setattr(outbox, "mark_delivered", real)
        second = deliver(_with_webhook(settings, fake.base))
    assert len(fake.requests) == 2  # the first alert was not sent again; the second went out once
    assert len(second.delivered) == 1 and second.pending == 0  # the first was recorded from the journal


def test_a_second_pass_on_the_same_home_sends_nothing_while_the_first_runs(tmp_path: Path) -> None:
    from schedules.discord_delivery import _one_pass

    settings = _home(tmp_path, n=2)
    with fake_discord() as fake, _one_pass(settings.home) as holder:
        assert holder is None
        report = deliver(_with_webhook(settings, fake.base))
    assert fake.requests == [] and report.pending == 2 and "another delivery pass" in (report.stopped or "")
