"""Performance metrics of a daily equity curve, defined once for every policy (shared/DESIGN.md).

Contract: every metric takes the daily equity series (a pandas Series indexed by session date, base
currency, one value per session close) and returns a plain ``float``/``int`` or ``None`` — never NaN or
infinity, so the report's JSON stays valid. Functions are pure and vectorised.

Definitions (252 sessions a year, risk-free rate 0; ``r`` = simple daily returns ``e[t]/e[t-1] - 1``, ``n`` =
number of returns = sessions - 1):
- total_return = e[-1]/e[0] - 1.
- cagr = (e[-1]/e[0]) ** (252/n) - 1 (years counted in sessions, not calendar days).
- volatility = std(r, ddof=1)·√252.
- sharpe = mean(r)/std(r, ddof=1)·√252.
- sortino = mean(r)/DD·√252 with the downside deviation DD = sqrt(mean(min(r, 0)²)) over ALL days
  (days without a loss count as 0 in the mean; the common definition, as in quantstats/empyrical).
- max_drawdown = min(e/cummax(e) - 1) ≤ 0.
- max_drawdown_days = the longest drawdown in sessions, from the peak's session to the session that
  regains the peak, or to the last session while still under water.
- calmar = cagr/|max_drawdown|.
- win_rate and profit_factor on the realised P&L of closed trades when the caller gives them (see
  ``realised_pnls``), else on daily returns. Zero values are neither wins nor losses: win_rate = wins /
  (wins + losses); profit_factor = sum of gains / |sum of losses|.
- exposure = mean of the exposure series (gross positions value / equity at each close).
- trades = number of fills.
- turnover = traded notional / mean equity / years, years = n/252: the number of times a year the average
  equity was traded (a buy and its later sell count twice).

Degenerate inputs (the rule for each, never NaN/inf):
- fewer than two sessions (n = 0): cagr, volatility, sharpe, sortino, calmar, turnover are None;
  total_return, max_drawdown, max_drawdown_days are 0. volatility and sharpe also need n ≥ 2.
- zero standard deviation (a flat curve, e.g. all cash): volatility 0.0, sharpe None.
- no losing day: sortino None. No drawdown: calmar None. No losses: profit_factor None.
  No wins and no losses: win_rate None.
- an equity value ≤ 0 before the last session (a wipe-out): returns are undefined after it, so every
  return-based metric is None; total_return and drawdowns are still computed.

Market regimes (``market_regimes``): from a benchmark close series, point-in-time (day t's label uses closes
up to t only): SMA = the 200-session simple moving average; "bull" when close > SMA and the SMA is above
its value 20 sessions earlier, "bear" when close < SMA and the SMA is below it, "sideways" otherwise,
"unknown" until 220 closes exist. A daily return from t-1 to t belongs to the regime labelled at t-1 (the
regime known when the day's positions were held).

Intervals: stationary block bootstrap (``arch``), block length from ``optimal_block_length`` (Politis-White),
seeded, percentile interval. The Sharpe difference against a benchmark resamples the two return series
with the same indices (paired), on their common dates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from arch.bootstrap import StationaryBootstrap, optimal_block_length

from evals.models import Trade

TRADING_DAYS = 252
REGIMES = ("bull", "bear", "sideways")
MIN_BOOTSTRAP_RETURNS = 30  # below this a block bootstrap interval says nothing: None
_ZERO_STD = 1e-12  # a daily std below this is float noise on a flat curve
_ZERO_QTY = 1e-9

Number = float | int | None


# --- returns -------------------------------------------------------------------------------------------


def daily_returns(equity: pd.Series) -> pd.Series | None:
    """Simple daily returns (index: the later session), or None when an equity value ≤ 0 precedes one."""
    e = equity.to_numpy(dtype="float64")
    if (e[:-1] <= 0).any():
        return None
    return pd.Series(e[1:] / e[:-1] - 1.0, index=equity.index[1:], name="return")


def _arr(equity: pd.Series) -> np.ndarray | None:
    r = daily_returns(equity)
    return None if r is None else r.to_numpy()


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


# --- return-based metrics ------------------------------------------------------------------------------


def total_return(equity: pd.Series) -> float | None:
    e0, e1 = float(equity.iloc[0]), float(equity.iloc[-1])
    return None if e0 <= 0 else _finite(e1 / e0 - 1.0)


def cagr(equity: pd.Series) -> float | None:
    n = len(equity) - 1
    e0, e1 = float(equity.iloc[0]), float(equity.iloc[-1])
    if n < 1 or e0 <= 0 or e1 < 0 or _arr(equity) is None:
        return None
    return _finite((e1 / e0) ** (TRADING_DAYS / n) - 1.0)


def volatility(equity: pd.Series) -> float | None:
    r = _arr(equity)
    if r is None or len(r) < 2:
        return None
    std = float(r.std(ddof=1))
    return 0.0 if std < _ZERO_STD else _finite(std * math.sqrt(TRADING_DAYS))


def _sharpe(r: np.ndarray) -> float:
    """Sharpe of a return array; NaN when undefined (for the bootstrap, which drops NaN draws)."""
    if len(r) < 2:
        return math.nan
    std = float(r.std(ddof=1))
    return math.nan if std < _ZERO_STD else float(r.mean()) / std * math.sqrt(TRADING_DAYS)


def sharpe(equity: pd.Series) -> float | None:
    r = _arr(equity)
    return None if r is None else _finite(_sharpe(r))


def sortino(equity: pd.Series) -> float | None:
    r = _arr(equity)
    if r is None or len(r) == 0:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    if downside < _ZERO_STD:
        return None
    return _finite(float(r.mean()) / downside * math.sqrt(TRADING_DAYS))


# --- drawdowns -----------------------------------------------------------------------------------------


def drawdown(equity: pd.Series) -> pd.Series:
    """Drawdown at each close: equity / running peak - 1 (≤ 0)."""
    e = equity.to_numpy(dtype="float64")
    peak = np.maximum.accumulate(e)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, e / peak - 1.0, 0.0)
    return pd.Series(dd, index=equity.index, name="drawdown")


def max_drawdown(equity: pd.Series) -> float:
    return float(min(0.0, drawdown(equity).min()))


def max_drawdown_days(equity: pd.Series) -> int:
    """Longest drawdown in sessions: peak → recovery session, or peak → last session if never regained."""
    e = equity.to_numpy(dtype="float64")
    under = e < np.maximum.accumulate(e)
    if not under.any():
        return 0
    edges = np.diff(np.concatenate([[0], under.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # ends: first session above water
    recovered = ends < len(e)
    # peak = start - 1; recovered: ends - (start - 1); still under water: (len - 1) - (start - 1)
    lengths = np.where(recovered, ends - starts + 1, len(e) - starts)
    return int(lengths.max())


def calmar(equity: pd.Series) -> float | None:
    c, mdd = cagr(equity), max_drawdown(equity)
    return None if c is None or mdd == 0 else _finite(c / abs(mdd))


# --- trade statistics ----------------------------------------------------------------------------------


def win_rate(values: Sequence[float] | np.ndarray) -> float | None:
    """Wins / (wins + losses) of trade P&Ls or daily returns; zeros count as neither."""
    v = np.asarray(values, dtype="float64")
    wins, losses = int((v > 0).sum()), int((v < 0).sum())
    return None if wins + losses == 0 else wins / (wins + losses)


def profit_factor(values: Sequence[float] | np.ndarray) -> float | None:
    """Sum of gains / |sum of losses|; None without a loss."""
    v = np.asarray(values, dtype="float64")
    loss = float(-v[v < 0].sum())
    return None if loss <= 0 else _finite(float(v[v > 0].sum()) / loss)


def realised_pnls(trades: Sequence[Trade], final_prices: Mapping[str, float] | None = None) -> list[float]:
    """Realised P&L of each closing fill (average-cost method), in trade order.

    Fees are folded into the per-unit price (a buy costs ``price + fees/qty``, a sell yields
    ``price - fees/qty``), so each closed trade carries its own and its share of the opening fees. A fill that
    crosses zero closes the old position first and opens the rest. With ``final_prices``, positions still
    open at the end count as closed at that price, without fees (one P&L per symbol). A loop, not numpy:
    the average cost is path-dependent (about 0.1 s per 100,000 fills).
    """
    book: dict[str, tuple[float, float]] = {}  # symbol -> (signed quantity, average effective price)
    pnls: list[float] = []
    for t in sorted(trades, key=lambda t: t.date):  # stable: same-day order kept
        signed = t.quantity if t.side == "buy" else -t.quantity
        eff = t.price + t.fees / t.quantity if t.side == "buy" else t.price - t.fees / t.quantity
        qty, avg = book.get(t.symbol, (0.0, 0.0))
        if abs(qty) > _ZERO_QTY and qty * signed < 0:  # reduces (or flips) the position
            closed = min(abs(signed), abs(qty))
            pnls.append(closed * (eff - avg) * math.copysign(1.0, qty))
            qty += math.copysign(closed, signed)
            signed -= math.copysign(closed, signed)
        if abs(signed) > _ZERO_QTY:
            new_qty = qty + signed
            avg = (abs(qty) * avg + abs(signed) * eff) / abs(new_qty) if abs(qty) > _ZERO_QTY else eff
            qty = new_qty
        book[t.symbol] = (qty, avg) if abs(qty) > _ZERO_QTY else (0.0, 0.0)
    for symbol, (qty, avg) in book.items():
        price = (final_prices or {}).get(symbol)
        if abs(qty) > _ZERO_QTY and price is not None and math.isfinite(price):
            pnls.append(qty * (price - avg))
    return pnls


def exposure_series(positions_value: pd.Series, equity: pd.Series) -> pd.Series:
    """Gross exposure at each close: |positions value| / equity (0 where equity ≤ 0), aligned on ``equity``."""
    pv = positions_value.reindex(equity.index).fillna(0.0).abs().to_numpy(dtype="float64")
    e = equity.to_numpy(dtype="float64")
    out = np.divide(pv, e, out=np.zeros_like(e), where=e > 0)
    return pd.Series(out, index=equity.index, name="exposure")


def turnover(equity: pd.Series, traded_notional: float) -> float | None:
    """Traded notional / mean equity / years (years = returns / 252)."""
    n = len(equity) - 1
    mean_equity = float(equity.mean())
    if n < 1 or mean_equity <= 0:
        return None
    return _finite(traded_notional / mean_equity / (n / TRADING_DAYS))


# --- all metrics of one run ----------------------------------------------------------------------------


def compute_metrics(
    equity: pd.Series,
    *,
    exposure: pd.Series | None = None,
    trades: Sequence[Trade] = (),
    trade_pnls: Sequence[float] | None = None,
) -> dict[str, Number]:
    """The report's metric block (the DESIGN.md keys). ``trade_pnls`` None: win rate etc. on daily returns."""
    r = daily_returns(equity)
    basis = trade_pnls if trade_pnls is not None else ([] if r is None else r.to_numpy())
    return {
        "total_return": total_return(equity),
        "cagr": cagr(equity),
        "volatility": volatility(equity),
        "sharpe": sharpe(equity),
        "sortino": sortino(equity),
        "calmar": calmar(equity),
        "max_drawdown": max_drawdown(equity),
        "max_drawdown_days": max_drawdown_days(equity),
        "win_rate": win_rate(basis),
        "profit_factor": profit_factor(basis),
        "exposure": None if exposure is None or exposure.empty else _finite(float(exposure.mean())),
        "trades": len(trades),
        "turnover": turnover(equity, float(sum(t.notional for t in trades))),
    }


