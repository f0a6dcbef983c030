"""``tradeagent data fetch|show``: fill the market-data cache and look at it point-in-time.

- ``fetch --universe U [--start D] [--end D] [--json]`` fetches every instrument (only the missing tail for
  remote sources), upserts it into ``TRADEAGENT_HOME/tradeagent.duckdb`` and prints one summary row per
  symbol (source, bars, first, last, notes).
- ``show SYMBOL [--universe U] [--as-of D] [--indicators] [--last N] [--json]`` prints the last N bars on or
  before D, read through the cache (local sources are read on demand; remote ones must have been fetched).
  Without ``--as-of`` the view is "as of the last cached bar". ``--json`` prints
  ``{"symbol", "as_of", "source", "bars": [{"date", "open", …, <indicators>}], "validation": {…}}``.
  ``--plot FILE.png`` also writes a chart of the last ``PLOT_SESSIONS`` bars up to D with the indicators
  (``agent.plots.price_figure``); the path goes to stderr so ``--json`` output stays clean. The file's
  folder must exist (checked before anything is loaded; no folder is created).

Errors (unknown symbol, bad date, date before the data, malformed CSV, no network) print one line and exit 2
(``agent.cli_common.cli_errors``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from agent.cli_common import (
    UserError,
    cli_errors,
    console,
    err_console,
    load_settings,
    parse_date,
    plot_path,
    print_json,
)
from tools.cache import MarketCache
from tools.calendars import calendar_for
from tools.data import load_universe_data
from tools.errors import DataError, UnknownSymbolError
from tools.indicators import compute_indicators
from tools.models import NewsConfig, Universe
from tools.universe import load_universe
from tools.validation import validate_bars

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

UniverseOpt = Annotated[
    str, typer.Option("--universe", "-u", help="built-in name or path to a universe TOML")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")]
PLOT_SESSIONS = 252  # a year of daily bars: long enough to read the 200-day average, short enough to see days


def _num(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


@app.command()
@cli_errors
def fetch(
    universe: UniverseOpt = "demo",
    start: Annotated[str | None, typer.Option("--start", help="first day to fetch (YYYY-MM-DD)")] = None,
    end: Annotated[str | None, typer.Option("--end", help="read bars up to this day (YYYY-MM-DD)")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Fetch a universe's bars into the cache (only what is missing) and summarise them."""
    start_d, end_d = parse_date(start, "--start"), parse_date(end, "--end")
    if start_d is not None and end_d is not None and start_d > end_d:
        # Checked before any provider is asked: an empty window would only surface as "no data" per symbol.
        raise UserError(f"--start {start_d} is after --end {end_d}")
    uni = load_universe(universe)
    settings = load_settings()
    settings.ensure_home()
    with MarketCache(settings.db_path) as cache:
        data = load_universe_data(uni, cache, as_of=end_d, refresh=True, start=start_d, progress=not json_out)
    if not data.bars and not json_out:
        raise _nothing_loaded(uni, data.errors)  # one line, not a table of the same failure per symbol
    rows: list[dict[str, Any]] = []
    for inst in uni.instruments:
        bars = data.bars.get(inst.symbol)
        notes = [n for n in data.notes if n.endswith(f" {inst.symbol}")]
        if inst.symbol in data.errors:
            notes.append(data.errors[inst.symbol])
        rows.append(
            {
                "symbol": inst.symbol,
                "source": inst.source,
                "bars": 0 if bars is None else len(bars),
                "first": None if bars is None else bars.index[0].date(),
                "last": None if bars is None else bars.index[-1].date(),
                "notes": notes,
            }
        )
    if json_out:
        print_json(
            {"universe": uni.name, "as_of": end_d, "symbols": rows, "fx": data.fx, "errors": data.errors}
        )
        if not data.bars:
            raise _nothing_loaded(uni, data.errors)  # after the JSON: scripts still get every symbol's error
    else:
        table = Table(title=f"universe {uni.name} (base {uni.base_currency})")
        for col in ("symbol", "source", "bars", "first", "last", "notes"):
            table.add_column(col, justify="right" if col == "bars" else "left")
        for r in rows:
            table.add_row(
                r["symbol"], r["source"], str(r["bars"]), str(r["first"] or "-"), str(r["last"] or "-"),
                "; ".join(r["notes"]),
            )  # fmt: skip
        console.print(table)


