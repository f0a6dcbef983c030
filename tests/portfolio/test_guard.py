"""The risk guard, one rule at a time, and the hostile inputs an LLM might produce."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, timedelta

import pytest

from portfolio.models import ApprovedOrder, MarketSnapshot, Order, Quote, TradingHistory
from portfolio.risk import CEILINGS, effective_limits, guard

from .helpers import DAY, book, codes, market, run_guard


class Boom:
    def __repr__(self) -> str:
        raise RuntimeError("hostile repr")


class ExplodingMapping(Mapping):
    def __getitem__(self, key: object) -> object:
        raise RuntimeError("hostile mapping")

    def __iter__(self):
        raise RuntimeError("hostile mapping")

    def __len__(self) -> int:
        return 1


HOSTILE = [
    (None, "malformed"),
    ("buy AAA", "malformed"),
    (42, "malformed"),
    (["AAA", "buy", 1], "malformed"),
    (Boom(), "malformed"),
    ({"symbol": "AAA", "side": "buy", "quantity": "10"}, "invalid_quantity"),
    ({"symbol": "AAA", "side": "buy", "quantity": math.nan}, "invalid_quantity"),
    ({"symbol": "AAA", "side": "buy", "quantity": math.inf}, "invalid_quantity"),
    ({"symbol": "AAA", "side": "buy", "quantity": -5}, "invalid_quantity"),
    ({"symbol": "AAA", "side": "buy", "quantity": 0}, "invalid_quantity"),
    ({"symbol": "AAA", "side": "buy", "quantity": True}, "invalid_quantity"),
    ({"symbol": "AAA", "side": "buy", "weight": 10.0}, "invalid_weight"),
    ({"symbol": "AAA", "side": "buy", "weight": -0.1}, "invalid_weight"),
    ({"symbol": "AAA", "side": "buy", "weight": "5%"}, "invalid_weight"),
    ({"symbol": "AAA", "side": "buy"}, "invalid_size"),
    ({"symbol": "AAA", "side": "buy", "quantity": 1, "weight": 0.1}, "invalid_size"),
    ({"symbol": "ZZZ", "side": "buy", "quantity": 1}, "unknown_symbol"),
    ({"symbol": "", "side": "buy", "quantity": 1}, "invalid_symbol"),
    ({"symbol": 7, "side": "buy", "quantity": 1}, "invalid_symbol"),
    ({"symbol": "AAA", "side": "short", "quantity": 1}, "invalid_side"),
    ({"symbol": "AAA", "side": None, "quantity": 1}, "invalid_side"),
    ({"symbol": "AAA", "side": "buy", "quantity": 1, "leverage": 10}, "malformed"),
    ({"symbol": "AAA", "side": "buy", "quantity": 1, "strategy": "../../etc"}, "invalid_strategy"),
    ({"symbol": "AAA", "side": "buy", "quantity": 1, "limit_price": "cheap"}, "invalid_limit_price"),
    ({"symbol": "AAA", "side": "sell", "quantity": 1}, "no_short"),
    (ExplodingMapping(), "malformed"),
]


@pytest.mark.parametrize(("proposal", "code"), HOSTILE, ids=[str(i) for i in range(len(HOSTILE))])
def test_each_hostile_proposal_is_rejected_with_a_reason(proposal: object, code: str) -> None:
    result = run_guard([proposal])
    assert result.approved == []
    assert codes(result) == [code]
    assert result.rejections[0].detail


def test_a_huge_quantity_is_clamped_to_the_position_limit_not_approved_as_is() -> None:
    result = run_guard([{"symbol": "AAA", "side": "buy", "quantity": 1e300}])
    (order,) = result.approved
    assert order.notional_base <= CEILINGS.max_position_weight * 10_000
    assert {c.code for c in result.clamps} >= {"max_order_notional", "max_position_weight"}


def test_garbage_at_the_top_level_never_raises() -> None:
    for junk in (None, "sell everything", 3.5, {"symbol": "AAA"}, b"\x00", object()):
        result = run_guard(junk)
        assert result.approved == []
        assert result.rejections


def test_duplicates_keep_the_first_and_conflicting_sides_are_rejected() -> None:
    result = run_guard([
        {"symbol": "AAA", "side": "buy", "quantity": 1},
        {"symbol": "AAA", "side": "buy", "quantity": 2},
        {"symbol": "AAA", "side": "sell", "quantity": 1},
    ])
    assert [o.quantity for o in result.approved] == [1]
    assert codes(result) == ["duplicate", "conflicting_order"]


def test_a_valid_order_object_passes_with_a_deterministic_id() -> None:
    result = run_guard([Order(symbol="AAA", side="buy", quantity=3, reason="momentum")])
    (order,) = result.approved
    assert order.order_id == "20240304-AAA-buy-v1"
    assert (order.quantity, order.reference_price, order.notional_base, order.reason) == (3, 100, 300, "momentum")


def test_weight_orders_are_sized_from_equity() -> None:
    result = run_guard([{"symbol": "AAA", "side": "buy", "weight": 0.05}])
    assert result.approved[0].quantity == pytest.approx(5.0)


def test_halted_rejects_everything_and_reducing_only_passes_sells() -> None:
    held = book(cash=5_000, holdings={"AAA": (10, 100.0)})
    proposals = [{"symbol": "AAA", "side": "sell", "quantity": 5}, {"symbol": "BBB", "side": "buy", "quantity": 1}]
    halted = run_guard(proposals, portfolio=held, mode="HALTED")
    assert halted.approved == [] and codes(halted) == ["halted", "halted"] and halted.mode == "HALTED"
    reducing = run_guard(proposals, portfolio=held, mode="REDUCING")
    assert [o.side for o in reducing.approved] == ["sell"] and codes(reducing) == ["reducing"]


def test_sells_are_clamped_to_the_held_quantity() -> None:
    result = run_guard([{"symbol": "AAA", "side": "sell", "quantity": 50}],
                       portfolio=book(cash=9_000, holdings={"AAA": (10, 100.0)}))
    assert result.approved[0].quantity == 10
    assert [c.code for c in result.clamps] == ["exceeds_position"]


def test_sells_run_first_so_their_cash_funds_buys() -> None:
    portfolio = book(cash=0, holdings={"AAA": (20, 100.0)})
    result = run_guard([{"symbol": "BBB", "side": "buy", "quantity": 30},
                        {"symbol": "AAA", "side": "sell", "quantity": 20}], portfolio=portfolio)
    assert [o.side for o in result.approved] == ["sell", "buy"]


def test_buys_are_clamped_by_gross_exposure_and_cash_including_fees() -> None:
    result = run_guard([{"symbol": "CCC", "side": "buy", "quantity": 100}],
                       portfolio=book(cash=1_000, holdings={"AAA": (90, 100.0)}))
    (order,) = result.approved
    assert order.notional_base * (1 + CEILINGS.fee_buffer_bps / 1e4) <= 1_000
    assert "max_gross_exposure" in {c.code for c in result.clamps}
    # A snapshot whose equity disagrees with its cash still cannot spend cash it does not have.
    odd = book(cash=100).model_copy(update={"equity": 100_000.0})
    (order,) = run_guard([{"symbol": "CCC", "side": "buy", "quantity": 100}], portfolio=odd).approved
    assert order.notional_base * (1 + CEILINGS.fee_buffer_bps / 1e4) <= 100


def test_no_cash_rejects_buys() -> None:
    result = run_guard([{"symbol": "CCC", "side": "buy", "quantity": 1}],
                       portfolio=book(cash=0, holdings={"AAA": (100, 100.0)}))
    assert codes(result) == ["max_gross_exposure"]
    odd = book(cash=0).model_copy(update={"equity": 100_000.0})
    assert codes(run_guard([{"symbol": "CCC", "side": "buy", "quantity": 1}], portfolio=odd)) == ["insufficient_cash"]


def test_a_full_position_rejects_more_buys() -> None:
    result = run_guard([{"symbol": "AAA", "side": "buy", "quantity": 1}],
                       portfolio=book(cash=8_000, holdings={"AAA": (20, 100.0)}))
    assert codes(result) == ["max_position_weight"]


def test_min_trade_value_rejects_dust_but_a_closing_sell_may_be_small() -> None:
    result = run_guard([{"symbol": "CCC", "side": "buy", "quantity": 0.1},
                        {"symbol": "AAA", "side": "sell", "quantity": 0.05}],
                       portfolio=book(cash=9_000, holdings={"AAA": (0.05, 100.0)}))
    assert codes(result) == ["min_trade_value"]
    assert [o.symbol for o in result.approved] == ["AAA"]


def test_unknown_untradeable_stale_and_bad_prices_are_rejected() -> None:
    quotes = {
        "OLD": Quote(symbol="OLD", price=10, price_date=DAY - timedelta(days=1)),
        "FUT": Quote(symbol="FUT", price=10, price_date=DAY + timedelta(days=1)),
        "BAD": Quote(symbol="BAD", price=10, price_date=DAY, tradeable=False, untradeable_reason="gap in data"),
        "NAN": Quote(symbol="NAN", price=math.nan, price_date=DAY),
        "NEG": Quote(symbol="NEG", price=-1, price_date=DAY),
        "FX0": Quote(symbol="FX0", price=10, price_date=DAY, currency="EUR", fx_rate=0),
    }
    mkt = MarketSnapshot(as_of=DAY, base_currency="USD", quotes=quotes)
    result = run_guard([{"symbol": s, "side": "buy", "quantity": 1} for s in quotes], mkt=mkt)
    assert codes(result) == ["stale_price", "stale_price", "untradeable", "invalid_price", "invalid_price",
                             "invalid_price"]
    assert "gap in data" in result.rejections[2].detail


def test_price_collar_rejects_a_limit_price_far_from_the_quote() -> None:
    result = run_guard([{"symbol": "AAA", "side": "buy", "quantity": 1, "limit_price": 150},
                        {"symbol": "BBB", "side": "buy", "quantity": 1, "limit_price": 51}])
    assert codes(result) == ["price_collar"] and [o.symbol for o in result.approved] == ["BBB"]


def test_max_order_notional_clamps_a_fat_finger() -> None:
    limits = effective_limits({"max_order_notional": 0.05})
    result = run_guard([{"symbol": "AAA", "side": "buy", "quantity": 15}], limits=limits)
    assert result.approved[0].notional_base <= 500
    assert [c.code for c in result.clamps] == ["max_order_notional"]


def test_orders_per_day_count_what_the_ledger_already_holds() -> None:
    limits = effective_limits({"max_orders_per_day": 3})
    history = TradingHistory(run_date=DAY, order_ids_today=["20240304-XXX-buy-v1", "20240304-YYY-buy-v1"])
    result = run_guard([{"symbol": s, "side": "buy", "quantity": 1} for s in ("AAA", "BBB")],
                       limits=limits, history=history)
    assert len(result.approved) == 1 and codes(result) == ["max_orders_per_day"]


def test_a_decided_day_adds_no_orders_of_that_strategy() -> None:
    history = TradingHistory(run_date=DAY, order_ids_today=["20240304-AAA-buy-v1"], decided_strategies=["v1"])
    result = run_guard([{"symbol": "BBB", "side": "buy", "quantity": 1},
                        {"symbol": "BBB", "side": "sell", "quantity": 1, "strategy": "v2"},
                        {"symbol": "CCC", "side": "buy", "quantity": 1, "strategy": "v2"}], history=history)
    assert codes(result) == ["conflicting_order", "already_decided"]
    assert [o.order_id for o in result.approved] == ["20240304-CCC-buy-v2"]


def test_cooldown_and_already_submitted() -> None:
    history = TradingHistory(run_date=DAY, order_ids_today=["20240304-AAA-buy-v1"],
                             last_trade={"AAA": DAY, "BBB": DAY, "CCC": DAY - timedelta(days=1)})
    result = run_guard([{"symbol": s, "side": "buy", "quantity": 1} for s in ("AAA", "BBB", "CCC")],
                       history=history)
    assert codes(result) == ["already_submitted", "cooldown"] and [o.symbol for o in result.approved] == ["CCC"]
    longer = run_guard([{"symbol": "CCC", "side": "buy", "quantity": 1}], history=history,
                       limits=effective_limits({"cooldown_days": 3}))
    assert codes(longer) == ["cooldown"]


def test_max_open_positions() -> None:
    limits = effective_limits({"max_open_positions": 2})
    result = run_guard([{"symbol": s, "side": "buy", "quantity": 1} for s in ("AAA", "BBB", "CCC")], limits=limits)
    assert codes(result) == ["max_open_positions"]


def test_a_new_position_too_correlated_with_a_held_one_is_rejected() -> None:
    mkt = market({"AAA": 100.0, "BBB": 50.0, "CCC": 20.0})
    mkt = MarketSnapshot(as_of=DAY, base_currency="USD", quotes=mkt.quotes,
                         correlations={"AAA": {"BBB": 0.99, "CCC": 0.2}})
    result = run_guard([{"symbol": "BBB", "side": "buy", "quantity": 1},
                        {"symbol": "CCC", "side": "buy", "quantity": 1}],
                       portfolio=book(cash=9_000, holdings={"AAA": (10, 100.0)}), mkt=mkt)
    assert codes(result) == ["max_correlation"] and [o.symbol for o in result.approved] == ["CCC"]


def test_high_volatility_halves_the_size() -> None:
    calm = run_guard([{"symbol": "CCC", "side": "buy", "quantity": 10}], mkt=market({"CCC": 20.0}, volatility=0.2))
    wild = run_guard([{"symbol": "CCC", "side": "buy", "quantity": 10}], mkt=market({"CCC": 20.0}, volatility=0.9))
    assert calm.approved[0].quantity == 10 and wild.approved[0].quantity == 5
    assert [c.code for c in wild.clamps] == ["high_volatility"]


def test_foreign_currency_uses_the_fx_rate() -> None:
    mkt = MarketSnapshot(as_of=DAY, base_currency="USD",
                         quotes={"SAP": Quote(symbol="SAP", price=100, price_date=DAY, currency="EUR", fx_rate=1.1)})
    (order,) = run_guard([{"symbol": "SAP", "side": "buy", "weight": 0.11}], mkt=mkt).approved
    assert order.quantity == pytest.approx(10) and order.notional_base == pytest.approx(1_100)


def test_a_looser_hand_built_limits_object_loosens_nothing() -> None:
    loose = CEILINGS.model_copy(update={"max_position_weight": 0.9, "min_trade_value": 0.0})
    result = run_guard([{"symbol": "AAA", "side": "buy", "quantity": 80}], limits=loose)
    assert result.approved[0].notional_base <= 0.2 * 10_000


def test_dates_must_match_the_run_date() -> None:
    result = run_guard([{"symbol": "AAA", "side": "buy", "quantity": 1}],
                       history=TradingHistory(run_date=date(2024, 1, 1)))
    assert codes(result) == ["date_mismatch"]


def test_an_internal_error_fails_closed() -> None:
    result = guard([{"symbol": "AAA", "side": "buy", "quantity": 1}], portfolio=None, market=None,  # type: ignore[arg-type]
                   limits=CEILINGS, state=None, history=None, run_date=DAY)  # type: ignore[arg-type]
    assert result.approved == [] and codes(result) == ["guard_error"] and result.mode == "HALTED"


def test_only_the_guard_can_make_an_approved_order() -> None:
    fields = dict(order_id="x", run_date=DAY, symbol="AAA", side="buy", quantity=1.0, reference_price=1.0,
                  currency="USD", notional_base=1.0, strategy="v1", reason="")
    with pytest.raises(TypeError):
        ApprovedOrder(**fields)
    with pytest.raises(TypeError):
        ApprovedOrder.model_validate(fields)
    with pytest.raises(TypeError):
        ApprovedOrder.model_construct(**fields)
    (order,) = run_guard([{"symbol": "AAA", "side": "buy", "quantity": 1}]).approved
    with pytest.raises(TypeError):
        order.model_copy(update={"quantity": 1e9})


@pytest.mark.parametrize("shortable", [False, True])
def test_a_quote_refused_only_for_a_past_jump_lets_a_sale_of_the_long_pass_and_nothing_else(shortable: bool) -> None:
    # A name caught in a real crash (a move the gate refuses for a year) must stay sellable: Quote.exit_only
    held = book(cash=5_000.0, holdings={"CRASH": (50.0, 40.0), "BAD": (10.0, 40.0)})
    kw = {"price_date": DAY, "tradeable": False, "untradeable_reason": "jump: close moved -60%", "shortable": shortable}
    mkt = MarketSnapshot(as_of=DAY, base_currency="USD", quotes={
        "CRASH": Quote(symbol="CRASH", price=40.0, exit_only=True, **kw),
        "BAD": Quote(symbol="BAD", price=40.0, **kw),  # refused, and not exit_only: nothing passes
        "NEW": Quote(symbol="NEW", price=40.0, exit_only=True, **kw),  # exit_only but not held
    })
    result = run_guard([{"symbol": "CRASH", "side": "sell", "quantity": 80.0},
                        {"symbol": "BAD", "side": "sell", "quantity": 10.0},
                        {"symbol": "NEW", "side": "sell", "quantity": 1.0}],
                       portfolio=held, mkt=mkt)
    assert [(o.symbol, o.side, o.quantity, o.opens_short) for o in result.approved] == [("CRASH", "sell", 50.0, False)]
    assert codes(result) == ["untradeable", "untradeable"]
    assert [c.code for c in result.clamps] == ["exceeds_position"]  # 80 asked, the 50 held sold: no short opened
    buy = run_guard([{"symbol": "CRASH", "side": "buy", "quantity": 1.0}], portfolio=held, mkt=mkt)
    assert codes(buy) == ["untradeable"] and not buy.approved


def test_adding_to_a_held_long_is_not_a_new_position_and_is_not_checked_for_correlation() -> None:
    # Both correlated names held (the second got in before the correlation rose): a top-up of either is bounded by
    # the weight, gross and cash limits, not refused as if it opened a correlated position (found by an attacker:
    # the core profile's topped-up index pair was rejected every day).
    mkt = market({"AAA": 100.0, "BBB": 50.0})
    mkt = MarketSnapshot(as_of=DAY, base_currency="USD", quotes=mkt.quotes, correlations={"AAA": {"BBB": 0.99}})
    held = book(cash=8_000, holdings={"AAA": (10, 100.0), "BBB": (20, 50.0)})
    result = run_guard([{"symbol": "BBB", "side": "buy", "quantity": 2}], portfolio=held, mkt=mkt)
    assert codes(result) == [] and [(o.symbol, o.quantity) for o in result.approved] == [("BBB", 2)]
    # a new position correlated with a held one is still refused
    new = run_guard([{"symbol": "BBB", "side": "buy", "quantity": 2}],
                    portfolio=book(cash=9_000, holdings={"AAA": (10, 100.0)}), mkt=mkt)
    assert codes(new) == ["max_correlation"]
