"""The dashboard's tabs as plain data: markdown, pandas frames and plotly figures, built from ``Home`` per call.

Contract:
- One function per tab (``equity_tab``, ``positions_tab``, ``trades_tab``, ``day_tab`` (any day; the last
  by default), ``guard_tab``, ``alerts_tab``, ``evals_tab``), each taking a ``Home`` and returning a tuple whose first item is the tab's
  markdown status line. They never raise: a book held by a running job, a missing feature or any other
  failure is the status line ("the book is being updated…", "not available in this install", the error
  in one line), with empty frames, so no tab ever shows a traceback or a console error.
- No ledger yet: each tab says so and how to start (``tradeagent demo``), with empty frames.
- Frames hold text and numbers only; the app shows them in ``gr.Dataframe`` columns of type ``str``/``number``,
  which render text, never HTML. Markdown built here escapes recorded text (``agent.chat.text.esc``).

Deliberate decisions:
- Read live on every call (``Home`` caches nothing): a tab opened after a daily run shows it.
- Equity and drawdown are one plotly figure with two rows sharing the date axis; the fills are markers on
  the equity line, as in ``tradeagent portfolio --plot``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from agent.chat.reader import Book, BookBusy, Home, Unavailable
from agent.chat.text import esc, money, pct

T = TypeVar("T")
NO_BOOK = ("**No paper book yet** in this home ({home}). Run `tradeagent demo` (one offline day) or "
           "`tradeagent daily --universe demo --date 2012-03-01`, then open this tab again.")

_POSITIONS = ["symbol", "quantity", "avg_price", "market_value", "weight"]
_PENDING = ["order_id", "run_date", "side", "symbol", "quantity", "reason"]
_ORDERS = ["order_id", "run_date", "symbol", "side", "quantity", "filled_quantity", "status", "note"]
_FILLS = ["order_id", "fill_date", "symbol", "side", "quantity", "price", "commission", "slippage"]
_GUARD = ["run_date", "kind", "symbol", "order_id", "code", "detail", "from_quantity", "to_quantity"]
_NODES = ["node", "status", "symbol", "score", "confidence", "target_weight", "rationale"]
_DAY_ORDERS = ["stage", "symbol", "side", "quantity", "code", "detail"]
_ALERTS = ["created", "run_date", "severity", "kind", "title", "text", "fields", "delivered"]
_METRICS = ["report", "policy", "total_return", "cagr", "sharpe", "max_drawdown", "exposure", "trades"]


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    if not rows:
        return _empty(columns)
    return pd.DataFrame([{c: _cell(r.get(c)) for c in columns} for r in rows], columns=columns)


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, str)):
        return value
    return str(value)


def _guarded(*empties: Callable[[], Any]) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Turn any failure of a tab into its status line, with the tab's empty values after it."""

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def run(*args: Any) -> Any:
            try:
                return fn(*args)
            except (BookBusy, Unavailable) as exc:
                status = esc(exc)
            except Exception as exc:  # a dashboard tab never fails the app; the line says what went wrong
                if os.environ.get("TRADEAGENT_DEBUG"):
                    raise
                status = f"cannot show this tab: {esc(type(exc).__name__)}: {esc(' '.join(str(exc).split()), 300)}"
            return (status, *(make() for make in empties))

        return run

    return wrap


def _no_book(home: Home) -> str:
    return NO_BOOK.format(home=esc(home.settings.home))


# ------------------------------------------------------------------ equity and drawdown