# --- market regimes ------------------------------------------------------------------------------------


def market_regimes(close: pd.Series, *, window: int = 200, slope_days: int = 20) -> pd.Series:
    """Point-in-time regime label of each session of ``close``: bull / bear / sideways / unknown."""
    sma = close.rolling(window, min_periods=window).mean()
    before = sma.shift(slope_days)
    bull = (close > sma) & (sma > before)
    bear = (close < sma) & (sma < before)
    labels = np.select([bull.to_numpy(), bear.to_numpy()], ["bull", "bear"], default="sideways").astype(object)
    labels[before.isna().to_numpy()] = "unknown"
    return pd.Series(labels, index=close.index, name="regime")


def sharpe_by_regime(equity: pd.Series, regimes: pd.Series) -> dict[str, dict[str, Number]]:
    """Per regime: sessions, Sharpe and compounded return of the daily returns held in it.

    ``regimes`` may come from another calendar (a benchmark's): each equity session takes the last label
    known at its date (forward fill never looks ahead); a return from t-1 to t takes t-1's label.
    """
    r = daily_returns(equity)
    aligned = regimes.reindex(equity.index.union(regimes.index)).ffill().reindex(equity.index)
    held = aligned.shift(1).iloc[1:].fillna("unknown").to_numpy()
    out: dict[str, dict[str, Number]] = {}
    for name in (*REGIMES, "unknown"):
        if r is None:
            out[name] = {"days": int((held == name).sum()), "sharpe": None, "return": None}
            continue
        x = r.to_numpy()[held == name]
        out[name] = {
            "days": len(x),
            "sharpe": _finite(_sharpe(x)),
            "return": _finite(float(np.prod(1.0 + x) - 1.0)) if len(x) else None,
        }
    return out


