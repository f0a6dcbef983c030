"""``tradeagent daily`` and ``tradeagent demo``: one trading day, a console summary, optional --json.

The summary (``render_summary``) is compact: one line per fill, cancellation (kill switch), expiry and data
problem (untradeable symbols with their reasons, symbols that failed to load), the nodes, the orders with the
agent's reason (cut to ``REASON_WIDTH``) and any clamp, rejections with their codes, the portfolio and the
risk.toml notes. Everything recorded is shown as text (``agent.cli_explain.printable``), never as markup.
"""

from __future__ import annotations

import sys
from datetime import date
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table
from rich.text import Text

from agent.cli_common import (
    cli_errors,
    console,
    err_console,
    load_settings,
    newest_results,
    parse_date,
    print_json,
)
from agent.cli_explain import printable
from agent.daily import DailyResult, run_daily
from agent.profiles import BRAKE_LOW
from portfolio.storage import reraise_interrupt

LlmOption = Annotated[
    str | None, typer.Option("--llm", help="offline | openai (default: openai when OPENAI_API_KEY is set, else offline)")
]
CacheOption = Annotated[str, typer.Option("--llm-cache", help="record | replay | off")]


def _choice(value: str | None, allowed: tuple[str, ...], flag: str) -> Any:
    if value is not None and value not in allowed:
        from agent.cli_common import UserError

        raise UserError(f"{flag} must be one of {', '.join(allowed)}, not {value!r}")
    return value


REASON_WIDTH = 80  # an order's reason (the risk node's rationale) is cut to this many characters in the table


def render_summary(result: DailyResult) -> None:
    """The console account of a day: hold, events (fills, cancellations, expiries), data problems, nodes, orders
    with their reasons, the portfolio and risk.toml notes. Every piece of recorded text goes through
    ``printable`` inside ``rich.text.Text`` (the console's markup is off): LLM text is shown as text."""
    r = result.results
    title = f"tradeagent daily · {r['date']} · {r['universe']} · llm={r['llm']}"
    if result.repeated:
        title += " · already traded: nothing re-run"
    console.print(title, style="bold")
    if r.get("recovered"):
        console.print(Text.assemble(("recovered: ", "yellow"), printable(r["recovered"])))
    if r.get("hold"):
        hold = r["hold"]
        colour = "red" if hold.get("fallback") else "yellow"
        label = f"HOLD-ALL {hold['reason']}" if hold.get("fallback") else f"no orders ({hold['reason']})"
        console.print(Text.assemble((printable(label), colour), f": {printable(hold['detail'])}"))
    for line in _event_lines(r):
        console.print(line)
    console.print(_nodes_table(r))
    console.print(_orders_table(r))
    p = r.get("portfolio", {})
    console.print(
        f"portfolio {p.get('base_currency')}: equity {p.get('equity', 0):,.2f} · cash {p.get('cash', 0):,.2f} · "
        f"{len(p.get('positions', []))} position(s) · risk {r['risk']['state']['mode']}"
    )
    if r.get("placed") and not result.repeated:
        console.print(
            f"{len(r['placed'])} order(s) pending: they fill at the next session's open, settled by the next daily run"
        )
    risk = r.get("risk", {})
    planned = (r.get("nodes", {}).get("risk") or {}).get("status") == "ok"
    if planned and (share := risk.get("brake")) is not None and share < 1:  # rule 9's brake binds: how far, the way out
        way_back = ("the book is nearly all cash and can barely earn its way back to its peak" if share < BRAKE_LOW
                    else "the book earns its way back to its peak slowly from here")
        console.print(Text.assemble(("drawdown brake: ", "yellow"), (
            f"drawdown {risk.get('drawdown') or 0:.2%} of the {risk['limits']['max_drawdown']:.2%} breaker: each name's "
            f"target at most {share:.1%} of its size (a held weight within the band above it is kept); {way_back}. `tradeagent risk resume` restarts the peak the drawdown is "
            "measured from (and with it the brake)")))
        if cut := ((r.get("nodes", {}).get("risk") or {}).get("brake") or {}).get("capped"):
            console.print(Text.assemble(("drawdown brake: ", "yellow"), printable(
                f"the risk node's plan went above the brake on {', '.join(c['symbol'] for c in cut)}: capped in code")))
    if planned and (book := risk.get("book_vol")):  # rule 9's book volatility target (v10): the plan against it
        above = ("; above it: held names the rebalance band keeps, or a plan that does not follow the target"
                 if book["planned"] > book["target"] + 5e-4 else "")
        console.print(f"book volatility: the plan's book is an estimated {book['planned']:.1%} a year (profile target "
                      f"{book['target']:.1%}; 20-day volatilities, 60-day correlations){above}", style="dim")
    for note in risk.get("notes", []):
        console.print(Text.assemble(("risk.toml: ", "yellow"), printable(note)))
    for note in r.get("data", {}).get("notes", []):
        console.print(Text(f"note: {printable(note)}", style="dim"))
    if (before := _previous_profile(result.path.parent, str(r.get("date")))) not in (None, r.get("profile")):
        console.print(Text.assemble(("profile: ", "yellow"), printable(
            f"{r.get('profile')} today; the book's previous run used {before} (pass --profile {before} or set "
            "TRADEAGENT_PROFILE to keep it)")))
    console.print(f"results: {result.path} · {r['timings'].get('total_seconds', 0):.2f} s", style="dim")


