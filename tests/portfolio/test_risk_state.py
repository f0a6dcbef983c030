"""Circuit breakers, the persisted kill switch, and configuration that can only tighten the ceilings."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from pathlib import Path

import pytest

from portfolio.models import RiskState
from portfolio.risk import (
    CEILINGS,
    RiskStateStore,
    drawdown_from_peak,
    effective_limits,
    load_limits,
    tighten,
    update_breakers,
)

D0 = date(2024, 1, 1)


def curve(*values: float) -> list[tuple[date, float]]:
    return [(D0 + timedelta(days=i), v) for i, v in enumerate(values)]


def test_a_daily_loss_latches_reducing_and_it_never_releases_by_itself() -> None:
    state = update_breakers(curve(100, 94), CEILINGS, RiskState(), D0 + timedelta(days=1))
    assert state.mode == "REDUCING" and state.changed_by == "breaker:daily_loss"
    calm = update_breakers(curve(100, 94, 96, 99), CEILINGS, state, D0 + timedelta(days=3))
    assert calm == state
    assert update_breakers(curve(100, 96), CEILINGS, RiskState(), D0 + timedelta(days=1)).mode == "ACTIVE"


def test_a_drawdown_latches_halted_even_from_reducing() -> None:
    slow_bleed = curve(100, 97, 94, 91, 88, 85, 82, 79)
    state = update_breakers(slow_bleed, CEILINGS, RiskState(mode="REDUCING"), D0 + timedelta(days=7))
    assert state.mode == "HALTED" and state.changed_by == "breaker:max_drawdown"
    assert update_breakers(curve(79, 200), CEILINGS, state, D0 + timedelta(days=1)) == state


def test_breakers_ignore_the_future_and_halt_on_nonsense() -> None:
    assert update_breakers(curve(100, 50), CEILINGS, RiskState(), D0).mode == "ACTIVE"
    assert update_breakers(curve(100, math.nan), CEILINGS, RiskState(), D0 + timedelta(days=1)).mode == "HALTED"
    assert update_breakers(curve(100, -1), CEILINGS, RiskState(), D0 + timedelta(days=1)).mode == "HALTED"
    assert update_breakers([], CEILINGS, RiskState(), D0).mode == "ACTIVE"


def test_tighter_configured_limits_trip_earlier() -> None:
    tight = effective_limits({"daily_loss_limit": 0.01})
    assert update_breakers(curve(100, 98), tight, RiskState(), D0 + timedelta(days=1)).mode == "REDUCING"


def test_the_state_persists_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "home" / "risk_state.json"
    assert RiskStateStore(path).load().mode == "ACTIVE"  # missing: a fresh install
    latched = update_breakers(curve(100, 90), CEILINGS, RiskState(), D0 + timedelta(days=1))
    RiskStateStore(path).save(latched)
    assert RiskStateStore(path).load() == latched  # a new process sees the latch
    assert [p.name for p in path.parent.iterdir()] == ["risk_state.json"]  # no temp files left


@pytest.mark.parametrize("content", ["", "{", "[]", '{"mode": "YOLO"}', '{"mode": "ACTIVE", "extra": 1}', "\x00\xff"])
def test_a_corrupt_state_file_halts(tmp_path: Path, content: str) -> None:
    path = tmp_path / "risk_state.json"
    path.write_text(content, encoding="utf-8", errors="surrogateescape")
    state = RiskStateStore(path).load()
    assert state.mode == "HALTED" and "corrupt" in state.reason


def test_configuration_can_only_tighten(tmp_path: Path) -> None:
    limits, notes = tighten({"max_position_weight": 0.5, "max_gross_exposure": 3.0, "min_trade_value": 0,
                             "cooldown_days": 0, "max_drawdown": 0.1, "max_orders_per_day": 5,
                             "fee_buffer_bps": 50, "bogus": 1, "max_correlation": math.nan, "daily_loss_limit": "x"})
    assert limits.max_position_weight == CEILINGS.max_position_weight
    assert limits.max_gross_exposure == CEILINGS.max_gross_exposure
    assert limits.min_trade_value == CEILINGS.min_trade_value and limits.cooldown_days == CEILINGS.cooldown_days
    assert (limits.max_drawdown, limits.max_orders_per_day, limits.fee_buffer_bps) == (0.1, 5, 50)
    assert len(notes) == 7 and any("bogus" in n for n in notes)

    toml = tmp_path / "risk.toml"
    toml.write_text("[limits]\nmax_position_weight = 0.10\nmax_gross_exposure = 2.0\n", encoding="utf-8")
    limits, notes = load_limits(toml)
    assert limits.max_position_weight == 0.10 and limits.max_gross_exposure == 1.0 and len(notes) == 1
    assert load_limits(tmp_path / "missing.toml") == (CEILINGS, [])


def test_there_is_no_bypass_anywhere() -> None:
    import inspect

    import portfolio.risk as risk

    params = set(inspect.signature(risk.guard).parameters)
    assert params == {"proposals", "portfolio", "market", "limits", "state", "history", "run_date", "fee_bps"}
    source = inspect.getsource(risk).lower()
    for word in ("bypass=", "force=", "override=", "skip_checks", "unsafe"):
        assert word not in source


def test_state_files_are_plain_json(tmp_path: Path) -> None:
    path = tmp_path / "risk_state.json"
    RiskStateStore(path).save(RiskState(mode="HALTED", reason="by hand", since=D0, changed_by="cli"))
    assert json.loads(path.read_text())["mode"] == "HALTED"


# ------------------------------------------------------------------ a person's resume restarts the drawdown measure

TIGHT_DD = effective_limits({"max_drawdown": 0.05})


def day(i: int) -> date:
    return D0 + timedelta(days=i)


def test_a_resume_after_a_drawdown_halt_is_not_undone_by_the_next_run() -> None:
    halted = update_breakers(curve(100, 110, 103), TIGHT_DD, RiskState(), day(2))
    assert halted.mode == "HALTED" and halted.changed_by == "breaker:max_drawdown"
    resumed = RiskState(mode="ACTIVE", reason="resumed by hand", since=day(2), changed_by="cli")  # the last mark
    after = curve(100, 110, 103, 102.5)  # 6.8% under the old peak, 0.5% under the resume mark
    assert update_breakers(after, TIGHT_DD, resumed, day(3)) == resumed
    reduced = resumed.model_copy(update={"mode": "REDUCING"})  # `risk reduce` restarts it too
    assert update_breakers(after, TIGHT_DD, reduced, day(3)) == reduced
    fall = update_breakers(curve(100, 110, 103, 104, 98.5), TIGHT_DD, resumed, day(4))  # 5.3% under 104
    assert fall.mode == "HALTED" and "peak 104.00" in fall.reason


def test_a_breakers_reducing_still_reaches_halted_from_the_earlier_peak() -> None:
    limits = effective_limits({"max_drawdown": 0.08})  # daily_loss_limit stays at its 5% ceiling
    reducing = update_breakers(curve(100, 110, 104), limits, RiskState(), day(2))  # one-day loss 5.5%
    assert reducing.mode == "REDUCING" and reducing.changed_by == "breaker:daily_loss" and reducing.since == day(2)
    halted = update_breakers(curve(100, 110, 104, 104.4, 101), limits, reducing, day(4))  # 8.2% under 110
    assert halted.mode == "HALTED" and "peak 110.00" in halted.reason


def test_a_resume_dated_after_every_mark_keeps_the_whole_curve() -> None:
    # an older state file recorded the wall clock (2026) for a book that lives in 2024: never a disabled breaker
    wall_clock = RiskState(mode="ACTIVE", reason="resumed by hand", since=date(2026, 3, 1), changed_by="cli")
    assert update_breakers(curve(100, 110, 103, 102.5), TIGHT_DD, wall_clock, day(3)).mode == "HALTED"
    no_since = RiskState(mode="ACTIVE", reason="resumed by hand", changed_by="cli")
    assert update_breakers(curve(100, 110, 103, 102.5), TIGHT_DD, no_since, day(3)).mode == "HALTED"


def test_a_daily_loss_after_a_resume_keeps_the_peak_the_person_restarted() -> None:
    # found by an attacker: the REDUCING a one-day loss latched after a resume measured from the old peak again,
    # and the drawdown brake sold most of the book that day
    limits = effective_limits({"max_drawdown": 0.08})  # daily_loss_limit stays at its 5% ceiling
    resumed = RiskState(mode="ACTIVE", reason="resumed by hand", since=day(2), changed_by="cli")
    marks = curve(100, 110, 95, 100, 94)  # 6% one-day loss on day 4; 14.5% under the old peak, 6% under the resume's
    reducing = update_breakers(marks, limits, resumed, day(4))
    assert reducing.mode == "REDUCING" and reducing.peak_since == day(2)
    assert drawdown_from_peak(marks, reducing, day(4)) == pytest.approx(0.06)
    assert update_breakers(marks, limits, reducing, day(4)).mode == "REDUCING"  # not HALTED from 110
    halted = update_breakers(curve(100, 110, 95, 100, 94, 91), limits, reducing, day(5))  # 9% under 100
    assert halted.mode == "HALTED" and "peak 100.00" in halted.reason and halted.peak_since == day(2)
