"""Benchmark policies for the eval report: ``buyhold``, ``equalweight`` and ``holdall``.

Contract: ``run_baseline(name, bars, start, end, cash=…, fees=…)`` simulates one benchmark on the same
daily bars and the same fee model as the paper broker, without the risk guard, and returns a
``BaselineResult`` (equity, positions value, per-symbol holdings value, trades, decisions, delistings),
which ``to_policy_run()`` turns into the report's ``PolicyRun``.

- ``bars``: symbol → OHLCV DataFrame (columns ``open``, ``close`` at least; ``DatetimeIndex``), all in ONE
  currency: the runner converts foreign instruments to the base currency beforehand, with a ``valuation_close``
  column (see Valuation below) computed on the instrument's own closes.
- ``buyhold``: equal weight of the equity at the first open, never rebalanced.
- ``equalweight``: equal weight at the first open, then rebalanced to equal weights at the open of the
  first session of each month.
- ``holdall``: cash, never trades.

Fills (as ``portfolio.broker.PaperBroker``): a decision reads session D's close and fills at the next
session's open; a buy pays ``open × (1 + slippage)``, a sell receives ``open × (1 - slippage)``, and the
commission is ``commission_bps`` of the traded value (the trade's ``fees``). Sells fill before buys; when cash
cannot pay the day's buys (fees, an opening gap) they are scaled down together, so cash never goes negative.
Quantities are fractional (the paper broker's too); long only.

Deliberate decisions:
- Sessions are the union of all instruments' bar dates in ``[start, end]``; an instrument is valued at its
  last close on a session where it has no bar. A rebalance sizes targets on the decision day's close (equity
  and prices known then), and fills them at the next open (buys scaled to the cash there).
- Different calendars: an instrument without a bar on the fill session fills at its own next open (the
  order waits, as the broker's pending orders do), unless the next rebalance comes first (superseded).
- Listing: an instrument takes part from the first rebalance whose decision session is on or after its
  first bar; ``buyhold`` never rebalances, so one listed after the first decision never joins (noted).
- Delisting, point-in-time as the graph policies' (``agent.day.close_delisted``): an instrument held with no
  bar for ``delist_after`` sessions of the universe (``DELIST_AFTER_SESSIONS``) is sold at its last close
  (same slippage and commission) on that session, the cash stays idle until the next rebalance, and
  ``delistings`` lists it. Nothing after the session is read: a series that comes back after a long pause
  is sold at the pause and may be bought again by a later rebalance (``equalweight``). A rebalance counts an
  instrument only while it has had a bar within the last ``delist_after`` sessions.
- Valuation (equity, holdings, a rebalance's sizing) is at the valuation close, as the graph policies' ledger:
  ``tools.validation.valuation_rows``, the day's close unless the validation gate's jump test refuses it (then
  the close the previous bar was valued at). A one-day bad print never values the book, although the
  benchmarks do not use the gate for trading. A delisting sells at the last valuation close too (a series that
  ends on a refused ×50 print is sold at the close before it).
- Vectorised: holdings change only on rebalance, fill and delisting sessions; the loop runs over those
  events with numpy operations across instruments, and the daily valuation is one cumulative sum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from agent.day import DELIST_AFTER_SESSIONS
from evals.metrics import exposure_series, realised_pnls
from evals.models import PolicyRun, Trade
from tools.validation import valuation_closes

BASELINES = ("buyhold", "equalweight", "holdall")
BENCHMARK_NOTE = "benchmarks (buyhold, equalweight, holdall) use the same bars and fees as the paper broker but not the risk guard"


@dataclass(frozen=True)
class Fees:
    """The paper broker's defaults: 10 bps commission on traded value, 5 bps slippage on the open."""

    commission_bps: float = 10.0
    slippage_bps: float = 5.0

    def __post_init__(self) -> None:
        for name in ("commission_bps", "slippage_bps"):
            bps = getattr(self, name)
            if not math.isfinite(bps) or not 0 <= bps < 10_000:
                raise ValueError(f"{name} must be in [0, 10000), got {bps}")


