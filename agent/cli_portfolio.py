"""CLI: ``tradeagent portfolio`` and ``tradeagent trades`` (the ``risk`` group is ``agent.cli_risk``).

Contract of ``portfolio --json``: the keys of shared/DESIGN.md (``base_currency``, ``cash``, ``equity``,
``positions`` [``symbol``, ``quantity``, ``avg_price``, ``market_value``, ``weight``]), then ``as_of`` (the book's
last mark), ``starting_cash``, ``realised_pnl``, ``unrealised_pnl``, ``fees``, ``return_since_start``
(equity / starting cash − 1), ``max_drawdown`` (of the equity marks, ≤ 0; null without marks), ``pending``
(the pending orders as ``trades --json`` lists them) and ``benchmark``: ``{"name", "universe", "return",
"start", "end", "symbols", "skipped"}`` or null.

Deliberate decisions:
- ``portfolio`` values positions at the last marks the ledger stored (the open price of the last fill or the
  last ``record_equity``), because the CLI has no market data. Without a ledger it says so and shows the
  starting cash from settings (10,000 USD by default).
- The ledger is opened READ-ONLY here, so these commands never create or change it.
- The benchmark is an equal-weight buy-and-hold of the universe, without fees, from the close of the first
  equity mark's day to the close of the last one's (each the last cached close on or before that day, in
  the base currency), so it spans exactly the book's marks. The book does not store its universe: it comes
  from the newest real results file (``results/daily/D.json``): its ``universe_source`` (the ``--universe``
  argument, a built-in name or a TOML path), or its ``name`` in files without one. Closes are read from the
  market cache (``MarketCache.bars``, point-in-time; nothing is fetched or refreshed). A symbol without a
  close at the start is left out and listed in ``skipped``. Anything unavailable (no results file, a TOML
  universe whose path is not recorded or no longer exists, no cached bars, a locked file) is one dim line:
  the command never fails for it.
- ``portfolio --plot FILE.png`` draws the stored equity marks and fills (``agent.plots.equity_figure``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table
from rich.text import Text

from agent.cli_common import (
    JsonFlag,
    UserError,
    cli_errors,
    console,
    err_console,
    load_settings,
    newest_results,
    plot_path,
    print_json,
)
from agent.cli_explain import printable
from agent.cli_risk import risk_app
from portfolio.ledger import Ledger
from tools.cache import MarketCache
from tools.errors import DataError
from tools.fx import fx_instrument
from tools.models import Instrument
from tools.universe import load_universe
from tools.validation import last_valuation_close

_DEFAULT_CASH = 10_000.0
_DEFAULT_BASE = "USD"
BENCHMARK_LABEL = "equal-weight buy-and-hold, no fees"


def _portfolio_data() -> tuple[dict[str, Any], str | None, bool]:
    """The ``portfolio --json`` object, why the benchmark is missing (or None), and whether a ledger exists.

    The ledger is read and CLOSED before the market cache is opened: DuckDB refuses, in one process, a
    read-write connection to a file that a read-only one still holds.
    """
    settings = load_settings()
    ledger = Ledger.open_existing(settings.db_path)
    if ledger is None:
        cash = float(settings.starting_cash or _DEFAULT_CASH)
        return {"base_currency": _DEFAULT_BASE, "cash": cash, "equity": cash, "positions": [], "as_of": None,
                "starting_cash": cash, "realised_pnl": 0.0, "unrealised_pnl": 0.0, "fees": 0.0,
                "return_since_start": 0.0, "max_drawdown": None, "pending": [], "benchmark": None}, None, False
    try:
        book, curve = book_summary(ledger)
    finally:
        ledger.close()
    benchmark, missing = _benchmark(settings.daily_results_dir, settings.db_path, curve, book["base_currency"])
    return {**book, "benchmark": benchmark}, missing, True


def book_summary(ledger: Ledger) -> tuple[dict[str, Any], list[tuple[date, float]]]:
    """The ``portfolio --json`` object without ``benchmark``, and the equity marks, read from an open ledger.

    Shared with the chat (``agent.chat``), which opens the ledger itself (read-only, per request).
    """
    snap, starting_cash = ledger.snapshot(None), ledger.starting_cash
    curve, pending = ledger.equity_curve(), ledger.orders(status="pending")
    positions = [
        {"symbol": p.symbol, "quantity": p.quantity, "avg_price": p.avg_price, "market_value": p.market_value,
         "weight": p.weight}
        for p in snap.positions
    ]
    return {"base_currency": snap.base_currency, "cash": snap.cash, "equity": snap.equity, "positions": positions,
            "as_of": None if snap.as_of == date.min else snap.as_of.isoformat(), "starting_cash": starting_cash,
            "realised_pnl": snap.realised_pnl, "unrealised_pnl": snap.unrealised_pnl, "fees": snap.fees,
            "return_since_start": snap.equity / starting_cash - 1.0, "max_drawdown": max_drawdown(curve),
            "pending": [o.model_dump(mode="json") for o in pending]}, curve


def max_drawdown(curve: Sequence[tuple[date, float]]) -> float | None:
    """The largest fall from a running peak of the equity marks, as a fraction (≤ 0); None without marks."""
    if not curve:
        return None
    peak, worst = float("-inf"), 0.0
    for _, equity in curve:
        peak = max(peak, equity)
        if peak > 0:
            worst = min(worst, equity / peak - 1.0)
    return worst


# ------------------------------------------------------------------ buy-and-hold of the universe


class _Unavailable(Exception):
    """Why the benchmark cannot be computed; shown as one dim line, never an error."""


def _benchmark(results_dir: Path, db_path: Path, curve: Sequence[tuple[date, float]],
               base: str) -> tuple[dict[str, Any] | None, str | None]:
    """Equal-weight buy-and-hold of the universe from the first equity mark's close to the last one's.

    Never raises: anything missing (no results file, an unknown universe, no cached bars, a locked file)
    comes back as the reason, so the rest of the portfolio still shows.
    """
    try:
        if not curve:
            raise _Unavailable("the book has no equity marks yet")
        name = _latest_universe(results_dir)
        return _buy_and_hold(name, db_path, curve[0][0], curve[-1][0], base), None
    except (_Unavailable, DataError) as exc:
        return None, str(exc)
    except Exception as exc:  # an optional figure: never fail the command for it
        if os.environ.get("TRADEAGENT_DEBUG"):
            raise
        return None, f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _latest_universe(results_dir: Path) -> str:
    """The universe of the newest real run's results file (the book does not store which universe it trades).

    ``universe_source`` (the ``--universe`` argument: a built-in name or a TOML path) when the file has it, else
    the universe's ``name`` (files written before it). A recovered day's file has no source: the next older
    real run's file of the same universe gives it.
    """
    recovered: str | None = None
    for results in newest_results(results_dir):
        universe, source = results.get("universe"), results.get("universe_source")
        was_recovered = results.get("status") == "recovered"
        if not isinstance(universe, str) or not universe:
            continue
        if recovered is not None and universe != recovered:
            return recovered
        if isinstance(source, str) and source:
            return source
        if not was_recovered:
            return universe
        recovered = universe
    if recovered is None:
        raise _Unavailable(f"no daily results file under {results_dir} names the universe")
    return recovered


def _buy_and_hold(name: str, db_path: Path, start: date, end: date, base: str) -> dict[str, Any]:
    """Read the universe's closes from the cache (nothing fetched) and average each symbol's return in ``base``."""
    try:
        uni = load_universe(name)
    except DataError as exc:
        if _is_path(name) and not Path(name).expanduser().is_file():
            raise _Unavailable(f"the universe file {name} of the last results file no longer exists") from None
        raise _Unavailable(f"universe {name!r} of the last results file cannot be loaded ({exc})") from None
    returns: dict[str, float] = {}
    skipped: dict[str, str] = {}
    with MarketCache(db_path) as cache:
        for inst in uni.instruments:
            try:
                returns[inst.symbol] = _symbol_return(cache, inst, start, end, base)
            except _Unavailable as exc:
                skipped[inst.symbol] = str(exc)
    if not returns:
        why = "; ".join(f"{s}: {r}" for s, r in list(skipped.items())[:3])
        raise _Unavailable(f"no cached closes of universe {name!r} for {start} to {end} ({why})")
    return {"name": BENCHMARK_LABEL, "universe": uni.name, "return": sum(returns.values()) / len(returns),
            "start": start.isoformat(), "end": end.isoformat(), "symbols": sorted(returns), "skipped": skipped}


def _is_path(name: str) -> bool:
    """Whether ``load_universe`` reads ``name`` as a TOML file's path (its own test)."""
    return name.endswith(".toml") or "/" in name or "\\" in name