def equity_figure(book: Book) -> go.Figure:
    days = [d for d, _ in book.curve]
    values = [v for _, v in book.curve]
    peak, drawdown = float("-inf"), []
    for v in values:
        peak = max(peak, v)
        drawdown.append(v / peak - 1.0 if peak > 0 else 0.0)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.06)
    fig.add_trace(go.Scatter(x=days, y=values, mode="lines", name=f"equity ({book.base_currency})"), row=1, col=1)
    marks = dict(book.curve)
    for side, color in (("buy", "green"), ("sell", "red")):
        fills = [f for f in book.fills if f["side"] == side and f["fill_date"] in marks]
        if fills:
            fig.add_trace(go.Scatter(x=[f["fill_date"] for f in fills], y=[marks[f["fill_date"]] for f in fills],
                                     mode="markers", name=f"{side} fills", marker={"color": color, "size": 8},
                                     text=[str(f["symbol"]) for f in fills], hoverinfo="text+x"), row=1, col=1)
    fig.add_trace(go.Scatter(x=days, y=drawdown, mode="lines", name="drawdown", fill="tozeroy",
                             line={"color": "firebrick"}), row=2, col=1)
    fig.update_yaxes(tickformat=".1%", row=2, col=1)
    fig.update_layout(height=480, margin={"l": 40, "r": 20, "t": 30, "b": 30}, legend={"orientation": "h"})
    return fig


@_guarded(lambda: None)
def equity_tab(home: Home) -> tuple[str, go.Figure | None]:
    book = home.book()
    if not book.exists:
        return _no_book(home), None
    s, ccy = book.summary, book.base_currency
    if not book.curve:
        return "The book has no equity marks yet: the first daily run writes one.", None
    status = (f"**Equity {money(s['equity'], ccy)}** at {esc(s['as_of'])} · return since start "
              f"{pct(s['return_since_start'], True)} · max drawdown {pct(s['max_drawdown'])} · "
              f"{len(book.curve)} marked day(s), {len(book.fills)} fill(s) · source: ledger pf_equity, pf_fills")
    return status, equity_figure(book)


# ------------------------------------------------------------------ positions, trades


@_guarded(lambda: _empty(_POSITIONS), lambda: _empty(_PENDING))
def positions_tab(home: Home) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    book = home.book()
    if not book.exists:
        return _no_book(home), _empty(_POSITIONS), _empty(_PENDING)
    s, ccy = book.summary, book.base_currency
    status = (f"At the last mark ({esc(s['as_of'])}): equity {money(s['equity'], ccy)}, cash {money(s['cash'], ccy)} "
              f"({pct(s['cash'] / s['equity'] if s['equity'] else None)}), {len(s['positions'])} position(s), "
              f"{len(s['pending'])} pending order(s). Values in {esc(ccy)}; weights are fractions of equity.")
    positions = [{**p, "avg_price": round(p["avg_price"], 4), "market_value": round(p["market_value"], 2),
                  "weight": round(p["weight"], 4)} for p in s["positions"]]
    return status, _frame(positions, _POSITIONS), _frame(s["pending"], _PENDING)


@_guarded(lambda: _empty(_ORDERS), lambda: _empty(_FILLS))
def trades_tab(home: Home) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    book = home.book()
    if not book.exists:
        return _no_book(home), _empty(_ORDERS), _empty(_FILLS)
    if not book.orders:
        return "No trades yet: the book has no orders.", _empty(_ORDERS), _empty(_FILLS)
    orders = [{**o, "note": o.get("status_reason") or o.get("clamped") or ""} for o in reversed(book.orders)]
    status = f"{len(book.orders)} order(s), {len(book.fills)} fill(s), newest first · source: ledger pf_orders, pf_fills"
    return status, _frame(orders, _ORDERS), _frame(list(reversed(book.fills)), _FILLS)


# ------------------------------------------------------------------ the last daily result, the guard log