@dataclass(frozen=True, slots=True)
class Delisting:
    """A held instrument with no bar for ``delist_after`` sessions: ``quantity`` sold at its last valuation close
    ``price``."""

    symbol: str
    date: date
    price: float
    quantity: float


@dataclass(frozen=True)
class BaselineResult:
    name: str
    equity: pd.Series  # equity at each session's close
    positions_value: pd.Series  # market value of all positions at each close
    holdings_value: pd.DataFrame  # session × symbol market value
    trades: tuple[Trade, ...]
    decisions: tuple[dict[str, Any], ...]
    delistings: tuple[Delisting, ...]
    trade_pnls: tuple[float, ...]  # realised per closing fill; open positions closed at the last close
    notes: tuple[str, ...] = field(default=())

    def to_policy_run(self) -> PolicyRun:
        eq = self.equity.to_numpy()
        weights = self.holdings_value.div(np.where(eq > 0, eq, np.nan), axis=0).fillna(0.0)
        exposure = exposure_series(self.positions_value, self.equity)
        return PolicyRun(name=self.name, equity=self.equity, exposure=exposure, trades=self.trades,
                         decisions=self.decisions, weights=weights, trade_pnls=self.trade_pnls,
                         notes=(BENCHMARK_NOTE, *self.notes))


# --- the panel: bars as session × symbol arrays --------------------------------------------------------


@dataclass(frozen=True)
class _Panel:
    sessions: pd.DatetimeIndex
    symbols: list[str]
    open: np.ndarray  # T × N, NaN without a usable open
    close: np.ndarray  # T × N, NaN without a bar
    value_price: np.ndarray  # T × N, the last valuation close up to each session, 0 before the first bar
    first: np.ndarray  # N, session index of the first bar (T if none)
    last: np.ndarray  # N, session index of the last bar (-1 if none)
    bar_row: np.ndarray  # T × N, session index of the last bar up to each session (-1 before the first)
    delist_after: int  # sessions without a bar after which a position is sold at its last close


