"""MarketView and the LLM-facing tools: typed in and out, and nothing after as_of ever visible."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from pydantic import ValidationError

from tools.cache import MarketCache
from tools.data import UniverseData, load_universe_data
from tools.errors import UnknownSymbolError
from tools.market_tools import GetBarsInput, GetIndicatorsInput, get_bars, get_indicators
from tools.universe import load_universe
from tools.view import MarketView, precompute_indicators

AS_OF = date(2008, 10, 15)


@pytest.fixture
def full(cache: MarketCache) -> UniverseData:
    return load_universe_data(load_universe("demo"), cache, as_of=None, refresh=False)  # the whole history


def test_view_cuts_everything_at_as_of(full: UniverseData) -> None:
    view = MarketView.build(full, AS_OF)
    assert all(df.index[-1] <= pd.Timestamp(AS_OF) for df in view.bars.values())
    assert all(df.index[-1] <= pd.Timestamp(AS_OF) for df in view.indicators.values())
    assert view.bars["SP500"].index[-1] == pd.Timestamp(AS_OF)
    assert view.validation["SP500"].tradeable and not view.validation["GOOG"].reasons
    with pytest.raises(TypeError):
        view.bars["X"] = view.bars["SP500"]  # type: ignore[index]


def test_precomputed_indicators_give_the_same_view(full: UniverseData) -> None:
    pre = precompute_indicators(full)
    a, b = MarketView.build(full, AS_OF), MarketView.build(full, AS_OF, indicators=pre)
    for symbol in a.indicators:
        pd.testing.assert_frame_equal(a.indicators[symbol], b.indicators[symbol], rtol=1e-9)


def test_get_bars_returns_lookback_bars_ending_at_as_of(full: UniverseData) -> None:
    view = MarketView.build(full, AS_OF)
    out = get_bars(GetBarsInput(symbol="SP500", lookback=5), view)
    assert [b.date for b in out.bars][-1] == AS_OF and len(out.bars) == 5
    assert (
        out.bars[-1].close == pytest.approx(907.84, abs=0.01) and out.currency == "USD" and out.as_of == AS_OF
    )
    assert [b.date for b in out.bars] == sorted(b.date for b in out.bars)


def test_get_bars_input_bounds() -> None:
    for bad in (0, 261):
        with pytest.raises(ValidationError):
            GetBarsInput(symbol="SP500", lookback=bad)
    assert GetBarsInput(symbol="SP500").lookback == 30


def test_get_indicators_matches_the_indicator_frame(full: UniverseData) -> None:
    view = MarketView.build(full, AS_OF)
    out = get_indicators(GetIndicatorsInput(symbol="SP500"), view)
    row = view.indicators["SP500"].iloc[-1]
    assert out.date == AS_OF and out.tradeable and out.reasons == []
    assert out.rsi_14 == pytest.approx(row["rsi_14"]) and out.macd_hist == pytest.approx(row["macd_hist"])
    assert out.close == pytest.approx(907.84, abs=0.01)


def test_unknown_symbol_is_a_typed_error(full: UniverseData) -> None:
    view = MarketView.build(full, AS_OF)
    with pytest.raises(UnknownSymbolError, match="unknown symbol 'AAPL'; known: SP500, NASDAQ, GOOG"):
        get_bars(GetBarsInput(symbol="AAPL"), view)
    with pytest.raises(UnknownSymbolError):
        get_indicators(GetIndicatorsInput(symbol="AAPL"), view)


def test_symbol_without_data_on_as_of_is_explained(cache: MarketCache) -> None:
    data = load_universe_data(load_universe("demo"), cache, as_of=date(2003, 6, 2), refresh=False)
    view = MarketView.build(data, date(2003, 6, 2))
    assert not view.validation["GOOG"].tradeable and view.validation["GOOG"].reasons[0].startswith("no_data:")
    with pytest.raises(UnknownSymbolError, match="no data for GOOG on 2003-06-02"):
        get_bars(GetBarsInput(symbol="GOOG"), view)


def test_tools_cannot_see_after_as_of_even_with_future_data_loaded(full: UniverseData) -> None:
    for as_of in (date(2000, 3, 10), date(2008, 10, 15), date(2012, 6, 1)):
        view = MarketView.build(full, as_of, indicators=precompute_indicators(full))
        for symbol in ("SP500", "NASDAQ", "GOOG"):
            if symbol not in view.bars or view.bars[symbol].empty:
                continue
            bars = get_bars(GetBarsInput(symbol=symbol, lookback=260), view).bars
            assert max(b.date for b in bars) <= as_of
            ind = get_indicators(GetIndicatorsInput(symbol=symbol), view)
            assert ind.date is not None and ind.date <= as_of


def test_tool_docstrings_are_present_for_the_llm() -> None:
    for fn in (get_bars, get_indicators):
        assert fn.__doc__ and len(fn.__doc__) < 300
