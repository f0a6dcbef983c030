"""``MarketView``: everything the agent may know about the market on day ``as_of``, and nothing after.

Built once per trading day from ``UniverseData``: bars are cut at ``as_of`` when the view is built, and
indicators when first read (so no accessor can leak a later bar, however it is called), validation verdicts are computed, and
FX rates are re-read at ``as_of``. The mappings are read-only; accessors return copies.

Deliberate decisions:
- Indicators may be passed in precomputed (``precompute_indicators`` on the whole replay span, once):
  every indicator is causal, so slicing a full-series computation at D equals computing on data cut at D
  (tested in tests/tools/test_indicators.py). A replay then pays one computation per symbol, not per day.
  The validation gate likewise (``precompute_validation``: ``tools.validation.ValidationTimeline``, whose
  verdict on D equals ``validate_bars`` on the bars truncated at D, tested in tests/tools/test_validation_timeline.py).
- ``valuation_rows`` / ``valuation_closes``: the close each bar is valued at (``tools.validation.valuation_rows``),
  sliced from the validation timelines when given (computed once per replay), else computed on the cut bars.
- Settlement reads the view too: ``sessions(after)`` lists the days to settle, ``opens(session)`` their opening
  prices and ``fx_before(session)`` the FX rate a fill at that open gets (the last FX close before the day).
- A symbol that failed to load is still present in ``validation`` (not tradeable, reason ``no_data``) so
  the gate and the prompts can say why it is missing. Days whose source rows disagreed
  (``UniverseData.conflicts``) reach the gate too (``conflicting_duplicate``).
- Staleness is counted in each instrument's own sessions (``tools.calendars.calendar_for``): exchange
  sessions for ``sample`` (XNYS) and ``yfinance`` (by ticker suffix), every day for ``ccxt:…``, weekdays
  for ``synthetic`` and ``csv:`` unless the instrument names a ``calendar``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType

import numpy as np
import pandas as pd

from tools.calendars import calendar_for
from tools.data import UniverseData
from tools.errors import UnknownSymbolError
from tools.fx import fx_rates_as_of
from tools.indicators import compute_indicators, cut_at, indicators_as_of, row_before, rows_through
from tools.models import ValidationResult
from tools.validation import ValidationTimeline, closes_at, validate_bars, valuation_rows


def precompute_indicators(data: UniverseData) -> dict[str, pd.DataFrame]:
    """Indicators of every loaded symbol over its whole loaded span (cut at ``data.as_of`` already)."""
    return {symbol: compute_indicators(bars) for symbol, bars in data.bars.items()}


def precompute_validation(data: UniverseData, *, max_stale_sessions: int = 5) -> dict[str, ValidationTimeline]:
    """The validation gate of every loaded symbol on every day, from one pass over its history (for ``build``)."""
    return {
        inst.symbol: ValidationTimeline(inst.symbol, data.bars[inst.symbol], max_stale_sessions=max_stale_sessions,
                                        calendar=calendar_for(inst), conflicts=data.conflicts.get(inst.symbol))
        for inst in data.universe.instruments if inst.symbol in data.bars
    }


@dataclass(frozen=True)
class MarketView:
    as_of: date
    base_currency: str
    bars: Mapping[str, pd.DataFrame]
    indicators: Mapping[str, pd.DataFrame]
    validation: Mapping[str, ValidationResult]
    fx: Mapping[str, float]
    currencies: Mapping[str, str]
    fx_series: Mapping[str, pd.Series] = field(default_factory=dict)  # currency → daily closes, cut at as_of
    # symbol → ``valuation_rows`` of its bars (``build`` slices them from the validation timelines; else computed
    # from the bars on first read)
    valuation: Mapping[str, np.ndarray] = field(default_factory=dict)
    _closes: dict[str, pd.Series] = field(default_factory=dict, init=False, repr=False, compare=False)  # ``closes``
    _valued: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        data: UniverseData,
        as_of: date,
        *,
        indicators: Mapping[str, pd.DataFrame] | None = None,
        validation: Mapping[str, ValidationTimeline] | None = None,
        max_stale_sessions: int = 5,
    ) -> MarketView:
        """The view of ``as_of``. ``indicators`` and ``validation``: precomputed over the whole history
        (``precompute_indicators``, ``precompute_validation`` with the same ``max_stale_sessions``), sliced at D."""
        bars: dict[str, pd.DataFrame] = {}
        inds: dict[str, pd.DataFrame] = {}
        ends: dict[str, int] = {}
        checks: dict[str, ValidationResult] = {}
        valued: dict[str, np.ndarray] = {}
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
            inds[symbol] = compute_indicators(cut) if pre is None else pre
            ends[symbol] = len(cut) if pre is None else rows_through(pre.index, as_of)
            timeline = validation.get(symbol) if validation is not None else None
            if timeline is not None and timeline.max_stale_sessions != max_stale_sessions:
                raise ValueError(f"{symbol}: validation precomputed with max_stale_sessions="
                                 f"{timeline.max_stale_sessions}, view built with {max_stale_sessions}")
            if timeline is not None:
                valued[symbol] = timeline.valuation_rows(len(cut))
            checks[symbol] = timeline.as_of(as_of) if timeline is not None else validate_bars(
                symbol,
                cut,
                as_of,
                max_stale_sessions=max_stale_sessions,
                calendar=calendar_for(inst),
                conflicts=data.conflicts.get(symbol),
            )
        base = data.universe.base_currency
        return cls(
            as_of=as_of,
            base_currency=base,
            bars=MappingProxyType(bars),
            indicators=_CutFrames(inds, ends),
            validation=MappingProxyType(checks),
            fx=MappingProxyType(fx_rates_as_of(data.fx_series, base, as_of)),
            currencies=MappingProxyType({i.symbol: i.currency for i in data.universe.instruments}),
            fx_series=MappingProxyType({c: cut_at(s.to_frame(), as_of).iloc[:, 0] for c, s in data.fx_series.items()}),
            valuation=MappingProxyType(valued),
        )

    def sessions(self, after: date | None) -> list[date]:
        """Every day after ``after`` (up to ``as_of``) on which at least one instrument has a bar, in order."""
        start = pd.Timestamp(after) + pd.Timedelta(days=1) if after is not None else None
        parts = [b.index[b.index.searchsorted(start):] if start is not None else b.index for b in self.bars.values()]
        days = np.unique(np.concatenate([p.values for p in parts])) if parts else np.array([], "datetime64[ns]")
        return [pd.Timestamp(d).date() for d in days]

    def opens(self, session: date) -> dict[str, float]:
        """Each instrument's opening price on ``session``, for those that traded that day."""
        ts = pd.Timestamp(session)
        found: dict[str, float] = {}
        for symbol, bars in self.bars.items():
            i = bars.index.searchsorted(ts)
            if i < len(bars) and bars.index[i] == ts:
                found[symbol] = float(bars["open"].iloc[i])
        return found

    def fx_before(self, session: date) -> dict[str, float]:
        """FX rates for trading at ``session``'s open: the last close BEFORE that day (closes are all we have)."""
        return fx_rates_as_of(self.fx_series, self.base_currency, session - timedelta(days=1))

    def closes(self, symbol: str) -> pd.Series:
        """``self.bars[symbol]["close"]``, read once per view (pandas builds a new Series at every column read and
        the snapshot and the context node both read every symbol's). Shared: read it, do not modify it."""
        series = self._closes.get(symbol)
        if series is None:
            series = self._closes[symbol] = self.bars[symbol]["close"]
        return series

    def valuation_rows(self, symbol: str) -> np.ndarray:
        """``tools.validation.valuation_rows`` of ``symbol``'s bars: per bar, the row of the close it is valued at."""
        rows = self.valuation.get(symbol)
        if rows is None:
            rows = self._valued.get(symbol)
            if rows is None:
                rows = self._valued[symbol] = valuation_rows(self.closes(symbol).to_numpy(dtype="float64"),
                                                             self.bars[symbol].index)
        return rows

    def valuation_closes(self, symbol: str) -> pd.Series:
        """``closes(symbol)`` with every close refused for valuation replaced by the one it is valued at (NaN
        before the first usable close); the very ``closes`` Series when no bar is replaced (a replay's usual day)."""
        close, rows = self.closes(symbol), self.valuation_rows(symbol)
        n = len(rows)
        if int(rows.sum()) == n * (n - 1) // 2:  # rows[j] <= j for every j: the sum is equal only when all are
            return close
        return pd.Series(closes_at(close.to_numpy(dtype="float64"), rows), index=close.index, name=close.name)

    def valued_close(self, symbol: str) -> tuple[float, date] | None:
        """The close ``symbol``'s book is valued at on ``as_of`` and that close's day (an earlier day's when the
        last close is refused: ``tools.validation.valuation_rows``); None when no close is usable yet."""
        bars = self.bars.get(symbol)
        rows = self.valuation_rows(symbol) if bars is not None and len(bars) else None
        if rows is None or rows[-1] < 0:
            return None
        row = int(rows[-1])
        return float(self.closes(symbol).to_numpy()[row]), bars.index[row].date()  # type: ignore[union-attr]

    def latest_indicators(self, symbol: str) -> dict[str, float | None] | None:
        """``indicators_as_of(self.indicators[symbol], self.as_of)``, or None for a symbol without indicators.

        A built view reads the row from the uncut frame at the cut's last row (the same row), once per symbol.
        """
        if isinstance(self.indicators, _CutFrames):
            return self.indicators.last_row(symbol)
        ind = self.indicators.get(symbol)
        return indicators_as_of(ind, self.as_of) if ind is not None else None

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


