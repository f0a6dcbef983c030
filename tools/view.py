"""``MarketView``: everything the agent may know about the market on day ``as_of``, and nothing after.

Built once per trading day from ``UniverseData``: bars and indicators are cut at ``as_of`` when the view is
built (so no accessor can leak a later bar, however it is called), validation verdicts are computed, and
FX rates are re-read at ``as_of``. The mappings are read-only; accessors return copies.

Deliberate decisions:
- Indicators may be passed in precomputed (``precompute_indicators`` on the whole replay span, once):
  every indicator is causal, so slicing a full-series computation at D equals computing on data cut at D
  (tested in tests/tools/test_indicators.py). A replay then pays one computation per symbol, not per day.
- A symbol that failed to load is still present in ``validation`` (not tradeable, reason ``no_data``) so
  the gate and the prompts can say why it is missing.
- Staleness is counted in each instrument's own sessions (``tools.calendars.calendar_for``): exchange
  sessions for ``sample`` (XNYS) and ``yfinance`` (by ticker suffix), every day for ``ccxt:…``, weekdays
  for ``synthetic`` and ``csv:`` unless the instrument names a ``calendar``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

import pandas as pd

from tools.calendars import calendar_for
from tools.data import UniverseData
from tools.errors import UnknownSymbolError
from tools.fx import fx_rates_as_of
from tools.indicators import compute_indicators, cut_at
from tools.models import ValidationResult
from tools.validation import validate_bars


def precompute_indicators(data: UniverseData) -> dict[str, pd.DataFrame]:
    """Indicators of every loaded symbol over its whole loaded span (cut at ``data.as_of`` already)."""
    return {symbol: compute_indicators(bars) for symbol, bars in data.bars.items()}


@dataclass(frozen=True)
class MarketView:
    as_of: date
    base_currency: str
    bars: Mapping[str, pd.DataFrame]
    indicators: Mapping[str, pd.DataFrame]
    validation: Mapping[str, ValidationResult]
    fx: Mapping[str, float]
    currencies: Mapping[str, str]

    @classmethod
    def build(
        cls,
        data: UniverseData,
        as_of: date,
        *,
        indicators: Mapping[str, pd.DataFrame] | None = None,
        max_stale_sessions: int = 5,
    ) -> MarketView:
        bars: dict[str, pd.DataFrame] = {}
        inds: dict[str, pd.DataFrame] = {}
        checks: dict[str, ValidationResult] = {}
        for inst in data.universe.instruments:
            symbol = inst.symbol
            if symbol not in data.bars:
                reason = data.errors.get(symbol, "not loaded")
                checks[symbol] = ValidationResult(
                    symbol=symbol, tradeable=False, reasons=[f"no_data: {reason}"]
                )
                continue
            cut = cut_at(data.bars[symbol], as_of)
            bars[symbol] = cut
            pre = indicators.get(symbol) if indicators is not None else None
            inds[symbol] = cut_at(pre, as_of) if pre is not None else compute_indicators(cut)
            checks[symbol] = validate_bars(
                symbol,
                cut,
                as_of,
                max_stale_sessions=max_stale_sessions,
                calendar=calendar_for(inst),
            )
        base = data.universe.base_currency
        return cls(
            as_of=as_of,
            base_currency=base,
            bars=MappingProxyType(bars),
            indicators=MappingProxyType(inds),
            validation=MappingProxyType(checks),
            fx=MappingProxyType(fx_rates_as_of(data.fx_series, base, as_of)),
            currencies=MappingProxyType({i.symbol: i.currency for i in data.universe.instruments}),
        )

    @property
    def symbols(self) -> list[str]:
        return list(self.validation)

    def require(self, symbol: str) -> pd.DataFrame:
        """The bars of ``symbol`` (a copy); ``UnknownSymbolError`` naming the known symbols otherwise."""
        if symbol not in self.bars:
            if symbol in self.validation:
                why = "; ".join(self.validation[symbol].reasons)
                raise UnknownSymbolError(f"no data for {symbol} on {self.as_of}: {why}")
            raise UnknownSymbolError(f"unknown symbol {symbol!r}; known: {', '.join(self.symbols)}")
        return self.bars[symbol].copy()
