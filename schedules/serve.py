"""``tradeagent serve``: APScheduler 3 running the jobs of ``schedules.jobs`` until SIGTERM or Ctrl-C.

Contract:
- Jobs (times from ``[schedule]`` in ``TRADEAGENT_HOME/config.toml``, UTC by default): ``daily`` (22:30 on
  days with a new closed session of the universe: ``schedules.sessions.SessionTrigger``), ``news`` (22:00 on
  weekdays, every day for a 24/7 universe: ``news fetch``, before the daily run reads it), ``monitor`` (every
  2 hours 08:00–20:00 on weekdays), ``retrain`` (Saturday 04:00), ``deliver`` (07:00 every day).
- One ``serve`` per home: an exclusive ``flock`` on ``TRADEAGENT_HOME/serve.lock`` (holding the PID); a
  second one exits 2 with one line naming that PID. The lock goes with the process, however it ends.
- The job store is ``TRADEAGENT_HOME/scheduler.sqlite`` (APScheduler's SQLAlchemy store): each job's next run
  time survives a restart, so a run that fell due while the process was down is caught up (or declared
  missed) by the misfire rules below. A stored job whose trigger still matches the configuration is kept as
  it is; one that changed is replaced; one no longer configured is removed.
- SIGTERM (and SIGINT) stop it between jobs: no new job starts, the running one finishes, the lock is
  released, exit 0.

Misfire rules (deliberate): ``coalesce=True`` everywhere (a machine off for three days runs each job once,
not three times: a stale daily decision is not worth three), ``max_instances=1`` and ONE worker thread (jobs
never overlap: one DuckDB writer at a time). Grace: news 6 hours (late news still serves a late daily run);
daily ``daily_grace_minutes`` (360: 22:30 + 6 h is still before the European open, so a decision on D's close
is still in time for D+1's open); monitor 15
minutes (an old snapshot is worth nothing); retrain 24 hours; deliver 12 hours. A missed run is a line in the
log and the scheduler's log table; the next fire goes on (the daily job trades the session ready then).

Deliberate decisions:
- The store is SQLite beside the DuckDB file, not inside it: APScheduler writes its store on every fire,
  and DuckDB admits one writer process, which would make ``tradeagent portfolio`` fail while ``serve`` runs.
  SQLAlchemy comes with optuna (already a pinned dependency).
- Jobs are stored as ``schedules.serve:run_job`` with plain arguments; the process's ``Context`` (settings,
  config, clock) is set when ``serve`` starts, never pickled.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from agent.cli_common import UserError
from schedules import jobs
from schedules.config import DAILY_EVERY_DAY, DAILY_WEEKDAYS, NEWS_EVERY_DAY, NEWS_WEEKDAYS
from schedules.sessions import SEARCH_DAYS, SessionTrigger, universe_calendars
from tools.calendars import ALWAYS
from tools.universe import load_universe

GRACE_SECONDS = {"news": 6 * 3600, "monitor": 15 * 60, "retrain": 24 * 3600, "deliver": 12 * 3600}
_log = logging.getLogger("tradeagent.serve")
_CONTEXT: jobs.Context | None = None


@dataclass(frozen=True)
class JobSpec:
    id: str
    trigger: BaseTrigger
    args: tuple[str, ...]
    grace: int
    what: str


def job_specs(ctx: jobs.Context) -> list[JobSpec]:
    """The configured jobs (the universe is loaded here: a bad one is refused before anything starts)."""
    cfg = ctx.config
    uni = load_universe(cfg.universe)
    calendars = universe_calendars(uni)
    always = set(calendars) == {ALWAYS}
    daily = cfg.daily or (DAILY_EVERY_DAY if always else DAILY_WEEKDAYS)
    news = cfg.news or (NEWS_EVERY_DAY if always else NEWS_WEEKDAYS)
    trigger = SessionTrigger(cfg.cron(daily), calendars)
    if trigger.get_next_fire_time(None, ctx.clock()) is None:
        raise UserError(f"[schedule] daily = {daily!r} never fires within {SEARCH_DAYS} days at a time when a session "
                        f"of {uni.name} closed in the previous 24 h; use a time after the close, e.g. {DAILY_WEEKDAYS!r}")
    return [
        JobSpec("daily", trigger, ("daily", cfg.universe),
                cfg.daily_grace_minutes * 60, f"daily run of {uni.name} ({'+'.join(calendars)} sessions)"),
        JobSpec("news", cfg.cron(news), ("news", cfg.universe), GRACE_SECONDS["news"],
                f"fetch the news of {uni.name} (its [news] feeds and subreddits)"),
        JobSpec("monitor", cfg.cron(cfg.monitor), ("monitor", cfg.universe), GRACE_SECONDS["monitor"],
                f"intraday monitor of {uni.name}"),
        JobSpec("retrain", cfg.cron(cfg.retrain), ("retrain", cfg.universe), GRACE_SECONDS["retrain"],
                f"retrain the quant models of {uni.name} that exist"),
        JobSpec("deliver", cfg.cron(cfg.deliver), ("deliver", ""), GRACE_SECONDS["deliver"],
                "deliver the alert outbox to Discord"),
    ]  # fmt: skip


def list_jobs(ctx: jobs.Context) -> list[dict[str, Any]]:
    """Each job with its next run time from the clock's now; starts nothing, takes no lock."""
    now = ctx.clock()
    return [{"id": s.id, "what": s.what, "trigger": str(s.trigger), "misfire_grace_seconds": s.grace,
             "coalesce": True, "next_run": _iso(s.trigger.get_next_fire_time(None, now))} for s in job_specs(ctx)]  # fmt: skip


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def run_job(name: str, arg: str) -> str:
    """What APScheduler calls (by reference, so the store can hold it): one job of the running ``serve``."""
    ctx = _CONTEXT
    if ctx is None:  # a stored job fired in a process that is not `serve`: do nothing rather than guess
        return "no context"
    outcome = {
        "daily": lambda: jobs.daily_job(ctx, arg),
        "news": lambda: jobs.news_job(ctx, arg),
        "monitor": lambda: jobs.monitor_job(ctx, arg),
        "retrain": lambda: jobs.retrain_job(ctx, arg),
        "deliver": lambda: jobs.deliver_job(ctx),
    }[name]()
    _log.info("%s %s: %s", name, outcome.status, outcome.detail)
    return outcome.status


