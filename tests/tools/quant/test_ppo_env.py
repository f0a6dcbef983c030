"""The PPO environment: a valid gymnasium env, the paper broker's fees by hand, rewards blind to later bars,
long-only books, and a purged train / held-out split."""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Mapping
from datetime import date

import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from portfolio.broker import PaperBroker
from tools.quant import ppo_env
from tools.quant.features import FEATURE_COLUMNS, symbol_features
from tools.quant.ppo import split
from tools.quant.ppo_env import (
    ACTION_NAMES,
    ACTION_SCORES,
    ACTIONS,
    OBS_DIM,
    Book,
    Series,
    TradingEnv,
    build_series,
    buy_and_hold,
    fill,
    run_book,
)

END = date(2007, 12, 31)
INVESTED = [ACTION_NAMES.index(a) for a in ("buy_50", "hold", "sell_25", "buy_25", "sell_50", "buy_75")]


@pytest.fixture(scope="module")
def demo_split(demo_bars: Mapping[str, pd.DataFrame]):  # type: ignore[no-untyped-def]
    return split(demo_bars, END, 0.2)


def _series(opens: list[float], closes: list[float]) -> Series:
    n = len(opens)
    return Series("X", pd.date_range("2020-01-01", periods=n).to_numpy("datetime64[ns]"),
                  np.zeros((n, len(FEATURE_COLUMNS)), "float32"), np.array(opens), np.array(closes))  # fmt: skip


def test_the_env_passes_gymnasium_and_sb3_checks(demo_split) -> None:  # type: ignore[no-untyped-def]
    env = TradingEnv(demo_split.fit)
    assert env.observation_space.shape == (OBS_DIM,) and env.action_space.n == 7
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning from either checker is a failure too
        sb3_check_env(env, warn=True)
        gym_check_env(TradingEnv(demo_split.fit), skip_render_check=True)


def test_fees_are_the_paper_brokers_defaults() -> None:
    defaults = inspect.signature(PaperBroker.__init__).parameters
    assert ppo_env.COMMISSION_BPS == defaults["commission_bps"].default == 10
    assert ppo_env.SLIPPAGE_BPS == defaults["slippage_bps"].default == 5


def test_a_buy_then_a_sell_step_by_hand() -> None:
    env = TradingEnv([_series([100.0, 100.0, 102.0], [100.0, 101.0, 103.0])])
    obs, _ = env.reset(options={"symbol": "X", "start": 0})
    assert obs[-3:].tolist() == [0.0, 0.0, 1.0]  # flat: no position, no P&L, all cash

    # buy 50% of the cash at the NEXT bar's open (100): pays 100 x 1.0005, plus 10 bps commission
    _, r, terminated, truncated, info = env.step(ACTION_NAMES.index("buy_50"))
    qty = 0.5 / (100.05 * 1.001)
    e1 = 0.5 + qty * 101.0
    assert env.book.qty == pytest.approx(qty, rel=1e-12) and env.book.cash == pytest.approx(0.5)
    assert info["fees"] == pytest.approx(qty * 100.05 * 0.001 + qty * 100.0 * 0.0005, rel=1e-12)
    assert info["equity"] == pytest.approx(e1, rel=1e-12)
    assert r == pytest.approx(math.log(e1) - 0.0005 * qty * 100.05, rel=1e-12)  # no drawdown: only turnover
    assert not terminated and not truncated

    # sell 100% at the next open (102): receives 102 x 0.9995, less 10 bps commission
    _, r, _, truncated, info = env.step(ACTION_NAMES.index("sell_100"))
    value = qty * 102.0 * 0.9995
    e2 = 0.5 + value * 0.999
    assert env.book.qty == 0.0 and env.book.cash == pytest.approx(e2, rel=1e-12)
    assert r == pytest.approx(math.log(e2 / e1) - 0.0005 * value / e1, rel=1e-12)
    assert truncated  # the series' last decision day


def test_only_a_loss_beyond_the_free_drawdown_is_penalised() -> None:
    # all in (buy_75 twice), then the price falls 20% in one bar: drawdown 15% on equity
    env = TradingEnv([_series([100.0, 100.0, 100.0, 100.0], [100.0, 100.0, 100.0, 80.0])])
    env.reset(options={"symbol": "X", "start": 0})
    env.step(1 + 2)
    env.step(1 + 2)
    e0 = env.book.equity(100.0)
    peak = 1.0  # the episode's start: fees made every later mark lower
    _, r, _, _, info = env.step(0)
    e1 = info["equity"]
    beyond = (1.0 - e1 / peak) - ppo_env.DRAWDOWN_FREE
    assert beyond > 0
    assert r == pytest.approx(math.log(e1 / e0) - ppo_env.DRAWDOWN_PENALTY * beyond, rel=1e-9)


