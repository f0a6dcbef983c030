"""CLI: ``tradeagent portfolio``, ``tradeagent trades`` and ``tradeagent risk limits|status|halt|reduce|resume``.

Deliberate decisions:
- ``portfolio`` values positions at the last marks the ledger stored (the open price of the last fill or the
  last ``record_equity``), because the CLI has no market data. Without a ledger it says so and shows the
  starting cash from settings (10,000 USD by default).
- The ledger is opened READ-ONLY here, so these commands never create or change it.
- ``portfolio --plot FILE.png`` draws the stored equity marks and fills (``agent.plots.equity_figure``).
- The kill switch lives here (``risk halt|reduce|resume``), never in an LLM tool. ``risk limits`` shows the
  limits IN FORCE: the coded ceilings tightened by ``TRADEAGENT_HOME/risk.toml``, each with its ceiling,
  unit and meaning (``portfolio.risk.LIMIT_INFO``); ``--json`` keeps plain numbers under the limit names.
  A looser value keeps the ceiling and is reported on stderr; a risk.toml that does not parse or holds an
  unknown table, key or a non-number is ``RiskConfigError``: one line, exit 2 (the daily run refuses too).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from agent.cli_common import UserError, cli_errors, console, err_console, load_settings, plot_path, print_json
from portfolio.errors import LedgerError
from portfolio.ledger import Ledger
from portfolio.models import RiskMode, RiskState
from portfolio.risk import CEILINGS, LIMIT_INFO, RiskStateStore, load_limits

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (recorded in the risk state).")]

_DEFAULT_CASH = 10_000.0
_DEFAULT_BASE = "USD"


def _portfolio_data() -> tuple[dict[str, Any], bool]:
    settings = load_settings()
    ledger = Ledger.open_existing(settings.db_path)
    if ledger is None:
        cash = float(settings.starting_cash or _DEFAULT_CASH)
        return {"base_currency": _DEFAULT_BASE, "cash": cash, "equity": cash, "positions": []}, False
    try:
        snap = ledger.snapshot(None)
    finally:
        ledger.close()
    positions = [
        {"symbol": p.symbol, "quantity": p.quantity, "avg_price": p.avg_price, "market_value": p.market_value,
         "weight": p.weight}
        for p in snap.positions
    ]
    return {"base_currency": snap.base_currency, "cash": snap.cash, "equity": snap.equity,
            "positions": positions}, True


PlotOpt = Annotated[Path | None, typer.Option("--plot", help="also write the equity curve and drawdown (PNG)")]


@cli_errors
def portfolio_cmd(json_: JsonFlag = False, plot: PlotOpt = None) -> None:
    """Show cash, equity and positions (valued at the ledger's last marks)."""
    if plot is not None:
        plot = plot_path(plot)
    data, exists = _portfolio_data()
    if plot is not None:
        _plot_equity(plot)
    if json_:
        print_json(data)
        return
    if not exists:
        console.print(f"No ledger yet: {data['cash']:,.2f} {data['base_currency']} starting cash, no positions. "
                      "Run `tradeagent demo` or `tradeagent daily` first.")
        return
    ccy = data["base_currency"]
    console.print(f"Equity {data['equity']:,.2f} {ccy} · cash {data['cash']:,.2f} {ccy}")
    table = Table("symbol", "quantity", "avg price", f"value ({ccy})", "weight")
    for p in data["positions"]:
        table.add_row(p["symbol"], f"{p['quantity']:g}", f"{p['avg_price']:,.4f}", f"{p['market_value']:,.2f}",
                      f"{p['weight']:.1%}")
    console.print(table)


def _plot_equity(path: Path) -> None:
    from agent.plots import equity_figure, save_png  # matplotlib only when a chart is asked for

    ledger = Ledger.open_existing(load_settings().db_path)
    if ledger is None:
        raise UserError("nothing to plot: no ledger yet (run `tradeagent demo` or `tradeagent daily` first)")
    try:
        curve, fills, base = ledger.equity_curve(), ledger.fills(), ledger.base_currency
    finally:
        ledger.close()
    title = f"paper portfolio equity ({base}), {len(curve)} marked day(s), {len(fills)} fill(s)"
    err_console.print(f"chart: {save_png(equity_figure(curve, fills, title), path)}")


@cli_errors
def trades_cmd(json_: JsonFlag = False) -> None:
    """List orders (pending, filled, cancelled) and fills."""
    ledger = Ledger.open_existing(load_settings().db_path)
    if ledger is None:
        orders, fills = [], []
    else:
        try:
            orders, fills = ledger.orders(), ledger.fills()
        finally:
            ledger.close()
    if json_:
        print_json({"orders": orders, "fills": fills})
        return
    if not orders:
        console.print("No trades yet.")
        return
    table = Table("order id", "status", "side", "symbol", "quantity", "filled", "note")
    table.columns[0].no_wrap = True  # the id is the handle on an order: never truncate it
    for o in orders:
        table.add_row(o.order_id, o.status, o.side, o.symbol, f"{o.quantity:g}", f"{o.filled_quantity:g}",
                      o.status_reason or o.clamped or "")
    console.print(table)


risk_app = typer.Typer(help="Risk limits in force and the kill switch (halt, reduce, resume).",
                       no_args_is_help=True)


@risk_app.command("limits")
@cli_errors
def risk_limits_cmd(json_: JsonFlag = False) -> None:
    """Show the risk limits in force (coded ceilings tightened by risk.toml), with units and meanings."""
    limits, notes = load_limits(load_settings().risk_config_path)
    for note in notes:
        err_console.print(Text.assemble(("warning: ", "yellow"), note), highlight=False)
    if json_:
        print_json(limits.model_dump())
        return
    table = Table("limit", "in force", "ceiling", "unit", "meaning")
    ceilings = CEILINGS.model_dump()
    for key, value in limits.model_dump().items():
        unit, meaning = LIMIT_INFO[key]
        table.add_row(key, _number(value), _number(ceilings[key]), unit, meaning)
    console.print(table)


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


def _show_state(state: RiskState, json_: bool) -> None:
    if json_:
        print_json(state.model_dump(mode="json"))
    else:
        since = f" since {state.since}" if state.since else ""
        console.print(Text.assemble("Risk mode ", (state.mode, "bold"), f"{since} ({state.changed_by}): {state.reason}"))


@risk_app.command("status")
@cli_errors
def risk_status_cmd(json_: JsonFlag = False) -> None:
    """Show the risk mode (ACTIVE, REDUCING, HALTED) and why."""
    settings = load_settings()
    _show_state(RiskStateStore(settings.risk_state_path).load(book_exists=_book_exists(settings.db_path)), json_)


def _book_exists(db_path: Path) -> bool:
    """Whether a paper book with activity exists (a locked file counts: a run holding it has a book)."""
    try:
        ledger = Ledger.open_existing(db_path)
    except LedgerError:
        return True
    if ledger is None:
        return False
    try:
        return ledger.last_activity() is not None
    finally:
        ledger.close()


def _set_mode(mode: RiskMode, reason: str, json_: bool) -> None:
    """A person's word: written under the store's lock, so a run about to place orders reads it first or not at all."""
    settings = load_settings()
    settings.ensure_home()
    state = RiskState(mode=mode, reason=reason, since=date.today(), changed_by="cli")
    store = RiskStateStore(settings.risk_state_path)
    with store.locked():
        store.save(state)
    _show_state(state, json_)
    if mode != "ACTIVE" and not json_:
        what = "every pending order" if mode == "HALTED" else "pending orders that add risk"
        console.print(f"the next daily run cancels {what} before settling", style="dim")


@risk_app.command("halt")
@cli_errors
def risk_halt_cmd(reason: ReasonOpt = "halted by hand", json_: JsonFlag = False) -> None:
    """Stop all trading: nothing passes the guard until `risk resume`."""
    _set_mode("HALTED", reason, json_)


@risk_app.command("reduce")
@cli_errors
def risk_reduce_cmd(reason: ReasonOpt = "reducing by hand", json_: JsonFlag = False) -> None:
    """Only risk-reducing orders (sells) pass until `risk resume`."""
    _set_mode("REDUCING", reason, json_)


@risk_app.command("resume")
@cli_errors
def risk_resume_cmd(reason: ReasonOpt = "resumed by hand", json_: JsonFlag = False) -> None:
    """Back to ACTIVE (releases a breaker's latch)."""
    _set_mode("ACTIVE", reason, json_)


def register(app: typer.Typer) -> None:
    """Add ``portfolio``, ``trades`` and the ``risk`` group to the top-level app."""
    app.command("portfolio")(portfolio_cmd)
    app.command("trades")(trades_cmd)
    app.add_typer(risk_app, name="risk")
