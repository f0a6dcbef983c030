"""Rule 9's drawdown brake (offline rules v9): sizes shrink as the book's drawdown nears the breaker's limit."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.profiles import PROFILES
from agent.settings import Settings
from evals.replay import latched_modes
from evals.run import EvalConfig, run_eval
from portfolio.models import RiskState
from portfolio.risk import CEILINGS, drawdown_from_peak, update_breakers
from tests.agent.test_llm_offline import LIMITS, risk, sig

CORE1 = {**PROFILES["v7"].context(), "core": 1.0}  # every name at its full size: the brake alone moves it
STRONG, VOL = {"A": {"analyst": sig(0.8, 0.8)}}, {"A": 0.5}  # size 0.15 / 0.5 = 0.30, capped at the 20% position cap


def braked(drawdown: float | None, brake: float = 0.5, **context: Any) -> dict[str, float]:
    ctx: dict[str, Any] = {"signals": STRONG, "volatility": VOL, **context}
    return risk(profile={**CORE1, "brake": brake}, drawdown=drawdown, **ctx)


def test_the_brake_caps_every_size_on_a_straight_line_from_its_start_to_the_breaker() -> None:
    # max_drawdown 20% (the rules' default when the limits leave it out); brake 0.5 starts at 10%
    assert braked(None) == braked(0.0) == braked(0.10) == {"A": 0.2}  # unknown or below the start: no brake
    assert braked(0.15) == {"A": pytest.approx(0.10, abs=1e-4)}  # half way to the breaker: half the size
    assert braked(0.18) == {"A": pytest.approx(0.04, abs=1e-4)}
    assert braked(0.20) == braked(0.35) == {"A": 0.0}  # at or beyond the breaker's limit: nothing
    assert braked(0.06, brake=0.25) == {"A": pytest.approx(0.2 * 14 / 15, abs=1e-4)}  # starts at 5%
    # the limit in force is the one the context gives (a tightened risk.toml)
    tight = {**LIMITS, "max_drawdown": 0.10}
    assert braked(0.075, limits=tight) == {"A": pytest.approx(0.10, abs=1e-4)}
    # brake 0: the drawdown is not read at all
    assert risk(profile=CORE1, drawdown=0.19, signals=STRONG, volatility=VOL) == {"A": 0.2}


def test_the_brake_cuts_held_positions_and_the_core_but_not_what_the_rules_do_not_size() -> None:
    cored = {**CORE1, "core": 0.25, "brake": 0.5}
    bearish = {"A": {"analyst": sig(-0.9, 0.8)}}
    # a core of 0.05 survives a cap of 0.08 (drawdown 16%), not one of 0.02 (drawdown 19%)
    assert risk(profile=cored, drawdown=0.16, signals=bearish, volatility=VOL) == {"A": 0.05}
    assert risk(profile=cored, drawdown=0.19, signals=bearish, volatility=VOL) == {"A": pytest.approx(0.02, abs=1e-4)}
    # a held full position kept by hysteresis is sold down to the cap (outside the band), not kept
    between = {"A": {"analyst": sig(0.0, 0.8)}}
    assert risk(profile=cored, drawdown=0.15, positions={"A": 0.2}, signals=between, volatility=VOL) == {
        "A": pytest.approx(0.10, abs=1e-4)}
    # no signal (rule 2) or no volatility estimate: the rules do not size the name, and the brake leaves it
    assert risk(profile=cored, drawdown=0.19, positions={"B": 0.1}) == {"B": 0.1}
    assert risk(profile=cored, drawdown=0.19, positions={"A": 0.1}, signals=STRONG, volatility={"A": None}) == {"A": 0.1}


def test_the_drawdown_is_measured_as_the_breaker_measures_it() -> None:
    start = date(2020, 1, 1)
    marks = [(start + timedelta(days=i), v) for i, v in enumerate([100.0, 120.0, 96.0, 90.0])]
    active = RiskState(mode="ACTIVE")
    assert drawdown_from_peak(marks, active, marks[-1][0]) == pytest.approx(0.25)
    assert drawdown_from_peak(marks, active, marks[2][0]) == pytest.approx(0.20)  # nothing after today is read
    # the breaker latches on the same number: above its 0.20, not at it
    assert update_breakers(marks[:3], CEILINGS, active, marks[2][0]).mode != "HALTED"
    assert update_breakers(marks, CEILINGS, active, marks[-1][0]).mode == "HALTED"
    # a person's resume restarts the peak for both
    resumed = RiskState(mode="ACTIVE", since=marks[2][0], changed_by="cli")
    assert drawdown_from_peak(marks, resumed, marks[-1][0]) == pytest.approx(1 - 90 / 96)
    # an empty or unreadable curve: unknown (the breaker halts on the unreadable one)
    assert drawdown_from_peak([], active, start) is None
    assert drawdown_from_peak([(start, float("nan"))], active, start) is None


def test_a_profile_without_a_brake_keeps_v8s_context() -> None:
    assert "brake" not in PROFILES["v7"].context()
    assert replace(PROFILES["v7"], brake=0.5).context()["brake"] == 0.5


def test_a_braked_book_sells_down_before_the_breaker_that_halts_the_same_book_without_it(tmp_path: Path) -> None:
    # demo in the 2000-2001 fall (in sample), with a 10% drawdown limit: every name held at its full size (core 1)
    # runs into the breaker and is frozen; the same profile with a brake steers clear of it and keeps trading
    (tmp_path / "risk.toml").write_text("[limits]\nmax_drawdown = 0.10\n")
    PROFILES["test-core1"] = replace(PROFILES["balanced"], name="test-core1", core=1.0, brake=0.0)
    PROFILES["test-core1-brake"] = replace(PROFILES["balanced"], name="test-core1-brake", core=1.0, brake=0.5)
    try:
        cfg = EvalConfig(universe="demo", start=date(2000, 9, 1), end=date(2001, 6, 30), out=tmp_path / "out",
                         policies=("agent@test-core1", "agent@test-core1-brake"))
        report = run_eval(Settings(home=tmp_path), cfg).report
    finally:
        del PROFILES["test-core1"], PROFILES["test-core1-brake"]
    plain, brake = (report["policies"][f"agent@{n}"] for n in ("test-core1", "test-core1-brake"))
    assert [m for m, _ in latched_modes(plain["notes"])] == ["HALTED"]
    assert latched_modes(brake["notes"]) == []
    assert brake["metrics"]["max_drawdown"] > -0.10 > plain["metrics"]["max_drawdown"]
    braked_days = [d for d in brake["decisions"] if "(brake from 5.0%, 0 at 10.0%)" in d.get("reason", "")]
    assert braked_days and {d["action"] for d in braked_days} >= {"sell"}
    halted_on = latched_modes(plain["notes"])[0][1]
    assert max(d["date"] for d in brake["decisions"]) > halted_on  # it still trades after the day the other froze