def test_rewards_and_observations_up_to_t_ignore_garbage_after_t_plus_1(
    demo_bars: Mapping[str, pd.DataFrame], demo_split
) -> None:  # type: ignore[no-untyped-def]
    bars = demo_bars["GOOG"].loc[:"2007-12-31"]
    k = len(bars) - 60  # bars after k become garbage
    rng = np.random.default_rng(7)
    bad = bars.copy()
    noise = rng.uniform(0.2, 5.0, size=(len(bars) - k - 1, 1))
    prices = ["open", "high", "low", "close"]
    bad.loc[bad.index[k + 1 :], prices] = bad.loc[bad.index[k + 1 :], prices].to_numpy() * noise
    bad.loc[bad.index[k + 1 :], "volume"] = rng.uniform(1, 1e9, size=len(bars) - k - 1)

    def episode(b: pd.DataFrame) -> tuple[list[np.ndarray], list[float], pd.DatetimeIndex]:
        s = build_series("GOOG", b, symbol_features(b), demo_split.scaler, None, b.index[-1])
        assert s is not None
        env = TradingEnv([s], episode_days=10_000)
        start = len(s) - 120
        obs, _ = env.reset(options={"symbol": "GOOG", "start": start})
        seen, rewards = [obs], []
        for a in np.resize(INVESTED, 119):  # never a full exit: the book always holds some, so closes matter
            obs, r, _, _, _ = env.step(int(a))
            seen.append(obs)
            rewards.append(r)
        return seen, rewards, pd.DatetimeIndex(s.dates[start:])

    clean_obs, clean_r, days = episode(bars)
    dirty_obs, dirty_r, _ = episode(bad)
    last_clean = int(np.searchsorted(days, bars.index[k], side="right")) - 1  # the step whose day is bar k
    # observations up to bar k and rewards of steps t -> t+1 <= k are identical
    for i in range(last_clean + 1):
        assert np.array_equal(clean_obs[i], dirty_obs[i]), i
    assert clean_r[:last_clean] == dirty_r[:last_clean]
    # the garbage does reach the step that reads bar k+1, so the comparison above is not vacuous
    assert clean_r[last_clean] != dirty_r[last_clean]


def test_books_stay_long_only_and_never_borrow(demo_split) -> None:  # type: ignore[no-untyped-def]
    env = TradingEnv(demo_split.fit, episode_days=200)
    env.reset(seed=3)
    rng = np.random.default_rng(3)
    for _ in range(2000):
        _, _, _, truncated, info = env.step(int(rng.integers(0, 7)))
        book = env.book
        assert book.cash >= 0 and book.qty >= 0 and info["equity"] > 0
        assert env.observation_space.contains(env._obs())
        if truncated:
            env.reset()
    assert fill(Book(cash=0.2, qty=3.0, cost=2.9), "sell", 1.0, 1.0).book.qty == 0.0


def test_action_table_and_scores_are_in_step() -> None:
    assert [f"{side}_{round(f * 100)}" if side != "hold" else "hold" for side, f in ACTIONS] == list(ACTION_NAMES)
    assert ACTION_SCORES[0] == 0 and max(ACTION_SCORES) == 1 and min(ACTION_SCORES) == -1
    assert all((s > 0) == n.startswith("buy") and (s < 0) == n.startswith("sell") for n, s in zip(ACTION_NAMES, ACTION_SCORES, strict=True))


def test_buy_and_hold_pays_the_fees_once() -> None:
    s = _series([100.0, 100.0, 110.0, 120.0], [100.0, 105.0, 115.0, 126.0])
    total = float((1 + buy_and_hold(s)).prod() - 1)
    assert total == pytest.approx(126.0 / (100.0 * 1.0005 * 1.001) - 1, rel=1e-12)
    assert (run_book(s, lambda t, o: ("hold", 0.0)) == 0).all()


def test_the_split_is_purged_and_the_scaler_sees_only_fit_rows(
    demo_bars: Mapping[str, pd.DataFrame], demo_split
) -> None:  # type: ignore[no-untyped-def]
    v = pd.Timestamp(demo_split.held_out_start)
    assert max(pd.Timestamp(s.dates[-1]) for s in demo_split.fit) < v  # no training reward reads a bar >= V
    assert min(pd.Timestamp(s.dates[0]) for s in demo_split.held_out) == v
    # garbage from V on changes neither the fit series nor the scaler
    bad = {}
    for sym, b in demo_bars.items():
        b = b.copy()
        later = b.index >= v
        b.loc[later, ["open", "high", "low", "close"]] *= 3.0
        bad[sym] = b
    other = split(bad, END, 0.2)
    assert other.held_out_start == demo_split.held_out_start and other.scaler == demo_split.scaler
    for a, b in zip(demo_split.fit, other.fit, strict=True):
        assert np.array_equal(a.features, b.features) and np.array_equal(a.close, b.close)
