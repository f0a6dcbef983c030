"""Pydantic models of the portfolio layer: orders, fills, positions, snapshots, risk limits and state.

Contract (shared/DESIGN.md):
- every model is ``frozen=True, extra="forbid"``;
- ``ApprovedOrder`` can be built ONLY by the risk guard (``portfolio/risk.py``). Its validator demands the
  module-private capability token ``_GUARD_KEY`` in the validation context; ``ApprovedOrder(...)``,
  ``model_construct``, ``model_copy`` and pickling raise everywhere else, and the broker accepts only the very
  objects the guard validated (``issued_by_guard``). This is a guard-rail against mistakes, not a
  security boundary against code running in the same process: importing ``_GUARD_KEY`` outside
  ``portfolio/risk.py`` is a review error (a test greps the repository for it).
- money in the ledger is in the base currency; ``Quote.fx_rate`` = base units per 1 unit of the
  instrument's currency.
- Shorts: a position's ``quantity`` is negative only for a short, which only an instrument whose
  ``Quote.shortable`` is True can have. Its ``market_value`` (quantity × price × fx) and its
  ``PositionView.weight`` (market_value / equity) are then negative too; ``avg_price`` stays positive (the
  average entry price). ``ApprovedOrder.opens_short`` (copied to ``OrderRecord``) is the guard's permission
  for a sell to go beyond the holding: the broker and the ledger refuse to take any other sell below zero.
"""

from __future__ import annotations

import weakref
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

Side = Literal["buy", "sell"]
RiskMode = Literal["ACTIVE", "REDUCING", "HALTED"]
OrderStatus = Literal["pending", "filled", "cancelled"]

# Capability token: only portfolio/risk.py may import it (enforced by a test, see module docstring).
_GUARD_KEY = object()
# Every ApprovedOrder that passed the guard's validator, by identity. Objects made without validation
# (``BaseModel.model_construct`` called directly, ``__new__`` + ``__setstate__``) are not in it.
_ISSUED: weakref.WeakValueDictionary[int, ApprovedOrder] = weakref.WeakValueDictionary()


