"""``load_universe_data``: fetch → cache → point-in-time read, the cache fallback, FX and per-symbol errors."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from tests.tools.conftest import DATA, FakeExchange, FakeYahoo, fixed_clock
from tools.cache import MarketCache
from tools.data import load_universe_data
from tools.errors import DataUnavailableError, DateOutOfRangeError
from tools.market_data import CcxtData, YFinanceData, sample_frame
from tools.models import Instrument, NewsConfig, Universe
from tools.universe import load_universe


def _universe(*instruments: Instrument, base: str = "USD") -> Universe:
    return Universe(name="t", base_currency=base, instruments=list(instruments), news=NewsConfig())


SPY = Instrument(symbol="SPY", source="yfinance", currency="USD")
LVMH = Instrument(symbol="MC.PA", source="yfinance", currency="EUR")


class Down:
    name = "yfinance"

    def fetch(self, instrument: Instrument, start: date | None, end: date | None) -> pd.DataFrame:
        raise DataUnavailableError("yfinance unreachable for SPY (ConnectionError: no route)")


def test_demo_bars_are_cut_at_as_of(cache: MarketCache) -> None:
    data = load_universe_data(load_universe("demo"), cache, as_of=date(2008, 10, 15), refresh=False)
    assert set(data.bars) == {"SP500", "NASDAQ", "GOOG"} and not data.errors and not data.notes
    assert all(df.index[-1] == pd.Timestamp("2008-10-15") for df in data.bars.values())
    assert data.fx == {"USD": 1.0}
    pd.testing.assert_frame_equal(data.bars["SP500"], sample_frame("SP500").loc[:"2008-10-15"])


def test_refresh_fetches_then_only_the_tail(cache: MarketCache, fake_yahoo: FakeYahoo) -> None:
    providers = {"yfinance": YFinanceData(ticker_factory=fake_yahoo)}
    universe = _universe(SPY)
    full = fake_yahoo.recorded["SPY"]
    fake_yahoo.recorded["SPY"] = full.iloc[:40]  # the provider knew 40 sessions at the first run
    first = load_universe_data(universe, cache, as_of=None, refresh=True, providers=providers)
    assert len(first.bars["SPY"]) == 40 and fake_yahoo.calls[-1][1].get("period") == "max"
    fake_yahoo.recorded["SPY"] = full  # …and 61 at the second
    second = load_universe_data(universe, cache, as_of=None, refresh=True, providers=providers)
    last_cached = full.index[39].date().isoformat()
    assert fake_yahoo.calls[-1][1]["start"] == last_cached  # tail only, from the last cached day inclusive
    assert len(second.bars["SPY"]) == 61 and cache.coverage("SPY", source="yfinance")[2] == 61


def test_unreachable_provider_falls_back_to_the_cache_with_a_note(
    cache: MarketCache, fake_yahoo: FakeYahoo
) -> None:
    load_universe_data(
        _universe(SPY),
        cache,
        as_of=None,
        refresh=True,
        providers={"yfinance": YFinanceData(ticker_factory=fake_yahoo)},
    )
    data = load_universe_data(
        _universe(SPY), cache, as_of=date(2024, 3, 15), refresh=True, providers={"yfinance": Down()}
    )
    assert data.notes == ["yfinance unreachable; using cached bars up to 2024-03-28 for SPY"]
    assert not data.errors and data.bars["SPY"].index[-1] == pd.Timestamp("2024-03-15")


def test_unreachable_provider_with_empty_cache_is_a_symbol_error(cache: MarketCache) -> None:
    data = load_universe_data(
        _universe(SPY, Instrument(symbol="SP500", source="sample")), cache, as_of=None, refresh=True,
        providers={"yfinance": Down()},
    )  # fmt: skip
    assert "SPY" not in data.bars and "SP500" in data.bars
    assert (
        data.errors["SPY"].startswith("yfinance unreachable for SPY")
        and "nothing cached" in data.errors["SPY"]
    )


def test_without_refresh_remote_symbols_read_the_cache_only(
    cache: MarketCache, fake_yahoo: FakeYahoo
) -> None:
    data = load_universe_data(
        _universe(SPY),
        cache,
        as_of=None,
        refresh=False,
        providers={"yfinance": YFinanceData(ticker_factory=fake_yahoo)},
    )
    assert fake_yahoo.calls == []
    assert "run `tradeagent data fetch`" in data.errors["SPY"]


def test_unknown_ticker_goes_to_errors_and_the_rest_loads(cache: MarketCache, fake_yahoo: FakeYahoo) -> None:
    nope = Instrument(symbol="NOPE", source="yfinance")
    data = load_universe_data(
        _universe(SPY, nope),
        cache,
        as_of=None,
        refresh=True,
        providers={"yfinance": YFinanceData(ticker_factory=fake_yahoo)},
    )
    assert set(data.bars) == {"SPY"} and "does not know ticker 'NOPE'" in data.errors["NOPE"]


def test_malformed_csv_goes_to_errors(cache: MarketCache) -> None:
    bad = Instrument(symbol="BAD", source=f"csv:{DATA / 'csv_bad_price.csv'}")
    good = Instrument(symbol="GOOD", source=f"csv:{DATA / 'csv_good.csv'}")
    data = load_universe_data(_universe(bad, good), cache, as_of=None, refresh=False)
    assert "non-numeric close" in data.errors["BAD"] and len(data.bars["GOOD"]) == 5


def test_fx_rate_to_base_is_read_at_as_of(cache: MarketCache, fake_yahoo: FakeYahoo) -> None:
    providers = {"yfinance": YFinanceData(ticker_factory=fake_yahoo)}
    data = load_universe_data(
        _universe(SPY, LVMH, base="EUR"), cache, as_of=date(2024, 2, 14), refresh=True, providers=providers
    )
    usdeur = fake_yahoo.recorded["USDEUR=X"]["Close"]
    expected = float(usdeur[usdeur.index.tz_localize(None) <= pd.Timestamp("2024-02-14")].iloc[-1])
    assert data.fx == {"EUR": 1.0, "USD": pytest.approx(expected)}
    assert data.fx_series["USD"].index[-1] == pd.Timestamp("2024-02-14")
    assert "USDEUR=X" in [c[0] for c in fake_yahoo.calls]


def test_missing_fx_moves_that_currency_to_errors(cache: MarketCache, fake_yahoo: FakeYahoo) -> None:
    del fake_yahoo.recorded["USDEUR=X"]
    providers = {"yfinance": YFinanceData(ticker_factory=fake_yahoo)}
    data = load_universe_data(
        _universe(SPY, LVMH, base="EUR"), cache, as_of=None, refresh=True, providers=providers
    )
    assert set(data.bars) == {"MC.PA"} and "no USD→EUR rate" in data.errors["SPY"]


def test_crypto_through_an_injected_exchange(cache: MarketCache) -> None:
    btc = Instrument(symbol="BTC/EUR", source="ccxt:kraken", currency="EUR")
    clock = fixed_clock(2024, 3, 31)
    providers = {"ccxt:kraken": CcxtData("kraken", exchange=FakeExchange(page_size=40), clock=clock)}
    data = load_universe_data(
        _universe(btc, base="EUR"),
        cache,
        as_of=None,
        refresh=True,
        start=date(2024, 1, 1),
        clock=clock,
        providers=providers,
    )
    assert len(data.bars["BTC/EUR"]) == 90 and data.bars["BTC/EUR"].index[-1] == pd.Timestamp("2024-03-30")


def test_as_of_before_every_series_is_date_out_of_range(cache: MarketCache) -> None:
    with pytest.raises(
        DateOutOfRangeError, match="1990-01-02 is before the data starts \\(first bar 1999-01-04\\)"
    ):
        load_universe_data(load_universe("demo"), cache, as_of=date(1990, 1, 2), refresh=False)


def test_as_of_before_one_series_only_is_a_symbol_error(cache: MarketCache) -> None:
    data = load_universe_data(load_universe("demo"), cache, as_of=date(2003, 6, 2), refresh=False)
    assert set(data.bars) == {"SP500", "NASDAQ"}
    assert data.errors["GOOG"] == "no bars for GOOG on or before 2003-06-02 (data starts 2004-08-19)"


def test_progress_bar_does_not_change_the_result(cache: MarketCache) -> None:
    quiet = load_universe_data(load_universe("synthetic-3"), cache, as_of=date(2005, 1, 3), refresh=False)
    loud = load_universe_data(
        load_universe("synthetic-3"), cache, as_of=date(2005, 1, 3), refresh=False, progress=True
    )
    assert quiet.bars.keys() == loud.bars.keys()
    for symbol in quiet.bars:
        pd.testing.assert_frame_equal(quiet.bars[symbol], loud.bars[symbol])
