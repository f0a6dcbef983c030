"""Rule 9's drawdown brake (offline rules v9): sizes shrink as the book's drawdown nears the breaker's limit."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.nodes import decision_node
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
    # a zero limit (risk.toml allows it): any fall holds nothing
    assert braked(0.001, limits={**LIMITS, "max_drawdown": 0.0}) == {"A": 0.0}
    assert braked(0.0, limits={**LIMITS, "max_drawdown": 0.0}) == {"A": 0.2}
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



def test_a_braked_target_below_the_smallest_trade_the_guard_accepts_is_closed() -> None:
    # equity 10,000 and min_trade_value 10: 0.1% of equity. At a 19.98% drawdown the cap is 0.2 x 0.002 = 0.04%: the
    # guard would refuse the sale down to it (found by an attacker: leftovers drifted into the breaker), so close.
    # Under twice the smallest trade too (19.95%: 0.1%), else a book near the breaker reopens it $12 at a time
    limits = {**LIMITS, "min_trade_value": 10.0}
    assert braked(0.1998, limits=limits, positions={"A": 0.004}) == {"A": 0.0}
    assert braked(0.1995, limits=limits) == {"A": 0.0}
    assert braked(0.1985, limits=limits) == {"A": pytest.approx(0.003, abs=1e-4)}  # 3x the smallest trade: opened
    assert braked(0.19, limits=limits, positions={"A": 0.05}) == {"A": pytest.approx(0.02, abs=1e-4)}
    assert braked(0.1998, positions={"A": 0.004}) == {"A": pytest.approx(0.0004, abs=1e-4)}  # no such limit: capped


def test_a_profile_without_a_brake_reads_no_drawdown_limit() -> None:
    odd = {**LIMITS, "max_drawdown": "n/a"}
    assert risk(profile=PROFILES["v8"].context(), limits=odd, signals=STRONG, volatility=VOL) == {"A": 0.2}


def _decide(plan_weight: float, *, drawdown: float, brake: float, sentiment: float | None = None) -> list[dict[str, Any]]:
    """The decision node on a book of 20 names at 1.5% each, for a plan that sets each to ``plan_weight``."""
    positions = [SimpleNamespace(symbol=f"S{i}", weight=0.015, quantity=1.5, avg_price=100.0) for i in range(20)]
    plan = {"targets": [{"symbol": p.symbol, "target_weight": plan_weight, "rationale": "plan"} for p in positions],
            "comment": ""}
    state: dict[str, Any] = {"nodes": {"risk": {"output": plan}}}
    if sentiment is not None:
        state["nodes"]["sentiment"] = {"status": "ok", "output": {"signals": [
            {"symbol": p.symbol, "score": sentiment, "confidence": 1.0} for p in positions]}}
    deps = SimpleNamespace(
        profile=replace(PROFILES["balanced"], brake=brake), drawdown=drawdown,
        portfolio=SimpleNamespace(positions=positions, equity=10_000.0),
        market=SimpleNamespace(quotes={p.symbol: SimpleNamespace(price=100.0, fx_rate=1.0) for p in positions}),
        limits=CEILINGS)
    return decision_node(state, deps)["proposals"]  # type: ignore[arg-type]


def test_small_sales_pass_the_decision_nodes_band_only_while_the_brake_binds() -> None:
    # a plan trimming every name from 1.5% to 1.1% (under the 2-point band): traded only while the brake binds
    # (drawdown 15% with brake 0.25 of the 20% limit); with a brake that does not bind yet, 20 tiny sales would
    # be sent every day (found by an attacker)
    assert _decide(0.011, drawdown=0.0, brake=0.25) == []
    assert _decide(0.011, drawdown=0.15, brake=0.0) == []
    assert len(sales := _decide(0.011, drawdown=0.15, brake=0.25)) == 20 and {o["side"] for o in sales} == {"sell"}
    assert _decide(0.013, drawdown=0.15, brake=0.25) == []  # within the relative band (25% of 1.5%)


def test_while_the_brake_binds_sentiment_cannot_lift_a_target_or_cancel_a_sale() -> None:
    plain = _decide(0.011, drawdown=0.15, brake=0.25)
    tilted = _decide(0.011, drawdown=0.15, brake=0.25, sentiment=1.0)
    assert [o["quantity"] for o in tilted] == [o["quantity"] for o in plain]  # +2 points of tilt would cancel them
    assert _decide(0.011, drawdown=0.15, brake=0.25, sentiment=-1.0)[0]["quantity"] > plain[0]["quantity"]


def test_day_after_day_the_user_is_told_when_the_brake_binds_and_a_resume_restarts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # v9's default (a brake, no book volatility target) through October 2008 with a 4% drawdown limit (the brake
    # binds from 1%): the daily summary says so with the way out; the book never latches HALTED; `risk resume`
    # restarts the peak
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path))
    monkeypatch.setenv("TRADEAGENT_PROFILE", "v9")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    (tmp_path / "risk.toml").write_text("[limits]\nmax_drawdown = 0.04\n")
    days = ["2008-09-30", "2008-10-01", "2008-10-02", "2008-10-03", "2008-10-06", "2008-10-07"]
    outputs = []
    for day in days:
        result = CliRunner().invoke(app, ["daily", "--date", day])
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout)
    last = json.loads((tmp_path / "results" / "daily" / f"{days[-1]}.json").read_text())
    assert last["risk"]["state"]["mode"] == "ACTIVE"
    assert 0.01 < last["risk"]["drawdown"] < 0.04 and 0 <= last["risk"]["brake"] < 1
    assert "drawdown brake: drawdown" in outputs[-1] and "risk resume" in outputs[-1]
    assert "drawdown brake" not in outputs[0]  # a fresh book is at its peak
    assert CliRunner().invoke(app, ["risk", "resume"]).exit_code == 0
    after = CliRunner().invoke(app, ["daily", "--date", "2008-10-08"])
    assert after.exit_code == 0, after.output
    restarted = json.loads((tmp_path / "results" / "daily" / "2008-10-08.json").read_text())["risk"]
    assert restarted["drawdown"] < last["risk"]["drawdown"] and restarted["brake"] > last["risk"]["brake"]


def test_a_book_the_brake_parks_in_cash_is_a_warning_like_a_latched_breaker(tmp_path: Path) -> None:
    # found by an attacker: with a tight limit the braked book sat in cash for years (its drawdown, and so its
    # share, frozen) and the eval said so only in a dim note
    (tmp_path / "risk.toml").write_text("[limits]\nmax_drawdown = 0.05\n")
    result = CliRunner().invoke(app, ["eval", "--universe", "demo", "--start", "2007-06-01", "--end", "2008-12-31",
                                      "--policy", "agent@balanced", "--out", str(tmp_path / "out"), "--json"],
                                env={"TRADEAGENT_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    warnings = json.loads(result.stdout)["warnings"]
    parked = [w for w in warnings if "drawdown brake parked the book:" in w]
    assert len(parked) == 1 and "risk resume" in parked[0], warnings
    block = json.loads((tmp_path / "out" / "report.json").read_text())["policies"]["agent@balanced"]
    assert not latched_modes(block["notes"])  # parked, not halted


def test_a_plan_that_ignores_the_brake_is_capped_in_code_and_the_cut_is_recorded() -> None:
    # found by an attacker: an LLM's plan holding every name at full size while the brake allowed half was traded
    # as is, and the reports said the sizes were capped. Vol 15%: size 0.15 / 0.15 capped at 0.20; drawdown 12.5%
    # with brake 0.25 of the 20% limit: share 0.5, cap 0.10; a held weight within the band (25%) above it may stay
    positions = [SimpleNamespace(symbol=s, weight=w, quantity=w * 100, avg_price=100.0)
                 for s, w in (("A", 0.2), ("B", 0.125), ("C", 0.2))]
    plan = {"targets": [{"symbol": "A", "target_weight": 0.2, "rationale": "LLM: full size"},
                        {"symbol": "B", "target_weight": 0.125, "rationale": "LLM: keep"},
                        {"symbol": "D", "target_weight": 0.2, "rationale": "LLM: new name"}], "comment": ""}
    state: dict[str, Any] = {"nodes": {"risk": {"status": "ok", "output": plan}},
                             "features": {s: {"vol_20": 0.15} for s in "ABCD"}}
    deps = SimpleNamespace(
        profile=PROFILES["balanced"], drawdown=0.125,
        portfolio=SimpleNamespace(positions=positions, equity=10_000.0),
        market=SimpleNamespace(quotes={s: SimpleNamespace(price=100.0, fx_rate=1.0) for s in "ABCD"}),
        limits=CEILINGS)
    out = decision_node(state, deps)  # type: ignore[arg-type]

    orders = {o["symbol"]: (o["side"], o["quantity"]) for o in out["proposals"]}
    assert orders["A"] == ("sell", pytest.approx(10.0))  # 0.20 -> 0.10 of 10,000 at 100
    assert orders["C"] == ("sell", pytest.approx(10.0))  # left out of the plan: capped too
    assert orders["D"] == ("buy", pytest.approx(10.0))  # a new name: at most the cap
    assert "B" not in orders  # 0.125 is within 25% above the 0.10 cap: kept, as the rules keep it
    brake = out["nodes"]["risk"]["brake"]
    assert brake["share"] == pytest.approx(0.5)
    assert {c["symbol"]: c["plan"] for c in brake["capped"]} == {"A": 0.2, "D": 0.2, "C": None}
