"""The PPO environment: daily bars of one instrument per episode, long-only, the paper broker's fees.

Contract:
- Data: one ``Series`` per symbol (``build_series``): each decision day's features, scaled with a scaler fitted
  on training rows only (``features.fit_scaler``) and clipped to ±``OBS_CLIP``, and the bars' open and close.
- Timing (point in time): the action chosen on day t reads the features of t (causal: bars up to t) and the
  book marked at t's close. It fills at the OPEN of the next bar t+1, as ``portfolio.broker.PaperBroker`` fills
  day D's decisions at D+1's open, and the step's reward is the equity change from t's close to t+1's close.
  Step t reads nothing of bar t+2 or later (a test fills every later bar with garbage).
- Observation (float32, ``OBS_DIM`` = ``len(FEATURE_COLUMNS) + 3``): the scaled features, then ``position``
  (the share of equity held in the instrument at t's close), ``unrealised_pnl`` (position value / its cost,
  fees included, − 1; 0 when flat; clipped to [−1, ``OBS_CLIP``]) and ``cash`` (cash / equity).
- Actions (``Discrete(7)``, ``ACTIONS``): 0 hold; 1–3 buy with 25 / 50 / 75% of the cash (fees included in that
  outlay); 4–6 sell 25 / 50 / 100% of the position. Long-only, no leverage: cash and position never go below 0.
- Fees (``fill``), the paper broker's defaults: a buy pays ``open × (1 + SLIPPAGE_BPS)`` plus a commission of
  ``COMMISSION_BPS`` of the traded value; a sell receives ``open × (1 − SLIPPAGE_BPS)`` less the commission.
- Reward of step t: ``log(E[t+1] / E[t]) − DRAWDOWN_PENALTY × max(0, x[t+1] − x[t])
  − TURNOVER_PENALTY × traded value / E[t]``, where E is the close-marked equity (fees paid),
  ``dd = 1 − E / peak`` against the episode's running peak and ``x = max(0, dd − DRAWDOWN_FREE)`` the part of
  the drawdown beyond ``DRAWDOWN_FREE``.
- Episodes: ``reset`` draws a symbol (uniform) and a start day (uniform over its decision days), flat with
  equity 1; the episode is truncated after ``episode_days`` steps or on the series' last decision day (never
  terminated). ``reset(options={"symbol": S, "start": i})`` fixes both (tests, evaluation).

Deliberate decisions:
- Log rewards: an episode's summed reward before penalties is the log of its total return net of fees, so the
  policy maximises compounded growth, not the sum of simple returns.
- The drawdown penalty charges only a deepening of the drawdown beyond ``DRAWDOWN_FREE`` (10%): a loss that
  takes the book deeper than that weighs 1 + ``DRAWDOWN_PENALTY`` times. Charging every loss below the peak
  (no free part) cost about 0.25% a day in expectation at equity volatility, ten times the equity drift, and
  the policies learnt to stay in cash; charging the time spent under water would punish states, not actions.
- The turnover penalty adds ``TURNOVER_PENALTY`` (5 bps) of the traded value to the real fees (15 bps), so a
  trade needs an expected gain beyond breaking even on costs.
- A series starts at the first day after which every feature is finite (the ~200-bar warm-up is dropped, never
  imputed, as for XGBoost).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from tools.quant.features import FEATURE_COLUMNS, apply_scaler

COMMISSION_BPS = 10.0  # portfolio.broker.PaperBroker's default commission_bps (a test keeps them equal)
SLIPPAGE_BPS = 5.0  # portfolio.broker.PaperBroker's default slippage_bps
DRAWDOWN_PENALTY = 0.5
DRAWDOWN_FREE = 0.10
TURNOVER_PENALTY = 0.0005
OBS_CLIP = 5.0
EPISODE_DAYS = 252

ACTIONS: tuple[tuple[str, float], ...] = (
    ("hold", 0.0), ("buy", 0.25), ("buy", 0.5), ("buy", 0.75), ("sell", 0.25), ("sell", 0.5), ("sell", 1.0),
)  # fmt: skip
ACTION_NAMES: tuple[str, ...] = ("hold", "buy_25", "buy_50", "buy_75", "sell_25", "sell_50", "sell_100")
# predict_ppo's score: the action's signed size on a common scale (a buy of 75% of cash is the strongest buy,
# a full exit the strongest sell); hold is 0.
ACTION_SCORES: tuple[float, ...] = (0.0, 1 / 3, 2 / 3, 1.0, -1 / 3, -2 / 3, -1.0)
STATE_COLUMNS: tuple[str, ...] = ("position", "unrealised_pnl", "cash")
OBS_DIM = len(FEATURE_COLUMNS) + len(STATE_COLUMNS)
FLAT: tuple[float, float, float] = (0.0, 0.0, 1.0)  # position, unrealised P&L, cash share of a flat book
_STATE_LOW, _STATE_HIGH = (0.0, -1.0, 0.0), (1.0, OBS_CLIP, 1.0)


def env_constants() -> dict[str, float | int | str]:
    """The constants a policy is trained on, for its artefact's meta."""
    return {
        "commission_bps": COMMISSION_BPS, "slippage_bps": SLIPPAGE_BPS, "drawdown_penalty": DRAWDOWN_PENALTY,
        "drawdown_free": DRAWDOWN_FREE, "turnover_penalty": TURNOVER_PENALTY, "obs_clip": OBS_CLIP,
        "reward": "log equity change", "fill": "next bar open", "obs_dim": OBS_DIM,
    }  # fmt: skip


