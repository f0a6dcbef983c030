"""A close the validation gate refuses (a jump) never values a book: not the graph policies', not the benchmarks'.

A one-day ×50 print that reverts made every policy's equity jump ×50 on that weight (the report read a −91 %
drawdown and 636 % volatility); a real +60 % move is valued at the old close until it has held for 5 sessions.
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
from tools.validation import PLATEAU_SESSIONS

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
    """A's holding is valued at the close before SPIKE on SPIKE; for a spike at its own close from the revert on,
    for a lasting move from its 5th session on (``PLATEAU_SESSIONS``: the 4 before are refused too)."""
    a = data.bars["A"]["close"]
    at = a.index.get_loc(SPIKE)
    prev = a.index[at - 1]
    held = _a_value(equity, weights, prev)
    assert held > 0.05 * equity.loc[prev], f"{name} holds no A before the spike: the test would prove nothing"
    units = held / a.loc[prev]
    refused = 1 if change == "spike" else PLATEAU_SESSIONS - 1
    for day in a.index[at : at + refused + 1]:  # through the first accepted close (a sale may fill the day after)
        price = a.loc[prev] if day < a.index[at + refused] else a.loc[day]
        assert _a_value(equity, weights, day) == pytest.approx(units * price, rel=1e-9), (name, day)
    if change == "spike":
        rets = equity.pct_change().loc[SPIKE : a.index[at + 1]]
        assert rets.abs().max() < 0.05, f"{name}: equity jumped {rets.to_dict()}"


@pytest.mark.parametrize("change", ["spike", "move"])
def test_the_agent_replay_values_its_book_at_the_close_before_a_refused_print(change: str) -> None:
    data = _data(change)
    run = replay(data, "agent", date(2020, 1, 2), date(2020, 4, 30), client=Wants("A", "B"))
    _check(run.equity, run.weights, data, change, "agent")
    # the gate refuses A from the print on: nothing is bought; only a sale (Quote.exit_only) passes, and only once
    # A's close is accepted again (the revert of a spike, the 5th session of a lasting move)
    a = data.bars["A"].index
    accepted = a[a.get_loc(SPIKE) + (1 if change == "spike" else PLATEAU_SESSIONS - 1)].date().isoformat()
    after = [d for d in run.decisions if d["symbol"] == "A" and d["date"] >= SPIKE.date().isoformat()]
    assert not [d for d in after if d["action"] == "buy"]
    assert all(d["action"] == "sell" and d["date"] >= accepted for d in after if d["action"] in ("buy", "sell"))


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


# ------------------------------------------------------------------ the attacker's second round


END = pd.Timestamp("2020-03-13")  # A's last bar (a Friday): cashed out 5 sessions later


def _ending(last: str) -> UniverseData:
    """A and B random walks; A's bars stop on END, whose row is a ×50 print (``spike``) or has no prices (``nan``)."""
    days = pd.bdate_range("2019-01-01", "2020-06-30", name="date")
    rng = np.random.default_rng(4)
    walks = {s: 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, len(days)))) for s in ("A", "B")}
    bars = {s: _bars(c, days) for s, c in walks.items()}
    a = bars["A"].loc[:END].copy()
    prices = ["open", "high", "low", "close"]
    a.loc[END, prices] = a.loc[END, prices] * 50.0 if last == "spike" else np.nan
    bars["A"] = a
    uni = Universe(name=last, base_currency="USD",
                   instruments=[Instrument(symbol=s, source="synthetic", currency="USD") for s in bars])
    return UniverseData(universe=uni, as_of=None, bars=bars)


@pytest.mark.parametrize("last", ["spike", "nan"])
def test_the_daily_run_cashes_out_a_series_that_ends_on_a_refused_close_at_the_close_before_it(last: str) -> None:
    data = _ending(last)
    before = data.bars["A"].index[-2]
    run = replay(data, "agent", date(2020, 1, 2), date(2020, 4, 30), client=Wants("A", "B"))
    (cash_out,) = [t for t in run.trades if t.symbol == "A" and t.side == "sell" and t.date > END.date()]
    assert cash_out.price == pytest.approx(float(data.bars["A"].loc[before, "close"]))
    (note,) = [n for n in run.notes if "delisted" in n]
    assert f"last accepted close (of {before.date()})" in note
    assert np.isfinite(run.equity.to_numpy()).all()
    assert run.equity.pct_change().abs().max() < 0.05, "a refused close was realised"


