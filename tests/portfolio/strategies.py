"""Hypothesis strategies: whole guard scenarios with a mix of valid orders and hostile garbage.

Speed: a hypothesis draw costs ~70 µs, and a scenario has hundreds of values. So hypothesis draws the knobs
(mode, cash, batch size, garbage share) and SEEDS, and the details (quotes, limits, holdings, proposals) come
from ``random.Random(seed)``. A failure prints the knobs and seeds, which reproduce it exactly; 10,000
batches then run in well under a minute.

Shorts: about half the instruments are ``shortable``; sells are sized at random, so many go beyond the
holding (opening shorts or crossing zero), and some held positions of shortable instruments start short.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from portfolio.models import MarketSnapshot, Order, Quote, RiskLimits, TradingHistory
from portfolio.risk import CEILINGS, tighten

from .helpers import DAY

SYMBOLS = [f"S{i}" for i in range(8)]
FX = {"USD": 1.0, "EUR": 1.08, "JPY": 0.0067}
_BAD_PRICE = {0: math.nan, 1: -5.0, 2: 0.0}
_INTS = ("max_open_positions", "max_orders_per_day", "cooldown_days")
_MONEY = ("min_trade_value", "max_order_value")

GARBAGE: list[Any] = [
    None, "", "buy AAPL", "sell everything now", 0, -1, 1e308, math.nan, math.inf, True, [], [1, 2], ["S1", "buy", 3],
    {"symbol": "S1"}, {"side": "buy"}, {"symbol": "S1", "side": "buy", "quantity": "10"},
    {"symbol": "S1", "side": "buy", "quantity": "1e3"}, {"symbol": "S2", "side": "buy", "quantity": math.nan},
    {"symbol": "S2", "side": "buy", "quantity": -math.inf}, {"symbol": "S2", "side": "buy", "quantity": None},
    {"symbol": "S3", "side": "buy", "quantity": True}, {"symbol": "S3", "side": "buy", "quantity": [1]},
    {"symbol": "S3", "side": "BUY", "quantity": 1e308}, {"symbol": "S4", "side": "hold", "quantity": 1},
    {"symbol": "S4", "side": None, "quantity": 1}, {"symbol": 5, "side": "buy", "quantity": 1},
    {"symbol": "", "side": "buy", "quantity": 1}, {"symbol": "ZZZ", "side": "buy", "quantity": 1},
    {"symbol": "S5", "side": "buy", "weight": 10.0}, {"symbol": "S5", "side": "buy", "weight": 1.5},
    {"symbol": "S5", "side": "buy", "weight": -0.2}, {"symbol": "S5", "side": "buy", "weight": "0.1"},
    {"symbol": "S6", "side": "buy", "weight": 0}, {"symbol": "S6", "side": "buy", "quantity": 1, "weight": 0.1},
    {"symbol": "S6", "side": "buy", "quantity": 1, "confidence": 0.9},
    {"symbol": "S7", "side": "sell", "quantity": 1, "strategy": "../x"},
    {"symbol": "S7", "side": "sell", "quantity": 1, "limit_price": "market"}, {"quantity": 3}, {1: 2},
]


def _proposal(rng: random.Random, index: int, garbage_share: float) -> Any:
    """A hostile item, or a well-formed order (often still wrong: unknown symbol, huge size, far limit)."""
    if rng.random() < garbage_share:
        return rng.choice(GARBAGE)
    key, size = rng.choice([
        ("quantity", 10 ** rng.uniform(-4, 1.7)), ("quantity", 10 ** rng.uniform(1.7, 6)), ("quantity", 1e300),
        ("weight", rng.uniform(0.001, 1.0)), ("weight", rng.uniform(0.001, 0.1)),
    ])
    data: dict[str, Any] = {"symbol": rng.choice([*SYMBOLS, "ZZZ"]), "side": rng.choice(["buy", "buy", "sell"]),
                            "reason": f"p{index}", key: size}
    limit = rng.choice([None] * 8 + [rng.uniform(0.01, 100_000), rng.uniform(1, 1000)])
    if limit is not None:
        data["limit_price"] = limit
    return Order(**data) if rng.random() < 0.5 else data


def _batch(n: int, garbage_share: float, seed: int) -> list[Any]:
    rng = random.Random(seed)
    return [_proposal(rng, i, garbage_share) for i in range(n)]


def _quotes(rng: random.Random) -> dict[str, Quote]:
    out: dict[str, Quote] = {}
    for sym in rng.sample(SYMBOLS, rng.randint(3, 8)):
        ccy = rng.choice(list(FX))
        price = rng.choice([10 ** rng.uniform(-0.3, 2.7), 10 ** rng.uniform(2.7, 4.8), 1.0, 100.0, 0.01])
        out[sym] = Quote(
            symbol=sym, price=_BAD_PRICE.get(rng.randrange(20), price), currency=ccy, fx_rate=FX[ccy],
            price_date=DAY - timedelta(days=rng.randint(1, 5)) if rng.random() < 0.1 else DAY,
            tradeable=rng.random() < 0.9, shortable=rng.random() < 0.5,
            volatility=rng.choice([None, None, rng.uniform(0.05, 1.5), math.nan]),
        )
    return out


def _correlations(rng: random.Random) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for _ in range(rng.randint(0, 10)):
        a, b = rng.choice(SYMBOLS), rng.choice(SYMBOLS)
        if a != b:
            out.setdefault(a, {})[b] = rng.choice([rng.uniform(-1, 1), 0.99, 0.97, math.nan])
    return out


def _limits(rng: random.Random) -> RiskLimits:
    """The ceilings, tightened (or attempted-to-be-loosened) at random, as configuration would."""
    overrides: dict[str, float] = {}
    for key in rng.sample(list(CEILINGS.model_dump()), rng.randint(0, 5)):
        overrides[key] = (rng.randint(0, 25) if key in _INTS else rng.uniform(0, 5_000) if key in _MONEY
                          else rng.choice([rng.uniform(0, 2), rng.uniform(0, 0.3)]))
    return tighten(overrides)[0]


@dataclass
class Scenario:
    market: MarketSnapshot
    limits: RiskLimits
    mode: str
    history: TradingHistory
    cash: float
    holdings: dict[str, float]  # symbol → units (negative: a short)
    proposals: list[Any]
    seed_weights: dict[str, float] = field(default_factory=dict)  # negative: open a short on the seed day


def _scenario(mode: str, market_seed: int, limits_seed: int, book_seed: int, cash: float,
              proposals: list[Any]) -> Scenario:
    rng = random.Random(market_seed)
    mkt = MarketSnapshot(as_of=DAY, base_currency="USD", quotes=_quotes(rng), correlations=_correlations(rng))
    rng = random.Random(book_seed)
    held = rng.sample(SYMBOLS, rng.randint(0, 6))
    history = TradingHistory(
        run_date=DAY, order_ids_today=[f"20240304-X{i}-buy-v0" for i in range(rng.choice([0, 0, 0, 1, 2, 4]))],
        decided_strategies=rng.choice([[], [], ["v0"], ["v0", "v1"]]),
        last_trade={s: DAY - timedelta(days=rng.randint(0, 4)) for s in rng.sample(SYMBOLS, rng.randint(0, 3))},
    )
    holdings = {s: rng.choice([rng.uniform(0.001, 10), rng.uniform(10, 200)]) for s in held}
    for s in held:  # some shortable positions start short (a negative quantity)
        quote = mkt.quotes.get(s)
        if quote is not None and quote.shortable and rng.random() < 0.4:
            holdings[s] = -holdings[s]
    return Scenario(
        market=mkt, limits=_limits(random.Random(limits_seed)), mode=mode, history=history, cash=cash,
        holdings=holdings, proposals=proposals,
        seed_weights={s: rng.uniform(0.01, 0.3) * (1 if holdings[s] > 0 else -1) for s in held},
    )


_SEED = st.integers(0, 2**32)
PROPOSALS = st.builds(_batch, st.sampled_from(range(26)), st.sampled_from([0.0, 0.0, 0.1, 0.3, 1.0]), _SEED)
SCENARIOS = st.builds(
    _scenario, st.sampled_from(["ACTIVE"] * 8 + ["REDUCING", "HALTED"]), _SEED, _SEED, _SEED,
    st.one_of(st.just(0.0), st.floats(0, 1_000), st.floats(1_000, 1e6), st.floats(1e5, 1e7)), PROPOSALS,
)


def scenarios() -> st.SearchStrategy[Scenario]:
    return SCENARIOS