def _close_on_or_before(closes: pd.Series, day: date, what: str) -> float:
    """The valuation close on or before ``day`` (``tools.validation.valuation_rows``, as the ledger marks the book:
    a refused ×50 print or a NaN close is never read)."""
    cut = closes[closes.index <= pd.Timestamp(day)]
    close = last_valuation_close(cut.to_numpy(dtype="float64"), cut.index)
    if close is None:
        raise _Unavailable(f"no cached {what} on or before {day}")
    return close


def _symbol_return(cache: MarketCache, inst: Instrument, start: date, end: date, base: str) -> float:
    """close(end) / close(start) - 1 in the base currency; each close is the last one on or before its day."""
    closes = cache.bars(inst.symbol, as_of=end, source=inst.source)["close"]
    growth = _close_on_or_before(closes, end, "close") / _close_on_or_before(closes, start, "close")
    if inst.currency.upper() != base.upper():
        fx = fx_instrument(inst.currency, base)
        rates = cache.bars(fx.symbol, as_of=end, source=fx.source)["close"]
        growth *= _close_on_or_before(rates, end, fx.symbol) / _close_on_or_before(rates, start, fx.symbol)
    return growth - 1.0


# ------------------------------------------------------------------ the command


PlotOpt = Annotated[Path | None, typer.Option("--plot", help="also write the equity curve and drawdown (PNG)")]


