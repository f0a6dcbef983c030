"""``tradeagent memory search|stats``: read the vector memory of past decisions (``TRADEAGENT_HOME/memory``).

- ``memory search TEXT [--as-of D] [--symbol S] [-k N] [--json]``: the N past decisions whose situation is most
  similar to TEXT, as the agent could recall them on day D: decided before D, with their outcome only when it
  was known by D (without ``--as-of``: everything stored). ``--json`` prints
  ``{"query", "as_of", "symbol", "decisions": [...]}`` (each decision as the nodes see it).
- ``memory stats [--json]``: records, records with an outcome, and per action the hit rate (a buy is right
  when the name beat the benchmark over the horizon, a sell when it lagged it, a hold when being in or out
  of the name was the better side) and the mean excess return.

Both only read. A home without a memory yet prints an empty answer (nothing is created); a memory written
with another embedding model, or one that cannot be opened, is one line (exit 2) saying what to do.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer
from rich.table import Table

from agent.cli_common import (
    UserError,
    cli_errors,
    console,
    err_console,
    load_settings,
    parse_date,
    print_json,
)
from agent.memory_inputs import hit_view
from agent.memory_open import embedder_for
from memory.errors import MemoryStoreError
from memory.models import date_int
from memory.store import ChromaMemoryStore, memory_stats

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
EVERYTHING = date(9999, 12, 31)


def _open(read_only: bool) -> ChromaMemoryStore | None:
    settings = load_settings()
    if not (settings.memory_dir / "chroma.sqlite3").exists():
        return None
    try:
        return ChromaMemoryStore.persistent(settings.memory_dir, None if read_only else embedder_for(settings))
    except MemoryStoreError as exc:
        raise UserError(str(exc)) from None


@app.command("search")
@cli_errors
def search_cmd(
    text: Annotated[str, typer.Argument(help="a situation in words, e.g. 'uptrend, RSI overbought'")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="recall as on this day (YYYY-MM-DD)")] = None,
    symbol: Annotated[str | None, typer.Option("--symbol", help="only decisions on this symbol")] = None,
    k: Annotated[int, typer.Option("-k", help="how many decisions (1-50)")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Past decisions most similar to TEXT, point-in-time."""
    day = parse_date(as_of, "--as-of")
    if not text.strip():
        raise UserError("TEXT is empty: describe a situation, e.g. 'uptrend, RSI overbought'")
    if not 1 <= k <= 50:
        raise UserError(f"-k must be between 1 and 50, not {k}")
    store = _open(read_only=False)
    try:
        hits = [] if store is None else store.search([text], as_of=date_int(day or EVERYTHING), k=k, symbol=symbol)[0]
    except MemoryStoreError as exc:
        raise UserError(str(exc)) from None
    decisions = [hit_view(h) for h in hits]
    if as_json:
        print_json({"query": text, "as_of": day, "symbol": symbol, "decisions": decisions})
        return
    if store is None:
        err_console.print("no memory yet: the daily run writes one record per decided symbol and day", style="dim")
        return
    if not decisions:
        console.print("no similar past decision" + (f" before {day}" if day else ""))
        return
    table = Table(title=f"past decisions like {text!r}" + (f", as of {day}" if day else ""))
    for col in ("date", "symbol", "action", "target", "similar", "excess", "right", "situation"):
        table.add_column(col, justify="right" if col in ("target", "similar", "excess") else "left")
    for d in decisions:
        o = d["outcome"]
        table.add_row(d["date"], d["symbol"], d["action"],
                      "" if d["target_weight"] is None else f"{d['target_weight']:.1%}", f"{d['similarity']:.2f}",
                      "not known yet" if o is None else f"{o['excess']:+.2%}", "" if o is None else str(o["right"]).lower(),
                      d["situation"])
    console.print(table)


@app.command("stats")
@cli_errors
def stats_cmd(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Records, outcomes and the hit rate of past decisions per action."""
    store = _open(read_only=True)
    try:
        stats: dict[str, Any] = (memory_stats(store) if store is not None else
                                 {"records": 0, "with_outcome": 0, "first": None, "last": None, "actions": {}})
    except MemoryStoreError as exc:
        raise UserError(str(exc)) from None
    stats["embedder"] = store.embedder_name if store is not None else None
    if as_json:
        print_json(stats)
        return
    console.print(f"{stats['records']} decisions recorded, {stats['with_outcome']} with a known outcome"
                  + (f" ({stats['first']} … {stats['last']}, embeddings {stats['embedder']})" if stats["records"] else ""))
    if stats["actions"]:
        table = Table()
        for col in ("action", "records", "with outcome", "hit rate", "mean excess"):
            table.add_column(col, justify="left" if col == "action" else "right")
        for action, a in stats["actions"].items():
            table.add_row(action, str(a["records"]), str(a["with_outcome"]),
                          "-" if a["hit_rate"] is None else f"{a['hit_rate']:.1%}",
                          "-" if a["mean_excess_return"] is None else f"{a['mean_excess_return']:+.2%}")
        console.print(table)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="memory", help="The vector memory of past decisions: search it, count it.")
