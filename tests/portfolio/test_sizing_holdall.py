"""Sizing helpers and hold-all outcomes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portfolio.holdall import deliberate_hold, guarded_day, hold_all
from portfolio.sizing import fractional_kelly, volatility_adjusted_kelly, volatility_target_weight

anything = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10))


def test_kelly_values() -> None:
    assert fractional_kelly(0.6, 1.0, fraction=1.0) == pytest.approx(0.2)
    assert fractional_kelly(0.6, 1.0) == pytest.approx(0.1)
    assert fractional_kelly(0.3, 1.0) == 0.0  # negative edge: no bet
    assert fractional_kelly(math.nan, 1.0) == 0.0 and fractional_kelly(0.6, 0) == 0.0
    assert volatility_target_weight(0.30) == pytest.approx(0.5)
    assert volatility_target_weight(0.05, cap=1.0) == 1.0 and volatility_target_weight(0) == 0.0
    assert volatility_adjusted_kelly(0.6, 1.0, volatility=0.30, fraction=1.0) == pytest.approx(0.1)
    assert volatility_adjusted_kelly(0.6, 1.0, volatility=0.05, fraction=1.0) == pytest.approx(0.2)


@given(anything, anything, anything, anything)
def test_sizes_are_always_in_unit_interval(p: float, b: float, f: float, v: float) -> None:
    for size in (fractional_kelly(p, b, f), volatility_target_weight(v, f, b),
                 volatility_adjusted_kelly(p, b, volatility=v, fraction=f)):
        assert 0.0 <= size <= max(1.0, b if isinstance(b, (int, float)) and math.isfinite(b) else 1.0)
        assert math.isfinite(size)


def test_fallback_and_deliberate_holds_are_kept_apart() -> None:
    fb = hold_all("LLM Timeout!", "openai timed out")
    assert fb.reason == "fallback:llm_timeout" and fb.fallback
    dh = deliberate_hold("no_signal", "nothing crossed the threshold")
    assert dh.reason == "hold:no_signal" and not dh.fallback


def test_guarded_day_turns_any_exception_into_a_sanitised_fallback() -> None:
    with guarded_day() as day:
        raise ConnectionError("POST https://discord.com/api/webhooks/123/abcdefghijklmnopqrstuvwxyz0123456789 "
                              "failed; api_key=sk-proj-ABCDEFGHIJKLMNOP1234\nsecond line")
    assert day.hold is not None and day.hold.reason == "fallback:connectionerror" and day.hold.fallback
    assert "sk-proj" not in day.hold.detail and "abcdefghijklmnop" not in day.hold.detail
    assert "\n" not in day.hold.detail
    with guarded_day() as ok:
        pass
    assert ok.hold is None
