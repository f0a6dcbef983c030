"""A close the validation gate refuses (a jump) never values a book: not the graph policies', not the benchmarks'.

A one-day ×50 print that reverts made every policy's equity jump ×50 on that weight (the report read a −91 %
drawdown and 636 % volatility); a real +60 % move is valued at the old close on its day, at the new one after.
Replays here run the real graph, guard, paper broker and ledger, and ``run_eval`` end to end on csv files.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agent.settings import Settings
from evals.baselines import run_baselines
from evals.replay import sessions_between
from evals.run import EvalConfig, run_eval
from tests.evals.test_replay import Wants, replay
from tools.data import UniverseData
from tools.market_data import sample_frame
from tools.models import Instrument, Universe

SPIKE = pd.Timestamp("2020-03-11")  # mid-month (no benchmark rebalance around it), a Wednesday


def _bars(close: np.ndarray, idx: pd.DatetimeIndex) -> pd.DataFrame:
    return pd.DataFrame({"open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
                         "volume": 1e6}, index=idx)


def _data(change: str) -> UniverseData:
    """A and B random walks from 2019; on SPIKE A prints ×50 for one day (``spike``) or moves +60 % for good."""
    days = pd.bdate_range("2019-01-01", "2020-06-30", name="date")
    rng = np.random.default_rng(4)
    walks = {s: 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, len(days)))) for s in ("A", "B")}
    at = days.get_loc(SPIKE)
    if change == "spike":
        walks["A"][at] *= 50.0
    else:
        walks["A"][at:] *= 1.6
    uni = Universe(name=change, base_currency="USD",
                   instruments=[Instrument(symbol=s, source="synthetic", currency="USD") for s in walks])
    return UniverseData(universe=uni, as_of=None, bars={s: _bars(c, days) for s, c in walks.items()})


def _a_value(equity: pd.Series, weights: pd.DataFrame | None, day: pd.Timestamp) -> float:
    assert weights is not None
    return float(weights.loc[day, "A"] * equity.loc[day])


def _check(equity: pd.Series, weights: pd.DataFrame | None, data: UniverseData, change: str, name: str) -> None:
    """A's holding is valued at the close before SPIKE on SPIKE (and, for a spike, the day after)."""
    a = data.bars["A"]["close"]
    prev, nxt = a.index[a.index.get_loc(SPIKE) - 1], a.index[a.index.get_loc(SPIKE) + 1]
    held = _a_value(equity, weights, prev)
    assert held > 0.05 * equity.loc[prev], f"{name} holds no A before the spike: the test would prove nothing"
    units = held / a.loc[prev]
    assert _a_value(equity, weights, SPIKE) == pytest.approx(units * a.loc[prev], rel=1e-9), name
    if change == "spike":
        assert _a_value(equity, weights, nxt) == pytest.approx(units * a.loc[prev], rel=1e-9), name
        rets = equity.pct_change().loc[SPIKE:nxt]
        assert rets.abs().max() < 0.05, f"{name}: equity jumped {rets.to_dict()}"
    else:
        assert _a_value(equity, weights, nxt) == pytest.approx(units * a.loc[nxt], rel=1e-9), name


@pytest.mark.parametrize("change", ["spike", "move"])
def test_the_agent_replay_values_its_book_at_the_close_before_a_refused_print(change: str) -> None:
    data = _data(change)
    run = replay(data, "agent", date(2020, 1, 2), date(2020, 4, 30), client=Wants("A", "B"))
    _check(run.equity, run.weights, data, change, "agent")
    # the symbol stays refused by the gate: nothing in A is bought or sold on or after the print
    assert not [d for d in run.decisions if d["symbol"] == "A" and d["action"] in ("buy", "sell")
                and d["date"] >= SPIKE.date().isoformat()]


@pytest.mark.parametrize("change", ["spike", "move"])
def test_the_benchmarks_value_their_books_at_the_close_before_a_refused_print(change: str) -> None:
    data = _data(change)
    sessions = sessions_between(data, date(2020, 1, 2), date(2020, 4, 30))
    for name, result in run_baselines(data.bars, sessions[0], sessions[-1], names=("buyhold", "equalweight")).items():
        run = result.to_policy_run()
        _check(run.equity, run.weights, data, change, name)


def test_an_eval_report_with_a_bad_print_reads_no_crash(tmp_path: Path) -> None:
    lines = ['name = "spiky"', 'base_currency = "USD"']
    for symbol in ("SP500", "NASDAQ"):
        bars = sample_frame(symbol).loc["2011-01-01":"2012-12-31"].copy()
        if symbol == "SP500":
            bars.loc["2012-06-01", ["open", "high", "low", "close"]] *= 50.0
        csv = tmp_path / f"{symbol.lower()}.csv"
        bars.rename(columns=str.title).rename_axis("Date").to_csv(csv)
        lines += ["[[instruments]]", f'symbol = "{symbol}"', f'source = "csv:{csv}"', 'currency = "USD"']
    toml = tmp_path / "spiky.toml"
    toml.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = EvalConfig(universe=str(toml), start=date(2012, 5, 1), end=date(2012, 6, 29), out=tmp_path / "out",
                     policies=("agent", "buyhold", "equalweight"))
    report = run_eval(Settings(home=tmp_path / "home"), cfg, client=Wants("SP500", "NASDAQ")).report  # type: ignore[arg-type]
    for name, block in report["policies"].items():
        if name == "holdall":
            continue
        equity = pd.Series({d: v for d, v in block["equity"]})
        assert equity.loc["2012-05-31"] != equity.iloc[0], f"{name} never traded: the test would prove nothing"
        assert block["metrics"]["max_drawdown"] > -0.2, name
        assert block["metrics"]["volatility"] < 0.6, name


def test_a_benchmark_in_another_currency_applies_the_jump_test_to_the_instruments_own_closes() -> None:
    # +49 % in EUR (the gate accepts it) on a day the euro gains 3 %: +53 % in USD must not be refused
    days = pd.bdate_range("2020-01-01", "2020-04-30", name="date")
    at = days.get_loc(SPIKE)
    close = np.full(len(days), 100.0)
    close[at:] *= 1.49
    eur = pd.Series(np.where(days >= SPIKE, 1.1 * 1.03, 1.1), index=days)
    uni = Universe(name="eur", base_currency="USD",
                   instruments=[Instrument(symbol="E", source="synthetic", currency="EUR")])
    data = UniverseData(universe=uni, as_of=None, bars={"E": _bars(close, days)}, fx_series={"EUR": eur})
    from evals.run import _bars_in_base

    run = run_baselines(_bars_in_base(data), days[0], days[-1], names=("buyhold",))["buyhold"]
    units = run.holdings_value.loc[days[at - 1], "E"] / (100.0 * 1.1)
    assert run.holdings_value.loc[SPIKE, "E"] == pytest.approx(units * 149.0 * 1.1 * 1.03, rel=1e-9)
