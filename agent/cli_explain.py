"""``tradeagent explain D [--symbol S] [--json]``: a readable account of one day's decision, node by node.

Contract:
- Reads ``TRADEAGENT_HOME/results/daily/D.json``; when the day only has a dry run, ``D.dry-run.json``, and
  says so. Nothing else is read and nothing is written: the account is what the results file recorded.
- The account, in order: status and hold reason; each node (analyst, sentiment, quant, risk, then any other)
  with its status, abstain reason and, per symbol, score/confidence/rationale (``signals``) or target weight
  and rationale (``targets``); the proposed orders; what the guard approved, clamped and rejected (codes);
  the fills the day settled (a delisting cash-out says so, with its recorded reason: ``delisted``);
  cancellations and expiries; data problems; the risk mode; the portfolio at D's
  close. ``--json`` prints that account (``account()``) instead of the text.
- ``--symbol S`` (case-insensitive) keeps only that symbol's lines; day-level lines (status, hold, node
  status, the risk plan's comment, equity and cash) stay as context. A symbol the day never mentions is an
  error naming the symbols it does.
- A date that does not parse, or a day without a results file, is one line and exit 2; the latter names the
  days with results nearest to D.

Deliberate decisions:
- Text from the LLM (rationales, comments, reasons) is printed through ``rich.text.Text`` on the console
  whose markup is off, so ``[/b]`` is text; ``printable`` also escapes control characters, so an escape
  sequence in a rationale cannot repaint the user's terminal. The JSON keeps the text as recorded.
- Nothing is re-derived from the ledger: a ``recovered`` day (its node outputs were lost) says so rather
  than inventing them.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from agent.cli_common import UserError, cli_errors, console, load_settings, parse_date, print_json

NODE_ORDER = ("analyst", "sentiment", "quant", "risk")
_RESULTS_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.dry-run)?\.json$")


def printable(text: object, limit: int | None = None) -> str:
    """``text`` as one safe line: control characters escaped (``\\x1b``), cut to ``limit`` chars with ``…``."""
    out = "".join(c if unicodedata.category(c)[0] != "C" else f"\\x{ord(c):02x}" if ord(c) < 256
                  else f"\\u{ord(c):04x}" for c in str(text))
    return out if limit is None or len(out) <= limit else out[: limit - 1] + "…"


# ------------------------------------------------------------------ the results file


def results_days(folder: Path) -> dict[date, list[Path]]:
    """Days with a results file under ``folder``: day → [real file first, then the dry run's], if present."""
    days: dict[date, list[Path]] = {}
    if not folder.is_dir():
        return days
    for path in sorted(folder.iterdir(), key=lambda p: (p.name.endswith(".dry-run.json"), p.name)):
        match = _RESULTS_NAME.match(path.name)
        if match is None or not path.is_file():
            continue
        try:
            day = date.fromisoformat(match.group(1))
        except ValueError:
            continue
        days.setdefault(day, []).append(path)
    return days


def _nearest(days: Iterable[date], day: date) -> str:
    before = max((d for d in days if d < day), default=None)
    after = min((d for d in days if d > day), default=None)
    parts = [f"{d} ({where})" for d, where in ((before, "before"), (after, "after")) if d is not None]
    return ", ".join(parts)


def load_day(folder: Path, day: date) -> tuple[dict[str, Any], Path]:
    """The results of ``day`` (the real run's file, else the dry run's) and its path; ``UserError`` otherwise."""
    days = results_days(folder)
    if day not in days:
        if not days:
            raise UserError(f"no daily results under {folder} yet; run `tradeagent demo` or `tradeagent daily` first")
        raise UserError(f"no results file for {day}; the nearest days with results: {_nearest(days, day)}")
    path = days[day][0]
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    if not isinstance(results, dict):
        raise UserError(f"{path} is not a daily results file (not a JSON object)")
    return results, path


# ------------------------------------------------------------------ the account (plain data)


def _list(value: Any) -> list[dict[str, Any]]:
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _matches(item: dict[str, Any], symbol: str | None) -> bool:
    return symbol is None or str(item.get("symbol") or "").upper() == symbol


def _nodes(results: dict[str, Any], symbol: str | None) -> list[dict[str, Any]]:
    nodes = _dict(results.get("nodes"))
    names = [n for n in NODE_ORDER if n in nodes] + [n for n in nodes if n not in NODE_ORDER]
    account = []
    for name in names:
        node, output = _dict(nodes[name]), _dict(_dict(nodes[name]).get("output"))
        account.append({
            "node": name, "status": node.get("status"), "llm": node.get("llm"), "llm_calls": node.get("llm_calls", 0),
            "abstain_reason": node.get("abstain_reason"), "abstain_detail": node.get("abstain_detail"),
            "comment": output.get("comment") or None,
            "signals": [s for s in _list(output.get("signals")) if _matches(s, symbol)],
            "targets": [t for t in _list(output.get("targets")) if _matches(t, symbol)],
        })  # fmt: skip
    return account


def _by_symbol(mapping: Any, symbol: str | None) -> dict[str, Any]:
    return {k: v for k, v in _dict(mapping).items() if symbol is None or str(k).upper() == symbol}


def account(results: dict[str, Any], path: Path, symbol: str | None = None) -> dict[str, Any]:
    """What ``explain`` shows, as plain data: the day's record cut to ``symbol`` (upper-cased) when given."""
    approved = [o for o in _list(results.get("approved")) if _matches(o, symbol)]
    order_symbols = {o.get("order_id"): o.get("symbol") for o in _list(results.get("approved"))}
    clamps = [{**c, "symbol": order_symbols.get(c.get("order_id"))} for c in _list(results.get("clamps"))]
    placed = set(results["placed"]) if isinstance(results.get("placed"), list) else set()
    portfolio = _dict(results.get("portfolio"))
    data, risk = _dict(results.get("data")), _dict(results.get("risk"))
    return {
        "date": results.get("date"), "source": str(path), "dry_run": path.name.endswith(".dry-run.json"),
        "universe": results.get("universe"), "llm": results.get("llm"), "model": results.get("model"),
        "status": results.get("status"), "hold": results.get("hold"), "recovered": results.get("recovered"),
        "symbol": symbol,
        "nodes": _nodes(results, symbol),
        "proposed": [p for p in _list(results.get("proposed")) if _matches(p, symbol)],
        "approved": [{**o, "placed": o.get("order_id") in placed} for o in approved],
        "clamps": [c for c in clamps if _matches(c, symbol)],
        "rejected": [r for r in _list(results.get("rejected")) if _matches(r, symbol)],
        "fills": [f for f in _list(results.get("fills")) if _matches(f, symbol)],
        "cancelled": [c for c in _list(results.get("cancelled")) if _matches(c, symbol)],
        "expired": [e for e in _list(results.get("expired")) if _matches(e, symbol)],
        "delisted": [d for d in _list(results.get("delisted")) if _matches(d, symbol)],
        "data": {"untradeable": _by_symbol(data.get("untradeable"), symbol),
                 "errors": _by_symbol(data.get("errors"), symbol), "notes": list(data.get("notes") or [])},
        "risk": {"state": _dict(risk.get("state")), "notes": list(risk.get("notes") or [])},
        "portfolio": {**portfolio, "positions": [p for p in _list(portfolio.get("positions")) if _matches(p, symbol)]},
    }  # fmt: skip


def _symbols(results: dict[str, Any]) -> set[str]:
    """Every symbol the day's record mentions (for the error naming them)."""
    full = account(results, Path("-"))
    found: set[str] = set()
    for node in full["nodes"]:
        found.update(str(x.get("symbol")) for x in node["signals"] + node["targets"])
    for key in ("proposed", "approved", "rejected", "fills", "cancelled", "expired", "delisted"):
        found.update(str(x.get("symbol")) for x in full[key] if x.get("symbol"))
    found.update(str(p.get("symbol")) for p in full["portfolio"]["positions"])
    found.update(str(s) for s in (*full["data"]["untradeable"], *full["data"]["errors"]))
    return found


# ------------------------------------------------------------------ the text


def _num(value: Any, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, (int, float)) else "?"


def _line(label: str, style: str, *rest: str) -> Text:
    return Text.assemble((printable(label), style), *(printable(r) for r in rest))


def _node_lines(node: dict[str, Any], symbol: str | None) -> Iterator[Text]:
    calls = f" ({node['llm_calls']} call{'s' if node['llm_calls'] != 1 else ''})"
    if node["status"] != "ok":
        why = " · ".join(printable(x) for x in (node["abstain_reason"], node["abstain_detail"]) if x)
        yield _line(f"  {node['node']} ", "bold", f"{node['status']}{calls}: {why or 'no reason recorded'}")
        return
    yield _line(f"  {node['node']} ", "bold", f"ok{calls}" + (f": {node['comment']}" if node["comment"] else ""))
    for s in node["signals"]:
        yield _line(f"    {printable(s.get('symbol'))}", "cyan", f" score {_num(s.get('score'), '+.2f')} "
                    f"conf {_num(s.get('confidence'), '.2f')}: {s.get('rationale', '')}")
    for t in node["targets"]:
        yield _line(f"    {printable(t.get('symbol'))}", "cyan",
                    f" target {_num(t.get('target_weight'), '.1%')}: {t.get('rationale', '')}")
    if symbol is not None and not node["signals"] and not node["targets"]:
        yield Text(f"    nothing on {printable(symbol)}", style="dim")


def _guard_lines(acc: dict[str, Any]) -> Iterator[Text]:
    for o in acc["approved"]:
        state = "placed" if o["placed"] else ("dry run: not placed" if acc["dry_run"] else "not placed")
        yield _line("  approved ", "green", f"{o.get('side')} {_num(o.get('quantity'), 'g')} {o.get('symbol')} "
                    f"({o.get('order_id')}, {state})")
    for c in acc["clamps"]:
        yield _line("  clamped ", "yellow", f"{c.get('symbol') or c.get('order_id')} {_num(c.get('from_quantity'), 'g')}"
                    f" → {_num(c.get('to_quantity'), 'g')}: {c.get('code')} ({c.get('detail')})")
    for r in acc["rejected"]:
        yield _line("  rejected ", "red", f"{r.get('symbol') or r.get('raw') or '?'}: {r.get('code')} ({r.get('detail')})")


def _event_lines(acc: dict[str, Any]) -> Iterator[Text]:
    delisted = {str(d.get("symbol")): d for d in acc.get("delisted", [])}
    for f in acc["fills"]:
        gone = delisted.get(str(f.get("symbol"))) if str(f.get("order_id", "")).endswith("-delisting") else None
        label, why = ("  delisted ", f" · forced close: {gone.get('reason')}") if gone else ("  filled ", "")
        yield _line(label, "yellow" if gone else "green", f"{f.get('side')} {_num(f.get('quantity'), 'g')} "
                    f"{f.get('symbol')} @ {_num(f.get('price'), '.4f')} on {f.get('fill_date')} "
                    f"(commission {_num(f.get('commission'), '.2f')}){why}")
    for label, items in (("cancelled", acc["cancelled"]), ("expired", acc["expired"])):
        for c in items:  # the recorded reason starts with the label: "expired: no GOOG session …"
            why = str(c.get("reason")).removeprefix(f"{label}: ")
            yield _line(f"  {label} ", "yellow", f"{c.get('order_id')} ({c.get('symbol')}): {why}")
    for sym, reasons in acc["data"]["untradeable"].items():
        yield _line("  untradeable ", "yellow", f"{sym}: {'; '.join(map(str, reasons)) if isinstance(reasons, list) else reasons}")
    for sym, error in acc["data"]["errors"].items():
        yield _line("  data error ", "red", f"{sym}: {error}")


def _portfolio_lines(acc: dict[str, Any]) -> Iterator[Text]:
    p, state = acc["portfolio"], acc["risk"]["state"]
    ccy = printable(p.get("base_currency") or "")
    yield _line(f"portfolio at the close of {acc['date']} ", "bold",
                f"(after its fills; its orders fill at the next open): equity {_num(p.get('equity'), ',.2f')} "
                f"{ccy} · cash {_num(p.get('cash'), ',.2f')} {ccy} · risk {state.get('mode', '?')}")
    for pos in p["positions"]:
        yield _line(f"  {printable(pos.get('symbol'))} ", "cyan", f"{_num(pos.get('quantity'), 'g')} · value "
                    f"{_num(pos.get('market_value'), ',.2f')} {ccy} · weight {_num(pos.get('weight'), '.1%')}")
    for note in acc["risk"]["notes"]:
        yield _line("  risk.toml: ", "yellow", str(note))


def render(acc: dict[str, Any]) -> Iterator[Text]:
    """The account as lines of text, day-level context first."""
    head = f"tradeagent explain · {acc['date']} · {acc['universe']} · llm={acc['llm']}"
    yield _line(head + (f" · symbol {acc['symbol']}" if acc["symbol"] else ""), "bold")
    if acc["dry_run"]:
        yield _line("dry run: ", "yellow", f"no real run on {acc['date']}; this is {Path(acc['source']).name}")
    yield _line("status ", "bold", str(acc["status"]))
    if acc["hold"]:
        hold = _dict(acc["hold"])
        yield _line("hold ", "red" if hold.get("fallback") else "yellow", f"{hold.get('reason')}: {hold.get('detail')}")
    if acc["recovered"]:
        yield _line("recovered: ", "yellow", str(acc["recovered"]))
    yield Text("nodes", style="bold")
    if not acc["nodes"]:
        yield Text("  no node outputs recorded", style="dim")
    for node in acc["nodes"]:
        yield from _node_lines(node, acc["symbol"])
    yield Text("proposed orders", style="bold")
    if not acc["proposed"]:
        yield Text("  none", style="dim")
    for p in acc["proposed"]:
        yield _line(f"  {printable(p.get('side'))} {_num(p.get('quantity'), 'g')} {printable(p.get('symbol'))}", "cyan",
                    f": {p.get('reason', '')}")
    guard = list(_guard_lines(acc))
    yield Text("risk guard", style="bold")
    yield from guard or [Text("  nothing to check", style="dim")]
    events = list(_event_lines(acc))
    if events:
        yield Text("settlement and data", style="bold")
        yield from events
    yield from _portfolio_lines(acc)
    yield Text(f"source: {acc['source']}", style="dim")


# ------------------------------------------------------------------ the command

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the account as JSON on stdout.")]
SymbolOpt = Annotated[str | None, typer.Option("--symbol", help="only this symbol's lines")]


@cli_errors
def explain_cmd(
    day: Annotated[str, typer.Argument(help="the session D whose decision to explain (YYYY-MM-DD)")],
    symbol: SymbolOpt = None,
    json_: JsonFlag = False,
) -> None:
    """Explain a day's decision node by node, from its results file (results/daily/D.json)."""
    when = parse_date(day, "date")
    assert when is not None  # a required argument
    results, path = load_day(load_settings().daily_results_dir, when)
    wanted = symbol.strip().upper() if symbol is not None else None
    if wanted is not None and wanted not in {s.upper() for s in _symbols(results)}:
        seen = ", ".join(sorted(printable(s) for s in _symbols(results))) or "none"
        raise UserError(f"{printable(symbol)} does not appear in the results of {when} (symbols there: {seen})")
    acc = account(results, path, wanted)
    if json_:
        print_json(acc)
        return
    for line in render(acc):
        console.print(line)


def register(app: typer.Typer) -> None:
    """Add ``explain`` to the top-level app."""
    app.command("explain")(explain_cmd)
