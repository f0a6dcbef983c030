"""evals.metrics: definitions by hand, degenerate inputs, a cross-check against quantstats, regimes, bootstrap."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
import quantstats as qs

from evals import metrics as m
from evals.models import Trade
from tests.evals.helpers import curve, random_curve


def _no_nan_or_inf(values: dict) -> bool:
    json.dumps(values, allow_nan=False)  # raises on NaN/inf
    return True


# --- cross-check against quantstats (0.0.86) -------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_quantstats_on_the_same_curve(seed: int) -> None:
    """quantstats uses the same definitions once given daily returns with periods=252 and rf=0:
    Sharpe mean/std(ddof=1)·√252; Sortino mean/sqrt(sum(r<0 ²)/count)·√252 (downside over ALL days, as ours);
    CAGR with years = count(returns)/252 (ours: n/252); volatility std(ddof=1)·√252; max drawdown from a
    phantom start value of 1 before the first return, i.e. from the curve's first value as ours; Calmar
    CAGR/|max drawdown|."""
    equity = random_curve(900, seed=seed, drift=0.0003, vol=0.012)
    returns = equity.pct_change().dropna()
    assert m.sharpe(equity) == pytest.approx(qs.stats.sharpe(returns, rf=0.0, periods=252), rel=1e-9)
    assert m.sortino(equity) == pytest.approx(qs.stats.sortino(returns, rf=0.0, periods=252), rel=1e-9)
    assert m.cagr(equity) == pytest.approx(qs.stats.cagr(returns, rf=0.0, compounded=True, periods=252), rel=1e-9)
    assert m.volatility(equity) == pytest.approx(qs.stats.volatility(returns, periods=252), rel=1e-9)
    assert m.max_drawdown(equity) == pytest.approx(qs.stats.max_drawdown(returns), rel=1e-9)
    assert m.calmar(equity) == pytest.approx(qs.stats.calmar(returns, periods=252), rel=1e-9)


def test_a_curve_that_falls_from_its_first_day_matches_quantstats_drawdown() -> None:
    equity = curve([100, 90, 95, 80, 120])
    returns = equity.pct_change().dropna()
    assert m.max_drawdown(equity) == pytest.approx(-0.2)
    assert m.max_drawdown(equity) == pytest.approx(qs.stats.max_drawdown(returns))


# --- definitions by hand ----------------------------------------------------------------------------------


def test_total_return_and_cagr_count_years_in_sessions() -> None:
    doubled = curve(np.linspace(100.0, 200.0, 253))  # 252 returns = one year
    assert m.total_return(doubled) == pytest.approx(1.0)
    assert m.cagr(doubled) == pytest.approx(1.0)
    two_years = curve(np.linspace(100.0, 400.0, 505))
    assert m.cagr(two_years) == pytest.approx(1.0)


def test_sharpe_and_sortino_by_hand() -> None:
    equity = curve([100.0, 101.0, 99.99, 101.9898, 100.970, 102.990])
    r = equity.pct_change().dropna().to_numpy()
    assert m.sharpe(equity) == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    downside = math.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
    assert m.sortino(equity) == pytest.approx(r.mean() / downside * math.sqrt(252))


def test_max_drawdown_days_runs_from_peak_to_recovery_or_to_the_end() -> None:
    # peak at 0, under water 1-3, regained at 4 (4 sessions); new peak at 5, under water to the end (3 sessions)
    assert m.max_drawdown_days(curve([100, 90, 80, 95, 100, 110, 100, 105, 109])) == 4
    assert m.max_drawdown_days(curve([100, 90, 80, 95, 100, 110, 100, 105, 109, 108, 107])) == 5
    assert m.max_drawdown_days(curve([100, 101, 102])) == 0
    assert m.max_drawdown_days(curve([100, 99])) == 1


def test_calmar_is_cagr_over_the_absolute_drawdown() -> None:
    equity = random_curve(500, seed=3)
    assert m.calmar(equity) == pytest.approx(m.cagr(equity) / abs(m.max_drawdown(equity)))


def test_win_rate_and_profit_factor_ignore_zeros() -> None:
    assert m.win_rate([10.0, -5.0, 0.0, 20.0]) == pytest.approx(2 / 3)
    assert m.profit_factor([10.0, -5.0, 0.0, 20.0]) == pytest.approx(6.0)
    assert m.win_rate([0.0, 0.0]) is None
    assert m.profit_factor([1.0, 2.0]) is None  # no loss: undefined, not infinity
    assert m.profit_factor([-1.0]) == 0.0


def test_turnover_is_traded_notional_over_mean_equity_per_year() -> None:
    equity = curve([100.0] * 253)  # one year
    trades = [Trade(date(2020, 1, 3), "A", "buy", 1.0, 50.0, 0.05), Trade(date(2020, 6, 1), "A", "sell", 1.0, 50.0, 0.05)]
    assert m.turnover(equity, sum(t.notional for t in trades)) == pytest.approx(1.0)
    out = m.compute_metrics(equity, trades=trades)
    assert out["trades"] == 2
    assert out["turnover"] == pytest.approx(1.0)


def test_compute_metrics_has_the_design_keys() -> None:
    out = m.compute_metrics(random_curve(100), exposure=pd.Series(0.5, index=random_curve(100).index))
    assert set(out) == {"total_return", "cagr", "sharpe", "sortino", "calmar", "max_drawdown", "max_drawdown_days",
                        "volatility", "win_rate", "profit_factor", "exposure", "trades", "turnover"}
    assert out["exposure"] == pytest.approx(0.5)


def test_win_rate_uses_trade_pnls_when_given_else_daily_returns() -> None:
    equity = curve([100.0, 101.0, 100.0, 102.0])
    daily = m.compute_metrics(equity)
    assert daily["win_rate"] == pytest.approx(2 / 3)
    traded = m.compute_metrics(equity, trade_pnls=[5.0, -1.0, -1.0, -1.0])
    assert traded["win_rate"] == pytest.approx(0.25)
    assert traded["profit_factor"] == pytest.approx(5 / 3)
    assert m.compute_metrics(equity, trade_pnls=[])["win_rate"] is None


# --- degenerate inputs ------------------------------------------------------------------------------------


def test_a_flat_curve_has_zero_risk_and_no_ratios() -> None:
    out = m.compute_metrics(curve([100.0] * 30), exposure=pd.Series(0.0, index=curve([100.0] * 30).index))
    assert out["total_return"] == 0.0
    assert out["cagr"] == 0.0
    assert out["volatility"] == 0.0
    assert out["sharpe"] is None and out["sortino"] is None and out["calmar"] is None
    assert out["max_drawdown"] == 0.0 and out["max_drawdown_days"] == 0
    assert _no_nan_or_inf(out)


def test_one_day_has_no_return_based_metrics() -> None:
    out = m.compute_metrics(curve([100.0]))
    assert out["total_return"] == 0.0
    assert out["cagr"] is None and out["volatility"] is None and out["sharpe"] is None
    assert out["sortino"] is None and out["calmar"] is None and out["turnover"] is None
    assert out["max_drawdown"] == 0.0 and out["max_drawdown_days"] == 0
    assert _no_nan_or_inf(out)


def test_two_days_have_a_return_but_no_standard_deviation() -> None:
    out = m.compute_metrics(curve([100.0, 101.0]))
    assert out["total_return"] == pytest.approx(0.01)
    assert out["volatility"] is None and out["sharpe"] is None
    assert out["sortino"] is None  # no losing day
    assert _no_nan_or_inf(out)


def test_a_steady_compounding_curve_has_zero_std_not_an_infinite_sharpe() -> None:
    out = m.compute_metrics(curve(100.0 * 1.001 ** np.arange(50)))
    assert out["sharpe"] is None
    assert out["volatility"] == 0.0
    assert _no_nan_or_inf(out)


def test_a_wipe_out_leaves_return_based_metrics_undefined() -> None:
    out = m.compute_metrics(curve([100.0, 50.0, 0.0, 10.0]))
    assert out["sharpe"] is None and out["cagr"] is None and out["volatility"] is None
    assert out["total_return"] == pytest.approx(-0.9)
    assert out["max_drawdown"] == pytest.approx(-1.0)
    assert _no_nan_or_inf(out)


# --- realised trade P&Ls ----------------------------------------------------------------------------------


def _t(day: int, side: str, qty: float, price: float, fees: float = 0.0, symbol: str = "A") -> Trade:
    return Trade(date(2020, 1, day), symbol, side, qty, price, fees)  # type: ignore[arg-type]


def test_a_round_trip_carries_both_legs_fees() -> None:
    pnls = m.realised_pnls([_t(2, "buy", 10, 100.0, 1.0), _t(3, "sell", 10, 110.0, 1.0)])
    assert pnls == [pytest.approx(98.0)]


def test_partial_sells_realise_against_the_average_cost() -> None:
    trades = [_t(2, "buy", 10, 100.0), _t(3, "buy", 10, 120.0), _t(4, "sell", 5, 130.0), _t(5, "sell", 15, 100.0)]
    assert m.realised_pnls(trades) == [pytest.approx(5 * 20.0), pytest.approx(15 * -10.0)]


def test_a_flip_closes_then_opens_and_open_positions_close_at_the_final_price() -> None:
    trades = [_t(2, "buy", 10, 100.0), _t(3, "sell", 15, 90.0), _t(4, "buy", 2, 80.0, symbol="B")]
    pnls = m.realised_pnls(trades, final_prices={"A": 80.0, "B": 85.0})
    assert pnls == [pytest.approx(-100.0), pytest.approx(-5 * (80.0 - 90.0)), pytest.approx(10.0)]


# --- regimes ----------------------------------------------------------------------------------------------


def _benchmark(n: int = 700, seed: int = 4) -> pd.Series:
    return random_curve(n, seed=seed, drift=0.0, vol=0.015)


def test_regime_labels_are_point_in_time() -> None:
    """The label of day t computed from closes up to t equals the label computed from the whole series."""
    close = _benchmark()
    full = m.market_regimes(close)
    for cut in (220, 300, 451, 699):
        assert m.market_regimes(close.iloc[: cut + 1]).iloc[-1] == full.iloc[cut]
    changed = close.copy()
    changed.iloc[500:] *= 3.0  # the future changes; the past labels must not
    assert m.market_regimes(changed).iloc[:500].equals(full.iloc[:500])


def test_rising_and_falling_markets() -> None:
    up = m.market_regimes(curve(100.0 * 1.001 ** np.arange(400)))
    down = m.market_regimes(curve(100.0 * 0.999 ** np.arange(400)))
    assert (up.iloc[:219] == "unknown").all() and (up.iloc[219:] == "bull").all()
    assert (down.iloc[219:] == "bear").all()
    flat = m.market_regimes(curve([100.0] * 400))
    assert (flat.iloc[219:] == "sideways").all()


def test_a_return_takes_the_regime_known_the_day_before() -> None:
    equity = curve([100.0, 110.0, 99.0, 99.0])
    labels = pd.Series(["bull", "bear", "bull", "bear"], index=equity.index)
    out = m.sharpe_by_regime(equity, labels)
    assert out["bull"]["days"] == 2 and out["bull"]["return"] == pytest.approx(1.1 * 1.0 - 1.0)
    assert out["bear"]["days"] == 1 and out["bear"]["return"] == pytest.approx(-0.1)
    assert out["sideways"] == {"days": 0, "sharpe": None, "return": None}


def test_regimes_from_another_calendar_are_carried_forward() -> None:
    equity = curve([100.0, 101.0, 102.0, 103.0])
    labels = pd.Series(["bear"], index=[equity.index[0] - pd.Timedelta(days=3)])
    out = m.sharpe_by_regime(equity, labels)
    assert out["bear"]["days"] == 3


# --- bootstrap intervals ----------------------------------------------------------------------------------


def test_sharpe_interval_is_seeded_and_contains_the_estimate() -> None:
    equity = random_curve(600, seed=5)
    a = m.sharpe_interval(equity, reps=300, seed=7)
    b = m.sharpe_interval(equity, reps=300, seed=7)
    assert a == b
    assert a is not None and a["low"] < a["estimate"] < a["high"]
    assert a["estimate"] == pytest.approx(m.sharpe(equity))
    assert a["block_length"] >= 1.0
    assert m.sharpe_interval(equity, reps=300, seed=8) != a


def test_sharpe_interval_is_none_when_undefined() -> None:
    assert m.sharpe_interval(random_curve(20)) is None
    assert m.sharpe_interval(curve([100.0] * 100)) is None


def test_sharpe_difference_is_paired() -> None:
    equity = random_curve(600, seed=5)
    same = m.sharpe_difference(equity, equity, reps=200)
    assert same is not None and same["estimate"] == 0.0 and same["low"] == 0.0 and same["high"] == 0.0
    bench = random_curve(600, seed=6)
    diff = m.sharpe_difference(equity, bench, reps=300, seed=1)
    assert diff is not None
    assert diff["estimate"] == pytest.approx(m.sharpe(equity) - m.sharpe(bench))
    assert diff["low"] < diff["estimate"] < diff["high"]
    assert m.sharpe_difference(equity, curve([100.0] * 600)) is None  # cash has no Sharpe


def test_exposure_series_is_gross_value_over_equity() -> None:
    equity = curve([100.0, 100.0, 0.0])
    pv = pd.Series([0.0, -50.0, 10.0], index=equity.index)
    assert m.exposure_series(pv, equity).tolist() == [0.0, 0.5, 0.0]
