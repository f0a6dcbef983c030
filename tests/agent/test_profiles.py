"""Risk profiles (offline rules, rule 9): conviction gates, volatility sizes, hysteresis, one exposure per cluster."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from agent.cli_common import UserError
from agent.daily import run_daily
from agent.profiles import DEFAULT, PROFILES, Profile, UnknownProfile, get_profile, resolve
from agent.settings import Settings, SettingsError, load_settings
from evals.replay import PolicyUnavailable, check_policy, split_policy
from tests.agent.test_llm_offline import LIMITS, risk, sig

BALANCED = PROFILES["balanced"].context()


def with_profile(profile: dict[str, Any] = BALANCED, **context: Any) -> dict[str, float]:
    return risk(profile=profile, **context)


def test_size_comes_from_volatility_alone_once_the_entry_score_is_met() -> None:
    vt = BALANCED["vol_target"]
    targets = with_profile(signals={"WEAK": {"analyst": sig(BALANCED["entry"] + 0.01, 0.3)},
                                    "STRONG": {"analyst": sig(0.9, 0.9)}},
                           volatility={"WEAK": 0.9, "STRONG": 0.9})

    assert targets["WEAK"] == targets["STRONG"] == pytest.approx(vt / 0.9, abs=1e-4)  # not x score x confidence
    assert risk(signals={"A": {"analyst": sig(0.9, 0.9)}}, volatility={"A": 0.9})["A"] < targets["STRONG"]  # v3


def test_a_held_position_is_kept_between_exit_and_entry_and_closed_at_the_exit() -> None:
    between = (BALANCED["exit"] + BALANCED["entry"]) / 2
    held = {"A": 0.12}

    assert with_profile(positions=held, signals={"A": {"analyst": sig(between, 0.5)}}, volatility={"A": 0.2}) == held
    assert with_profile(signals={"A": {"analyst": sig(between, 0.5)}}, volatility={"A": 0.2}) == {"A": 0.0}
    assert with_profile(positions=held, signals={"A": {"analyst": sig(BALANCED["exit"] - 0.01, 0.5)}},
                        volatility={"A": 0.2}) == {"A": 0.0}
    # v3 would have closed it on a merely negative score
    assert risk(positions=held, signals={"A": {"analyst": sig(-0.01, 0.5)}}, volatility={"A": 0.2}) == {"A": 0.0}


def test_a_resize_within_the_relative_band_is_not_traded() -> None:
    # new size 0.15 / 0.8 = 0.1875 against a held 0.16: 0.0275 apart, inside 25% x 0.16 = 0.04
    strong = {"A": {"analyst": sig(0.8, 0.8)}}
    assert with_profile(positions={"A": 0.16}, signals=strong, volatility={"A": 0.8}) == {"A": 0.16}
    assert with_profile(positions={"A": 0.10}, signals=strong, volatility={"A": 0.8})["A"] == pytest.approx(0.1875, abs=1e-4)


def test_a_name_correlated_with_one_held_is_the_same_exposure() -> None:
    limits = LIMITS | {"max_correlation": 0.95}
    signals = {"SP": {"analyst": sig(0.8, 0.8)}, "NQ": {"analyst": sig(0.9, 0.9)}, "GOLD": {"analyst": sig(0.8, 0.8)}}
    vols = {"SP": 0.2, "NQ": 0.25, "GOLD": 0.2}
    corr = {"NQ": {"SP": 0.97}, "SP": {"NQ": 0.97}}

    held_sp = with_profile(positions={"SP": 0.2}, signals=signals, volatility=vols, limits=limits, correlations=corr)
    assert held_sp["NQ"] == 0.0 and held_sp["GOLD"] > 0 and held_sp["SP"] == 0.2
    flat = with_profile(signals=signals, volatility=vols, limits=limits, correlations=corr)
    assert flat["NQ"] > 0 and flat["SP"] == 0.0  # the stronger of two new correlated names is the one opened
    assert with_profile(signals=signals, volatility=vols, limits=limits)["SP"] > 0  # no correlations known: both


def test_profiles_are_named_and_an_unknown_one_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_profile(" Balanced ") is PROFILES["balanced"]
    with pytest.raises(UnknownProfile, match="known: conservative, balanced, aggressive"):
        get_profile("yolo")
    assert split_policy("agent@aggressive") == ("agent", "aggressive") and split_policy("agent") == ("agent", None)
    assert split_policy("agent@v3") == ("agent", "v3") and resolve("v3") is None
    assert check_policy("analyst@conservative") == check_policy("analyst")
    with pytest.raises(PolicyUnavailable, match="unknown profile 'yolo'"):
        check_policy("agent@yolo")
    monkeypatch.setenv("TRADEAGENT_PROFILE", "yolo")
    with pytest.raises(SettingsError, match=r"TRADEAGENT_PROFILE='yolo'.*known: conservative"):
        load_settings()
    monkeypatch.setenv("TRADEAGENT_PROFILE", "AGGRESSIVE")
    assert load_settings().profile == "aggressive"
    monkeypatch.delenv("TRADEAGENT_PROFILE")
    assert load_settings().profile == DEFAULT == "balanced" and Settings(profile="").profile == DEFAULT


def test_the_daily_run_sizes_with_the_default_profile_and_records_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TRADEAGENT_PROFILE")  # tests/conftest.py pins v3 for the scenario tests
    settings = Settings(home=tmp_path)
    day = date(2013, 2, 28)
    default = run_daily(settings, universe="demo", run_date=day, llm="offline", dry_run=True).results
    legacy = run_daily(settings, universe="demo", run_date=day, llm="offline", dry_run=True, profile="v3").results

    assert default["profile"] == "balanced" and legacy["profile"] == "v3"
    assert "profile balanced" in default["nodes"]["risk"]["output"]["comment"]
    assert "profile" not in legacy["nodes"]["risk"]["output"]["comment"]
    with pytest.raises(UserError, match="unknown profile 'yolo'"):
        run_daily(settings, universe="demo", run_date=day, llm="offline", dry_run=True, profile="yolo")


def test_the_profiles_are_ordered_by_the_risk_they_take() -> None:
    c, b, a = (PROFILES[n] for n in ("conservative", "balanced", "aggressive"))
    assert c.vol_target <= b.vol_target <= a.vol_target
    assert c.entry >= b.entry >= a.entry and c.exit >= b.exit >= a.exit
    assert all(isinstance(p, Profile) and p.exit < p.entry for p in PROFILES.values())