class _CutFrames(Mapping[str, pd.DataFrame]):
    """Read-only frames, each cut at its row count when first read: a later row is never handed out.

    A replay's view cuts the precomputed indicators only for the symbols something asks about (a tool, the quant
    models); the context node and the market snapshot read the last rows (``last_row``) without cutting at all.
    """

    def __init__(self, frames: dict[str, pd.DataFrame], ends: dict[str, int]) -> None:
        self._frames, self._ends = frames, ends
        self._cut: dict[str, pd.DataFrame] = {}
        self._rows: dict[str, dict[str, float | None]] = {}

    def __getitem__(self, key: str) -> pd.DataFrame:
        cut = self._cut.get(key)
        if cut is None:
            cut = self._cut[key] = self._frames[key].iloc[: self._ends[key]]
        return cut

    def __contains__(self, key: object) -> bool:
        return key in self._frames

    def __iter__(self) -> Iterator[str]:
        return iter(self._frames)

    def __len__(self) -> int:
        return len(self._frames)

    def last_row(self, key: str) -> dict[str, float | None] | None:
        """The cut frame's last row as ``indicators_as_of`` gives it (a copy), or None for an unknown key."""
        if key not in self._frames:
            return None
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = row_before(self._frames[key], self._ends[key])
        return dict(row)