def _nothing_loaded(uni: Universe, errors: dict[str, str]) -> DataError:
    first = next(iter(errors.items()), ("?", "no data"))
    return DataError(
        f"nothing loaded for universe {uni.name}: all {len(uni.instruments)} instruments failed "
        f"(first, {first[0]}: {first[1]})"
    )


@app.command()
@cli_errors
def show(
    symbol: Annotated[str, typer.Argument(help="instrument symbol, e.g. SP500, SPY, BTC/EUR")],
    universe: UniverseOpt = "demo",
    as_of: Annotated[str | None, typer.Option("--as-of", help="last day visible (YYYY-MM-DD)")] = None,
    indicators: Annotated[bool, typer.Option("--indicators", help="add indicator columns")] = False,
    last: Annotated[int, typer.Option("--last", min=1, help="number of bars to print")] = 10,
    json_out: JsonOpt = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="also write a chart of the last year up to --as-of (PNG)")
    ] = None,
) -> None:
    """Show the last bars of a symbol on or before --as-of, with indicators and the validation verdict."""
    as_of_d = parse_date(as_of, "--as-of")
    if plot is not None:
        plot = plot_path(plot)
    uni = load_universe(universe)
    inst = uni.instrument(symbol)
    if inst is None:
        raise UnknownSymbolError(
            f"{symbol!r} is not in universe {uni.name}; symbols: {', '.join(uni.symbols)}"
        )
    # Only this instrument, valued in its own currency: show needs no FX and must not fetch the universe.
    single = Universe(name=uni.name, base_currency=inst.currency, instruments=[inst], news=NewsConfig())
    settings = load_settings()
    settings.ensure_home()
    with MarketCache(settings.db_path) as cache:
        data = load_universe_data(single, cache, as_of=as_of_d, refresh=False)
    if symbol in data.errors:
        raise DataError(data.errors[symbol])
    bars = data.bars[symbol]
    day = as_of_d or bars.index[-1].date()
    check = validate_bars(symbol, bars, day, calendar=calendar_for(inst), conflicts=data.conflicts.get(symbol))
    # Computed on the bars up to as_of only: the printed values are what the agent saw that day.
    with_indicators = bars.join(compute_indicators(bars).drop(columns=["close"])) if indicators or plot else bars
    if plot is not None:
        from agent.plots import price_figure, save_png  # matplotlib only when a chart is asked for

        title = f"{symbol} ({inst.source}) as of {day}"
        err_console.print(f"chart: {save_png(price_figure(with_indicators.iloc[-PLOT_SESSIONS:], title), plot)}")
    tail = (with_indicators if indicators else bars).iloc[-last:]
    if json_out:
        print_json(
            {
                "symbol": symbol,
                "as_of": day,
                "source": inst.source,
                "bars": [
                    {"date": ts.date(), **{k: _num(v) for k, v in row.items()}} for ts, row in tail.iterrows()
                ],
                "validation": {"tradeable": check.tradeable, "reasons": check.reasons},
            }
        )
        return
    _print_show(symbol, inst.source, day, tail, bars.columns, check.tradeable, check.reasons)


def _print_show(
    symbol: str, source: str, day: Any, tail: pd.DataFrame, bar_cols: pd.Index, ok: bool, reasons: list[str]
) -> None:
    table = Table(title=f"{symbol} ({source}) as of {day}")
    table.add_column("date")
    for col in bar_cols:
        table.add_column(col, justify="right")
    for ts, row in tail.iterrows():
        table.add_row(
            str(ts.date()), *(f"{row[c]:,.2f}" if c != "volume" else f"{row[c]:,.0f}" for c in bar_cols)
        )
    console.print(table)
    extra = [c for c in tail.columns if c not in bar_cols]
    if extra:
        shown = tail.iloc[-5:]
        ind = Table(title="indicators")
        ind.add_column("indicator")
        for ts in shown.index:
            ind.add_column(str(ts.date()), justify="right")
        for col in extra:
            ind.add_row(col, *("-" if _num(v) is None else f"{v:,.4g}" for v in shown[col]))
        console.print(ind)
    verdict = "tradeable" if ok else "NOT tradeable: " + "; ".join(reasons)
    console.print(f"validation: {verdict}", highlight=False)