def issued_by_guard(order: object) -> bool:
    """True only for an ``ApprovedOrder`` object the guard itself built (not a lookalike, not a copy)."""
    return type(order) is ApprovedOrder and _ISSUED.get(id(order)) is order


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Order(_Frozen):
    """A proposed order: exactly one of ``quantity`` (units) or ``weight`` (fraction of equity to trade).

    ``limit_price`` is optional; when present the guard applies its price collar against the quote.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    symbol: str = Field(min_length=1, max_length=40)
    side: Side
    quantity: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    weight: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    reason: str = Field(default="", max_length=2000)
    strategy: str = Field(default="v1", pattern=r"^[A-Za-z0-9_.\-]{1,32}$")
    limit_price: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_size(self) -> Order:
        if (self.quantity is None) == (self.weight is None):
            raise ValueError("give exactly one of quantity or weight")
        return self


class ApprovedOrder(_Frozen):
    """An order the risk guard approved. Only the guard can construct one (see module docstring)."""

    order_id: str
    run_date: date
    symbol: str
    side: Side
    quantity: float = Field(gt=0, allow_inf_nan=False)
    reference_price: float = Field(gt=0, allow_inf_nan=False)
    currency: str
    fx_rate: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    notional_base: float = Field(ge=0, allow_inf_nan=False)
    strategy: str
    reason: str
    clamped: str | None = None
    # True only for a sell of a shortable instrument that opens or increases a short: the one permission the
    # broker needs to fill a sell beyond the holding (every other sell is capped at the holding at fill time).
    opens_short: bool = False

    @model_validator(mode="before")
    @classmethod
    def _only_the_guard(cls, data: Any, info: ValidationInfo) -> Any:
        ctx = info.context
        if not isinstance(ctx, dict) or ctx.get("guard_key") is not _GUARD_KEY:
            raise TypeError("ApprovedOrder can only be created by portfolio.risk.guard")
        return data

    @model_validator(mode="after")
    def _issued(self) -> ApprovedOrder:
        _ISSUED[id(self)] = self  # reached only through _only_the_guard: the broker checks this register
        return self

    def __reduce__(self) -> Any:
        raise TypeError("ApprovedOrder cannot be pickled; ask the guard again")

    @classmethod
    def model_construct(cls, *args: Any, **kwargs: Any) -> ApprovedOrder:
        raise TypeError("ApprovedOrder can only be created by portfolio.risk.guard")

    def model_copy(self, *args: Any, **kwargs: Any) -> ApprovedOrder:
        raise TypeError("ApprovedOrder cannot be copied; ask the guard again")

    def __copy__(self) -> ApprovedOrder:
        raise TypeError("ApprovedOrder cannot be copied; ask the guard again")

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> ApprovedOrder:
        raise TypeError("ApprovedOrder cannot be copied; ask the guard again")


class Rejection(_Frozen):
    symbol: str | None
    raw: str
    code: str
    detail: str


class Clamp(_Frozen):
    order_id: str
    code: str
    detail: str
    from_quantity: float
    to_quantity: float


class GuardResult(_Frozen):
    approved: list[ApprovedOrder]
    rejections: list[Rejection]
    clamps: list[Clamp]
    mode: RiskMode


class OrderRecord(_Frozen):
    """An order as the ledger stores it."""

    order_id: str
    run_date: date
    symbol: str
    side: Side
    quantity: float
    filled_quantity: float
    reference_price: float
    currency: str
    fx_rate: float
    notional_base: float
    strategy: str
    reason: str
    clamped: str | None
    status: OrderStatus
    status_reason: str | None
    opens_short: bool = False  # see ApprovedOrder.opens_short


class Fill(_Frozen):
    """One execution. ``price`` includes slippage; ``commission`` and ``slippage`` are base-currency amounts."""

    order_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    commission: float
    slippage: float
    fill_date: date
    currency: str
    fx_rate: float


class Position(_Frozen):
    symbol: str
    quantity: float  # negative for a short
    avg_price: float  # in the instrument's currency; for a short, the average entry (sale) price
    currency: str


class PositionView(_Frozen):
    symbol: str
    quantity: float  # negative for a short
    avg_price: float
    market_value: float  # base currency; negative for a short
    weight: float  # market_value / equity: negative for a short


class PortfolioSnapshot(_Frozen):
    as_of: date
    base_currency: str
    cash: float
    equity: float
    positions: list[PositionView]
    realised_pnl: float
    unrealised_pnl: float
    fees: float


class Quote(_Frozen):
    symbol: str
    price: float
    price_date: date
    currency: str = "USD"
    fx_rate: float = 1.0  # base units per 1 unit of the instrument's currency
    tradeable: bool = True
    untradeable_reason: str | None = None
    shortable: bool = False
    volatility: float | None = None  # annualised, 20 days
    # ``price`` is this earlier day's close: the day's own close was refused for valuation (a jump the validation
    # gate refuses, or not a positive number; ``tools.validation.valuation_rows``). None: ``price`` is the day's close
    valued_at: date | None = None
    # untradeable only because of a past ``jump`` whose new level is now accepted (``price`` is the day's own close):
    # the guard lets a sell that only reduces a long pass (else a name caught in a real crash could not be sold for
    # the gate's whole jump window, about a year); every other order on it is still rejected as ``untradeable``
    exit_only: bool = False


class MarketSnapshot(_Frozen):
    """Quotes at ``as_of``. A quote in the base currency has ``fx_rate`` 1 by definition, whatever it was given:
    the guard, the ledger and the broker then value it alike (the broker always fills those at 1)."""

    as_of: date
    base_currency: str
    quotes: dict[str, Quote]
    correlations: dict[str, dict[str, float]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _base_currency_is_one(self) -> MarketSnapshot:
        for symbol, quote in self.quotes.items():
            if quote.currency == self.base_currency and quote.fx_rate != 1.0:
                self.quotes[symbol] = quote.model_copy(update={"fx_rate": 1.0})
        return self


class TradingHistory(_Frozen):
    """What the ledger already holds that the guard needs: orders of ``run_date`` and last trade per symbol.

    Every stored order counts (pending, filled or cancelled): a re-run of a day must never add orders.
    ``latest_activity`` is the last day the ledger saw anything (order, fill, equity): a run for an EARLIER
    day would decide against today's book, so the guard rejects it (time never runs backwards).
    ``decided_strategies`` are the strategies that already stored orders for ``run_date``: the day is decided for
    them, and a re-run (a crash, a second invocation, another LLM answer) adds no order of theirs.
    ``pending`` are orders submitted but not yet filled: the guard counts their cash and exposure as spent,
    so a re-run of a day (or a day whose earlier orders could not fill) never commits the same money twice.
    """

    run_date: date
    order_ids_today: list[str] = Field(default_factory=list)
    last_trade: dict[str, date] = Field(default_factory=dict)
    latest_activity: date | None = None
    decided_strategies: list[str] = Field(default_factory=list)
    pending: list[OrderRecord] = Field(default_factory=list)

    @property
    def orders_today(self) -> int:
        return len(self.order_ids_today)


class RiskLimits(_Frozen):
    """Limits in force. Weights and notionals are fractions of equity unless named ``*_value`` (base units)."""

    max_position_weight: float  # of |market value|: shorts too
    max_gross_exposure: float  # sum of |market value| / equity: shorts count
    max_open_positions: int
    max_orders_per_day: int
    max_order_notional: float  # fraction of equity per order (fat-finger); larger orders are clamped
    max_order_value: float  # absolute cap per order, base currency units; larger orders are clamped
    min_trade_value: float  # base currency units; smaller orders are rejected
    max_price_deviation: float  # collar: |limit_price / quote - 1|
    max_correlation: float  # of a NEW position (long or short) with any held one
    cooldown_days: int  # days between two orders in one symbol (1: at most one a day)
    high_volatility: float  # annualised; buys above it are halved
    daily_loss_limit: float  # one-day equity loss that latches REDUCING
    max_drawdown: float  # drawdown from peak that latches HALTED
    fee_buffer_bps: float  # commission + slippage the cash check reserves (at least the broker's)


class RiskState(_Frozen):
    mode: RiskMode = "ACTIVE"
    reason: str = ""
    since: date | None = None
    changed_by: str = "default"
    # the first equity mark the drawdown peak is taken from, when a person's resume or reduce restarted it and a
    # breaker has latched since (the breaker's state carries it on); None: the person's own ``since``, or the whole curve
    peak_since: date | None = None
