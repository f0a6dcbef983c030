"""LLM-facing market tools: one function each, pydantic input and output, docstring = tool description.

Both read a ``MarketView`` fixed at the run's day, so a tool cannot return a bar after that day whatever
the model asks. An unknown symbol raises ``UnknownSymbolError`` (a typed error the tool runner reports back
to the model), never an empty answer.
"""

from __future__ import annotations

import datetime as dt
import math

from pydantic import BaseModel, ConfigDict, Field

from tools.indicators import indicators_as_of
from tools.view import MarketView


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


class GetBarsInput(_Frozen):
    symbol: str = Field(description="instrument symbol from the universe, e.g. SPY or BTC/EUR")
    lookback: int = Field(default=30, ge=1, le=260, description="number of most recent daily bars")


class Bar(_Frozen):
    date: dt.date
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    volume: float | None


class GetBarsOutput(_Frozen):
    symbol: str
    as_of: dt.date
    currency: str
    bars: list[Bar]


def get_bars(inp: GetBarsInput, view: MarketView) -> GetBarsOutput:
    """Daily OHLCV bars of one symbol, oldest first, ending on or before today's close (prices in the symbol's currency)."""
    frame = view.require(inp.symbol).iloc[-inp.lookback :]
    bars = [
        Bar(
            date=ts.date(),
            open=_num(row.open),
            high=_num(row.high),
            low=_num(row.low),
            close=_num(row.close),
            volume=_num(row.volume),
        )
        for ts, row in zip(frame.index, frame.itertuples(index=False), strict=True)
    ]
    return GetBarsOutput(
        symbol=inp.symbol, as_of=view.as_of, currency=view.currencies.get(inp.symbol, "?"), bars=bars
    )


class GetIndicatorsInput(_Frozen):
    symbol: str = Field(description="instrument symbol from the universe, e.g. SPY or BTC/EUR")


class IndicatorsOutput(_Frozen):
    symbol: str
    date: dt.date | None = Field(description="day of the last bar the values are computed on")
    tradeable: bool = Field(description="whether the data passed the validation gate")
    reasons: list[str] = Field(description="why the data failed validation (empty when tradeable)")
    close: float | None = None
    sma_20: float | None = None
    sma_50: float | None = None
    sma_200: float | None = None
    ema_12: float | None = None
    ema_21: float | None = None
    ema_26: float | None = None
    rsi_14: float | None = None
    macd: float | None = None
    macd_signal: float | None = None
    macd_hist: float | None = None
    bb_lower: float | None = None
    bb_mid: float | None = None
    bb_upper: float | None = None
    bb_percent: float | None = Field(default=None, description="%B: 0 at the lower band, 1 at the upper")
    bb_width: float | None = Field(default=None, description="band width in percent of the middle band")
    atr_14: float | None = None
    natr_14: float | None = Field(default=None, description="ATR in percent of close")
    adx_14: float | None = None
    obv: float | None = None
    vol_20: float | None = Field(default=None, description="annualised 20-day volatility (fraction)")
    drawdown: float | None = Field(default=None, description="fraction below the running peak close (<= 0)")
    ret_1d: float | None = None
    ret_cum: float | None = Field(default=None, description="return since the first loaded bar")


def get_indicators(inp: GetIndicatorsInput, view: MarketView) -> IndicatorsOutput:
    """Technical indicators of one symbol at today's close (SMA, EMA, RSI, MACD, Bollinger, ATR, ADX, OBV, volatility, drawdown) and whether its data is tradeable."""
    bars = view.require(inp.symbol)
    ind = view.indicators[inp.symbol]
    values = indicators_as_of(ind, view.as_of)
    check = view.validation[inp.symbol]
    last = bars.index[-1].date() if len(bars) else None
    known = set(IndicatorsOutput.model_fields)
    return IndicatorsOutput(
        symbol=inp.symbol,
        date=last,
        tradeable=check.tradeable,
        reasons=list(check.reasons),
        **{k: v for k, v in values.items() if k in known},
    )