@dataclass(frozen=True)
class Book:
    """A one-instrument book in units of the episode's starting equity; ``cost`` includes the fees paid."""

    cash: float = 1.0
    qty: float = 0.0
    cost: float = 0.0

    def equity(self, price: float) -> float:
        return self.cash + self.qty * price

    def state(self, price: float) -> tuple[float, float, float]:
        """(position share, unrealised P&L, cash share) at ``price``."""
        value = self.qty * price
        eq = self.cash + value
        pnl = value / self.cost - 1.0 if self.qty > 0 and self.cost > 0 else 0.0
        return value / eq, float(np.clip(pnl, -1.0, OBS_CLIP)), self.cash / eq


@dataclass(frozen=True)
class Fill:
    book: Book
    traded: float  # traded value at the fill price, before commission
    fees: float  # commission + slippage


def fill(book: Book, side: str, fraction: float, open_price: float) -> Fill:
    """Trade ``fraction`` of the cash (buy) or of the position (sell) at ``open_price``, with the broker's fees."""
    slip, comm = SLIPPAGE_BPS / 10_000.0, COMMISSION_BPS / 10_000.0
    if side == "buy" and fraction > 0 and book.cash > 0:
        spend = book.cash * fraction  # commission included, as the broker sizes a buy on cash
        price = open_price * (1.0 + slip)
        qty = spend / (price * (1.0 + comm))
        fees = qty * price * comm + qty * open_price * slip
        return Fill(Book(book.cash - spend, book.qty + qty, book.cost + spend), qty * price, fees)
    if side == "sell" and fraction > 0 and book.qty > 0:
        qty = book.qty * fraction
        price = open_price * (1.0 - slip)
        value = qty * price
        left = 0.0 if fraction >= 1.0 else book.qty - qty
        fees = value * comm + qty * open_price * slip
        return Fill(Book(book.cash + value - value * comm, left, book.cost * (1.0 - fraction)), value, fees)
    return Fill(book, 0.0, 0.0)


def reward(e0: float, e1: float, peak0: float, traded: float) -> tuple[float, float]:
    """(reward of one step, the new peak); see the module contract."""
    peak1 = max(peak0, e1)
    deeper = max(0.0, _beyond_free(e1, peak1) - _beyond_free(e0, peak0))
    return float(np.log(e1 / e0) - DRAWDOWN_PENALTY * deeper - TURNOVER_PENALTY * traded / e0), peak1


def _beyond_free(equity: float, peak: float) -> float:
    return max(0.0, 1.0 - equity / peak - DRAWDOWN_FREE)


@dataclass(frozen=True)
class Series:
    """One symbol's decision days: scaled features (n, F) float32, and open and close of the same bars."""

    symbol: str
    dates: np.ndarray
    features: np.ndarray
    open: np.ndarray
    close: np.ndarray

    def __len__(self) -> int:
        return len(self.dates)


