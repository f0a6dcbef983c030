"""``tradeagent daily`` and ``tradeagent demo``: one trading day, a console summary, optional --json."""

from __future__ import annotations

import sys
from datetime import date
from typing import Annotated, Any, Literal

import typer
from rich.table import Table
from rich.text import Text

from agent.cli_common import cli_errors, console, load_settings, parse_date, print_json
from agent.daily import DailyResult, run_daily

LlmOption = Annotated[
    str | None, typer.Option("--llm", help="offline | openai (default: openai when OPENAI_API_KEY is set, else offline)")
]
CacheOption = Annotated[str, typer.Option("--llm-cache", help="record | replay | off")]


def _choice(value: str | None, allowed: tuple[str, ...], flag: str) -> Any:
    if value is not None and value not in allowed:
        from agent.cli_common import UserError

        raise UserError(f"{flag} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def render_summary(result: DailyResult) -> None:
    r = result.results
    title = f"tradeagent daily · {r['date']} · {r['universe']} · llm={r['llm']}"
    if result.repeated:
        title += " · already traded: nothing re-run"
    console.print(title, style="bold")
    if r.get("recovered"):
        console.print(Text.assemble(("recovered: ", "yellow"), r["recovered"]))
    if r.get("hold"):
        hold = r["hold"]
        colour = "red" if hold.get("fallback") else "yellow"
        label = f"HOLD-ALL {hold['reason']}" if hold.get("fallback") else f"no orders ({hold['reason']})"
        console.print(Text.assemble((label, colour), f": {hold['detail']}"))
    for order in r.get("expired", []):
        console.print(Text.assemble(("expired ", "yellow"), f"{order['order_id']}: {order['reason']}"))
    for fill in r.get("fills", []):
        console.print(f"filled {fill['side']} {fill['quantity']:g} {fill['symbol']} @ {fill['price']:.4f} ({fill['fill_date']})")
    nodes = Table(title="nodes", show_lines=False)
    for col in ("node", "status", "calls", "detail"):  # calls of the LLM or of the offline rules
        nodes.add_column(col)
    for name, n in r.get("nodes", {}).items():
        detail = n.get("abstain_detail") or n.get("abstain_reason") or ""
        if n.get("status") == "ok" and n.get("output"):
            out = n["output"]
            if "targets" in out:
                detail = ", ".join(f"{t['symbol']} {t['target_weight']:.0%}" for t in out["targets"]) or "no targets"
            else:
                detail = ", ".join(f"{x['symbol']} {x['score']:+.2f}" for x in out.get("signals", [])) or "no signals"
        nodes.add_row(name, n.get("status", "?"), str(n.get("llm_calls", 0)), detail)
    console.print(nodes)
    orders = Table(title="orders (after the risk guard)")
    for col in ("symbol", "side", "quantity", "status", "reason"):
        orders.add_column(col)
    for o in r.get("approved", []):
        state = "placed" if o["order_id"] in r.get("placed", []) else ("dry-run" if r.get("dry_run") else "approved")
        orders.add_row(o["symbol"], o["side"], f"{o['quantity']:g}", state, f"clamped: {o['clamped']}" if o.get("clamped") else "")
    for rej in r.get("rejected", []):
        orders.add_row(rej.get("symbol") or "?", "", "", Text("rejected", style="red"), f"{rej['code']}: {rej['detail']}")
    console.print(orders)
    p = r.get("portfolio", {})
    console.print(
        f"portfolio {p.get('base_currency')}: equity {p.get('equity', 0):,.2f} · cash {p.get('cash', 0):,.2f} · "
        f"{len(p.get('positions', []))} position(s) · risk {r['risk']['state']['mode']}"
    )
    if r.get("placed") and not result.repeated:
        console.print(
            f"{len(r['placed'])} order(s) pending: they fill at the next session's open, settled by the next daily run"
        )
    for note in r.get("data", {}).get("notes", []):
        console.print(f"note: {note}", style="dim")
    console.print(f"results: {result.path} · {r['timings'].get('total_seconds', 0):.2f} s", style="dim")


def _run(**kwargs: Any) -> None:
    as_json = kwargs.pop("as_json")
    result = run_daily(load_settings(), progress=not as_json and sys.stderr.isatty(), today=date.today(), **kwargs)
    if as_json:
        print_json({**result.results, "results_path": str(result.path), "repeated": result.repeated})
    else:
        render_summary(result)


def register(app: typer.Typer) -> None:
    @app.command()
    @cli_errors
    def daily(
        date: Annotated[str | None, typer.Option("--date", help="session D whose close the decision reads (YYYY-MM-DD)")] = None,
        universe: Annotated[str, typer.Option("--universe", "-u", help="built-in name or path to a TOML file")] = "demo",
        dry_run: Annotated[bool, typer.Option("--dry-run", help="decide and guard, but change nothing")] = False,
        llm: LlmOption = None,
        llm_cache: CacheOption = "off",
        as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    ) -> None:
        """Run one trading day: settle, refresh data, decide, guard, place paper orders, write results."""
        _run(
            universe=universe,
            run_date=parse_date(date),
            dry_run=dry_run,
            llm=_choice(llm, ("offline", "openai"), "--llm"),
            cache_mode=_choice(llm_cache, ("record", "replay", "off"), "--llm-cache"),
            as_json=as_json,
        )

    @app.command()
    @cli_errors
    def demo(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
        """The daily run on the offline demo universe with the offline rule policy (no network, no key)."""
        llm: Literal["offline"] = "offline"
        _run(universe="demo", run_date=None, dry_run=False, llm=llm, cache_mode="off", latest_common=True, as_json=as_json)
