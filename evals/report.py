"""The eval report: ``DIR/report.json`` (the DESIGN.md contract), ``DIR/report.html`` and a CLI metrics table.

Contract: ``write_report(out_dir, runs, config=…, timing=…)`` takes one ``PolicyRun`` per policy (graph
policies from the replay runner, benchmarks from ``evals.baselines``) and writes both files.
``report.json`` = ``{"config", "policies": {NAME: {"metrics", "equity", "decisions", "regimes",
"intervals", "llm", "win_rate_basis", "notes"}}, "timing", "notes"}``; the metric keys are those of
``evals.metrics.compute_metrics``.

Deliberate decisions:
- Deterministic JSON: keys sorted, floats rounded to 10 significant digits, NaN/inf written as null, dates
  as ISO ``YYYY-MM-DD``, bootstrap seeded. Two identical runs give byte-identical files except ``timing``.
- ``intervals``: ``sharpe`` (bootstrap 95% interval) and ``sharpe_vs_<reference>`` (the Sharpe difference
  against the reference benchmark, default ``buyhold``, with a paired bootstrap interval); null where
  undefined (fewer than 30 returns, zero volatility, the reference itself).
- ``regimes`` are computed from ``benchmark`` (a close series, ideally with ≥ 220 sessions of history before
  the window) or, without one, from the reference policy's equity curve (then the first 220 sessions of
  the window are "unknown"); a note says which.
- The HTML is one self-contained file: the plotly.js bundle is inlined (opens offline, no external script),
  every text from policies, symbols, decisions and config is ``html.escape``d, and the trades table shows
  the last ``max_trades`` rows with a note giving the total.
"""

from __future__ import annotations

import html
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots
from rich.console import Console
from rich.table import Table
from rich.text import Text

from evals.metrics import (
    REGIMES,
    compute_metrics,
    drawdown,
    market_regimes,
    sharpe_by_regime,
    sharpe_difference,
    sharpe_interval,
)
from evals.models import PolicyRun

TIMING_KEYS = ("total_seconds", "train_seconds", "replay_seconds", "days_per_second")
SIGNIFICANT_DIGITS = 10
MAX_TRADES_SHOWN = 500
_BASELINE_NAMES = ("buyhold", "equalweight", "holdall")


@dataclass(frozen=True)
class ReportFiles:
    json_path: Path
    html_path: Path
    report: dict[str, Any]


# --- JSON ----------------------------------------------------------------------------------------------


def _clean(x: Any) -> Any:
    """A JSON-ready copy: rounded finite floats (else None), ISO dates, str keys, lists for sequences."""
    if x is None or isinstance(x, bool | str):
        return x
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        f = float(x)
        return float(f"{f:.{SIGNIFICANT_DIGITS}g}") if math.isfinite(f) else None
    if isinstance(x, pd.Timestamp | datetime):
        ts = pd.Timestamp(x)
        return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()
    if isinstance(x, date):
        return x.isoformat()
    if isinstance(x, Mapping):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple | set | frozenset):
        items = [_clean(v) for v in x]
        return sorted(items, key=repr) if isinstance(x, set | frozenset) else items
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "model_dump"):  # pydantic models (settings, decisions) as their JSON form
        return _clean(x.model_dump(mode="json"))
    raise TypeError(f"cannot write {type(x).__name__} to report.json: {x!r}")


