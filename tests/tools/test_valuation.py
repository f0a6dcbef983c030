"""The valuation close (``tools.validation.valuation_rows``): a close the gate's jump test refuses never values a book.

The rule, on synthetic closes: a one-day ×50 print that reverts is valued at the last close before it on both
days; a permanent +60 % move at the old close on its day and at its own close afterwards; nothing after the day
is read (the whole-history computation, cut at each day, equals the computation on the bars truncated there).
The market snapshot (the daily run's and the replay's quotes) prices a held position at it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agent.day import market_snapshot
from tools.data import UniverseData
from tools.models import Instrument, Universe
from tools.validation import PLATEAU_SESSIONS, ValidationTimeline, validate_bars, valuation_rows
from tools.view import MarketView, precompute_indicators, precompute_validation


def _closes(n: int = 40, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))


def _frame(closes: np.ndarray) -> pd.DataFrame:
    idx = pd.bdate_range("2021-01-04", periods=len(closes), name="date")
    return pd.DataFrame({"open": closes, "high": closes * 1.01, "low": closes * 0.99, "close": closes,
                         "volume": 1e6}, index=idx)


def _valued(closes: np.ndarray) -> np.ndarray:
    df = _frame(closes)
    return closes[valuation_rows(closes, df.index)]


def test_a_one_day_spike_is_valued_at_the_close_before_it_and_its_revert_at_its_own() -> None:
    c = _closes()
    c[20] *= 50.0
    v = _valued(c)
    assert v[20] == c[19]  # the spike: refused against the last accepted close
    assert v[21] == c[21]  # the return from it: −98 % from the spike, but within max_jump of the accepted close
    keep = np.r_[0:20, 21:40]
    assert np.array_equal(v[keep], c[keep])


@pytest.mark.parametrize("days", [2, 3, 4])
def test_a_spike_held_for_several_days_is_refused_on_each_and_its_revert_is_valued(days: int) -> None:
    c = _closes()
    c[20 : 20 + days] *= 50.0
    v = _valued(c)
    assert np.all(v[20 : 20 + days] == c[19])
    assert np.array_equal(v[20 + days :], c[20 + days :])


def test_a_permanent_move_is_valued_at_the_old_close_until_it_has_held_for_plateau_sessions() -> None:
    c = _closes()
    c[25:] *= 1.6
    v = _valued(c)
    assert PLATEAU_SESSIONS == 5
    assert np.all(v[25:29] == c[24])  # its first 4 sessions: refused against the last accepted close
    assert np.array_equal(v[29:], c[29:]) and np.array_equal(v[:25], c[:25])  # from the 5th: the new level


def test_refused_closes_are_accepted_after_plateau_sessions_whatever_their_path() -> None:
    # a -60% gap, then -12% a session: no two refused closes hold one level, but the crash is real (an
    # attacker's case: it was valued at the pre-crash close until the series ended, and cashed out there)
    c = _closes()
    c[20:] = c[19] * 0.4 * 0.88 ** np.arange(len(c) - 20)
    v = _valued(c)
    assert np.all(v[20:24] == c[19])  # four refused sessions at the last accepted close
    assert np.array_equal(v[24:], c[24:])  # the 5th is accepted, and every later close is judged against it
    noisy = _closes()
    noisy[20:] = noisy[19] * np.resize([0.30, 0.40, 0.46], len(noisy) - 20)  # a 53% range after a collapse
    w = _valued(noisy)
    assert np.all(w[20:24] == noisy[19]) and np.array_equal(w[24:], noisy[24:])


def test_a_spike_right_after_a_nan_bar_is_refused() -> None:
    c = _closes()
    c[20], c[21] = np.nan, c[21] * 50.0
    df = _frame(c)
    rows = valuation_rows(c, df.index)
    assert rows[20] == 19 and rows[21] == 19 and rows[22] == 22
    reasons = validate_bars("X", df.iloc[:22], df.index[21].date()).reasons
    assert any(r.startswith("jump:") and f"on {df.index[21].date()}" in r for r in reasons), reasons


def test_a_recorded_split_is_no_refusal_and_a_non_positive_or_nan_close_never_values() -> None:
    c = _closes()
    c[10:] *= 0.25  # a 4:1 split, recorded
    c[30], c[33] = np.nan, 0.0
    df = _frame(c)
    rows = valuation_rows(c, df.index, splits={df.index[10].date(): 4.0})
    assert rows[10] == 10 and rows[30] == 29 and rows[33] == 32
    assert valuation_rows(c, df.index)[10] == 9  # unrecorded: the gate's jump, held


def test_the_valuation_holds_exactly_the_days_whose_move_the_gate_reports_as_a_jump() -> None:
    c = _closes(80)
    c[10:13] *= 50.0  # held three days
    c[20] *= 50.0
    c[30], c[31] = np.nan, c[31] * 50.0  # right after a NaN bar
    c[40:] *= 0.3
    df = _frame(c)
    rows = valuation_rows(c, df.index)
    timeline = ValidationTimeline("X", df)
    for j in range(1, len(c)):
        cut = df.iloc[: j + 1]
        reasons = validate_bars("X", cut, cut.index[-1].date()).reasons
        assert timeline.as_of(cut.index[-1].date()).reasons == reasons, j
        jumped_today = any(r.startswith("jump:") and f"on {cut.index[-1].date()}" in r for r in reasons)
        assert (rows[j] != j and np.isfinite(c[j])) == jumped_today, j


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_the_valuation_never_reads_a_later_bar(seed: int) -> None:
    rng = np.random.default_rng(seed)
    c = _closes(300, seed=seed)
    for at in rng.choice(np.arange(1, 300), 12, replace=False):  # spikes (some held for days), crashes, bad prints
        c[at : at + int(rng.integers(1, 8))] *= rng.choice([50.0, 0.02, 1.6, 0.0, np.nan])
    df = _frame(c)
    whole = valuation_rows(c, df.index)
    timeline = ValidationTimeline("X", df)
    for end in range(len(c) + 1):
        assert np.array_equal(valuation_rows(c[:end], df.index[:end]), whole[:end]), end
        assert np.array_equal(timeline.valuation_rows(end), whole[:end]), end


def _universe_data(closes: dict[str, np.ndarray]) -> UniverseData:
    uni = Universe(name="spiky", base_currency="USD",
                   instruments=[Instrument(symbol=s, source="synthetic", currency="USD") for s in closes])
    return UniverseData(universe=uni, as_of=None, bars={s: _frame(c) for s, c in closes.items()})


@pytest.mark.parametrize("precomputed", [False, True], ids=["daily", "replay"])
def test_the_snapshot_prices_a_refused_print_at_the_close_it_is_valued_at(precomputed: bool) -> None:
    a, b = _closes(120, seed=1), _closes(120, seed=2)
    a[100] *= 50.0
    data = _universe_data({"A": a, "B": b})
    idx = data.bars["A"].index
    extra = {"indicators": precompute_indicators(data), "validation": precompute_validation(data)} if precomputed else {}
    for day, price, held in ((99, a[99], None), (100, a[99], 99), (101, a[101], None), (102, a[102], None)):
        market = market_snapshot(MarketView.build(data, idx[day].date(), **extra), data.universe)  # type: ignore[arg-type]
        q = market.quotes["A"]
        assert q.price == price and q.price_date == idx[day].date(), day
        assert q.valued_at == (None if held is None else idx[held].date()), day
        if held is not None:
            assert not q.tradeable and q.untradeable_reason is not None
            assert q.untradeable_reason.startswith("jump:") and f"valued at the {idx[held].date()} close" in q.untradeable_reason
        # the correlation reads the valuation closes: no ±4,900 % return in its window
        assert market.correlations["A"]["B"] == pytest.approx(_correlation(a, b, day), abs=1e-9), day


def _correlation(a: np.ndarray, b: np.ndarray, day: int, window: int = 60) -> float:
    va, vb = _valued(a)[: day + 1], b[: day + 1]
    ra, rb = va[1:] / va[:-1] - 1.0, vb[1:] / vb[:-1] - 1.0
    return float(np.corrcoef(ra[-window:], rb[-window:])[0, 1])


def test_a_view_without_timelines_values_as_a_replays_view() -> None:
    c = _closes(80)
    c[50] *= 50.0
    data = _universe_data({"A": c})
    day = data.bars["A"].index[51].date()
    daily = MarketView.build(data, day)
    replay = MarketView.build(data, day, validation=precompute_validation(data))
    assert np.array_equal(daily.valuation_rows("A"), replay.valuation_rows("A"))
    assert daily.valuation_closes("A").equals(replay.valuation_closes("A"))
    assert daily.valuation_closes("A").iloc[50] == c[49]
    early = MarketView.build(data, data.bars["A"].index[40].date())
    assert early.valuation_closes("A") is early.closes("A")  # nothing held: the closes themselves


def test_the_daily_results_file_says_which_close_a_refused_symbol_is_valued_at() -> None:
    from agent.daily import _untradeable

    c = _closes(120, seed=3)
    c[100] *= 50.0
    data = _universe_data({"A": c, "B": _closes(120, seed=4)})
    idx = data.bars["A"].index
    on_the_print = _untradeable(MarketView.build(data, idx[100].date()))
    after = _untradeable(MarketView.build(data, idx[101].date()))

    assert set(on_the_print) == {"A"} and on_the_print["A"][0].startswith("jump:")
    assert on_the_print["A"][-1] == f"valued at the {idx[99].date()} close"
    assert not any("valued at" in r for r in after["A"])  # the revert is accepted: valued at its own close


def test_a_quote_is_exit_only_once_a_lasting_jump_is_accepted_and_never_on_the_refused_days() -> None:
    c = _closes(120, seed=6)
    c[100:] *= 0.4  # a real crash of -60%
    data = _universe_data({"A": c, "B": _closes(120, seed=7)})
    idx = data.bars["A"].index
    flags = [market_snapshot(MarketView.build(data, idx[d].date()), data.universe).quotes["A"] for d in range(99, 106)]
    assert [q.tradeable for q in flags] == [True] + [False] * 6  # the gate keeps refusing it (its jump window)
    assert [q.exit_only for q in flags] == [False] * 5 + [True, True]  # from the 5th session on: its close is accepted
    assert [q.valued_at is None for q in flags] == [True] + [False] * 4 + [True, True]
