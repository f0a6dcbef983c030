"""The one entry point consumers use to get a universe's market data: fetch → cache → point-in-time read.

``load_universe_data(universe, cache, as_of=D, refresh=...)`` returns ``UniverseData`` whose bars are cut at
D (nothing after D is ever returned), FX rates to the base currency at D, human notes, and per-symbol
errors. One symbol's failure never fails the universe: it lands in ``errors`` with a one-line reason.
``conflicts`` lists, per symbol, the days up to D whose source rows disagreed (``MarketCache.conflicts``);
the validation gate refuses such a symbol (``conflicting_duplicate``), the bars keep the source's last row.

Deliberate decisions:
- Local sources (``sample``, ``synthetic``, ``csv:``) are re-read on every call: cheap, offline, and the
  file is the truth, so the cache copy is *replaced* (rows deleted from a CSV disappear from the cache).
  Immutable ones (``sample``, ``synthetic``) skip the write when the cache already holds the same span.
- Remote sources (``yfinance``, ``ccxt:…``) are fetched only when ``refresh=True``, and only the tail from
  the last cached day *inclusive*: re-reading that day overwrites a bar cached while it was still forming.
- ``DataUnavailableError`` (network down, rate limited) falls back to the cached bars with a note; with an
  empty cache the symbol goes to ``errors``. Any other ``DataError`` (unknown ticker, malformed file) goes
  to ``errors`` too: the gate downstream simply never sees the symbol.
- ``DateOutOfRangeError`` only when ``as_of`` precedes the first bar of *every* symbol that has data: that is
  a wrong date, not a data gap.
- FX series are loaded like instruments (Yahoo ``{CUR}{BASE}=X``, see ``tools.fx``). A currency without a
  rate on or before ``as_of`` moves its instruments to ``errors`` (valuing at par would be wrong).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pandas as pd

from tools.cache import MarketCache
from tools.errors import DataError, DataUnavailableError, DateOutOfRangeError
from tools.fx import fx_instrument, fx_rates_as_of
from tools.market_data import MarketData, is_local, provider_for
from tools.models import Instrument, Universe

_IMMUTABLE = ("sample", "synthetic")


@dataclass
class UniverseData:
    universe: Universe
    as_of: date | None
    bars: dict[str, pd.DataFrame] = field(default_factory=dict)
    fx: dict[str, float] = field(default_factory=dict)
    fx_series: dict[str, pd.Series] = field(default_factory=dict)  # currency → daily closes, cut at as_of
    notes: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    conflicts: dict[str, list[date]] = field(default_factory=dict)  # symbol → days whose source rows disagreed


@dataclass
class _Outcome:
    bars: pd.DataFrame | None = None
    conflicts: list[date] = field(default_factory=list)
    note: str | None = None
    error: str | None = None


def _refresh(
    inst: Instrument, cache: MarketCache, provider: MarketData, start: date | None, now: datetime
) -> str | None:
    """Fetch into the cache. Returns a note when it fell back to the cache; raises DataError otherwise."""
    source = inst.source
    if is_local(source):
        df = provider.fetch(inst, None, None)
        if source.startswith(_IMMUTABLE):
            first, last, count = cache.coverage(inst.symbol, source=source)
            if count == len(df) and len(df) and first == df.index[0].date() and last == df.index[-1].date():
                return None
        cache.upsert(inst.symbol, source, df, fetched_at=now, replace_all=True)
        return None
    last = cache.last_date(inst.symbol, source=source)
    fetch_start = last if last is not None else start
    try:
        df = provider.fetch(inst, fetch_start, None)
    except DataUnavailableError as exc:
        if last is None:
            raise DataUnavailableError(f"{exc}; nothing cached for {inst.symbol}") from None
        return f"{provider.name} unreachable; using cached bars up to {last} for {inst.symbol}"
    cache.upsert(inst.symbol, source, df, fetched_at=now)
    return None


def _load_one(
    inst: Instrument,
    cache: MarketCache,
    provider: MarketData,
    *,
    as_of: date | None,
    start: date | None,
    refresh: bool,
    now: datetime,
) -> _Outcome:
    out = _Outcome()
    if refresh or is_local(inst.source):
        try:
            out.note = _refresh(inst, cache, provider, start, now)
        except DataError as exc:
            out.error = str(exc)
            return out
    bars = cache.bars(inst.symbol, as_of=as_of, start=start, source=inst.source)
    if bars.empty:
        first = cache.first_date(inst.symbol, source=inst.source)
        if first is None:
            out.error = f"no cached bars for {inst.symbol} ({inst.source}); run `tradeagent data fetch`"
        elif as_of is not None and first > as_of:
            out.error = f"no bars for {inst.symbol} on or before {as_of} (data starts {first})"
        else:
            out.error = f"no bars for {inst.symbol} between {start} and {as_of}"
        return out
    out.bars = bars
    out.conflicts = cache.conflicts(inst.symbol, as_of=as_of, start=start, source=inst.source)
    return out


def _progress(enabled: bool, total: int) -> tuple[Callable[[str], None], Callable[[], None]]:
    if not enabled:
        return (lambda _label: None), (lambda: None)
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=True)
    task = bar.add_task("fetching", total=total)
    bar.start()
    # escape: the label is a symbol from the user's universe file, never rich markup
    return (lambda label: bar.update(task, advance=1, description=escape(label))), bar.stop


def load_universe_data(
    universe: Universe,
    cache: MarketCache,
    *,
    as_of: date | None,
    refresh: bool,
    start: date | None = None,
    progress: bool = False,
    clock: Callable[[], datetime] | None = None,
    providers: Mapping[str, MarketData] | None = None,
) -> UniverseData:
    """Bars of every instrument cut at ``as_of`` (``None``: all cached), FX to base, notes and errors.

    ``providers`` overrides the provider per source string (tests, or a shared exchange object).
    """
    now = (clock or datetime.now)()
    overrides = dict(providers or {})

    def provider(source: str) -> MarketData:
        if source not in overrides:
            overrides[source] = provider_for(source, clock=clock)
        return overrides[source]

    data = UniverseData(universe=universe, as_of=as_of)
    advance, stop = _progress(progress, len(universe.instruments))
    try:
        for inst in universe.instruments:
            try:
                prov = provider(inst.source)
            except DataError as exc:
                data.errors[inst.symbol] = str(exc)
                continue
            out = _load_one(inst, cache, prov, as_of=as_of, start=start, refresh=refresh, now=now)
            advance(inst.symbol)
            if out.note:
                data.notes.append(out.note)
            if out.error:
                data.errors[inst.symbol] = out.error
            elif out.bars is not None:
                data.bars[inst.symbol] = out.bars
                if out.conflicts:
                    data.conflicts[inst.symbol] = out.conflicts
        _load_fx(data, cache, provider, start=start, refresh=refresh, now=now)
    finally:
        stop()

    if as_of is not None and not data.bars:
        firsts = [
            d for inst in universe.instruments if (d := cache.first_date(inst.symbol, source=inst.source))
        ]
        if firsts and min(firsts) > as_of:
            raise DateOutOfRangeError(f"{as_of} is before the data starts (first bar {min(firsts)})")
    return data


def _load_fx(
    data: UniverseData,
    cache: MarketCache,
    provider: Callable[[str], MarketData],
    *,
    start: date | None,
    refresh: bool,
    now: datetime,
) -> None:
    base = data.universe.base_currency
    wanted = sorted({i.currency for i in data.universe.instruments if i.symbol in data.bars} - {base})
    for currency in wanted:
        inst = fx_instrument(currency, base)
        # FX history starts a little before the instruments' so the first bar has a rate.
        fx_start = start - timedelta(days=10) if start else None
        out = _load_one(
            inst, cache, provider(inst.source), as_of=data.as_of, start=fx_start, refresh=refresh, now=now
        )
        if out.note:
            data.notes.append(out.note)
        if out.bars is not None:
            data.fx_series[currency] = out.bars["close"]
    data.fx = fx_rates_as_of(data.fx_series, base, data.as_of)
    for inst in data.universe.instruments:
        if inst.symbol in data.bars and inst.currency not in data.fx:
            del data.bars[inst.symbol]
            data.conflicts.pop(inst.symbol, None)
            when = f"on or before {data.as_of}" if data.as_of else "cached"
            data.errors[inst.symbol] = (
                f"no {inst.currency}→{base} rate {when} ({fx_instrument(inst.currency, base).symbol})"
            )
