"""Hypothesis strategies: whole guard scenarios with a mix of valid orders and hostile garbage."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from hypothesis import strategies as st

from portfolio.models import MarketSnapshot, Order, Quote, RiskLimits, TradingHistory
from portfolio.risk import CEILINGS, tighten

from .helpers import DAY

SYMBOLS = [f"S{i}" for i in range(8)]
FX = {"USD": 1.0, "EUR": 1.08, "JPY": 0.0067}

_prices = st.one_of(st.floats(0.5, 500), st.floats(500, 60_000), st.sampled_from([1.0, 100.0, 0.01]))


@st.composite
def quotes(draw: Any, as_of: date = DAY) -> dict[str, Quote]:
    out: dict[str, Quote] = {}
    for sym in draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=8, unique=True)):
        ccy = draw(st.sampled_from(list(FX)))
        bad = draw(st.integers(0, 19))
        price = {0: math.nan, 1: -5.0, 2: 0.0}.get(bad, draw(_prices))
        stale = draw(st.integers(0, 9)) == 0
        out[sym] = Quote(
            symbol=sym, price=price, currency=ccy, fx_rate=FX[ccy],
            price_date=as_of - timedelta(days=draw(st.integers(1, 5))) if stale else as_of,
            tradeable=draw(st.integers(0, 9)) > 0, shortable=draw(st.booleans()),
            volatility=draw(st.one_of(st.none(), st.floats(0.05, 1.5), st.just(math.nan))),
        )
    return out


@st.composite
def correlations(draw: Any) -> dict[str, dict[str, float]]:
    pairs = draw(st.lists(st.tuples(st.sampled_from(SYMBOLS), st.sampled_from(SYMBOLS),
                                    st.one_of(st.floats(-1, 1), st.just(0.99), st.just(math.nan))), max_size=10))
    out: dict[str, dict[str, float]] = {}
    for a, b, c in pairs:
        if a != b:
            out.setdefault(a, {})[b] = c
    return out


@st.composite
def limits(draw: Any) -> RiskLimits:
    """The ceilings, tightened (or attempted-to-be-loosened) at random, as configuration would."""
    overrides = draw(st.dictionaries(st.sampled_from(list(CEILINGS.model_dump())), st.floats(0, 2), max_size=5))
    for key in ("max_open_positions", "max_orders_per_day", "cooldown_days"):
        if key in overrides:
            overrides[key] = draw(st.integers(0, 25))
    for key in ("min_trade_value", "max_order_value"):
        if key in overrides:
            overrides[key] = draw(st.floats(0, 5_000))
    return tighten(overrides)[0]


def _garbage() -> st.SearchStrategy[Any]:
    weird_num = st.sampled_from([math.nan, math.inf, -math.inf, -1, 0, "10", "1e3", None, True, [1], 1e308])
    return st.one_of(
        st.none(), st.text(max_size=20), st.integers(), st.floats(allow_nan=True), st.lists(st.integers(), max_size=3),
        st.fixed_dictionaries({"symbol": st.sampled_from([*SYMBOLS, "ZZZ", "", 5]), "side": st.sampled_from(
            ["buy", "sell", "BUY", "hold", None]), "quantity": weird_num}),
        st.fixed_dictionaries({"symbol": st.sampled_from(SYMBOLS), "side": st.just("buy"),
                               "weight": st.sampled_from([10.0, 1.5, -0.2, math.nan, "0.1", 0])}),
        st.fixed_dictionaries({"symbol": st.sampled_from(SYMBOLS), "side": st.just("buy"), "quantity": st.just(1),
                               "confidence": st.just(0.9)}),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    )


@st.composite
def valid_order(draw: Any, index: int) -> Any:
    sym = draw(st.sampled_from([*SYMBOLS, "ZZZ"]))
    side = draw(st.sampled_from(["buy", "buy", "sell"]))
    size = draw(st.one_of(
        st.builds(lambda q: {"quantity": q}, st.one_of(st.floats(1e-4, 50), st.floats(50, 1e6), st.just(1e300))),
        st.builds(lambda w: {"weight": w}, st.floats(0.001, 1.0)),
    ))
    item: dict[str, Any] = {"symbol": sym, "side": side, "reason": f"p{index}", **size}
    if draw(st.integers(0, 4)) == 0:
        item["limit_price"] = draw(st.floats(0.01, 100_000))
    if draw(st.booleans()):
        return Order(**item)
    return item


@st.composite
def proposals(draw: Any) -> list[Any]:
    n = draw(st.integers(0, 25))
    return [draw(st.one_of(valid_order(i), valid_order(i), _garbage())) for i in range(n)]


@dataclass
class Scenario:
    market: MarketSnapshot
    limits: RiskLimits
    mode: str
    history: TradingHistory
    cash: float
    holdings: dict[str, float]  # symbol → units
    proposals: list[Any]
    seed_weights: dict[str, float] = field(default_factory=dict)


@st.composite
def scenarios(draw: Any) -> Scenario:
    mkt = MarketSnapshot(as_of=DAY, base_currency="USD", quotes=draw(quotes()), correlations=draw(correlations()))
    held_syms = draw(st.lists(st.sampled_from(SYMBOLS), max_size=6, unique=True))
    holdings = {s: draw(st.one_of(st.floats(0.001, 10), st.floats(10, 5_000))) for s in held_syms}
    ids = [f"20240304-X{i}-buy-v1" for i in range(draw(st.integers(0, 4)))]
    last = {s: DAY - timedelta(days=draw(st.integers(0, 4)))
            for s in draw(st.lists(st.sampled_from(SYMBOLS), max_size=3, unique=True))}
    return Scenario(
        market=mkt, limits=draw(limits()),
        mode=draw(st.sampled_from(["ACTIVE"] * 8 + ["REDUCING", "HALTED"])),
        history=TradingHistory(run_date=DAY, order_ids_today=ids, last_trade=last),
        cash=draw(st.one_of(st.floats(0, 1_000), st.floats(1_000, 1e6))),
        holdings=holdings,
        proposals=draw(proposals()),
        seed_weights={s: draw(st.floats(0.01, 0.3)) for s in held_syms},
    )