@pytest.mark.parametrize("last", ["spike", "nan"])
def test_the_benchmarks_sell_a_series_that_ends_on_a_refused_close_at_the_close_before_it(last: str) -> None:
    data = _ending(last)
    before = data.bars["A"].index[-2]
    sessions = sessions_between(data, date(2020, 1, 2), date(2020, 4, 30))
    for name, result in run_baselines(data.bars, sessions[0], sessions[-1], names=("buyhold", "equalweight")).items():
        (gone,) = result.delistings
        assert gone.symbol == "A" and gone.price == pytest.approx(float(data.bars["A"].loc[before, "close"])), name
        assert result.to_policy_run().equity.pct_change().abs().max() < 0.05, name


def _in_euros(spiked: bool) -> UniverseData:
    """E in EUR and U in USD (base USD); EURUSD constant at 1.1, printed ×50 for three days from SPIKE when ``spiked``."""
    days = pd.bdate_range("2019-01-01", "2020-06-30", name="date")
    rng = np.random.default_rng(4)
    bars = {s: _bars(100 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, len(days)))), days) for s in ("E", "U")}
    eur = pd.Series(1.1, index=days, name="close")
    if spiked:
        eur.loc[SPIKE : SPIKE + pd.Timedelta(days=2)] *= 50.0
    uni = Universe(name="eur", base_currency="USD", instruments=[
        Instrument(symbol="E", source="synthetic", currency="EUR"),
        Instrument(symbol="U", source="synthetic", currency="USD")])
    return UniverseData(universe=uni, as_of=None, bars=bars, fx_series={"EUR": eur})


def test_an_fx_print_the_jump_test_refuses_values_and_converts_nothing_in_the_agent_replay() -> None:
    runs = {spiked: replay(_in_euros(spiked), "agent", date(2020, 1, 2), date(2020, 4, 30), client=Wants("E", "U"))
            for spiked in (False, True)}
    assert [t for t in runs[True].trades if t.symbol == "E"], "the agent never traded E: the test would prove nothing"
    # valued and filled at the last accepted rate (1.1): the same book as with no print at all
    assert runs[True].equity.equals(runs[False].equity)
    assert runs[True].trades == runs[False].trades


def test_an_fx_print_the_jump_test_refuses_values_no_benchmark() -> None:
    from evals.run import _bars_in_base

    results = {}
    for spiked in (False, True):
        data = _in_euros(spiked)
        sessions = sessions_between(data, date(2020, 1, 2), date(2020, 4, 30))
        results[spiked] = run_baselines(_bars_in_base(data), sessions[0], sessions[-1], names=("buyhold", "equalweight"))
    for name in ("buyhold", "equalweight"):
        assert results[True][name].equity.equals(results[False][name].equity), name


def test_the_fx_rate_of_a_day_is_its_last_accepted_close() -> None:
    from tools.fx import fx_rates_as_of, valued_rates

    days = pd.bdate_range("2020-01-01", periods=12, name="date")
    eur = pd.Series([1.1, 1.1, 55.0, 55.0, 1.1, np.nan, 60.0, 1.12, 0.0, 1.13, 1.13, 1.13], index=days)
    expected = [1.1, 1.1, 1.1, 1.1, 1.1, 1.1, 1.1, 1.12, 1.12, 1.13, 1.13, 1.13]
    assert valued_rates(eur).tolist() == expected
    assert [fx_rates_as_of({"EUR": eur}, "USD", d.date())["EUR"] for d in days] == expected


def test_the_portfolio_commands_buy_and_hold_reads_valuation_closes() -> None:
    from agent.cli_portfolio import _close_on_or_before

    days = pd.bdate_range("2020-01-01", periods=6, name="date")
    closes = pd.Series([100.0, 101.0, 102.0, 5100.0, np.nan, 5000.0], index=days)
    assert _close_on_or_before(closes, days[3].date(), "close") == 102.0
    assert _close_on_or_before(closes, days[5].date(), "close") == 102.0


def test_the_ledger_refuses_to_book_a_fill_that_would_make_cash_not_a_number(tmp_path: Path) -> None:
    from portfolio.errors import LedgerError
    from portfolio.ledger import Ledger
    from portfolio.models import Fill

    with Ledger(tmp_path / "book.duckdb", base_currency="USD", starting_cash=1_000) as ledger:
        fill = Fill(order_id="x", symbol="A", side="buy", quantity=1.0, price=float("nan"), commission=0.0,
                    slippage=0.0, fill_date=date(2020, 1, 2), currency="USD", fx_rate=1.0)
        with pytest.raises(LedgerError, match="not a finite amount"), ledger.transaction():
            ledger.apply_fill(fill, mark_base=float("nan"), note=None)
        assert not ledger.position_costs()  # nothing booked
