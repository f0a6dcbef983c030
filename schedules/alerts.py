"""``tradeagent alerts list|send`` and the delivery pass after ``tradeagent daily`` / ``tradeagent demo``.

Contract:
- ``alerts list [--pending] [--limit N] [--json]`` reads the outbox read-only (it works while nothing is
  configured: the outbox holds every alert whether or not a webhook is set).
- ``alerts send [--json]`` runs one delivery pass now (``schedules.discord_delivery.deliver``); exit 0 when
  nothing is left pending, 1 when alerts remain (Discord down, no webhook), 2 for bad input.
- ``after_daily`` is the ``tradeagent.after_daily`` entry point that ``agent.cli_daily`` calls once a real
  run has written its results (``agent`` cannot import this layer): with a webhook set it delivers what is
  pending within ``AFTER_RUN_BUDGET`` seconds and prints one line on stderr; without one it is silent.

Deliberate decisions:
- Nothing here reads from Discord: alerts go out, no command comes in (no kill switch, no orders).
- Text is shown as text (``agent.cli_explain.printable``): an LLM's "[/b]" or an escape sequence in an alert
  is not interpreted by the terminal.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from agent.cli_common import UserError, cli_errors, console, err_console, load_settings, print_json
from agent.cli_explain import printable
from agent.settings import Settings
from portfolio import outbox
from portfolio.storage import StorageError, connect
from schedules.discord_delivery import DeliveryReport, deliver

AFTER_RUN_BUDGET = 20.0  # seconds the daily command may spend delivering after the day is recorded

alerts_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")]


def list_alerts(settings: Settings, *, pending_only: bool = False, limit: int | None = None) -> list[outbox.Alert]:
    if not settings.db_path.exists():
        return []
    try:
        con = connect(settings.db_path, read_only=True)
    except StorageError as exc:
        raise UserError(str(exc)) from None
    try:
        return outbox.alerts(con, pending_only=pending_only, limit=limit)
    finally:
        con.close()


@alerts_app.command("list")
@cli_errors
def list_cmd(
    pending: Annotated[bool, typer.Option("--pending", help="only alerts not delivered yet")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="the most recent N alerts")] = 50,
    json_: JsonOpt = False,
) -> None:
    """The alert outbox: every alert the agent raised, delivered or pending, oldest first."""
    settings = load_settings()
    rows = list_alerts(settings, pending_only=pending, limit=limit)
    if json_:
        print_json({"alerts": [a.to_json() for a in rows], "db_path": str(settings.db_path),
                    "webhook_configured": settings.discord_webhook_url is not None})  # fmt: skip
        return
    if not rows:
        console.print(f"no alerts in {settings.db_path}" + (" pending" if pending else ""))
        return
    table = Table(title=f"alerts ({len(rows)})")
    for col in ("id", "created (UTC)", "kind", "severity", "title", "status"):
        table.add_column(col)
    for a in rows:
        status = "delivered" if a.delivered_at else f"pending ({a.attempts} tries)" if a.attempts else "pending"
        if a.last_error and not a.delivered_at:
            status += f": {a.last_error}"
        table.add_row(a.alert_id, a.created_at.strftime("%Y-%m-%d %H:%M"), a.kind, a.severity,
                      Text(printable(a.title, 100)), Text(printable(status, 100)))  # fmt: skip
    console.print(table)


@alerts_app.command("send")
@cli_errors
def send_cmd(json_: JsonOpt = False) -> None:
    """Deliver the pending alerts to Discord now (TRADEAGENT_DISCORD_WEBHOOK_URL); undelivered ones stay pending."""
    settings = load_settings()
    report = deliver(settings)
    if json_:
        print_json(report.to_json())
    else:
        console.print(Text(printable(report.line())))
    if report.pending or (report.configured and report.stopped):  # left pending, or the outbox could not be read
        raise typer.Exit(1)


def after_daily(settings: Settings, result: Any, quiet: bool = False) -> DeliveryReport | None:
    """Deliver pending alerts after a real daily run (the ``tradeagent.after_daily`` entry point); bounded."""
    if settings.discord_webhook_url is None or getattr(result, "results", {}).get("dry_run"):
        return None
    report = deliver(settings, budget_seconds=AFTER_RUN_BUDGET)
    err_console.print(Text(printable(report.line())), style="dim")
    return report


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts", help="The alert outbox: list alerts, deliver them to Discord.")