# --- bootstrap intervals -------------------------------------------------------------------------------


def _block_length(data: np.ndarray) -> float:
    opt = optimal_block_length(data)["stationary"].to_numpy(dtype="float64")
    opt = opt[np.isfinite(opt)]
    return max(1.0, float(opt.mean())) if len(opt) else 1.0


def _percentiles(draws: np.ndarray, level: float) -> tuple[float, float] | None:
    d = draws[np.isfinite(draws)]
    if len(d) < len(draws) / 2:  # mostly degenerate resamples: no interval
        return None
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(d, [tail, 100.0 - tail])
    return float(lo), float(hi)


def sharpe_interval(
    equity: pd.Series, *, reps: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, Any] | None:
    """Sharpe with a stationary-bootstrap percentile interval; None below 30 returns or with zero std."""
    r = _arr(equity)
    if r is None or len(r) < MIN_BOOTSTRAP_RETURNS or not math.isfinite(_sharpe(r)):
        return None
    block = _block_length(r)
    bs = StationaryBootstrap(block, r, seed=seed)  # type: ignore[arg-type]  # arch takes a float mean length
    ci = _percentiles(bs.apply(lambda x: np.array([_sharpe(x)]), reps=reps)[:, 0], level)
    if ci is None:
        return None
    return {"estimate": _sharpe(r), "low": ci[0], "high": ci[1], "level": level, "block_length": block,
            "reps": reps, "seed": seed}


def sharpe_difference(
    equity: pd.Series, benchmark: pd.Series, *, reps: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, Any] | None:
    """Sharpe(equity) - Sharpe(benchmark) on their common return dates, paired bootstrap interval.

    None below 30 common returns or when either Sharpe is undefined (e.g. an all-cash curve).
    """
    ra, rb = daily_returns(equity), daily_returns(benchmark)
    if ra is None or rb is None:
        return None
    common = ra.index.intersection(rb.index)
    a, b = ra.loc[common].to_numpy(), rb.loc[common].to_numpy()
    estimate = _sharpe(a) - _sharpe(b)
    if len(common) < MIN_BOOTSTRAP_RETURNS or not math.isfinite(estimate):
        return None
    block = _block_length(np.column_stack([a, b]))
    bs = StationaryBootstrap(block, a, b, seed=seed)  # type: ignore[arg-type]
    draws = bs.apply(lambda x, y: np.array([_sharpe(x) - _sharpe(y)]), reps=reps)[:, 0]
    ci = _percentiles(draws, level)
    if ci is None:
        return None
    return {"estimate": estimate, "low": ci[0], "high": ci[1], "level": level, "block_length": block,
            "reps": reps, "seed": seed, "days": len(common)}
