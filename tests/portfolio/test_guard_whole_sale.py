"""The per-order caps (``max_order_notional``, ``max_order_value``) spare the sale of a whole long, and only it.

A position can grow above the order cap (it rose, or the cap was tightened); selling all of it cannot be a fat
finger beyond the book, and a clamp would leave a remnant of a position the policy chose to exit.
"""

from __future__ import annotations

import pytest

from portfolio.models import RiskLimits
from portfolio.risk import effective_limits

from .helpers import book, market, run_guard

NOTIONAL = effective_limits({"max_order_notional": 0.05})  # 500 on the 10,000 book below
VALUE = effective_limits({"max_order_value": 1_000.0})
LONG_ONLY = market({"AAA": 100.0, "BBB": 50.0})
SHORTABLE = market({"AAA": 100.0, "BBB": 50.0}, shortable=True)
HOLDING = book(cash=7_000.0, holdings={"AAA": (30.0, 100.0)})  # 3,000 of AAA: above both caps


@pytest.mark.parametrize("limits", [NOTIONAL, VALUE], ids=["max_order_notional", "max_order_value"])
@pytest.mark.parametrize("mkt", [LONG_ONLY, SHORTABLE], ids=["long-only", "shortable"])
def test_selling_exactly_the_whole_long_is_not_clamped(limits: RiskLimits, mkt: object) -> None:
    result = run_guard([{"symbol": "AAA", "side": "sell", "quantity": 30}], portfolio=HOLDING, mkt=mkt,
                       limits=limits)  # type: ignore[arg-type]
    assert [(o.quantity, o.clamped) for o in result.approved] == [(30.0, None)]
    assert result.clamps == [] and result.rejections == []


def test_a_long_only_sell_beyond_the_holding_is_cut_to_it_and_then_passes_whole() -> None:
    result = run_guard([{"symbol": "AAA", "side": "sell", "quantity": 500}], portfolio=HOLDING, mkt=LONG_ONLY,
                       limits=NOTIONAL)
    assert [o.quantity for o in result.approved] == [30.0]
    assert [c.code for c in result.clamps] == ["exceeds_position"]


@pytest.mark.parametrize("mkt", [LONG_ONLY, SHORTABLE], ids=["long-only", "shortable"])
def test_a_partial_sell_is_still_clamped(mkt: object) -> None:
    result = run_guard([{"symbol": "AAA", "side": "sell", "quantity": 20}], portfolio=HOLDING, mkt=mkt,
                       limits=NOTIONAL)  # type: ignore[arg-type]
    assert result.approved[0].notional_base <= 500 and result.approved[0].quantity < 20
    assert [c.code for c in result.clamps] == ["max_order_notional"]


def test_buys_short_sales_covers_and_sells_crossing_zero_are_still_clamped() -> None:
    buy = run_guard([{"symbol": "BBB", "side": "buy", "quantity": 30}], portfolio=HOLDING, mkt=LONG_ONLY,
                    limits=NOTIONAL)
    cross = run_guard([{"symbol": "AAA", "side": "sell", "quantity": 31}], portfolio=HOLDING, mkt=SHORTABLE,
                      limits=NOTIONAL)
    short = run_guard([{"symbol": "BBB", "side": "sell", "quantity": 30}], portfolio=HOLDING, mkt=SHORTABLE,
                      limits=NOTIONAL)
    short_book = book(cash=13_000.0, holdings={"AAA": (-30.0, 100.0)})  # equity 10,000
    cover = run_guard([{"symbol": "AAA", "side": "buy", "quantity": 30}], portfolio=short_book, mkt=SHORTABLE,
                      limits=NOTIONAL)
    for result in (buy, cross, short, cover):
        assert len(result.approved) == 1 and result.approved[0].notional_base <= 500
        assert "max_order_notional" in [c.code for c in result.clamps]
