"""Why a policy traded and why it was not invested (evals.attribution): causes that add up."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from agent.llm.base import LLMRequest
from agent.llm.offline import OfflineRulesClient
from agent.models import RiskPlan
from agent.profiles import PROFILES
from evals.attribution import (
    BOOK_VOL,
    BRAKE,
    BRAKE_TRIM,
    CAP,
    OFF_TARGET,
    SIZED,
    why_not_invested,
    why_traded,
)
from evals.models import PolicyRun, Trade

DAYS = pd.bdate_range("2024-01-01", periods=4)


def _run(weights: list[dict[str, float]], targets: list[dict[str, object]], trades: tuple[Trade, ...] = (),
         decisions: tuple[dict[str, object], ...] = ()) -> PolicyRun:
    w = pd.DataFrame(weights, index=DAYS).fillna(0.0)
    return PolicyRun(name="agent", equity=pd.Series(10_000.0, index=DAYS), exposure=w.sum(axis=1), weights=w,
                     targets=tuple(targets), trades=trades, decisions=decisions)


def _t(day: int, symbol: str, target: float, reason: str) -> dict[str, object]:
    return {"date": DAYS[day].date().isoformat(), "symbol": symbol, "target": target, "reason": reason}


def test_the_uninvested_share_is_split_into_causes_that_add_up() -> None:
    run = _run(
        weights=[{}, {"A": 0.12}, {"A": 0.12}, {"A": 0.12}],
        targets=[_t(0, "A", 0.12, "vol 25% -> size 0.12"), _t(0, "B", 0.0, "combined -0.300; at or below the exit score: exit / stay out"),
                 _t(0, "C", 0.0, "combined +0.100; vol 20% -> size 0.2; below entry score: no entry")],
    )
    rows = {r["cause"]: r["share"] for r in why_not_invested(run, ["A", "B", "C"], 0.2)}

    assert sum(rows.values()) == pytest.approx(1.0 - float(run.exposure.mean()))
    assert rows[CAP] == pytest.approx(0.4)  # 3 names x 20% leave 40% in cash whatever happens
    assert rows[SIZED] == pytest.approx(3 * 0.08 / 4)  # A's plan was 8 points under the cap on days 2-4
    assert rows["score at or below the exit"] == pytest.approx(3 * 0.2 / 4)
    assert rows["score below the entry"] == pytest.approx(3 * 0.2 / 4)
    assert rows["in no plan yet (untradeable, no data)"] == pytest.approx(3 * 0.2 / 4)  # day 1: nothing decided
    assert OFF_TARGET not in rows  # every fill reached its target


def test_more_names_than_the_equity_holds_at_the_cap_still_add_up_to_the_cash() -> None:
    names = [f"S{i:02d}" for i in range(20)]  # 20 names at a 20% cap could hold 4x the equity
    held = {s: 0.045 for s in names[:18]}  # 81% invested
    run = _run(
        weights=[{}, held, held, held],
        targets=[*(_t(0, s, 0.045, "vol 20% -> size 0.045") for s in names[:18]),
                 _t(0, "S18", 0.0, "combined -0.300; at or below the exit score: exit / stay out"),
                 _t(0, "S19", 0.0, "combined +0.100; below entry score: no entry")],
    )
    rows = {r["cause"]: r["share"] for r in why_not_invested(run, names, 0.2)}

    assert sum(rows.values()) == pytest.approx(1.0 - float(run.exposure.mean()))
    assert all(0.0 <= v <= 1.0 for v in rows.values()), rows  # no row above the cash, none negative
    assert CAP not in rows and "shorts, cash held back for fees, rounding" not in rows
    # days 2-4: 19% cash split in proportion to the shortfalls: 18 x 15.5 points sized below, 2 x 20 points out
    share = 0.19 / (18 * 0.155 + 2 * 0.2)
    assert rows[SIZED] == pytest.approx(3 / 4 * 18 * 0.155 * share)
    assert rows["score at or below the exit"] == pytest.approx(3 / 4 * 0.2 * share)


def test_trades_are_classed_by_what_they_did_to_the_position() -> None:
    d = [x.date() for x in DAYS]
    trades = (Trade(d[1], "A", "buy", 10, 100.0, 1.0), Trade(d[2], "A", "buy", 5, 100.0, 0.5),
              Trade(d[3], "A", "sell", 15, 100.0, 1.5), Trade(d[3], "B", "buy", 1, 50.0, 0.05))
    decisions = ({"date": d[0].isoformat(), "symbol": "A", "action": "buy", "clamped": "max_position_weight"},
                 {"date": d[1].isoformat(), "symbol": "A", "action": "buy", "clamped": None},
                 {"date": d[2].isoformat(), "symbol": "A", "action": "sell", "clamped": None},
                 {"date": d[2].isoformat(), "symbol": "B", "action": "buy", "clamped": None})
    rows = {r["cause"]: r for r in why_traded(_run([{}] * 4, [], trades, decisions))}

    assert rows["entry"]["fills"] == 2 and rows["entry"]["notional"] == pytest.approx(1050.0)
    assert rows["top-up after a clamp"]["fills"] == 1  # the first buy was clamped: the plan asked again
    assert rows["exit"]["fees"] == pytest.approx(1.5)
    assert sum(r["fee_share"] for r in rows.values()) == pytest.approx(1.0)


def test_a_sale_the_drawdown_brake_asked_for_is_its_own_kind_of_trim() -> None:
    d = [x.date() for x in DAYS]
    trades = (Trade(d[1], "A", "buy", 10, 100.0, 1.0), Trade(d[2], "A", "sell", 4, 100.0, 0.4),
              Trade(d[3], "A", "sell", 2, 100.0, 0.2))
    decisions = ({"date": d[0].isoformat(), "symbol": "A", "action": "buy", "clamped": None, "reason": "vol 20%"},
                 {"date": d[1].isoformat(), "symbol": "A", "action": "sell", "clamped": None,
                  "reason": "drawdown 12.0% (brake from 5.0%, 0 at 20.0%): at most 0.533 x size = 0.1067"},
                 {"date": d[2].isoformat(), "symbol": "A", "action": "sell", "clamped": None, "reason": "band"})
    rows = {r["cause"]: r["fills"] for r in why_traded(_run([{}] * 4, [], trades, decisions))}
    assert rows == {"entry": 1, BRAKE_TRIM: 1, "trim": 1}


def test_what_the_drawdown_brake_held_back_is_its_own_cause() -> None:
    capped = "combined +0.500; vol 20% -> size 0.2000; drawdown 12.0% (brake from 5.0%, 0 at 20.0%): at most 0.533 x size = 0.1067"
    closed = ("combined -0.400; at or below the exit score: the core only; core 1 x size 0.2000 = 0.2000; drawdown 20.0% "
              "(brake from 5.0%, 0 at 20.0%): at most 0.000 x size = 0.0000")
    run = _run(weights=[{}, {"A": 0.1067}, {"A": 0.1067}, {"A": 0.1067}],
               targets=[_t(0, "A", 0.1067, capped), _t(0, "B", 0.0, closed)])
    rows = {r["cause"]: r["share"] for r in why_not_invested(run, ["A", "B"], 0.2)}

    assert sum(rows.values()) == pytest.approx(1.0 - float(run.exposure.mean()))
    assert rows[BRAKE] == pytest.approx(3 * (0.2 - 0.1067) / 4 + 3 * 0.2 / 4)  # not "sized below the cap", not "exit"
    assert SIZED not in rows and "score at or below the exit" not in rows


def test_only_the_brakes_part_of_a_capped_size_is_the_brakes() -> None:
    # a size of 0.10 (under the 20% cap) capped at half of it: 5 points are the brake's, 10 points the sizing's
    capped = "vol 30% -> size 0.1000; drawdown 12.5% (brake from 5.0%, 0 at 20.0%): at most 0.500 x size = 0.0500"
    run = _run(weights=[{}, {"A": 0.05}, {"A": 0.05}, {"A": 0.05}], targets=[_t(0, "A", 0.05, capped)])
    rows = {r["cause"]: r["share"] for r in why_not_invested(run, ["A"], 0.2)}
    assert rows[BRAKE] == pytest.approx(3 * 0.05 / 4) and rows[SIZED] == pytest.approx(3 * 0.10 / 4)


def test_the_book_volatility_targets_part_of_a_size_is_its_own_and_the_brakes_is_taken_from_what_is_left() -> None:
    # the rules' own rationale: A's size 0.15 / 0.5 = 0.3 is capped at 0.2; with B (unmeasured pair: counted as one)
    # the book is 2 x 0.2 x 0.5 = 20% of volatility, the 10% target halves each size to 0.1, and the brake at 12.5% of
    # drawdown (from 5%, 0 at 20%) halves that again
    ctx = {"as_of": "2024-03-01", "equity": 1e4, "cash": 1e4, "positions": {}, "drawdown": 0.125,
           "limits": {"max_position_weight": 0.2, "max_gross_exposure": 1.0, "max_open_positions": 3},
           "signals": {s: {"analyst": {"score": 0.8, "confidence": 0.8}} for s in "AB"}, "volatility": {"A": 0.5, "B": 0.5},
           "profile": {**PROFILES["balanced"].context(), "brake": 0.25, "book_vol": 0.10}}
    plan = RiskPlan.model_validate_json(OfflineRulesClient().complete(LLMRequest(node="risk", messages=[], context=ctx))
                                        .content or "")
    a = next(t for t in plan.targets if t.symbol == "A")
    assert a.target_weight == pytest.approx(0.05, abs=1e-4)
    run = _run(weights=[{}, {"A": 0.05}, {"A": 0.05}, {"A": 0.05}], targets=[_t(0, "A", a.target_weight, a.rationale)])
    rows = {r["cause"]: r["share"] for r in why_not_invested(run, ["A"], 0.2)}
    assert rows[BOOK_VOL] == pytest.approx(3 * 0.10 / 4, abs=1e-4) and rows[BRAKE] == pytest.approx(3 * 0.05 / 4, abs=1e-4)
    assert SIZED not in rows or rows[SIZED] == pytest.approx(0.0, abs=1e-4)
    assert sum(rows.values()) == pytest.approx(1.0 - float(run.exposure.mean()))


def test_after_a_breaker_latched_the_cash_is_the_kill_switchs() -> None:
    # found by an attacker: a book HALTED for years showed its cash as "sized below the cap" (its last plan)
    run = _run(weights=[{}, {"A": 0.12}, {"A": 0.12}, {"A": 0.12}], targets=[_t(0, "A", 0.12, "vol 25% -> size 0.12")])
    halted = dataclasses.replace(run, notes=(f"{DAYS[1].date()}: kill switch ACTIVE -> HALTED: drawdown 21% from peak",))
    rows = {r["cause"]: r["share"] for r in why_not_invested(halted, ["A"], 0.2)}
    assert sum(rows.values()) == pytest.approx(1.0 - float(run.exposure.mean()))
    assert rows["kill switch HALTED"] == pytest.approx(2 * 0.08 / 4)  # days 3-4: decided after the latch on day 2
    assert rows[SIZED] == pytest.approx(0.08 / 4)