@contextlib.contextmanager
def single_instance(home: Path) -> Iterator[None]:
    """Hold ``home/serve.lock`` for the block; a second holder is refused with one line (``UserError``)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "serve.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise UserError(f"another `tradeagent serve` (PID {pid}) is already running on {home}; "
                            "stop it first, or use another TRADEAGENT_HOME") from None  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def make_scheduler(home: Path) -> BackgroundScheduler:
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{home / 'scheduler.sqlite'}")},
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=UTC,
    )


def _sync(scheduler: BackgroundScheduler, specs: list[JobSpec]) -> list[str]:
    """Keep stored jobs that still match the configuration (their next run time, maybe past, included)."""
    notes = []
    wanted = {s.id for s in specs}
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            scheduler.remove_job(job.id)
            notes.append(f"removed job {job.id} (no longer configured)")
    for spec in specs:
        stored = scheduler.get_job(spec.id)
        same = stored is not None and str(stored.trigger) == str(spec.trigger) and tuple(stored.args) == spec.args \
            and stored.misfire_grace_time == spec.grace
        if same:
            continue
        scheduler.add_job("schedules.serve:run_job", trigger=spec.trigger, args=spec.args, id=spec.id, name=spec.what,
                          misfire_grace_time=spec.grace, coalesce=True, max_instances=1, replace_existing=True)
        notes.append(f"{'updated' if stored else 'added'} job {spec.id}")
    return notes


def serve(ctx: jobs.Context, *, stop: threading.Event, on_ready: Callable[[list[dict[str, Any]]], None]) -> str:
    """Run the scheduler until ``stop`` is set; returns why it stopped. Refuses a second instance per home."""
    global _CONTEXT
    home = ctx.settings.ensure_home()
    specs = job_specs(ctx)
    with single_instance(home):
        _CONTEXT = ctx
        scheduler = make_scheduler(home)
        scheduler.add_listener(lambda event: _missed(ctx, event), EVENT_JOB_MISSED)
        scheduler.start(paused=True)
        try:
            for note in _sync(scheduler, specs):
                _log.info(note)
            scheduler.resume()
            on_ready([{"id": j.id, "next_run": _iso(j.next_run_time), "trigger": str(j.trigger)} for j in scheduler.get_jobs()])
            while not stop.wait(0.5):
                pass
        finally:
            scheduler.shutdown(wait=True)  # the running job finishes; nothing new starts
            _CONTEXT = None
    return "stopped"


def _missed(ctx: jobs.Context, event: JobExecutionEvent) -> None:
    run_time = event.scheduled_run_time
    outcome = jobs.JobOutcome(event.job_id, "missed", f"run due at {_iso(run_time)} was missed (beyond its misfire grace)")
    _log.warning("%s missed: due at %s", event.job_id, _iso(run_time))
    with contextlib.suppress(Exception):
        jobs.log(ctx, outcome, event.job_id)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (the scheduler then finishes its running job and exits)."""
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