@cli_errors
def portfolio_cmd(json_: JsonFlag = False, plot: PlotOpt = None) -> None:
    """Show cash, equity, P&L, return and drawdown, positions and pending orders (at the ledger's last marks)."""
    if plot is not None:
        plot = plot_path(plot)
    data, missing, exists = _portfolio_data()
    if plot is not None:
        _plot_equity(plot)
    if json_:
        print_json(data)
        return
    if not exists:
        console.print(f"No ledger yet: {data['cash']:,.2f} {data['base_currency']} starting cash, no positions. "
                      "Run `tradeagent demo` or `tradeagent daily` first.")
        return
    for line in _summary_lines(data, missing):
        console.print(line)
    ccy = data["base_currency"]
    if data["positions"]:
        table = Table("symbol", "quantity", "avg price", f"value ({ccy})", "weight")
        for p in data["positions"]:
            table.add_row(p["symbol"], f"{p['quantity']:g}", f"{p['avg_price']:,.4f}", f"{p['market_value']:,.2f}",
                          f"{p['weight']:.1%}")
        console.print(table)
    if data["pending"]:
        console.print(_pending_table(data["pending"]))


def _summary_lines(data: dict[str, Any], missing: str | None) -> list[Text]:
    ccy = data["base_currency"]
    dd = data["max_drawdown"]
    lines = [
        Text.assemble(("Portfolio", "bold"), f" as of {data['as_of'] or 'no mark yet'} · equity {data['equity']:,.2f} "
                      f"{ccy} · cash {data['cash']:,.2f} {ccy} · {len(data['positions'])} position(s)"),
        Text(f"P&L realised {data['realised_pnl']:+,.2f} · unrealised {data['unrealised_pnl']:+,.2f} · "
             f"fees {data['fees']:,.2f} {ccy}"),
        Text(f"Return since start {data['return_since_start']:+.2%} (starting cash {data['starting_cash']:,.2f} {ccy})"
             f" · max drawdown {'n/a' if dd is None else format(dd, '.2%')}"),
    ]
    bench = data["benchmark"]
    if bench is not None:
        left_out = "".join(f"; left out {s}: {r}" for s, r in bench["skipped"].items())
        lines.append(Text(f"Buy-and-hold {bench['return']:+.2%} over {bench['start']} to {bench['end']}: "
                          f"{bench['name']}, of {printable(bench['universe'])} "
                          f"({printable(', '.join(bench['symbols']))})"
                          f"{printable(left_out)}"))
    else:
        lines.append(Text(f"benchmark unavailable: {printable(missing)}", style="dim"))
    return lines


def _pending_table(pending: list[dict[str, Any]]) -> Table:
    table = Table("order id", "side", "symbol", "quantity", "decided", "reason",
                  title="pending orders (fill at the next session's open)")
    table.columns[0].no_wrap = True
    for o in pending:
        table.add_row(o["order_id"], o["side"], o["symbol"], f"{o['quantity']:g}", str(o["run_date"]),
                      printable(o.get("reason") or "", 80))
    return table


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


def register(app: typer.Typer) -> None:
    """Add ``portfolio``, ``trades`` and the ``risk`` group to the top-level app."""
    app.command("portfolio")(portfolio_cmd)
    app.command("trades")(trades_cmd)
    app.add_typer(risk_app, name="risk")
