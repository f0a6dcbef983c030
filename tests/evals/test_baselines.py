"""evals.baselines: the paper broker's fee model and next-open rule, rebalancing, listings, delistings."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from evals.baselines import BENCHMARK_NOTE, Fees, run_baseline, run_baselines
from evals.models import PolicyRun, Trade
from tests.evals.helpers import bars, random_bars, sessions

C, S = 0.001, 0.0005  # the paper broker's default commission and slippage


def _one_symbol(n: int = 5) -> dict[str, pd.DataFrame]:
    closes = [100.0, 102.0, 104.0, 103.0, 105.0][:n]
    opens = [99.0, 101.0, 103.0, 104.0, 104.5][:n]
    return {"A": bars(closes, opens)}


def test_buyhold_decides_on_the_first_close_and_fills_at_the_next_open_with_fees() -> None:
    res = run_baseline("buyhold", _one_symbol(), "2020-01-01", "2020-12-31", cash=10_000.0)
    assert res.equity.iloc[0] == 10_000.0  # day 0: the decision reads its close, nothing filled yet
    (trade,) = res.trades
    assert trade.date == date(2020, 1, 3) and trade.side == "buy"
    assert trade.price == pytest.approx(101.0 * (1 + S))
    assert trade.fees == pytest.approx(trade.quantity * trade.price * C)
    # all the cash, scaled so fees fit: quantity × price × (1 + commission) = cash
    assert trade.quantity * trade.price * (1 + C) == pytest.approx(10_000.0, rel=1e-9)
    cash_left = 10_000.0 - trade.quantity * trade.price - trade.fees
    assert cash_left >= 0
    expected = cash_left + trade.quantity * np.array([102.0, 104.0, 103.0, 105.0])
    np.testing.assert_allclose(res.equity.to_numpy()[1:], expected)
    (decision,) = res.decisions
    assert decision["date"] == date(2020, 1, 2) and decision["action"] == "buy"


def test_fees_can_be_changed_and_zero_fees_invest_everything() -> None:
    res = run_baseline("buyhold", _one_symbol(), "2020-01-01", "2020-12-31", cash=10_000.0,
                       fees=Fees(commission_bps=0, slippage_bps=0))
    (trade,) = res.trades
    assert trade.price == 101.0 and trade.fees == 0.0
    assert res.equity.iloc[-1] == pytest.approx(10_000.0 / 101.0 * 105.0)
    with pytest.raises(ValueError, match="commission_bps"):
        Fees(commission_bps=-1)


def test_holdall_never_trades() -> None:
    res = run_baseline("holdall", random_bars(3, 60), "2020-01-01", "2020-12-31", cash=5_000.0)
    assert res.trades == () and res.decisions == ()
    assert (res.equity == 5_000.0).all()
    assert (res.positions_value == 0.0).all()


def test_equalweight_rebalances_at_the_first_session_of_each_month() -> None:
    data = random_bars(4, 130, seed=1)
    res = run_baseline("equalweight", data, "2020-01-01", "2020-12-31")
    idx = res.equity.index
    firsts = [d.date() for i, d in enumerate(idx) if i > 1 and d.month != idx[i - 1].month]
    assert sorted({t.date for t in res.trades}) == [idx[1].date(), *firsts]
    # each decision reads the close of the session before the fill
    decision_days = sorted({d["date"] for d in res.decisions})
    assert decision_days == [idx[0].date(), *(idx[idx.get_loc(pd.Timestamp(f)) - 1].date() for f in firsts)]
    # right after a rebalance the weights are equal at the open (up to the fee scaling of buys)
    day = pd.Timestamp(firsts[1])
    opens = np.array([data[s].loc[day, "open"] for s in sorted(data)])
    q = res.holdings_value.loc[day].to_numpy() / np.array([data[s].loc[day, "close"] for s in sorted(data)])
    value_at_open = q * opens
    assert value_at_open.std() / value_at_open.mean() < 0.01


def test_buyhold_and_equalweight_start_identical_and_cash_never_goes_negative() -> None:
    data = random_bars(6, 300, seed=2)
    out = run_baselines(data, "2020-01-01", "2021-12-31")
    bh, ew = out["buyhold"], out["equalweight"]
    assert bh.equity.index.equals(ew.equity.index)
    first_month = ew.equity.index < "2020-02-01"
    np.testing.assert_allclose(bh.equity[first_month], ew.equity[first_month])
    for res in out.values():
        cash = res.equity - res.positions_value
        assert (cash >= -1e-6).all()


def test_a_gap_up_at_the_open_scales_the_buys_down() -> None:
    data = {"A": bars([100.0, 100.0, 100.0], [100.0, 150.0, 100.0]), "B": bars([10.0] * 3)}
    res = run_baseline("buyhold", data, "2020-01-01", "2020-12-31", cash=1_000.0)
    spent = sum(t.quantity * t.price + t.fees for t in res.trades)
    assert spent == pytest.approx(1_000.0, rel=1e-9)
    a = next(t for t in res.trades if t.symbol == "A")
    b = next(t for t in res.trades if t.symbol == "B")
    # sized on the decision day's close (both 100 and 10: equal value then), both scaled by the same factor
    assert a.quantity * 100.0 == pytest.approx(b.quantity * 10.0, rel=1e-9)
    assert a.quantity * a.price > b.quantity * b.price  # the gap up made A's share dearer at the fill


def test_an_instrument_without_a_bar_on_the_fill_session_fills_at_its_next_open() -> None:
    idx = sessions(6)
    a = bars([10.0] * 6, index=idx)
    b = bars([20.0, 21.0, 22.0, 23.0, 24.0], [20.0, 21.0, 22.0, 23.0, 24.0], index=idx.delete(1))  # holiday
    res = run_baseline("buyhold", {"A": a, "B": b}, idx[0], idx[-1])
    fills = {t.symbol: t for t in res.trades}
    assert fills["A"].date == idx[1].date()
    assert fills["B"].date == idx[2].date() and fills["B"].price == pytest.approx(21.0 * (1 + S))
    # B is valued at its last close on the session it has no bar
    assert res.holdings_value.loc[idx[1], "B"] == 0.0


def test_a_delisted_position_is_sold_at_its_last_close_once_five_sessions_have_no_bar() -> None:
    idx = sessions(60)
    data = {"A": bars(np.full(60, 10.0), index=idx), "B": bars(np.full(20, 50.0), index=idx[:20])}
    res = run_baseline("buyhold", data, idx[0], idx[-1], cash=10_000.0)
    (gone,) = res.delistings  # B's last bar is idx[19]: the 5th session without one is idx[24]
    assert gone.symbol == "B" and gone.date == idx[24].date() and gone.price == 50.0 and gone.quantity > 0
    sell = next(t for t in res.trades if t.side == "sell")
    assert sell.date == idx[24].date() and sell.price == pytest.approx(50.0 * (1 - S))
    assert sell.quantity == pytest.approx(gone.quantity)
    assert res.holdings_value["B"].iloc[20:24].eq(gone.quantity * 50.0).all()  # held at its last close till then
    assert res.holdings_value["B"].iloc[24:].eq(0.0).all()
    # the proceeds stay in cash: equity is flat after the sale (prices are flat)
    assert res.equity.iloc[24:].nunique() == 1
    assert any(d["reason"].startswith("delisted: no bar since") for d in res.decisions)


def test_a_delisting_reads_nothing_after_its_day_and_a_series_that_comes_back_is_bought_again() -> None:
    idx = pd.bdate_range("2020-01-02", "2020-06-30", name="date")
    paused = idx[(idx < "2020-02-03") | (idx >= "2020-04-01")]  # no bars in February and March
    data = {"A": bars(np.full(len(idx), 10.0), index=idx), "B": bars(np.full(len(paused), 50.0), index=paused)}
    whole = run_baselines(data, idx[0], idx[-1], names=("buyhold", "equalweight"))
    for cut in ("2020-02-14", "2020-03-20"):  # windows that end inside the pause
        part = run_baselines(data, idx[0], pd.Timestamp(cut), names=("buyhold", "equalweight"))
        for name in ("buyhold", "equalweight"):
            assert [t for t in whole[name].trades if t.date <= part[name].equity.index[-1].date()] == list(part[name].trades)
            assert whole[name].equity.loc[:cut].tolist() == part[name].equity.tolist()
    (gone,) = whole["buyhold"].delistings
    assert gone.date == (idx[idx < "2020-02-03"][-1] + pd.offsets.BDay(5)).date()  # 5 sessions after its last bar
    rebought = [t for t in whole["equalweight"].trades if t.symbol == "B" and t.side == "buy" and t.date > gone.date]
    assert rebought and rebought[0].date >= date(2020, 4, 1)  # a later rebalance, once it trades again
    assert not [t for t in whole["buyhold"].trades if t.symbol == "B" and t.date > gone.date]  # never rebalances


def test_a_calendar_gap_at_the_end_is_not_a_delisting() -> None:
    idx = sessions(30)
    data = {"A": bars(np.full(30, 10.0), index=idx), "B": bars(np.full(28, 5.0), index=idx[:28])}
    res = run_baseline("buyhold", data, idx[0], idx[-1])
    assert res.delistings == ()


def test_an_instrument_listed_later_joins_equalweight_at_the_next_rebalance_but_never_buyhold() -> None:
    idx = pd.bdate_range("2020-01-02", "2020-04-30", name="date")
    late_idx = idx[idx >= "2020-02-10"]
    data = {"A": bars(np.full(len(idx), 10.0), index=idx), "B": bars(np.full(len(late_idx), 20.0), index=late_idx)}
    out = run_baselines(data, idx[0], idx[-1])
    assert all(t.symbol == "A" for t in out["buyhold"].trades)
    assert any("never bought: B" in n for n in out["buyhold"].notes)
    b_buys = [t for t in out["equalweight"].trades if t.symbol == "B"]
    assert b_buys[0].date == date(2020, 3, 2)  # first session of March: the first rebalance after its listing


def test_to_policy_run_gives_exposure_and_weights() -> None:
    res = run_baseline("equalweight", random_bars(3, 80), "2020-01-01", "2020-12-31")
    run = res.to_policy_run()
    assert isinstance(run, PolicyRun) and run.name == "equalweight"
    assert run.exposure.iloc[0] == 0.0 and 0.99 < run.exposure.iloc[-1] <= 1.0
    np.testing.assert_allclose(run.weights.sum(axis=1), run.exposure)
    assert BENCHMARK_NOTE in run.notes
    assert run.trade_pnls is not None and len(run.trade_pnls) >= 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "nope"}, "unknown baseline"),
        ({"start": "2021-01-01", "end": "2020-01-01"}, "after end"),
        ({"start": "2030-01-01", "end": "2030-02-01"}, "no bars"),
        ({"cash": 0.0}, "cash"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, match: str) -> None:
    args = {"name": "buyhold", "start": "2020-01-01", "end": "2020-12-31", "cash": 1000.0} | kwargs
    with pytest.raises(ValueError, match=match):
        run_baseline(args.pop("name"), random_bars(2, 10), args.pop("start"), args.pop("end"), **args)


def test_bars_without_open_or_a_datetime_index_are_refused() -> None:
    with pytest.raises(ValueError, match="lack columns"):
        run_baseline("buyhold", {"A": bars([1.0, 2.0]).drop(columns="open")}, "2020-01-01", "2020-12-31")
    with pytest.raises(ValueError, match="DatetimeIndex"):
        run_baseline("buyhold", {"A": bars([1.0, 2.0]).reset_index(drop=True)}, "2020-01-01", "2020-12-31")


def test_bad_prices_are_no_bar() -> None:
    data = {"A": bars([10.0, np.nan, -1.0, 11.0, 12.0], [10.0, 10.0, 10.0, 0.0, 12.0])}
    res = run_baseline("buyhold", data, "2020-01-01", "2020-12-31")
    assert len(res.equity) == 3  # NaN and negative closes are not sessions
    (trade,) = res.trades  # the open of 0 is unusable: the buy waits for the next usable open
    assert trade.price == pytest.approx(12.0 * (1 + S))
    assert np.isfinite(res.equity).all()


def test_a_trade_is_validated_and_keeps_a_plain_date() -> None:
    t = Trade(pd.Timestamp("2020-01-03"), "A", "buy", 1.0, 10.0, 0.01)  # type: ignore[arg-type]
    assert type(t.date) is date and t.notional == 10.0
    for bad in (("hold", 1.0, 10.0, 0.0), ("buy", 0.0, 10.0, 0.0), ("sell", 1.0, float("nan"), 0.0),
                ("sell", 1.0, 10.0, -1.0)):
        with pytest.raises(ValueError, match="trade"):
            Trade(date(2020, 1, 3), "A", *bad)  # type: ignore[arg-type]