def _previous_profile(results_dir: Path, day: str) -> str | None:
    """The risk profile of the newest real run before ``day`` (results files), or None."""
    return next((str(r["profile"]) for r in newest_results(results_dir)
                 if str(r.get("date", "")) < day and r.get("profile")), None)


def _event_lines(r: dict[str, Any]) -> list[Text]:
    """Fills settled, orders the kill switch cancelled, expired orders, then the data problems of the day."""
    lines = [Text(f"filled {f['side']} {f['quantity']:g} {printable(f['symbol'])} @ {f['price']:.4f} ({f['fill_date']})")
             for f in r.get("fills", [])]
    for label, items in (("cancelled", r.get("cancelled", [])), ("expired", r.get("expired", []))):
        for o in items:  # the recorded reason starts with the label: "expired: no GOOG session …"
            why = str(o.get("reason", "")).removeprefix(f"{label}: ")
            lines.append(Text.assemble((f"{label} ", "yellow"), printable(f"{o['order_id']} ({o.get('symbol', '?')}): {why}")))
    for d in r.get("delisted", []):
        lines.append(Text.assemble(("closed ", "yellow"), printable(f"{d['quantity']:g} {d['symbol']}: {d['reason']}")))
    data = r.get("data", {})
    for symbol, reasons in data.get("untradeable", {}).items():
        why = "; ".join(map(str, reasons)) if isinstance(reasons, list) else str(reasons)
        lines.append(Text.assemble(("untradeable ", "yellow"), printable(f"{symbol}: {why}")))
    for symbol, error in data.get("errors", {}).items():
        lines.append(Text.assemble(("data error ", "red"), printable(f"{symbol}: {error}")))
    return lines


def _nodes_table(r: dict[str, Any]) -> Table:
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
        nodes.add_row(printable(name), printable(n.get("status", "?")), str(n.get("llm_calls", 0)), Text(printable(detail)))
    return nodes


def _orders_table(r: dict[str, Any]) -> Table:
    """Approved orders with the agent's reason (and the guard's clamp), then the rejections with their codes."""
    orders = Table(title="orders (after the risk guard)")
    for col in ("symbol", "side", "quantity", "status", "reason"):
        orders.add_column(col)
    for o in r.get("approved", []):
        state = "placed" if o["order_id"] in r.get("placed", []) else ("dry-run" if r.get("dry_run") else "approved")
        reason = Text(printable(o.get("reason") or "", REASON_WIDTH))
        if o.get("clamped"):
            reason = Text.assemble((f"clamped: {printable(o['clamped'])}", "yellow"), " · ", reason)
        orders.add_row(printable(o["symbol"]), o["side"], f"{o['quantity']:g}", state, reason)
    for rej in r.get("rejected", []):
        orders.add_row(printable(rej.get("symbol") or "?"), "", "", Text("rejected", style="red"),
                       Text(printable(f"{rej['code']}: {rej['detail']}", REASON_WIDTH * 2)))
    return orders


def _run(**kwargs: Any) -> None:
    as_json = kwargs.pop("as_json")
    settings = load_settings()
    result = run_daily(settings, progress=not as_json and sys.stderr.isatty(), today=date.today(), **kwargs)
    if as_json:
        print_json({**result.results, "results_path": str(result.path), "repeated": result.repeated})
    else:
        render_summary(result)
    if not result.results.get("dry_run"):
        _after_run(settings, result, as_json)


def _after_run(settings: Any, result: DailyResult, quiet: bool) -> None:
    """Hooks of the layers above, once the day is recorded (``schedules`` delivers the alert outbox to Discord).

    Found through the ``tradeagent.after_daily`` entry point group, so ``agent`` never imports them; each
    bounds its own time, and a failing hook is one warning line: the day is already recorded.
    """
    for entry in sorted(entry_points(group="tradeagent.after_daily"), key=lambda e: e.name):
        try:
            entry.load()(settings, result, quiet)
        except Exception as exc:
            reraise_interrupt(exc)
            err_console.print(f"warning: {entry.name} after the run failed ({type(exc).__name__})", style="yellow")


def register(app: typer.Typer) -> None:
    @app.command()
    @cli_errors
    def daily(
        date: Annotated[str | None, typer.Option("--date", help="session D whose close the decision reads (YYYY-MM-DD)")] = None,
        universe: Annotated[str, typer.Option("--universe", "-u", help="built-in name or path to a TOML file")] = "demo",
        dry_run: Annotated[bool, typer.Option("--dry-run", help="decide and guard, but change nothing")] = False,
        llm: LlmOption = None,
        llm_cache: CacheOption = "off",
        profile: Annotated[str | None, typer.Option("--profile", help="risk profile: conservative | balanced | aggressive (book volatility 4%, 6%, 8%) | v9 (no book volatility target) | v8 (a quarter core, no drawdown brake) | v7 (the signal times entries and exits) | v3 (default TRADEAGENT_PROFILE, else balanced)")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    ) -> None:
        """Run one trading day: settle, refresh data, decide, guard, place paper orders, write results."""
        _run(
            universe=universe,
            run_date=parse_date(date),
            dry_run=dry_run,
            llm=_choice(llm, ("offline", "openai"), "--llm"),
            cache_mode=_choice(llm_cache, ("record", "replay", "off"), "--llm-cache"),
            profile=profile,
            as_json=as_json,
        )

    @app.command()
    @cli_errors
    def demo(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
        """The daily run on the offline demo universe with the offline rule policy (no network, no key)."""
        llm: Literal["offline"] = "offline"
        _run(universe="demo", run_date=None, dry_run=False, llm=llm, cache_mode="off", latest_common=True, as_json=as_json)