def dumps(report: Mapping[str, Any]) -> str:
    """The report as deterministic JSON text (sorted keys, rounded floats, trailing newline)."""
    return json.dumps(_clean(report), sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def _policy_block(
    run: PolicyRun, reference: PolicyRun | None, regimes: pd.Series | None, *, reps: int, seed: int
) -> dict[str, Any]:
    metrics = compute_metrics(run.equity, exposure=run.exposure, trades=run.trades, trade_pnls=run.trade_pnls)
    ref_name = reference.name if reference is not None else "buyhold"
    diff = None
    if reference is not None and reference.name != run.name:
        diff = sharpe_difference(run.equity, reference.equity, reps=reps, seed=seed)
    return {
        "metrics": metrics,
        "equity": [[d, v] for d, v in zip(run.equity.index, run.equity.to_numpy(), strict=True)],
        "decisions": [dict(d) for d in run.decisions],
        "regimes": None if regimes is None else sharpe_by_regime(run.equity, regimes),
        "intervals": {"sharpe": sharpe_interval(run.equity, reps=reps, seed=seed), f"sharpe_vs_{ref_name}": diff},
        "llm": {"calls": run.llm.calls, "tokens": run.llm.tokens, "cost": run.llm.cost},
        "win_rate_basis": "daily returns" if run.trade_pnls is None else "closed trades",
        "notes": list(run.notes),
    }


def build_report(
    runs: Sequence[PolicyRun],
    *,
    config: Mapping[str, Any],
    timing: Mapping[str, float | None] | None = None,
    benchmark: pd.Series | None = None,
    reference: str = "buyhold",
    seed: int = 0,
    reps: int = 1000,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The report as a JSON-ready dict (already rounded; ``dumps`` writes it)."""
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"policy names must be unique, got {names}")
    unknown = set(timing or {}) - set(TIMING_KEYS)
    if unknown:
        raise ValueError(f"unknown timing keys {sorted(unknown)}; expected {TIMING_KEYS}")
    by_name = {r.name: r for r in runs}
    ref = by_name.get(reference)
    all_notes = list(notes)
    if ref is None:
        all_notes.append(f"no {reference} policy in this report: no Sharpe difference against it")
    regimes = None
    if benchmark is not None:
        regimes = market_regimes(benchmark)
        all_notes.append("regimes from the benchmark close: bull = close > SMA200 and SMA200 above its value 20 "
                         "sessions earlier, bear = the opposite, sideways otherwise (point-in-time)")
    elif ref is not None:
        regimes = market_regimes(ref.equity)
        all_notes.append(f"regimes from the {reference} equity curve (no benchmark given): bull = above its "
                         "SMA200 and the SMA rising over 20 sessions, bear = the opposite; the first 220 "
                         "sessions are unknown")
    policies = {r.name: _policy_block(r, ref, regimes, reps=reps, seed=seed) for r in runs}
    return _clean({
        "config": dict(config),
        "policies": policies,
        "timing": {k: (timing or {}).get(k) for k in TIMING_KEYS},
        "notes": all_notes,
    })


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(
    out_dir: str | Path,
    runs: Sequence[PolicyRun],
    *,
    config: Mapping[str, Any],
    timing: Mapping[str, float | None] | None = None,
    benchmark: pd.Series | None = None,
    reference: str = "buyhold",
    seed: int = 0,
    reps: int = 1000,
    notes: Sequence[str] = (),
    positions_policy: str | None = None,
    max_trades: int = MAX_TRADES_SHOWN,
) -> ReportFiles:
    """Write ``out_dir/report.json`` and ``out_dir/report.html`` (creating ``out_dir``)."""
    report = build_report(runs, config=config, timing=timing, benchmark=benchmark, reference=reference,
                          seed=seed, reps=reps, notes=notes)
    return write_files(out_dir, report, runs, positions_policy=positions_policy, max_trades=max_trades)


def write_files(
    out_dir: str | Path,
    report: dict[str, Any],
    runs: Sequence[PolicyRun],
    *,
    positions_policy: str | None = None,
    max_trades: int = MAX_TRADES_SHOWN,
) -> ReportFiles:
    """Write an already built ``report`` (``build_report``, maybe extended) as report.json and report.html."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "report.json", out / "report.html"
    _write_atomic(json_path, dumps(report))
    _write_atomic(html_path, render_html(report, runs, positions_policy=positions_policy, max_trades=max_trades))
    return ReportFiles(json_path, html_path, report)


# --- tables (shared by the HTML and the CLI) -----------------------------------------------------------

_PCT = {"total_return", "cagr", "max_drawdown", "volatility", "win_rate", "exposure"}
METRIC_COLUMNS = ("total_return", "cagr", "sharpe", "sortino", "calmar", "max_drawdown", "max_drawdown_days",
                  "volatility", "win_rate", "profit_factor", "exposure", "trades", "turnover")
_LABELS = {"total_return": "total return", "cagr": "CAGR", "sharpe": "Sharpe", "sortino": "Sortino",
           "calmar": "Calmar", "max_drawdown": "max drawdown", "max_drawdown_days": "drawdown days",
           "volatility": "volatility", "win_rate": "win rate", "profit_factor": "profit factor",
           "exposure": "exposure", "trades": "trades", "turnover": "turnover (×/year)"}


def _fmt(key: str, v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    if key in _PCT:
        return f"{v * 100:.2f}%"
    return f"{v:.2f}"


def _fmt_interval(iv: Mapping[str, Any] | None) -> str:
    if not iv:
        return "—"
    return f"{iv['estimate']:.2f} [{iv['low']:.2f}, {iv['high']:.2f}]"


def _diff_key(block: Mapping[str, Any]) -> str:
    return next((k for k in block["intervals"] if k.startswith("sharpe_vs_")), "sharpe_vs_buyhold")


def metrics_rows(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and one row of formatted cells per policy: the metrics, the Sharpe CI and the difference."""
    policies = report["policies"]
    diff_key = _diff_key(next(iter(policies.values()))) if policies else "sharpe_vs_buyhold"
    header = ["policy", *(_LABELS[k] for k in METRIC_COLUMNS), "Sharpe [95% CI]",
              f"ΔSharpe vs {diff_key.removeprefix('sharpe_vs_')} [95% CI]"]
    rows = []
    for name, block in policies.items():
        m, iv = block["metrics"], block["intervals"]
        rows.append([name, *(_fmt(k, m.get(k)) for k in METRIC_COLUMNS),
                     _fmt_interval(iv.get("sharpe")), _fmt_interval(iv.get(diff_key))])
    return header, rows


def memory_rows(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """``eval --memory on``: per graph policy and metric, without memory, with memory, and the difference."""
    rows = []
    for name, block in (report.get("memory_ablation") or {}).items():
        for k in METRIC_COLUMNS:
            rows.append([name, _LABELS[k], _fmt(k, block["off"].get(k)), _fmt(k, block["on"].get(k)),
                         _fmt(k, block["delta"].get(k))])
        rows.append([name, "ΔSharpe, with − without [95% CI]", "", "", _fmt_interval(block.get("sharpe_difference"))])
    return ["policy", "metric", "without memory", "with memory", "difference"], rows


def metrics_table(report: Mapping[str, Any]) -> Table:
    """The metrics as a rich ``Table`` for the CLI: one row per metric, one column per policy (a terminal fits
    a few policies better than 15 metrics side by side). Cells are ``Text``: no markup is interpreted."""
    header, rows = metrics_rows(report)
    table = Table(title="Eval metrics")
    table.add_column("metric", justify="left", no_wrap=True)
    for row in rows:
        table.add_column(Text(row[0]), justify="right", overflow="fold")
    for k, label in enumerate(header[1:], start=1):
        table.add_row(Text(label), *(Text(row[k]) for row in rows))
    return table


def metrics_text(report: Mapping[str, Any], width: int = 240) -> str:
    """The metrics table as plain text (no colour), for logs and ``--json``-less CLI output."""
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, markup=False).print(metrics_table(report))
    return buf.getvalue()


def _regime_rows(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["policy", *(f"{r}: Sharpe (days)" for r in REGIMES), *(f"{r}: return" for r in REGIMES),
              "unknown (days)"]
    rows = []
    for name, block in report["policies"].items():
        reg = block.get("regimes") or {}
        cells = [f"{_fmt('sharpe', reg.get(r, {}).get('sharpe'))} ({reg.get(r, {}).get('days', 0)})" for r in REGIMES]
        rows.append([name, *cells, *(_fmt("total_return", reg.get(r, {}).get("return")) for r in REGIMES),
                     str(reg.get("unknown", {}).get("days", 0))])
    return header, rows


# --- HTML ----------------------------------------------------------------------------------------------


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _color(i: int) -> str:
    """The same colour for a policy in every chart."""
    palette = qualitative.Plotly
    return palette[i % len(palette)]


def _equity_figure(runs: Sequence[PolicyRun]) -> go.Figure:
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.05,
                        subplot_titles=("Equity", "Drawdown"))
    for i, run in enumerate(runs):
        x, line = run.equity.index, {"color": _color(i)}
        fig.add_trace(go.Scatter(x=x, y=run.equity.to_numpy(), name=run.name, legendgroup=run.name, line=line),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=x, y=drawdown(run.equity).to_numpy(), name=run.name, legendgroup=run.name,
                                 showlegend=False, line=line), row=2, col=1)
    fig.update_yaxes(tickformat=".0%", row=2, col=1)
    fig.update_layout(height=650, hovermode="x unified", margin={"t": 40})
    return fig


def _exposure_figure(runs: Sequence[PolicyRun]) -> go.Figure:
    fig = go.Figure([go.Scatter(x=r.exposure.index, y=r.exposure.to_numpy(), name=r.name, line={"color": _color(i)})
                     for i, r in enumerate(runs)])
    fig.update_layout(title="Exposure (gross positions value / equity)", yaxis_tickformat=".0%", height=350)
    return fig


def _weights_figure(run: PolicyRun, top: int = 15) -> go.Figure:
    w = run.weights if run.weights is not None else pd.DataFrame(index=run.equity.index)
    order = w.abs().mean().sort_values(ascending=False).index
    shown, rest = list(order[:top]), list(order[top:])
    fig = go.Figure()
    for sym in shown:
        fig.add_trace(go.Scatter(x=w.index, y=w[sym].to_numpy(), name=str(sym), stackgroup="w"))
    if rest:
        fig.add_trace(go.Scatter(x=w.index, y=w[rest].sum(axis=1).to_numpy(), name="other", stackgroup="w"))
    fig.update_layout(title=f"Position weights: {run.name}", yaxis_tickformat=".0%", height=400)
    return fig


def _positions_policy(runs: Sequence[PolicyRun], chosen: str | None) -> PolicyRun | None:
    with_weights = [r for r in runs if r.weights is not None and not r.weights.empty]
    if chosen is not None:
        return next((r for r in with_weights if r.name == chosen), None)
    graph = [r for r in with_weights if r.name not in _BASELINE_NAMES]
    candidates = graph or with_weights
    return candidates[0] if candidates else None


def _trades_section(runs: Sequence[PolicyRun], max_trades: int) -> str:
    rows = sorted(((t.date, r.name, t) for r in runs for t in r.trades), key=lambda x: (x[0], x[1]))
    shown = rows[-max_trades:] if max_trades > 0 else []
    note = f"Showing the last {len(shown)} of {len(rows)} trades." if len(shown) < len(rows) else f"{len(rows)} trades."
    table = _html_table(["date", "policy", "symbol", "side", "quantity", "price", "fees"],
                        [[d.isoformat(), n, t.symbol, t.side, f"{t.quantity:.6g}", f"{t.price:.6g}", f"{t.fees:.2f}"]
                         for d, n, t in shown])
    return f"<p>{html.escape(note)}</p>{table}"


def _why_section(report: Mapping[str, Any]) -> str:
    """Per graph policy: fills and fees by cause, and the equity left in cash by cause (evals.attribution)."""
    parts = []
    for name, block in report["policies"].items():
        why = block.get("why")
        if not why:
            continue
        traded = [[r["cause"], r["fills"], f"{r['notional']:,.0f}", f"{r['fees']:,.2f}", f"{r['fee_share']:.0%}"]
                  for r in why["traded"]]
        idle = [[r["cause"], f"{r['share']:.1%}"] for r in why["not_invested"]]
        parts += [f"<h3>{html.escape(name)}</h3>",
                  _html_table(["why traded", "fills", "notional", "fees", "share of fees"], traded),
                  _html_table(["why not invested", "share of equity (average day)"], idle)]
    return "\n".join(parts) or "<p>No graph policy in this report.</p>"


def _figure_div(fig: go.Figure, div_id: str, first: bool) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=first, div_id=div_id)


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0;"
        "font-size:13px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}td{white-space:nowrap}th:first-child,"
        "td:first-child{text-align:left}th{background:#f3f3f3}pre{background:#f7f7f7;padding:1em;overflow:auto}")


def render_html(
    report: Mapping[str, Any],
    runs: Sequence[PolicyRun],
    *,
    positions_policy: str | None = None,
    max_trades: int = MAX_TRADES_SHOWN,
) -> str:
    """The self-contained HTML report (plotly.js inlined once; all text escaped)."""
    parts = [_figure_div(_equity_figure(runs), "equity-drawdown", first=True),
             _figure_div(_exposure_figure(runs), "exposure", first=False)]
    chosen = _positions_policy(runs, positions_policy)
    if chosen is not None:
        parts.append(_figure_div(_weights_figure(chosen), "weights", first=False))
    notes = list(report.get("notes", [])) + [f"{n}: {x}" for n, b in report["policies"].items() for x in b["notes"]]
    config = json.dumps(report.get("config", {}), sort_keys=True, indent=1, ensure_ascii=False)
    body = "\n".join([
        "<h1>tradeagent eval report</h1>",
        "<h2>Equity and drawdown</h2>", parts[0],
        "<h2>Metrics</h2>", _html_table(*metrics_rows(report)),
        *(["<h2>Memory on/off</h2>", _html_table(*memory_rows(report))] if report.get("memory_ablation") else []),
        "<h2>Regimes</h2>", _html_table(*_regime_rows(report)),
        "<h2>Positions</h2>", *parts[1:],
        "<h2>Trades</h2>", _trades_section(runs, max_trades),
        "<h2>Why it traded, why it was not invested</h2>", _why_section(report),
        "<h2>Notes</h2>", "<ul>" + "".join(f"<li>{html.escape(str(n))}</li>" for n in notes) + "</ul>",
        "<h2>Configuration</h2>", f"<pre>{html.escape(config)}</pre>",
    ])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tradeagent eval report</title>"
            f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n")
