"""Rule 9's book volatility target (offline rules v10): every size scaled so the book's estimated vol stays under it."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from agent import nodes
from agent.cli import app
from agent.llm.base import LLMRequest
from agent.llm.offline import OfflineRulesClient
from agent.models import RiskPlan
from agent.profiles import PROFILES, book_vol_scale
from portfolio.risk import CEILINGS
from tests.agent.test_llm_offline import LIMITS, risk, sig

CORE1 = {**PROFILES["v7"].context(), "core": 1.0}  # every name at its full size: only the sizing moves it
TWO = {"A": {"analyst": sig(0.8, 0.8)}, "B": {"analyst": sig(0.8, 0.8)}}
VOLS = {"A": 0.30, "B": 0.60}  # sizes 0.15 / 0.30 = 0.5 and 0.25, both capped at the 20% position cap


def test_the_estimate_is_the_books_volatility_with_unknown_pairs_counted_as_one() -> None:
    sizes, vols = {"A": 0.2, "B": 0.2}, {"A": 0.3, "B": 0.6}
    # 0.2 x 0.3 = 0.06 and 0.2 x 0.6 = 0.12 of volatility: sqrt(0.06² + 0.12² + 2 x 0.06 x 0.12 x r)
    for r, expected in ((1.0, 0.18), (0.0, math.hypot(0.06, 0.12)), (-1.0, 0.06)):
        scale, est = book_vol_scale(0.09, sizes, vols, {"A": {"B": r}})
        assert est == pytest.approx(expected)
        assert scale == pytest.approx(min(1.0, 0.09 / expected))
    assert book_vol_scale(0.09, sizes, vols, {"B": {"A": 0.0}})[1] == pytest.approx(math.hypot(0.06, 0.12))  # either way
    assert book_vol_scale(0.09, sizes, vols, {})[1] == pytest.approx(0.18)  # nobody measured the pair: no credit
    assert book_vol_scale(0.0, sizes, vols, {}) == (1.0, pytest.approx(0.18))  # no target: nothing scaled
    assert book_vol_scale(0.09, {"A": 0.2, "B": 0.0}, vols, {}) == (1.0, pytest.approx(0.06))  # under it: 1
    assert book_vol_scale(0.09, {}, {}, {}) == (1.0, 0.0)


def test_every_size_is_scaled_by_the_same_factor_and_the_reason_says_so() -> None:
    plain = risk(profile=CORE1, signals=TWO, volatility=VOLS)
    assert plain == {"A": 0.2, "B": 0.2}
    together = {"A": {"B": 1.0}}  # the book 0.18 of volatility, a 9% target halves it
    text = risk(profile={**CORE1, "book_vol": 0.09}, signals=TWO, volatility=VOLS, all_correlations=together)
    assert text == {"A": pytest.approx(0.1, abs=1e-4), "B": pytest.approx(0.1, abs=1e-4)}
    # independent names: 0.134 of volatility, scaled by 0.09 / 0.134
    apart = risk(profile={**CORE1, "book_vol": 0.09}, signals=TWO, volatility=VOLS, all_correlations={"A": {"B": 0.0}})
    factor = 0.09 / math.hypot(0.06, 0.12)
    assert apart == {"A": pytest.approx(0.2 * factor, abs=1e-4), "B": pytest.approx(0.2 * factor, abs=1e-4)}
    # a loose target changes nothing; without the key the pair counts as one
    assert risk(profile={**CORE1, "book_vol": 0.5}, signals=TWO, volatility=VOLS) == plain
    assert risk(profile={**CORE1, "book_vol": 0.09}, signals=TWO, volatility=VOLS) == text


def test_the_reason_of_a_scaled_target_names_the_estimate_and_the_factor() -> None:
    ctx = {"as_of": "2024-03-01", "equity": 10_000.0, "cash": 10_000.0, "positions": {}, "limits": LIMITS,
           "signals": TWO, "volatility": VOLS, "profile": {**CORE1, "book_vol": 0.09}}
    plan = RiskPlan.model_validate_json(OfflineRulesClient().complete(
        LLMRequest(node="risk", messages=[], context=ctx)).content or "")
    assert all("book vol 18.0% at full size, target 9.0%: size x0.500" in t.rationale for t in plan.targets)
    assert "book vol 18.0% > 9.0%: sizes x0.500" in plan.comment


def test_the_scaled_size_is_what_the_band_the_core_and_the_brake_start_from() -> None:
    prof = {**CORE1, "book_vol": 0.09, "band": 0.25}
    # held at 0.2 each, the scaled size 0.1 is outside a 25% band: sold down to it
    assert risk(profile=prof, positions={"A": 0.2, "B": 0.2}, signals=TWO, volatility=VOLS) == {
        "A": pytest.approx(0.1, abs=1e-4), "B": pytest.approx(0.1, abs=1e-4)}
    # held at 0.115, within 25% of the size 0.1: kept (no churn on each day's small change of the estimate)
    assert risk(profile=prof, positions={"A": 0.115, "B": 0.115}, signals=TWO, volatility=VOLS) == {
        "A": 0.115, "B": 0.115}
    # the brake caps a share of the scaled size: half of it at 15% of drawdown with brake 0.5
    assert risk(profile={**prof, "brake": 0.5}, drawdown=0.15, signals=TWO, volatility=VOLS) == {
        "A": pytest.approx(0.05, abs=1e-4), "B": pytest.approx(0.05, abs=1e-4)}


def test_while_the_target_binds_a_weight_kept_by_hysteresis_is_cut_to_the_scaled_size_too() -> None:
    # found by an attacker: a lukewarm name (between exit and entry) kept its old weight while the strong and the
    # bearish ones were scaled down, so the planned book stayed above the target
    three = {"A": {"analyst": sig(0.1, 0.8)}, "B": {"analyst": sig(0.6, 0.8)}, "C": {"analyst": sig(-0.6, 0.8)}}
    corr = {a: {b: 0.9 for b in "ABC" if b != a} for a in "ABC"}
    held = {s: 0.0943 for s in "ABC"}
    out = risk(profile={**CORE1, "book_vol": 0.06}, positions=held, signals=three,
               volatility={s: 0.6 for s in "ABC"}, all_correlations=corr)
    assert out["A"] == out["B"] == out["C"] < 0.04
    # without the target all three go to their full size (core 1), the lukewarm one too
    assert risk(profile=CORE1, positions=held, signals=three, volatility={s: 0.6 for s in "ABC"}) == {
        s: 0.2 for s in "ABC"}


def test_names_the_rules_do_not_size_are_left_out_of_the_estimate_and_keep_their_weight() -> None:
    prof = {**CORE1, "book_vol": 0.09}
    # B has no volatility estimate: only A's 0.2 x 0.3 = 6% counts, under the target; B keeps its held weight
    assert risk(profile=prof, positions={"B": 0.15}, signals=TWO, volatility={"A": 0.3, "B": None}) == {
        "A": 0.2, "B": 0.15}
    # a held name no node spoke about (rule 2) is held as it is and not counted
    assert risk(profile=prof, positions={"C": 0.2}, signals={"A": TWO["A"]}, volatility=VOLS) == {"A": 0.2, "C": 0.2}


def test_only_a_profile_with_the_target_is_given_every_correlation_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(nodes, "_ask_node", lambda node, deps, model, ctx, *rest: (seen.append(ctx), (None, {
        "abstain_reason": "error"}))[1])
    monkeypatch.setattr(nodes, "_with_memory", lambda state, deps, context, tools: (context, tools))
    monkeypatch.setattr(nodes, "book_tools", lambda deps: [])

    def context(profile: Any) -> dict[str, Any]:
        deps = SimpleNamespace(
            run_date=date(2024, 3, 1), profile=profile, drawdown=0.0, limits=CEILINGS,
            portfolio=SimpleNamespace(base_currency="USD", equity=1e4, cash=1e4, positions=[]),
            market=SimpleNamespace(quotes={}, correlations={"A": {"B": 0.31}, "B": {"A": 0.31}}))
        nodes.risk_node({"nodes": {"analyst": {"status": "ok", "output": {"signals": []}}}, "features": {}},
                        deps)  # type: ignore[arg-type]
        return seen.pop()

    with_target = context(replace(PROFILES["balanced"], book_vol=0.1))
    assert with_target["all_correlations"] == {"A": {"B": 0.31}, "B": {"A": 0.31}}
    assert with_target["profile"]["book_vol"] == 0.1
    without = context(PROFILES["v9"])
    assert "all_correlations" not in without and "book_vol" not in without["profile"]


def test_the_daily_run_reports_the_plans_book_volatility_and_risk_status_the_drawdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the default profile (balanced, a 6% book target) from a flat book in October 2008, when the demo names moved
    # 5% a day: every size is scaled so that the book of all sized names is at the target. NASDAQ is then left out as
    # one exposure with SP500 (correlated above 0.95), so the planned book sits under the target (about 4%): the
    # estimate counts every sized name, as rule 9 says
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path))
    monkeypatch.delenv("TRADEAGENT_PROFILE", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for day in ("2008-10-09", "2008-10-10", "2008-10-14", "2008-10-15"):
        result = CliRunner().invoke(app, ["daily", "--date", day])
        assert result.exit_code == 0, result.output
    assert "book volatility: the plan's book is an estimated" in result.stdout and "target 6.0%" in result.stdout
    first = json.loads((tmp_path / "results" / "daily" / "2008-10-09.json").read_text())
    book = first["risk"]["book_vol"]
    assert book["target"] == 0.06 and 0.03 < book["planned"] <= 0.06
    targets = first["nodes"]["risk"]["output"]["targets"]
    assert targets and all("at full size, target 6.0%: size x" in t["rationale"] for t in targets if t["target_weight"])
    assert sum(t["target_weight"] for t in targets) < 0.2  # three names at a 20% cap would be 60%
    # another profile one day: said at once, and `risk status` says the book's last run used it
    switched = CliRunner().invoke(app, ["daily", "--date", "2008-10-16", "--profile", "conservative"])
    assert switched.exit_code == 0, switched.output
    assert "profile: conservative today; the book's previous run used balanced" in switched.stdout
    assert "the book's last run used conservative" in CliRunner().invoke(app, ["risk", "status"]).stdout
    # `risk status` says how far below its peak the book is, and what the brake does there
    status = CliRunner().invoke(app, ["risk", "status"])
    assert status.exit_code == 0 and "Risk mode ACTIVE" in status.stdout
    assert "from the equity peak as of the 2008-10-16 mark (the breaker halts the book beyond 20.00%)" in status.stdout
    js = json.loads(CliRunner().invoke(app, ["risk", "status", "--json"]).stdout)
    assert js["mode"] == "ACTIVE" and js["as_of"] == "2008-10-16" and js["max_drawdown"] == 0.2
    assert js["last_run_profile"] == "conservative" and js["note"] is None
    assert js["profile"] == "balanced" and 0 < js["drawdown"] < 0.05 and js["brake"] == 1.0
    # a typo in risk.toml: the mode is still shown, the drawdown is one line
    (tmp_path / "risk.toml").write_text("[limits]\nmax_drawdown = ten\n")
    broken = CliRunner().invoke(app, ["risk", "status"])
    assert broken.exit_code == 0 and "Risk mode ACTIVE" in broken.stdout
    assert "as of the 2008-10-16 mark; the breaker's limit is not known (risk.toml" in broken.stdout
    # a tightened limit the book is already beyond: the next run latches
    (tmp_path / "risk.toml").write_text(f"[limits]\nmax_drawdown = {js['drawdown'] / 2}\n")
    beyond = CliRunner().invoke(app, ["risk", "status"])
    assert "beyond the limit: the next daily run latches HALTED" in beyond.stdout
    # a typo in the profile variable: a warning, and the kill switch still works
    monkeypatch.setenv("TRADEAGENT_PROFILE", "balanced-ish")
    halted = CliRunner().invoke(app, ["risk", "halt", "--reason", "holiday"])
    assert halted.exit_code == 0 and "TRADEAGENT_PROFILE='balanced-ish'" in halted.stderr
    assert "Risk mode HALTED" in CliRunner().invoke(app, ["risk", "status"]).stdout
    assert CliRunner().invoke(app, ["daily", "--date", "2008-10-13"]).exit_code == 2  # the daily run still refuses