@_guarded(lambda: _empty(_NODES), lambda: _empty(_DAY_ORDERS))
def day_tab(home: Home, day: str | None = None) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """Day ``day``'s decision (YYYY-MM-DD; default: the last day with a results file)."""
    days = home.days()
    if not days:
        return _no_book(home), _empty(_NODES), _empty(_DAY_ORDERS)
    acc = home.day(date.fromisoformat(day) if day else days[-1])
    nodes: list[dict[str, Any]] = []
    for node in acc["nodes"]:
        base = {"node": node["node"], "status": node["status"]}
        if node["status"] != "ok":
            why = " · ".join(str(x) for x in (node.get("abstain_reason"), node.get("abstain_detail")) if x)
            nodes.append({**base, "rationale": why})
        nodes += [{**base, **{k: s.get(k) for k in ("symbol", "score", "confidence", "rationale")}}
                  for s in node["signals"]]
        nodes += [{**base, **{k: t.get(k) for k in ("symbol", "target_weight", "rationale")}} for t in node["targets"]]
    stages: list[dict[str, Any]] = [{"stage": "proposed", **p, "detail": p.get("reason")} for p in acc["proposed"]]
    stages += [{"stage": "approved" + (" (placed)" if o.get("placed") else ""), **o, "detail": o.get("reason")}
               for o in acc["approved"]]
    stages += [{"stage": "clamped", "symbol": c.get("symbol"), "quantity": c.get("to_quantity"), "code": c.get("code"),
                "detail": c.get("detail")} for c in acc["clamps"]]
    stages += [{"stage": "rejected", **r} for r in acc["rejected"]]
    stages += [{"stage": "filled", **f, "detail": f"at {f.get('price')} on {f.get('fill_date')}"} for f in acc["fills"]]
    hold = acc.get("hold") or {}
    status = (f"**{esc(acc['date'])}** · {esc(acc['universe'])} · llm {esc(acc['llm'])} · status {esc(acc['status'])}"
              + (f" · hold: {esc(hold.get('reason'))}" if hold else "") + f" · source: {esc(acc['source'])}")
    return status, _frame(nodes, _NODES), _frame(stages, _DAY_ORDERS)


@_guarded(lambda: _empty(_GUARD))
def guard_tab(home: Home) -> tuple[str, pd.DataFrame]:
    book = home.book()
    if not book.exists:
        return _no_book(home), _empty(_GUARD)
    rows = list(reversed(book.guard_log))
    rejected = sum(1 for r in rows if r["kind"] == "rejection")
    status = (f"{rejected} rejection(s) and {len(rows) - rejected} clamp(s), newest first · source: ledger pf_guard_log"
              if rows else "The guard has rejected and clamped nothing yet.")
    return status, _frame(rows, _GUARD)


# ------------------------------------------------------------------ alerts, evals


@_guarded(lambda: _empty(_ALERTS))
def alerts_tab(home: Home) -> tuple[str, pd.DataFrame]:
    if not home.settings.db_path.exists():
        return _no_book(home), _empty(_ALERTS)
    rows = home.alerts()
    status = (f"{len(rows)} alert(s), newest first · source: DuckDB alert_outbox (delivered by `tradeagent alerts "
              "send` or after each daily run)" if rows else "No alerts in the outbox yet.")
    return status, _frame(rows, _ALERTS)


def _metric(key: str, value: Any) -> Any:
    """Fractions as percentages, ratios to two decimals: the table is read by a person."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return value
    if key in ("total_return", "cagr", "max_drawdown", "exposure"):
        return f"{value:+.2%}" if key != "exposure" else f"{value:.0%}"
    return round(value, 2) if key == "sharpe" else value


def report_link(path: str) -> str:
    """A link to an eval's report.html served by the app (its folder is one of the app's allowed paths)."""
    return f"/gradio_api/file={quote(str(Path(path).resolve()))}"


@_guarded(lambda: _empty(_METRICS))
def evals_tab(home: Home) -> tuple[str, pd.DataFrame]:
    reports = home.eval_reports()
    if not reports:
        return ("No eval reports under TRADEAGENT_HOME/evals/ yet. `tradeagent eval --universe demo --start "
                "2012-01-01 --end 2012-12-31` writes one there."), _empty(_METRICS)
    rows = [{"report": r["name"], "policy": policy, **{k: _metric(k, m.get(k)) for k in _METRICS[2:]}}
            for r in reports for policy, m in r["metrics"].items()]
    links = " · ".join(f"[{esc(r['name'])}: report.html]({report_link(r['html'])})" if r["html"] else
                       f"{esc(r['name'])}: no report.html" for r in reports)
    return f"{len(reports)} report(s), newest first. Open: {links}", _frame(rows, _METRICS)
