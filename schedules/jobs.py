"""The scheduler's jobs: the daily run, the news fetch, the intraday monitor, the weekly retrain, the outbox delivery pass.

Each job is a plain function of a ``Context`` (settings, schedule config, clock) that returns a ``JobOutcome``
and never raises: a failure is an outcome (``failed``) and an ``error`` alert. Each calls what the CLI calls
(``agent.daily.run_daily``, ``schedules.monitor.run_monitor``, ``tradeagent train``, ``deliver``), then
delivers the outbox. Every outcome is a row of ``schedule_log`` in the DuckDB file.

Run-once-per-day (``daily_job``): the session D is ``schedules.sessions.ready_session`` at the clock's time;
a D with a ``ran`` row in ``schedule_log``, or whose results file exists, is not run again, whatever fired the
job (a restart, a misfire catch-up, a double fire). ``run_daily`` is idempotent for a day that placed orders
on top of that. A run that died half-way left only a ``started`` row, so the next fire resumes it.

Deliberate decisions:
- The retrain job retrains only the model kinds that exist for the universe (``models list``); with none it
  says so and trains nothing (a first PPO training takes minutes and is a person's decision). Training runs as
  a ``tradeagent train`` child process: torch's memory goes back to the system when it ends.
- A failed daily run is reported (``error`` alert) and not retried by the scheduler: data that is not there
  at 22:30 is a person's problem (``tradeagent daily --date D`` runs it by hand). A day that ran and HELD is
  done too: the scheduler never re-decides it (a person may, with ``tradeagent daily --date D``).
- The scheduler holds no DuckDB connection between jobs: each step opens and closes the file.
- The news job runs what ``tradeagent news fetch`` runs; a universe without feeds (or with only subreddits and
  no Reddit credentials) is a ``skipped`` outcome with its reason, not a failure. It fails (an ``error``
  alert) when it raises or when every source was skipped; some sources skipped is a ``ran`` that counts them.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from agent.cli_news import reddit_client
from agent.daily import run_daily
from agent.settings import Settings
from portfolio import outbox
from portfolio.storage import connect
from schedules.config import ScheduleConfig
from schedules.discord_delivery import deliver
from schedules.monitor import run_monitor
from schedules.sessions import ready_session, universe_calendars
from tools.news.ingest import fetch_news
from tools.news.store import NewsStore
from tools.quant.registry import list_artefacts
from tools.universe import load_universe

RETRAIN_TIMEOUT_SECONDS = 3 * 3600
_LOG_DDL = """CREATE TABLE IF NOT EXISTS schedule_log (
    logged_at TIMESTAMP NOT NULL, job VARCHAR NOT NULL, key VARCHAR NOT NULL, session DATE, status VARCHAR NOT NULL,
    detail VARCHAR NOT NULL)"""


@dataclass(frozen=True)
class Context:
    settings: Settings
    config: ScheduleConfig
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    deliver_after: bool = True  # each job ends with a delivery pass (off in tests that count requests)


@dataclass(frozen=True)
class JobOutcome:
    job: str
    status: str  # ran | skipped | failed | missed
    detail: str
    session: date | None = None

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job, "status": self.status, "detail": self.detail,
                "session": self.session.isoformat() if self.session else None}  # fmt: skip


def log(ctx: Context, outcome: JobOutcome, key: str) -> None:
    ctx.settings.ensure_home()
    con = connect(ctx.settings.db_path)
    try:
        con.execute(_LOG_DDL)
        con.execute("INSERT INTO schedule_log VALUES (?, ?, ?, ?, ?, ?)",
                    [ctx.clock().astimezone(UTC).replace(tzinfo=None), outcome.job, key, outcome.session,
                     outcome.status, outcome.detail[:1000]])  # fmt: skip
    finally:
        con.close()


def _log_quietly(ctx: Context, outcome: JobOutcome, key: str) -> None:
    with contextlib.suppress(Exception):  # a busy file: the outcome is still returned and printed
        log(ctx, outcome, key)


def history(settings: Settings, job: str | None = None) -> list[dict[str, Any]]:
    """The scheduler's log, oldest first (``serve --list`` shows the last outcomes)."""
    if not settings.db_path.exists():
        return []
    # read-write like every other open in the serve process: DuckDB refuses a read-only connection in a process
    # that holds the file read-write (a job running in another thread), and nothing here writes
    con = connect(settings.db_path)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "schedule_log" not in tables:
            return []
        rows = con.execute("SELECT logged_at, job, key, session, status, detail FROM schedule_log "
                           "WHERE ? IS NULL OR job = ? ORDER BY logged_at, rowid", [job, job]).fetchall()  # fmt: skip
    finally:
        con.close()
    keys = ("at", "job", "key", "session", "status", "detail")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def _already_ran(ctx: Context, universe: str, session: date) -> bool:
    done = any(r["key"] == universe and r["session"] == session and r["status"] == "ran"
               for r in history(ctx.settings, "daily"))  # fmt: skip
    return done or (ctx.settings.daily_results_dir / f"{session.isoformat()}.json").exists()


def _error_alert(ctx: Context, title: str, detail: str, key: str, session: date | None) -> None:
    try:
        con = connect(ctx.settings.db_path)
        try:
            outbox.install(con)
            outbox.enqueue(con, kind="error", severity="critical", title=title, body=detail, key=key, run_date=session)
        finally:
            con.close()
    except Exception:  # the outcome row and the job's log line still say it
        return


def _deliver(ctx: Context) -> str:
    if not ctx.deliver_after or ctx.settings.discord_webhook_url is None:
        return ""
    return "; " + deliver(ctx.settings).line()


