"""Each market-data provider against real sample data or recorded-shape fixtures (no network)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import ccxt
import duckdb
import numpy as np
import pandas as pd
import pytest
from arch.bootstrap import StationaryBootstrap
from yfinance.exceptions import YFRateLimitError

from tests.tools.conftest import DATA, FakeExchange, FakeYahoo, fixed_clock
from tools.errors import DataError, DataUnavailableError, MalformedDataError, UnknownSymbolError
from tools.market_data import (
    COLUMNS,
    CcxtData,
    CsvData,
    MarketData,
    SampleData,
    SyntheticData,
    YFinanceData,
    provider_for,
    synthetic_frame,
)
from tools.market_data.synthetic import return_pools, stationary_bootstrap
from tools.market_data.yahoo import BACKOFF_CAP
from tools.models import Instrument


def _assert_contract(df: pd.DataFrame) -> None:
    assert isinstance(df.index, pd.DatetimeIndex)
    assert df.index.name == "date"
    assert df.index.tz is None
    assert (df.index == df.index.normalize()).all()
    assert df.index.is_monotonic_increasing and df.index.is_unique
    assert list(df.columns) == list(COLUMNS)
    assert all(str(t) == "float64" for t in df.dtypes)


# ---------------------------------------------------------------- sample


@pytest.mark.parametrize(
    ("symbol", "first", "last", "n"),
    [("SP500", "1999-01-04", "2018-12-31", 5031), ("NASDAQ", "1999-01-04", "2018-12-31", 5031),
     ("GOOG", "2004-08-19", "2013-03-01", 2148)],
)  # fmt: skip
def test_sample_returns_the_real_series_in_contract_shape(symbol: str, first: str, last: str, n: int) -> None:
    df = SampleData().fetch(Instrument(symbol=symbol, source="sample"), None, None)
    _assert_contract(df)
    assert (str(df.index[0].date()), str(df.index[-1].date()), len(df)) == (first, last, n)
    assert (df["high"] >= df[["open", "close"]].max(axis=1) - 1e-9).all()


def test_sample_sp500_close_is_the_published_value() -> None:
    df = SampleData().fetch(
        Instrument(symbol="SP500", source="sample"), date(2008, 10, 1), date(2008, 10, 15)
    )
    # S&P 500 close on 2008-10-15 was 907.84 (the day of a 9 % fall).
    assert df.loc["2008-10-15", "close"] == pytest.approx(907.84, abs=0.01)
    assert df.index[0] == pd.Timestamp("2008-10-01") and df.index[-1] == pd.Timestamp("2008-10-15")


def test_sample_unknown_symbol_lists_the_sample_symbols() -> None:
    with pytest.raises(UnknownSymbolError, match="SP500, NASDAQ, GOOG"):
        SampleData().fetch(Instrument(symbol="AAPL", source="sample"), None, None)


# ---------------------------------------------------------------- csv


def test_csv_reads_mixed_case_headers_sorts_and_fills_missing_volume() -> None:
    df = CsvData(DATA / "csv_good.csv").fetch(Instrument(symbol="X", source="csv:x"), None, None)
    _assert_contract(df)
    assert [d.day for d in df.index] == [4, 5, 6, 7, 8]
    assert df.loc["2021-01-06", "close"] == 103.0  # plain Close, not Adj Close
    assert df.loc["2021-01-05", "volume"] == 0.0


def test_csv_window_is_inclusive() -> None:
    df = CsvData(DATA / "csv_good.csv").fetch(
        Instrument(symbol="X", source="csv:x"), date(2021, 1, 5), date(2021, 1, 7)
    )
    assert [d.day for d in df.index] == [5, 6, 7]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("csv_bad_date.csv", r"csv_bad_date.csv: unparsable date '2021-13-45' in data row 2"),
        ("csv_bad_price.csv", r"csv_bad_price.csv: non-numeric close 'n/a' in data row 2"),
        ("csv_missing_col.csv", r"csv_missing_col.csv: missing column\(s\) low"),
        ("does_not_exist.csv", r"does_not_exist.csv: file not found"),
        ("csv_header_only.csv", r"csv_header_only.csv: no data rows under the header"),
    ],
)
def test_csv_malformed_files_name_file_and_problem(name: str, message: str) -> None:
    with pytest.raises(MalformedDataError, match=message):
        CsvData(DATA / name).fetch(Instrument(symbol="X", source="csv:x"), None, None)


def test_parquet_file_reads_like_csv(tmp_path: Path) -> None:
    target = tmp_path / "bars.parquet"
    src = DATA / "csv_good.csv"
    with duckdb.connect() as con:
        con.execute(
            f'COPY (SELECT CAST(date AS DATE) AS Date, "OPEN" AS Open, High, low AS Low, Close, VOLUME AS Volume '
            f"FROM read_csv('{src}', normalize_names=false)) TO '{target}' (FORMAT parquet)"
        )
    df = CsvData(target).fetch(Instrument(symbol="X", source="csv:x"), None, None)
    expected = CsvData(src).fetch(Instrument(symbol="X", source="csv:x"), None, None)
    _assert_contract(df)
    pd.testing.assert_frame_equal(df, expected)


# ---------------------------------------------------------------- yfinance


def _yf(fake: FakeYahoo, **kw: object) -> YFinanceData:
    return YFinanceData(ticker_factory=fake, sleep=lambda _s: None, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ticker", "first_day"), [("SPY", "2024-01-02"), ("MC.PA", "2024-01-02"), ("EURUSD=X", "2024-01-01")]
)
def test_yfinance_keeps_exchange_local_days_and_unadjusted_close(
    fake_yahoo: FakeYahoo, ticker: str, first_day: str
) -> None:
    df = _yf(fake_yahoo).fetch(Instrument(symbol=ticker, source="yfinance"), None, None)
    raw = fake_yahoo.recorded[ticker]
    _assert_contract(df)
    assert str(df.index[0].date()) == first_day  # local day, not shifted by the UTC offset
    assert len(df) == len(raw)
    np.testing.assert_allclose(df["close"].to_numpy(), raw["Close"].to_numpy())  # Close, not Adj Close
    symbol, kwargs = fake_yahoo.calls[-1]
    assert symbol == ticker
    assert kwargs["auto_adjust"] is False and kwargs["period"] == "max" and kwargs["interval"] == "1d"
    assert fake_yahoo.hide_exceptions_seen == [False]  # errors raised, not logged, during our call


def test_yfinance_restores_the_global_exception_setting(fake_yahoo: FakeYahoo) -> None:
    import yfinance as yf

    before = yf.config.debug.hide_exceptions
    _yf(fake_yahoo).fetch(Instrument(symbol="SPY", source="yfinance"), None, None)
    assert yf.config.debug.hide_exceptions == before


def test_yfinance_window_passes_exclusive_end_plus_one(fake_yahoo: FakeYahoo) -> None:
    df = _yf(fake_yahoo).fetch(
        Instrument(symbol="SPY", source="yfinance"), date(2024, 3, 1), date(2024, 3, 8)
    )
    assert fake_yahoo.calls[-1][1]["start"] == "2024-03-01" and fake_yahoo.calls[-1][1]["end"] == "2024-03-09"
    assert df.index[0] == pd.Timestamp("2024-03-01") and df.index[-1] == pd.Timestamp("2024-03-08")


def test_yfinance_through_monkeypatched_module(
    monkeypatch: pytest.MonkeyPatch, fake_yahoo: FakeYahoo
) -> None:
    import yfinance as yf

    monkeypatch.setattr(yf, "Ticker", fake_yahoo)
    df = provider_for("yfinance").fetch(
        Instrument(symbol="MC.PA", source="yfinance", currency="EUR"), None, None
    )
    assert len(df) == len(fake_yahoo.recorded["MC.PA"]) and fake_yahoo.calls[0][0] == "MC.PA"


def test_yfinance_unknown_ticker(fake_yahoo: FakeYahoo) -> None:
    with pytest.raises(UnknownSymbolError, match="'NOPE'"):
        _yf(fake_yahoo).fetch(Instrument(symbol="NOPE", source="yfinance"), None, None)


def test_yfinance_empty_window_is_not_an_error_but_empty_history_is(fake_yahoo: FakeYahoo) -> None:
    weekend = _yf(fake_yahoo).fetch(Instrument(symbol="SPY", source="yfinance"), date(2024, 3, 30), None)
    assert weekend.empty and list(weekend.columns) == list(COLUMNS)
    fake_yahoo.recorded["SPY"] = fake_yahoo.recorded["SPY"].iloc[:0]
    with pytest.raises(UnknownSymbolError):
        _yf(fake_yahoo).fetch(Instrument(symbol="SPY", source="yfinance"), None, None)


def test_yfinance_retries_rate_limits_with_exponential_backoff(fake_yahoo: FakeYahoo) -> None:
    waits: list[float] = []
    fake_yahoo.errors["SPY"] = [YFRateLimitError(), YFRateLimitError()]
    provider = YFinanceData(ticker_factory=fake_yahoo, sleep=waits.append, max_retries=3, base_delay=1.5)
    df = provider.fetch(Instrument(symbol="SPY", source="yfinance"), None, None)
    assert len(df) == 61 and waits == [1.5, 3.0] and len(fake_yahoo.calls) == 3


def test_yfinance_gives_up_after_bounded_retries(fake_yahoo: FakeYahoo) -> None:
    waits: list[float] = []
    fake_yahoo.errors["SPY"] = [YFRateLimitError() for _ in range(10)]
    provider = YFinanceData(ticker_factory=fake_yahoo, sleep=waits.append, max_retries=2, base_delay=1.0)
    with pytest.raises(DataUnavailableError, match="rate-limited SPY after 3 attempts"):
        provider.fetch(Instrument(symbol="SPY", source="yfinance"), None, None)
    assert waits == [1.0, 2.0] and len(fake_yahoo.calls) == 3


def test_yfinance_connection_failure_is_unavailable(fake_yahoo: FakeYahoo) -> None:
    from curl_cffi.requests.exceptions import ConnectionError as CurlConnectionError

    fake_yahoo.errors["SPY"] = [CurlConnectionError("Failed to resolve host query1.finance.yahoo.com")]
    with pytest.raises(DataUnavailableError, match="yfinance unreachable for SPY"):
        _yf(fake_yahoo).fetch(Instrument(symbol="SPY", source="yfinance"), None, None)


# ---------------------------------------------------------------- ccxt


BTC = Instrument(symbol="BTC/EUR", source="ccxt:kraken", currency="EUR")


def test_ccxt_paginates_until_the_end_and_drops_the_forming_candle() -> None:
    fake = FakeExchange(page_size=31)
    provider = CcxtData("kraken", exchange=fake, clock=fixed_clock(2024, 3, 31))
    df = provider.fetch(BTC, date(2024, 1, 1), None)
    _assert_contract(df)
    # 91 recorded candles (Jan 1 … Mar 31), 31 a page → 3 calls; the last page carries Mar 31, which is
    # "today" by the clock (still forming) → dropped, and no fourth call is made.
    assert len(fake.calls) == 3
    assert fake.calls[1] == fake.candles[30][0] + 86_400_000  # next page starts after the last candle
    assert len(df) == 90 and df.index[-1] == pd.Timestamp("2024-03-30")
    assert df.index.to_series().diff().iloc[1:].eq(pd.Timedelta(days=1)).all()  # no gap, no duplicate
    assert df.loc["2024-01-01", "close"] == fake.candles[0][4]


def test_ccxt_keeps_every_finished_candle_when_today_is_later() -> None:
    df = CcxtData("kraken", exchange=FakeExchange(page_size=50), clock=fixed_clock(2024, 6, 1)).fetch(
        BTC, date(2024, 1, 1), None
    )
    assert len(df) == 91


def test_ccxt_stops_at_end_and_dedupes_overlapping_pages() -> None:
    class Overlapping(FakeExchange):
        def fetch_ohlcv(self, symbol, timeframe, since, limit):  # type: ignore[no-untyped-def]
            page = super().fetch_ohlcv(symbol, timeframe, since, limit)
            # Exchanges often repeat the boundary candle: prepend the one before ``since``.
            earlier = [c for c in self.candles if since is not None and c[0] < since][-1:]
            return [list(c) for c in earlier] + page

    fake = Overlapping(page_size=20)
    df = CcxtData("kraken", exchange=fake, clock=fixed_clock(2024, 6, 1)).fetch(
        BTC, date(2024, 1, 10), date(2024, 2, 15)
    )
    assert df.index.is_unique
    assert df.index[0] == pd.Timestamp("2024-01-10") and df.index[-1] == pd.Timestamp("2024-02-15")
    assert len(fake.calls) == 2  # the second page reaches 2024-02-15: no third call


def test_ccxt_bad_symbol_and_network_errors_are_typed() -> None:
    with pytest.raises(UnknownSymbolError, match="ccxt:kraken does not list 'NOPE/EUR'"):
        CcxtData("kraken", exchange=FakeExchange(), clock=fixed_clock(2024, 6, 1)).fetch(
            Instrument(symbol="NOPE/EUR", source="ccxt:kraken"), None, None
        )
    for exc in (ccxt.NetworkError("boom"), ccxt.RequestTimeout("slow"), ccxt.ExchangeNotAvailable("down")):
        with pytest.raises(DataUnavailableError, match="ccxt:kraken unreachable for BTC/EUR"):
            CcxtData("kraken", exchange=FakeExchange(fail=exc), clock=fixed_clock(2024, 6, 1)).fetch(
                BTC, None, None
            )


# ---------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic_per_symbol_and_seed() -> None:
    a, b = synthetic_frame("SYN000"), synthetic_frame("SYN000")
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["close"].to_numpy(), synthetic_frame("SYN001")["close"].to_numpy())
    assert not np.allclose(a["close"].to_numpy(), synthetic_frame("SYN000", seed=1)["close"].to_numpy())
    _assert_contract(SyntheticData().fetch(Instrument(symbol="SYN000", source="synthetic"), None, None))


def test_synthetic_bars_are_plausible_business_days() -> None:
    df = synthetic_frame("SYN042")
    assert len(df) >= 5000 and (df.index.dayofweek < 5).all()
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
    assert (df[["open", "high", "low", "close", "volume"]] > 0).all().all()


def test_synthetic_window_slices_the_same_series() -> None:
    full = synthetic_frame("SYN007")
    part = SyntheticData().fetch(
        Instrument(symbol="SYN007", source="synthetic"), date(2010, 1, 1), date(2010, 12, 31)
    )
    pd.testing.assert_frame_equal(part, full.loc["2010-01-01":"2010-12-31"])


def test_synthetic_return_statistics_are_close_to_the_source() -> None:
    pooled = np.concatenate(return_pools())
    rets = np.concatenate(
        [np.diff(np.log(synthetic_frame(f"SYN{i:03d}")["close"].to_numpy())) for i in range(40)]
    )
    assert rets.std() == pytest.approx(pooled.std(), rel=0.15)
    assert abs(rets.mean() - pooled.mean()) < 2e-4
    # Volatility clustering survives the block bootstrap: |r| stays autocorrelated (i.i.d. would give ~0).
    a = np.abs(rets[:5000])
    assert np.corrcoef(a[:-1], a[1:])[0, 1] > 0.1


def test_the_stationary_bootstrap_is_archs_and_longer_series_chain_replicates() -> None:
    pool = return_pools()[0]
    n = 2 * len(pool) + 7
    ours = stationary_bootstrap(pool, n, np.random.default_rng(11), mean_block=20)
    replicates = StationaryBootstrap(20, pool, seed=np.random.default_rng(11)).bootstrap(3)
    np.testing.assert_array_equal(ours, np.concatenate([positional[0] for positional, _ in replicates])[:n])


def test_stationary_bootstrap_blocks_have_the_mean_length() -> None:
    pool = np.arange(100_000, dtype=float)
    draws = stationary_bootstrap(pool, 200_000, np.random.default_rng(0), mean_block=20)
    breaks = np.count_nonzero(np.diff(draws) != 1)
    assert 200_000 / (breaks + 1) == pytest.approx(20, rel=0.05)


# ---------------------------------------------------------------- provider_for


def test_provider_for_resolves_every_source_and_rejects_others() -> None:
    assert isinstance(provider_for("sample"), SampleData)
    assert isinstance(provider_for("csv:/tmp/x.csv"), CsvData)
    assert isinstance(provider_for("yfinance"), YFinanceData)
    assert isinstance(provider_for("ccxt:kraken"), CcxtData)
    assert provider_for("synthetic:7").seed == 7  # type: ignore[attr-defined]
    assert all(isinstance(provider_for(s), MarketData) for s in ("sample", "yfinance", "synthetic"))
    for bad in ("bloomberg", "csv:", "ccxt", "synthetic:x"):
        with pytest.raises(DataError, match="unknown data source"):
            provider_for(bad)


def test_unknown_ccxt_exchange_is_a_data_error() -> None:
    with pytest.raises(DataError, match="unknown ccxt exchange 'notanexchange'"):
        CcxtData("notanexchange", clock=fixed_clock(2024, 6, 1)).fetch(BTC, None, None)


def test_yfinance_backoff_waits_are_capped(fake_yahoo: FakeYahoo) -> None:
    waits: list[float] = []
    fake_yahoo.errors["SPY"] = [YFRateLimitError() for _ in range(10)]
    provider = YFinanceData(ticker_factory=fake_yahoo, sleep=waits.append, max_retries=7, base_delay=2.0)
    with pytest.raises(DataUnavailableError, match="after 8 attempts"):
        provider.fetch(Instrument(symbol="SPY", source="yfinance"), None, None)
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, BACKOFF_CAP, BACKOFF_CAP] and BACKOFF_CAP == 60.0
