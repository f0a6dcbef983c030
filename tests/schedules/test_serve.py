"""``tradeagent serve`` for real: APScheduler with its SQLite job store, misfires after a sleep, one instance per
home, SIGTERM between jobs, and ``serve --list``."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from typer.testing import CliRunner

from agent.settings import Settings
from portfolio import outbox
from portfolio.storage import StorageError, connect
from schedules import jobs
from schedules.config import ScheduleConfig
from schedules.serve import make_scheduler, serve, single_instance
from tests.schedules.fake_discord import WEBHOOK_URL, fake_discord

ROOT = Path(__file__).resolve().parents[2]


def _context(home: Path, **schedule: str) -> jobs.Context:
    settings = Settings(home=home, openai_api_key=None, discord_webhook_url=None)
    return jobs.Context(settings=settings, config=ScheduleConfig(**schedule), deliver_after=False)  # type: ignore[arg-type]


def _serve_until(ctx: jobs.Context, done: Callable[[], bool], timeout: float = 20.0) -> list[dict[str, object]]:
    stop, ready, seen = threading.Event(), threading.Event(), []

    def on_ready(jobs_now: list[dict[str, object]]) -> None:
        seen.extend(jobs_now)
        ready.set()

    thread = threading.Thread(target=serve, args=(ctx,), kwargs={"stop": stop, "on_ready": on_ready})
    thread.start()
    try:
        assert ready.wait(timeout)
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout)
    assert not thread.is_alive()
    return seen


def _set_next_run(home: Path, job_id: str, when: datetime) -> None:
    """What a machine asleep at the fire time leaves behind: a stored next run time in the past."""
    store = SQLAlchemyJobStore(url=f"sqlite:///{home / 'scheduler.sqlite'}")  # the store serve uses, edited directly
    store.start(make_scheduler(home), "default")
    try:
        job = store.lookup_job(job_id)
        assert job is not None
        job._modify(next_run_time=when)
        store.update_job(job)
    finally:
        store.shutdown()


def _outcomes(ctx: jobs.Context, job: str) -> list[str]:
    try:
        return [str(r["status"]) for r in jobs.history(ctx.settings, job)]
    except StorageError:  # a job of this process holds the file read-write right now (DuckDB: one mode per process)
        return []


def test_a_run_missed_while_asleep_is_caught_up_within_its_grace_and_declared_missed_beyond(tmp_path: Path) -> None:
    # deliver only on 1 January (so no fire time of the cron itself falls in the windows below); monitor every 5 min
    ctx = _context(tmp_path / "home", deliver="0 7 1 1 *", monitor="*/5 * * * *")
    seen = _serve_until(ctx, lambda: True)  # first start: the jobs are stored with their next run times
    assert {j["id"] for j in seen} == {"daily", "news", "monitor", "retrain", "deliver"}
    assert _outcomes(ctx, "deliver") == []

    _set_next_run(ctx.settings.home, "deliver", datetime.now(UTC) - timedelta(minutes=30))  # grace is 12 h
    _serve_until(ctx, lambda: bool(_outcomes(ctx, "deliver")))
    assert _outcomes(ctx, "deliver") == ["skipped"]  # it ran (nothing to deliver to: no webhook)

    _set_next_run(ctx.settings.home, "deliver", datetime.now(UTC) - timedelta(hours=13))
    _serve_until(ctx, lambda: len(_outcomes(ctx, "deliver")) > 1)
    assert _outcomes(ctx, "deliver") == ["skipped", "missed"]

    # coalesce: the two or three monitor runs missed in the last 12 minutes (15 min grace) make ONE run
    _set_next_run(ctx.settings.home, "monitor", datetime.now(UTC) - timedelta(minutes=12))
    _serve_until(ctx, lambda: bool(_outcomes(ctx, "monitor")))
    time.sleep(0.5)
    assert _outcomes(ctx, "monitor") == ["ran"]


def _start(home: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "agent", "serve"], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**env, "TRADEAGENT_HOME": str(home)})  # fmt: skip


def _wait_for(proc: subprocess.Popen[str], text: str, timeout: float = 60.0) -> str:
    assert proc.stdout is not None
    out, deadline = "", time.monotonic() + timeout
    while text not in out and time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.2)[0]:
            line = proc.stdout.readline()
            if not line:
                break
            out += line
    assert text in out, out
    return out


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEAGENT_", "OPENAI_"))}
    return env


def test_a_second_serve_on_the_same_home_refuses_in_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    second: list[subprocess.CompletedProcess[str]] = []

    def run_second() -> bool:  # while the first serve (this process) holds the home
        second.append(subprocess.run([sys.executable, "-m", "agent", "serve"], cwd=ROOT, capture_output=True, text=True,
                                     env={**_env(), "TRADEAGENT_HOME": str(home)}, timeout=120))  # fmt: skip
        return True

    _serve_until(_context(home), run_second, timeout=150)
    (refused,) = second
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().count("\n") == 0
    assert f"another `tradeagent serve` (PID {os.getpid()}) is already running on {home}" in refused.stderr


def test_sigterm_lets_the_running_job_finish_first(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ctx = _context(home)
    _serve_until(ctx, lambda: True)
    con = connect(ctx.settings.db_path)
    outbox.install(con)
    aid = outbox.enqueue(con, kind="summary", title="slow delivery", body="x")
    con.close()
    _set_next_run(home, "deliver", datetime.now(UTC) - timedelta(seconds=5))  # fires as soon as serve starts
    with fake_discord() as fake:
        fake.delay = 3.0
        proc = _start(home, {**_env(), "TRADEAGENT_DISCORD_WEBHOOK_URL": WEBHOOK_URL,
                             "TRADEAGENT_DISCORD_API_BASE": fake.base})  # fmt: skip
        try:
            _wait_for(proc, "serving")
            deadline = time.monotonic() + 30
            while not fake.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            assert fake.requests, "the deliver job should be sending"
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)  # mid-request: the job must finish, not be cut
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0 and "stopped" in out, err
    assert time.monotonic() - sent >= 2.0  # it waited for Discord's answer
    con = connect(ctx.settings.db_path, read_only=True)
    try:
        assert aid is not None and outbox.is_delivered(con, aid)
    finally:
        con.close()
    assert "deliver ran: alerts: 1 delivered" in err
    with single_instance(home):  # the lock went with the process: the home can be served again
        assert (home / "serve.lock").read_text() == str(os.getpid())


def test_serve_list_prints_jobs_and_next_runs_without_starting_anything(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('[schedule]\nuniverse = "crypto-eur"\nmonitor = "15 9-17 * * mon-fri"\n'
                                      '[monitor]\nposition_move = 0.05\n', encoding="utf-8")  # fmt: skip
    monkeypatch.setenv("TRADEAGENT_HOME", str(home))
    from agent.cli import app

    result = CliRunner().invoke(app, ["serve", "--list", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    by_id = {j["id"]: j for j in data["jobs"]}
    assert set(by_id) == {"daily", "news", "monitor", "retrain", "deliver"}
    assert "hour='22'" in by_id["news"]["trigger"] and "day_of_week='*'" in by_id["news"]["trigger"]  # crypto: every day
    assert "day_of_week='*'" in by_id["daily"]["trigger"] and "24/7" in by_id["daily"]["trigger"]  # crypto: every day
    assert "minute='15'" in by_id["monitor"]["trigger"] and by_id["monitor"]["misfire_grace_seconds"] == 900
    assert all(j["coalesce"] for j in data["jobs"]) and all(j["next_run"] for j in data["jobs"])
    assert sorted(p.name for p in home.iterdir()) == ["config.toml"]  # no lock, no job store, no DuckDB file

    (home / "config.toml").write_text('[schedule]\nmonitor = "every two hours"\n', encoding="utf-8")
    bad = CliRunner().invoke(app, ["serve", "--list"])
    assert bad.exit_code == 2 and "[schedule] monitor = 'every two hours' is not a crontab" in bad.stderr
    (home / "config.toml").write_text('[schedule]\nuniverses = ["demo", "etf-eu"]\n', encoding="utf-8")
    bad = CliRunner().invoke(app, ["serve", "--list"])
    assert bad.exit_code == 2 and "unknown key(s) universes" in bad.stderr