def _as_timestamp(d: date | str | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(d)
    return ts.tz_localize(None) if ts.tzinfo is not None else ts


def _index_ns(df: pd.DataFrame, symbol: str) -> np.ndarray:
    if not isinstance(df.index, pd.DatetimeIndex):
        raise ValueError(f"{symbol}: bars need a DatetimeIndex")
    missing = {"open", "close"} - set(df.columns)
    if missing:
        raise ValueError(f"{symbol}: bars lack columns {sorted(missing)}")
    idx = df.index.tz_localize(None) if df.index.tz is not None else df.index
    return idx.as_unit("ns").asi8


def _positive(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype="float64")
    return np.where(np.isfinite(x) & (x > 0), x, np.nan)


def _valuation_closes(df: pd.DataFrame, closes: np.ndarray) -> np.ndarray:
    """Each bar's valuation close: the ``valuation_close`` column when given (the runner's, for bars converted to
    the base currency: the jump test reads the instrument's own prices), else ``tools.validation.valuation_rows``
    of ``closes`` (on the bars before the window too: it is point-in-time); a bar with no usable close before it
    keeps its own."""
    if "valuation_close" in df.columns:
        return df["valuation_close"].to_numpy(dtype="float64")
    return valuation_closes(closes, df.index, missing=closes)


def _panel(bars: Mapping[str, pd.DataFrame], start: pd.Timestamp, end: pd.Timestamp, delist_after: int) -> _Panel:
    symbols = sorted(bars)
    lo, hi = start.as_unit("ns").value, end.as_unit("ns").value
    cut: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for s in symbols:
        ns = _index_ns(bars[s], s)
        keep = (ns >= lo) & (ns <= hi)
        raw = bars[s]["close"].to_numpy(dtype="float64")
        valued = _valuation_closes(bars[s], raw)[keep]
        o, c = _positive(bars[s]["open"].to_numpy()[keep]), _positive(raw[keep])
        has_bar = np.isfinite(c)
        cut.append((ns[keep][has_bar], o[has_bar], c[has_bar], valued[has_bar]))
    all_ns = np.unique(np.concatenate([x[0] for x in cut])) if cut else np.array([], dtype="int64")
    t, n = len(all_ns), len(symbols)
    if t == 0:
        raise ValueError(f"no bars between {start.date()} and {end.date()}")
    op, cl, vc = np.full((t, n), np.nan), np.full((t, n), np.nan), np.full((t, n), np.nan)
    for j, (ns, o, c, v) in enumerate(cut):
        rows = np.searchsorted(all_ns, ns)
        op[rows, j], cl[rows, j], vc[rows, j] = o, c, v
    has = np.isfinite(cl)
    rows = np.arange(t)[:, None]
    first = np.where(has.any(axis=0), np.argmax(has, axis=0), t)
    last = np.where(has.any(axis=0), t - 1 - np.argmax(has[::-1], axis=0), -1)
    sessions = pd.DatetimeIndex(all_ns.astype("datetime64[ns]"), name="date")
    # forward-filled valuation close, 0 before the first bar (a delisted position is sold: nothing left to value)
    pos = np.maximum.accumulate(np.where(has, rows, -1), axis=0)
    value_price = np.where(pos >= 0, np.nan_to_num(vc[np.maximum(pos, 0), np.arange(n)]), 0.0)
    return _Panel(sessions, symbols, op, cl, value_price, first, last, pos, delist_after)


# --- the simulation ------------------------------------------------------------------------------------


def _rebalance_days(name: str, sessions: pd.DatetimeIndex) -> list[int]:
    if name == "holdall" or len(sessions) < 2:
        return []
    if name == "buyhold":
        return [1]
    month = sessions.year.to_numpy() * 12 + sessions.month.to_numpy()
    firsts = np.flatnonzero(np.diff(month) != 0) + 1
    return sorted({1, *firsts[firsts >= 1].tolist()})


def _next_open(op: np.ndarray) -> np.ndarray:
    """T × N: the first session ≥ t with a usable open (T if none)."""
    t = op.shape[0]
    idx = np.where(np.isfinite(op), np.arange(t)[:, None], t)
    return np.minimum.accumulate(idx[::-1], axis=0)[::-1]


class _Book:
    """Holdings, cash and the event log of one simulation."""

    def __init__(self, panel: _Panel, cash: float, fees: Fees) -> None:
        t, n = panel.open.shape
        self.p, self.cash = panel, float(cash)
        self.q = np.zeros(n)
        self.dq, self.dcash = np.zeros((t, n)), np.zeros(t)
        self.c, self.s = fees.commission_bps / 1e4, fees.slippage_bps / 1e4
        self.trades: list[Trade] = []
        self.decisions: list[dict[str, Any]] = []
        self.delistings: list[Delisting] = []

    def _record(self, day: int, cols: np.ndarray, side: str, qty: np.ndarray, price: np.ndarray) -> None:
        fee = qty * price * self.c
        sign = 1.0 if side == "buy" else -1.0
        self.q[cols] += sign * qty
        self.dq[day, cols] += sign * qty
        flow = float(np.sum(-sign * qty * price - fee))
        self.cash += flow
        self.dcash[day] += flow
        d = self.p.sessions[day].date()
        sym = self.p.symbols
        self.trades.extend(
            Trade(d, sym[j], side, float(x), float(px), float(f))  # type: ignore[arg-type]
            for j, x, px, f in zip(cols.tolist(), qty, price, fee, strict=True)
        )

    def fill(self, day: int, cols: np.ndarray, delta: np.ndarray) -> None:
        """Orders ``delta`` (signed units) for ``cols`` at ``day``'s open: sells first, buys scaled to cash."""
        o = self.p.open[day, cols]
        sells = delta < 0
        if sells.any():
            sc = cols[sells]
            qty = np.minimum(-delta[sells], self.q[sc])
            ok = qty > 0
            self._record(day, sc[ok], "sell", qty[ok], o[sells][ok] * (1.0 - self.s))
        buys = delta > 0
        if buys.any():
            price = o[buys] * (1.0 + self.s)
            cost = float(np.sum(delta[buys] * price * (1.0 + self.c)))
            scale = min(1.0, self.cash / cost * (1.0 - 1e-12)) if cost > 0 else 0.0
            if scale > 0:
                self._record(day, cols[buys], "buy", delta[buys] * scale, price)

    def delist(self, day: int, j: int) -> None:
        """Sell what is held of ``j`` at its last valuation close (never a refused print): it has had no bar for
        ``delist_after`` sessions."""
        held = float(self.q[j])
        if held <= 0:
            return
        last = int(self.p.bar_row[day, j])
        price = float(self.p.value_price[last, j])
        d = self.p.sessions[day].date()
        self._record(day, np.array([j]), "sell", np.array([held]), np.array([price * (1.0 - self.s)]))
        self.decisions.append({"date": d, "symbol": self.p.symbols[j], "action": "sell", "quantity": held,
                               "reason": f"delisted: no bar since {self.p.sessions[last].date()} "
                                         f"({self.p.delist_after} sessions); sold at the last valuation close"})
        self.delistings.append(Delisting(self.p.symbols[j], d, price, held))


def _targets(book: _Book, t_k: int) -> np.ndarray:
    """Equal-weight target units for the fill at ``t_k``'s open, sized on decision day ``t_k - 1``'s close.

    Only what is known at the decision is used (the point-in-time test replaces every later bar with garbage
    and finds the same decisions); the fill then pays the open, and buys are scaled to the cash there.
    """
    p, d = book.p, t_k - 1
    alive = (p.first <= d) & (p.bar_row[d] >= 0) & (d - p.bar_row[d] < p.delist_after)
    mark = p.value_price[d]
    equity = book.cash + float(np.sum(book.q * np.where(book.q != 0, mark, 0.0)))
    target = np.zeros_like(book.q)
    if alive.any() and equity > 0:
        target[alive] = equity / alive.sum() / mark[alive]
    return target


def _simulate(name: str, panel: _Panel, cash: float, fees: Fees) -> _Book:
    book = _Book(panel, cash, fees)
    t = len(panel.sessions)
    rebalances = _rebalance_days(name, panel.sessions)
    next_open = _next_open(panel.open) if rebalances else np.empty((0, 0), dtype=int)
    delist_at: dict[int, list[int]] = {}  # the session a bar has been missing for delist_after sessions
    gone = (panel.bar_row >= 0) & (np.arange(t)[:, None] - panel.bar_row == panel.delist_after)
    for day, j in zip(*np.nonzero(gone), strict=True):
        delist_at.setdefault(int(day), []).append(int(j))
    bounds = [*rebalances, t]
    for day in sorted(d for d in delist_at if d < bounds[0]):  # before any trade: nothing held
        for j in delist_at[day]:
            book.delist(day, j)
    for k, t_k in enumerate(rebalances):
        t_next = bounds[k + 1]
        delta = _targets(book, t_k) - book.q
        cols = np.flatnonzero(np.abs(delta) > _ZERO_UNITS)
        when = next_open[t_k, cols]
        _log_decisions(book, t_k - 1, cols, delta[cols], "initial" if k == 0 else "monthly rebalance")
        events = sorted({*when[when < t_next].tolist(), *(d for d in delist_at if t_k <= d < t_next)})
        for day in events:
            due = when == day
            if due.any():
                book.fill(day, cols[due], delta[cols[due]])
            for j in delist_at.get(day, []):
                book.delist(day, j)
    return book


_ZERO_UNITS = 1e-12


def _log_decisions(book: _Book, day: int, cols: np.ndarray, delta: np.ndarray, reason: str) -> None:
    d = book.p.sessions[day].date()
    sym = book.p.symbols
    book.decisions.extend(
        {"date": d, "symbol": sym[j], "action": "buy" if x > 0 else "sell", "quantity": abs(float(x)), "reason": reason}
        for j, x in zip(cols.tolist(), delta.tolist(), strict=True)
    )


def _notes(name: str, panel: _Panel) -> list[str]:
    notes = []
    never = [panel.symbols[j] for j in np.flatnonzero(panel.last < 0)]
    if never:
        notes.append(f"{name}: no bars in the window, never traded: {', '.join(never)}")
    if name == "buyhold" and len(panel.sessions) >= 2:
        late = [panel.symbols[j] for j in np.flatnonzero((panel.first > 0) & (panel.last >= 0))]
        if late:
            notes.append(f"buyhold: listed after the first decision, never bought: {', '.join(late)}")
    return notes


def run_baseline(
    name: str,
    bars: Mapping[str, pd.DataFrame],
    start: date | str | pd.Timestamp,
    end: date | str | pd.Timestamp,
    *,
    cash: float = 100_000.0,
    fees: Fees | None = None,
    delist_after: int = DELIST_AFTER_SESSIONS,
) -> BaselineResult:
    """Simulate benchmark ``name`` (one of ``BASELINES``) on ``bars`` between ``start`` and ``end`` inclusive."""
    _check_name(name)
    return _run(name, _checked_panel(bars, start, end, cash, delist_after), cash, fees or Fees())


def run_baselines(
    bars: Mapping[str, pd.DataFrame],
    start: date | str | pd.Timestamp,
    end: date | str | pd.Timestamp,
    *,
    names: Sequence[str] = BASELINES,
    cash: float = 100_000.0,
    fees: Fees | None = None,
    delist_after: int = DELIST_AFTER_SESSIONS,
) -> dict[str, BaselineResult]:
    """Every benchmark in ``names`` on the same bars (built into arrays once), keyed by name."""
    for name in names:
        _check_name(name)
    panel = _checked_panel(bars, start, end, cash, delist_after)
    return {n: _run(n, panel, cash, fees or Fees()) for n in names}


def _check_name(name: str) -> None:
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")


def _checked_panel(
    bars: Mapping[str, pd.DataFrame], start: date | str | pd.Timestamp, end: date | str | pd.Timestamp,
    cash: float, delist_after: int,
) -> _Panel:
    if not math.isfinite(cash) or cash <= 0:
        raise ValueError(f"starting cash must be positive, got {cash}")
    lo, hi = _as_timestamp(start), _as_timestamp(end)
    if lo > hi:
        raise ValueError(f"start {lo.date()} is after end {hi.date()}")
    return _panel(bars, lo, hi, delist_after)


def _run(name: str, panel: _Panel, cash: float, fees: Fees) -> BaselineResult:
    book = _simulate(name, panel, cash, fees)
    q = np.cumsum(book.dq, axis=0)
    holdings = q * panel.value_price
    positions = holdings.sum(axis=1)
    equity = cash + np.cumsum(book.dcash) + positions
    final = {s: float(panel.value_price[-1, j]) for j, s in enumerate(panel.symbols)}
    return BaselineResult(
        name=name,
        equity=pd.Series(equity, index=panel.sessions, name="equity"),
        positions_value=pd.Series(positions, index=panel.sessions, name="positions_value"),
        holdings_value=pd.DataFrame(holdings, index=panel.sessions, columns=panel.symbols),
        trades=tuple(book.trades),
        decisions=tuple(book.decisions),
        delistings=tuple(book.delistings),
        trade_pnls=tuple(realised_pnls(book.trades, final)),
        notes=tuple(_notes(name, panel)),
    )
