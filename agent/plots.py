"""Charts people would rather look at than read: a symbol's price with its indicators, the paper book's equity.

Contract:
- ``price_figure(frame, title)`` takes OHLCV bars joined with ``tools.indicators.compute_indicators`` columns
  (already cut point-in-time by the caller) and draws four panels sharing the date axis: close with SMA
  20/50/200 and the Bollinger band; volume; RSI 14 with its 30/70 lines; MACD, signal and histogram.
- ``equity_figure(curve, fills, title)`` draws the equity curve with each fill marked (buys ▲, sells ▼) and,
  below it, the drawdown from the running peak in percent.
- ``save_png(fig, path)`` writes the figure and closes it; a path that cannot be written, or whose folder does
  not exist (none is created), is a ``UserError``.

Deliberate decisions:
- Figures are built with matplotlib's object API (``Figure``) and never through pyplot: no GUI backend is
  chosen, no window can open (the product runs on servers and in schedulers with no display), and charts
  drawn by the scheduler, the chat and the CLI in one process share no global state.
- Nothing here computes an indicator or a P&L: the charts draw what ``tools`` and the ledger computed, so
  a chart can never disagree with ``data show --json`` or ``portfolio --json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import matplotlib.dates as mdates
import pandas as pd
from matplotlib.figure import Figure

from agent.cli_common import UserError, plot_path
from portfolio.models import Fill

_UP, _DOWN = "#1a7f37", "#cf222e"


def price_figure(frame: pd.DataFrame, title: str) -> Figure:
    """Close, moving averages and Bollinger band; volume; RSI; MACD (see the module contract)."""
    if frame.empty:
        raise UserError("nothing to plot: no bars")
    fig = Figure(figsize=(11, 8.5), layout="constrained")
    price, volume, rsi, macd = fig.subplots(4, 1, sharex=True, height_ratios=[3.2, 0.9, 1.1, 1.1])
    x = frame.index
    price.plot(x, frame["close"], color="black", linewidth=1.1, label="close")
    for col, colour in (("sma_20", "#0969da"), ("sma_50", "#bf8700"), ("sma_200", "#8250df")):
        if col in frame and frame[col].notna().any():
            price.plot(x, frame[col], color=colour, linewidth=0.9, label=col.replace("_", " ").upper())
    if {"bb_lower", "bb_upper"} <= set(frame.columns):
        price.fill_between(x, frame["bb_lower"], frame["bb_upper"], color="#0969da", alpha=0.08,
                           label="Bollinger 20/2")  # fmt: skip
    price.set_title(title, loc="left", fontsize=11)
    price.legend(loc="upper left", fontsize=8, ncols=5, frameon=False)
    price.grid(alpha=0.3)

    up = frame["close"].diff().fillna(0) >= 0
    volume.bar(x, frame["volume"], color=[_UP if u else _DOWN for u in up], width=1.0, alpha=0.6)
    volume.set_ylabel("volume", fontsize=8)
    volume.grid(alpha=0.3)

    if "rsi_14" in frame:
        rsi.plot(x, frame["rsi_14"], color="#6e7781", linewidth=0.9)
        for level in (30, 70):
            rsi.axhline(level, color=_DOWN if level == 70 else _UP, linewidth=0.7, linestyle="--")
        rsi.set_ylim(0, 100)
    rsi.set_ylabel("RSI 14", fontsize=8)
    rsi.grid(alpha=0.3)

    if {"macd", "macd_signal", "macd_hist"} <= set(frame.columns):
        hist = frame["macd_hist"]
        macd.bar(x, hist, color=[_UP if v >= 0 else _DOWN for v in hist.fillna(0)], width=1.0, alpha=0.5)
        macd.plot(x, frame["macd"], color="#0969da", linewidth=0.9, label="MACD 12/26")
        macd.plot(x, frame["macd_signal"], color="#bf8700", linewidth=0.9, label="signal 9")
        macd.legend(loc="upper left", fontsize=8, ncols=2, frameon=False)
    macd.set_ylabel("MACD", fontsize=8)
    macd.grid(alpha=0.3)
    macd.xaxis.set_major_formatter(mdates.ConciseDateFormatter(macd.xaxis.get_major_locator()))
    return fig


def equity_figure(curve: Sequence[tuple[date, float]], fills: Sequence[Fill], title: str) -> Figure:
    """The equity curve with fills marked, and the drawdown from the running peak below it."""
    if not curve:
        raise UserError("nothing to plot: the ledger has no equity marks yet (run `tradeagent daily` first)")
    equity = pd.Series([v for _, v in curve], index=pd.to_datetime([d for d, _ in curve]), name="equity")
    drawdown = (equity / equity.cummax() - 1.0) * 100.0
    fig = Figure(figsize=(11, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot(equity.index, equity.values, color="black", linewidth=1.2, drawstyle="steps-post", label="equity")
    for side, marker, colour in (("buy", "^", _UP), ("sell", "v", _DOWN)):
        days = pd.to_datetime(sorted({f.fill_date for f in fills if f.side == side}))
        days = days[days.isin(equity.index)]
        if len(days):
            top.scatter(days, equity.loc[days], marker=marker, color=colour, s=36, zorder=3, label=f"{side} fill")
    top.set_title(title, loc="left", fontsize=11)
    top.legend(loc="upper left", fontsize=8, frameon=False)
    top.grid(alpha=0.3)
    bottom.fill_between(drawdown.index, drawdown.values, 0.0, color=_DOWN, alpha=0.3, step="post")
    bottom.set_ylabel("drawdown %", fontsize=8)
    bottom.grid(alpha=0.3)
    bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(bottom.xaxis.get_major_locator()))
    return fig


def save_png(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (its folder must exist); an unwritable path is one clear error."""
    path = plot_path(path)
    try:
        fig.savefig(path, format="png", dpi=110)
    except OSError as exc:
        raise UserError(f"cannot write the chart to {path}: {exc.strerror or exc}") from None
    return path