def daily_job(ctx: Context, universe: str) -> JobOutcome:
    session: date | None = None
    try:
        now = ctx.clock()
        uni = load_universe(universe)
        ready = ready_session(universe_calendars(uni), now)
        if ready is None:
            outcome = JobOutcome("daily", "skipped", f"no closed session of {uni.name} in the last days")
            log(ctx, outcome, universe)
            return outcome
        session = ready[0]
        if _already_ran(ctx, universe, session):
            outcome = JobOutcome("daily", "skipped", f"{session} already ran: a traded day is never repeated", session)
            log(ctx, outcome, universe)
            return outcome
        log(ctx, JobOutcome("daily", "started", "", session), universe)
        result = run_daily(ctx.settings, universe=universe, run_date=session, today=now.astimezone(UTC).date())
        r = result.results
        detail = f"{session} {r.get('status')}: {len(r.get('placed') or [])} order(s) placed" + (
            " (already traded: nothing re-run)" if result.repeated else "")
        outcome = JobOutcome("daily", "ran", detail, session)
    except Exception as exc:
        text = f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"
        outcome = JobOutcome("daily", "failed", text, session)
        _error_alert(ctx, f"daily run failed · {universe} · {session or '?'}", text, f"daily:{universe}:{session}", session)
    _log_quietly(ctx, outcome, universe)
    return JobOutcome(outcome.job, outcome.status, outcome.detail + _deliver(ctx), outcome.session)


def news_job(ctx: Context, universe: str) -> JobOutcome:
    """``tradeagent news fetch`` for the universe's feeds (and subreddits, with Reddit credentials)."""
    try:
        uni = load_universe(universe)
        reddit, reddit_status = reddit_client(ctx.settings) if uni.news.subreddits else (None, "")
        if not uni.news.feeds and reddit is None:
            why = f"no [news] feeds or subreddits in {uni.name}" if not uni.news.subreddits else f"reddit {reddit_status}"
            outcome = JobOutcome("news", "skipped", f"nothing to fetch: {why}")
        else:
            ctx.settings.ensure_home()
            with NewsStore(ctx.settings.db_path) as store:
                outcomes = fetch_news(uni, store, now=lambda: ctx.clock().astimezone(UTC).replace(tzinfo=None),
                                      reddit=reddit)  # fmt: skip
            ok = [o for o in outcomes if o.status == "ok"]
            skipped = [o for o in outcomes if o.status != "ok"]
            detail = f"{len(ok)} source(s) read, {sum(o.new for o in ok)} new item(s)"
            detail += f"; {len(skipped)} skipped: " + "; ".join(f"{o.source} ({o.reason})" for o in skipped) if skipped else ""
            if not ok:
                raise RuntimeError(f"every source was skipped: {detail}")
            outcome = JobOutcome("news", "ran", detail)
    except Exception as exc:
        outcome = JobOutcome("news", "failed", f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}")
        _error_alert(ctx, f"news fetch failed · {universe}", outcome.detail, f"news:{universe}:{ctx.clock().date()}", None)
    _log_quietly(ctx, outcome, universe)
    return JobOutcome(outcome.job, outcome.status, outcome.detail + _deliver(ctx), outcome.session)


def monitor_job(ctx: Context, universe: str) -> JobOutcome:
    try:
        report = run_monitor(ctx.settings, universe, now=ctx.clock(), thresholds=ctx.config.thresholds)
        new = [a for a in report.alerts if a.get("new")]
        detail = f"{len(report.checks)} checked, {len(report.alerts)} over a threshold ({len(new)} new)"
        detail += f"; {len(report.errors)} without data" if report.errors else ""
        detail += f"; not queued: {report.queue_error}" if report.queue_error else ""
        outcome = JobOutcome("monitor", "ran", detail)
    except Exception as exc:
        outcome = JobOutcome("monitor", "failed", f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}")
    _log_quietly(ctx, outcome, universe)
    return JobOutcome(outcome.job, outcome.status, outcome.detail + _deliver(ctx), outcome.session)


def retrain_job(ctx: Context, universe: str, runner: Callable[[list[str]], subprocess.CompletedProcess[str]] | None = None) -> JobOutcome:
    """Retrain the kinds (xgb, ppo) the universe already has a model of; nothing when it has none."""
    try:
        name = load_universe(universe).name
        kinds = sorted({item.artefact.meta.kind for item in list_artefacts(ctx.settings.models_dir)
                        if item.artefact is not None and item.artefact.meta.universe == name})  # fmt: skip
        if not kinds:
            outcome = JobOutcome("retrain", "skipped", f"nothing to train: no model of {name} was ever trained "
                                 "(train one with `tradeagent train xgb`, then this job keeps it fresh)")
        else:
            run = runner or _train
            done = []
            for kind in kinds:
                proc = run([sys.executable, "-m", "agent", "train", kind, "--universe", universe, "--json"])
                if proc.returncode != 0:
                    raise RuntimeError(f"train {kind} exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
                version = json.loads(proc.stdout).get("model", {}).get("version", "?")
                done.append(f"{kind} {version}")
            outcome = JobOutcome("retrain", "ran", "retrained " + ", ".join(done))
    except Exception as exc:
        outcome = JobOutcome("retrain", "failed", f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}")
        _error_alert(ctx, f"weekly retrain failed · {universe}", outcome.detail,
                     f"retrain:{universe}:{ctx.clock().date()}", None)
    _log_quietly(ctx, outcome, universe)
    return outcome


def _train(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=RETRAIN_TIMEOUT_SECONDS, check=False)


def deliver_job(ctx: Context) -> JobOutcome:
    report = deliver(ctx.settings)
    outcome = JobOutcome("deliver", "ran" if report.configured else "skipped", report.line())
    _log_quietly(ctx, outcome, "outbox")
    return outcome
