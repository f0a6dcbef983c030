"""CLI: ``tradeagent orders list|cancel`` — pending paper orders, and cancelling them by hand.

Deliberate decisions:
- ``cancel ID…`` or ``cancel --all`` cancels only PENDING orders, with the reason "cancelled by hand" (plus
  ``--reason``) stored on the order; a buy the broker was holding back for a cancelled sell is cancelled with it
  (it was sized on that sell). An id that is not pending is reported, not an error for the others.
- The ledger is opened read-write only for ``cancel``; a daily run holding it makes that one line (locked).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from agent.cli_common import JsonFlag, UserError, cli_errors, console, load_settings, print_json
from portfolio.broker import PaperBroker
from portfolio.ledger import Ledger

app = typer.Typer(help="Pending paper orders: list them, cancel them by hand.", no_args_is_help=True)


@app.command("list")
@cli_errors
def list_cmd(json_: JsonFlag = False) -> None:
    """List the pending orders (they fill at their instrument's next session open)."""
    ledger = Ledger.open_existing(load_settings().db_path)
    pending = [] if ledger is None else ledger.orders(status="pending")
    if ledger is not None:
        ledger.close()
    if json_:
        print_json({"pending": pending})
        return
    if not pending:
        console.print("No pending orders.")
        return
    table = Table("order id", "decided", "side", "symbol", "quantity", "reason")
    table.columns[0].no_wrap = True
    for o in pending:
        table.add_row(o.order_id, str(o.run_date), o.side, o.symbol, f"{o.quantity:g}", o.reason)
    console.print(table)


@app.command("cancel")
@cli_errors
def cancel_cmd(
    order_ids: Annotated[list[str] | None, typer.Argument(help="order ids (see `tradeagent orders list`)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="cancel every pending order")] = False,
    reason: Annotated[str, typer.Option("--reason", help="why (stored on each order)")] = "",
    json_: JsonFlag = False,
) -> None:
    """Cancel pending orders by id, or all of them with --all."""
    if bool(order_ids) == all_:
        raise UserError("give order ids, or --all" if not order_ids else "give order ids or --all, not both")
    settings = load_settings()
    ledger = Ledger.open_existing(settings.db_path, read_only=False)
    if ledger is None:
        raise UserError(f"no paper book under {settings.home}: nothing to cancel")
    try:
        why = "cancelled by hand" + (f": {reason}" if reason else "")
        cancelled = PaperBroker(ledger).cancel(None if all_ else list(order_ids or []), why)
    finally:
        ledger.close()
    done = {c["order_id"] for c in cancelled}
    missing = [i for i in (order_ids or []) if i not in done]
    if json_:
        print_json({"cancelled": cancelled, "not_pending": missing})
    else:
        for c in cancelled:
            console.print(f"cancelled {c['order_id']}: {c['reason']}")
        for i in missing:
            console.print(f"not pending (unknown, filled or already cancelled): {i}", style="yellow")
        if not cancelled and not missing:
            console.print("No pending orders.")
    if missing and not cancelled:
        raise typer.Exit(1)
