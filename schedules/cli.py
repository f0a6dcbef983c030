"""The scheduler layer's commands, registered through the ``tradeagent.commands`` entry point (pyproject.toml):
``tradeagent serve [--list] [--json]``, ``tradeagent monitor [--universe U] [--json]`` and ``tradeagent alerts``.

``serve`` logs one line per job outcome on stderr (``%(asctime)s``, UTC); ``serve --list`` starts nothing,
takes no lock and writes nothing. ``monitor`` exits 0 (nothing to report), 1 (a rule crossed), 2 (bad input).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from agent.cli_common import cli_errors, console, load_settings, print_json
from agent.cli_explain import printable
from schedules import alerts, jobs
from schedules.config import load_config
from schedules.monitor import run_monitor
from schedules.serve import list_jobs, serve, stop_on_signals

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")]


def _context() -> jobs.Context:
    settings = load_settings()
    return jobs.Context(settings=settings, config=load_config(settings.home))


def serve_cmd(
    list_: Annotated[bool, typer.Option("--list", help="print the jobs and their next run times; start nothing")] = False,
    json_: JsonOpt = False,
) -> None:
    """Run the daily run, the news fetch, the intraday monitor, the weekly retrain and alert delivery on schedule (until SIGTERM)."""
    ctx = _context()
    if list_:
        rows = list_jobs(ctx)
        recent = jobs.history(ctx.settings)[-10:]
        if json_:
            print_json({"home": str(ctx.settings.home), "config": str(ctx.config.source) if ctx.config.source else None,
                        "universe": ctx.config.universe, "timezone": ctx.config.timezone, "jobs": rows,
                        "recent": recent})  # fmt: skip
            return
        table = Table(title=f"tradeagent serve · {ctx.settings.home} · {ctx.config.universe}")
        for col in ("job", "next run (UTC)", "schedule", "grace"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["id"], r["next_run"] or "never", Text(printable(r["trigger"])), f"{r['misfire_grace_seconds'] // 60} min")
        console.print(table)
        for r in recent:
            console.print(Text(printable(f"{r['at']:%Y-%m-%d %H:%M} {r['job']} {r['status']}: {r['detail']}")), style="dim")
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%SZ")
    logging.Formatter.converter = time.gmtime
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # our own line per outcome says it better
    stop = threading.Event()

    def ready(jobs_now: list[dict[str, Any]]) -> None:
        nexts = ", ".join(f"{j['id']} {j['next_run']}" for j in jobs_now)
        console.print(f"serving {ctx.settings.home} ({ctx.config.universe}); next: {nexts}")

    with stop_on_signals(stop):
        serve(ctx, stop=stop, on_ready=ready)
    console.print("stopped: the running job (if any) finished; nothing was interrupted")


def monitor_cmd(
    universe: Annotated[str | None, typer.Option("--universe", "-u", help="built-in name or TOML path (default: config's)")] = None,
    json_: JsonOpt = False,
) -> None:
    """Compare the latest prices with the last close; alert on big moves (exit 1). Never trades."""
    ctx = _context()
    report = run_monitor(ctx.settings, universe or ctx.config.universe, now=datetime.now(UTC),
                         thresholds=ctx.config.thresholds)  # fmt: skip
    crossed = bool(report.alerts)
    if json_:
        print_json(report.to_json())
    else:
        for c in report.checks:
            move = f"{c['move']:+.2%} since {c['last_close_date']}" if "move" in c else c.get("status", "")
            flag = Text("ALERT ", style="red") if c["alert"] else Text("")
            console.print(Text.assemble(flag, printable(f"{c['symbol']}{' (held)' if c['held'] else ''}: {move} "
                                                          f"(threshold ±{c['threshold']:.1%})")))
        if report.portfolio:
            console.print(f"portfolio {report.portfolio['move']:+.2%} on the day (alert below "
                          f"-{report.portfolio['threshold']:.1%})")
        for symbol, error in report.errors.items():
            console.print(Text(printable(f"no data for {symbol}: {error}")), style="yellow")
        if report.queue_error:
            console.print(Text(printable(f"alerts not queued: {report.queue_error}")), style="yellow")
        console.print(f"{len(report.alerts)} alert(s)" if crossed else "nothing to report")
    if crossed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("serve")(cli_errors(serve_cmd))
    app.command("monitor")(cli_errors(monitor_cmd))
    alerts.register(app)