def scale(frame: pd.DataFrame, scaler: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """``FEATURE_COLUMNS`` of ``frame`` scaled and clipped to ±OBS_CLIP, as float32."""
    if tuple(scaler) != FEATURE_COLUMNS:
        raise ValueError(f"the scaler covers {len(scaler)} columns, not FEATURE_COLUMNS")
    return np.clip(apply_scaler(frame, scaler).to_numpy("float64"), -OBS_CLIP, OBS_CLIP).astype("float32")


def observations(features: np.ndarray, state: np.ndarray | tuple[float, float, float] = FLAT) -> np.ndarray:
    """Observations from scaled features (n, F) and the book state, one row each or one for all (clipped to
    the observation space: position and cash share in [0, 1], unrealised P&L in [-1, OBS_CLIP])."""
    state_rows = np.broadcast_to(np.asarray(state, dtype="float32"), (len(features), len(STATE_COLUMNS)))
    state_rows = np.clip(state_rows, _STATE_LOW, _STATE_HIGH).astype("float32")
    return np.concatenate([features.astype("float32"), state_rows], axis=1)


def build_series(
    symbol: str,
    bars: pd.DataFrame,
    features: pd.DataFrame,
    scaler: Mapping[str, tuple[float, float]],
    start: date | pd.Timestamp | None,
    end: date | pd.Timestamp,
) -> Series | None:
    """The bars in [start, end] from the first day after which every feature is finite; None under 2 bars."""
    lo = None if start is None else pd.Timestamp(start)
    frame = features.loc[lo : pd.Timestamp(end), list(FEATURE_COLUMNS)]
    bad = np.flatnonzero(~np.isfinite(frame.to_numpy("float64")).all(axis=1))
    if len(bad):
        frame = frame.iloc[bad[-1] + 1 :]
    if len(frame) < 2:
        return None
    px = bars.reindex(frame.index)
    return Series(
        symbol=symbol,
        dates=frame.index.to_numpy("datetime64[ns]"),
        features=scale(frame, scaler),
        open=px["open"].to_numpy("float64"),
        close=px["close"].to_numpy("float64"),
    )


def spaces() -> tuple[gym.spaces.Box, gym.spaces.Discrete]:
    """The observation and action spaces (the policy is rebuilt from them on load)."""
    low = np.full(OBS_DIM, -OBS_CLIP, dtype="float32")
    high = np.full(OBS_DIM, OBS_CLIP, dtype="float32")
    low[-3:], high[-3:] = _STATE_LOW, _STATE_HIGH
    return gym.spaces.Box(low, high, dtype=np.float32), gym.spaces.Discrete(len(ACTIONS))


class TradingEnv(gym.Env[np.ndarray, np.int64]):
    """One instrument per episode, drawn from ``series``; see the module contract."""

    def __init__(self, series: Sequence[Series], episode_days: int = EPISODE_DAYS) -> None:
        usable = [s for s in series if len(s) >= 2]
        if not usable:
            raise ValueError("the environment needs at least one series of 2 bars or more")
        self.series = usable
        self.episode_days = episode_days
        self.observation_space, self.action_space = spaces()
        self._s = usable[0]
        self._t = self._steps = 0
        self._book, self._peak = Book(), 1.0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        opts = options or {}
        if "symbol" in opts:
            self._s = next(s for s in self.series if s.symbol == opts["symbol"])
        else:
            self._s = self.series[int(self.np_random.integers(len(self.series)))]
        self._t = int(opts["start"]) if "start" in opts else int(self.np_random.integers(len(self._s) - 1))
        if not 0 <= self._t < len(self._s) - 1:
            raise ValueError(f"start {self._t} is not a decision day of {self._s.symbol} (0 … {len(self._s) - 2})")
        self._steps, self._book, self._peak = 0, Book(), 1.0
        return self._obs(), {"symbol": self._s.symbol, "date": self._s.dates[self._t]}

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        s, t = self._s, self._t
        side, fraction = ACTIONS[int(action)]
        e0 = self._book.equity(float(s.close[t]))
        done = fill(self._book, side, fraction, float(s.open[t + 1]))
        e1 = done.book.equity(float(s.close[t + 1]))
        r, self._peak = reward(e0, e1, self._peak, done.traded)
        self._book, self._t, self._steps = done.book, t + 1, self._steps + 1
        truncated = self._steps >= self.episode_days or self._t >= len(s) - 1
        info = {"equity": e1, "fees": done.fees, "traded": done.traded, "date": s.dates[self._t]}
        return self._obs(), r, False, truncated, info

    def _obs(self) -> np.ndarray:
        state = self._book.state(float(self._s.close[self._t]))
        return observations(self._s.features[self._t : self._t + 1], state)[0]

    @property
    def book(self) -> Book:
        return self._book


def run_book(series: Series, decide: Callable[[int, np.ndarray], tuple[str, float]]) -> pd.Series:
    """Daily returns (close to close, fees paid) of a book that starts flat on the series' first day and
    trades ``decide(t, observation)`` at each next open; indexed by the day each return is realised."""
    book, out = Book(), np.empty(len(series) - 1)
    for t in range(len(series) - 1):
        e0 = book.equity(float(series.close[t]))
        obs = observations(series.features[t : t + 1], book.state(float(series.close[t])))[0]
        book = fill(book, *decide(t, obs), float(series.open[t + 1])).book
        out[t] = book.equity(float(series.close[t + 1])) / e0 - 1.0
    return pd.Series(out, index=pd.DatetimeIndex(series.dates[1:]), name=series.symbol)


def buy_and_hold(series: Series) -> pd.Series:
    """``run_book`` of all the cash into the instrument at the first next open, then held (same fees)."""
    return run_book(series, lambda t, _obs: ("buy", 1.0) if t == 0 else ("hold", 0.0))
