"""Trading calendars: the suffix mapping, the last closed session, Yahoo's forming bar, sessions for staleness."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.tools.conftest import FakeYahoo
from tools import calendars
from tools.cache import MarketCache
from tools.calendars import (
    YAHOO_SUFFIXES,
    calendar_for,
    exchange_calendar,
    last_closed_session,
    sessions_between,
    weekday_bounded,
)
from tools.data import UniverseData, load_universe_data
from tools.errors import DataError
from tools.market_data import YFinanceData, provider_for, sample_frame
from tools.models import Instrument, NewsConfig, Universe
from tools.universe import load_universe
from tools.validation import validate_bars
from tools.view import MarketView


def _at(moment: str) -> Callable[[], datetime]:
    """A clock frozen at an ISO moment with its offset, e.g. ``2024-03-28T15:59+00:00``."""
    fixed = datetime.fromisoformat(moment)
    assert fixed.tzinfo is not None
    return lambda: fixed


def _yf(fake: FakeYahoo, moment: str) -> YFinanceData:
    return YFinanceData(ticker_factory=fake, sleep=lambda _s: None, clock=_at(moment))


def _with_bar(fake: FakeYahoo, ticker: str, day: str) -> None:
    """Append a bar dated ``day`` (exchange-local midnight, as Yahoo dates them) to a recorded history."""
    raw = fake.recorded[ticker]
    row = raw.iloc[[-1]].copy()
    row.index = pd.DatetimeIndex([pd.Timestamp(day).tz_localize(raw.index.tz)], name=raw.index.name)
    fake.recorded[ticker] = pd.concat([raw, row])


def _last_day(df: pd.DataFrame) -> str:
    return str(df.index[-1].date())


# ---------------------------------------------------------------- which calendar


@pytest.mark.parametrize(
    ("source", "symbol", "expected"),
    [("yfinance", "SPY", "XNYS"), ("yfinance", "BRK-B", "XNYS"), ("yfinance", "MC.PA", "XPAR"),
     ("yfinance", "SAP.DE", "XETR"), ("yfinance", "ASML.AS", "XAMS"), ("yfinance", "HSBA.L", "XLON"),
     ("yfinance", "ENI.MI", "XMIL"), ("yfinance", "SAN.MC", "XMAD"), ("yfinance", "EURUSD=X", "24/5"),
     ("yfinance", "7203.T", "XNYS"), ("ccxt:kraken", "BTC/EUR", "24/7"), ("sample", "GOOG", "XNYS"),
     ("synthetic", "SYN000", "24/5"), ("synthetic:7", "SYN000", "24/5"), ("csv:/x/msft.csv", "MSFT", "24/5")],
)  # fmt: skip
def test_calendar_for_source_and_symbol(source: str, symbol: str, expected: str) -> None:
    assert calendar_for(source, symbol) == expected
    assert calendar_for(Instrument(symbol=symbol, source=source)) == expected


def test_an_instrument_may_name_its_calendar_and_a_typo_is_a_universe_error(tmp_path: Path) -> None:
    assert calendar_for(Instrument(symbol="AIR", source="csv:/x/air.csv", calendar="XPAR")) == "XPAR"
    assert calendar_for(Instrument(symbol="^FCHI", source="yfinance", calendar="XPAR")) == "XPAR"
    path = tmp_path / "u.toml"
    path.write_text('name = "u"\n[[instruments]]\nsymbol = "AIR"\nsource = "sample"\ncalendar = "XNSY"\n')
    with pytest.raises(DataError, match=r"instruments\.0\.calendar: .*unknown calendar 'XNSY'"):
        load_universe(str(path))
    path.write_text('name = "u"\n[[instruments]]\nsymbol = "AIR"\nsource = "sample"\ncalendar = "XPAR"\n')
    assert load_universe(str(path)).instruments[0].calendar == "XPAR"


def test_the_mapped_exchanges_trade_monday_to_friday_only() -> None:
    # The gate skips building a calendar when the weekday count is within its limit; that is only right
    # if no session of these calendars falls on a weekend.
    for name in set(YAHOO_SUFFIXES.values()):
        assert weekday_bounded(name)
        sessions = exchange_calendar(name).sessions
        assert sessions[0] <= pd.Timestamp("1999-01-04")  # covers the oldest sample bar
        assert int((sessions.day_of_week >= 5).sum()) == 0, name
    assert not weekday_bounded("24/7") and not weekday_bounded("XTAE")


# ---------------------------------------------------------------- last closed session


@pytest.mark.parametrize(
    ("calendar", "moment", "expected"),
    [
        ("XNYS", "2024-03-28T15:59-04:00", "2024-03-27"),  # NYSE, a minute before the close
        ("XNYS", "2024-03-28T16:00-04:00", "2024-03-28"),  # … at the close
        ("XNYS", "2024-03-29T21:00+00:00", "2024-03-28"),  # Good Friday: no session
        ("XNYS", "2024-11-28T22:00+00:00", "2024-11-27"),  # Thanksgiving
        ("XNYS", "2024-11-29T17:59+00:00", "2024-11-27"),  # the day after: early close at 13:00 New York
        ("XNYS", "2024-11-29T18:00+00:00", "2024-11-29"),
        ("XNYS", "2024-03-30T12:00+00:00", "2024-03-28"),  # a weekend reads Thursday (Good Friday again)
        ("XPAR", "2024-03-28T17:29+01:00", "2024-03-27"),  # Paris, before its 17:30 close
        ("XPAR", "2024-03-28T17:30+01:00", "2024-03-28"),
        ("XPAR", "2024-04-01T18:00+02:00", "2024-03-28"),  # Easter Monday: Paris closed, New York open
        ("XNYS", "2024-04-01T18:00+02:00", "2024-03-28"),  # … and New York has not closed yet
        ("XNYS", "2024-04-01T22:00+02:00", "2024-04-01"),
        ("24/5", "2024-03-29T23:59+00:00", "2024-03-28"),  # FX: today's UTC day is forming
        ("24/5", "2024-03-30T00:00+00:00", "2024-03-29"),
        ("24/7", "2024-03-31T01:00+02:00", "2024-03-29"),  # 23:00 UTC on the 30th
    ],
)
def test_last_closed_session(calendar: str, moment: str, expected: str) -> None:
    assert last_closed_session(calendar, datetime.fromisoformat(moment)) == date.fromisoformat(expected)


def test_outside_the_built_span_the_weekday_rule_answers() -> None:
    far = datetime.fromisoformat("2099-06-03T12:00+00:00")  # a Wednesday
    assert last_closed_session("XNYS", far) == date(2099, 6, 2)
    assert last_closed_session("XNYS", datetime.fromisoformat("2099-06-08T12:00+00:00")) == date(2099, 6, 5)
    assert sessions_between("XNYS", date(1985, 11, 26), date(1985, 12, 3)) == 5  # weekdays, 1985 is unbuilt


# ---------------------------------------------------------------- Yahoo's forming bar


def test_yahoo_drops_the_nyse_bar_until_the_close(fake_yahoo: FakeYahoo) -> None:
    spy = Instrument(symbol="SPY", source="yfinance")
    during = _yf(fake_yahoo, "2024-03-28T15:00-04:00").fetch(spy, None, None)
    assert _last_day(during) == "2024-03-27" and len(during) == len(fake_yahoo.recorded["SPY"]) - 1
    after = _yf(fake_yahoo, "2024-03-28T16:05-04:00").fetch(spy, None, None)
    assert _last_day(after) == "2024-03-28" and len(after) == len(fake_yahoo.recorded["SPY"])


def test_yahoo_drops_the_paris_bar_until_the_paris_close(fake_yahoo: FakeYahoo) -> None:
    lvmh = Instrument(symbol="MC.PA", source="yfinance", currency="EUR")
    # 16:00 UTC: Paris is still open (closes 16:30 UTC), although it is past noon in New York.
    assert _last_day(_yf(fake_yahoo, "2024-03-28T16:00+00:00").fetch(lvmh, None, None)) == "2024-03-27"
    # 17:00 UTC: Paris has closed; New York has not, and that must not matter for a Paris ticker.
    assert _last_day(_yf(fake_yahoo, "2024-03-28T17:00+00:00").fetch(lvmh, None, None)) == "2024-03-28"


def test_yahoo_drops_a_bar_dated_on_a_holiday_after_the_last_closed_session(fake_yahoo: FakeYahoo) -> None:
    _with_bar(fake_yahoo, "SPY", "2024-03-29")  # Good Friday: NYSE closed, yet a bar is served
    _with_bar(fake_yahoo, "MC.PA", "2024-04-01")  # Easter Monday: Paris closed
    spy = Instrument(symbol="SPY", source="yfinance")
    lvmh = Instrument(symbol="MC.PA", source="yfinance", currency="EUR")
    assert _last_day(_yf(fake_yahoo, "2024-03-29T22:00+00:00").fetch(spy, None, None)) == "2024-03-28"
    assert _last_day(_yf(fake_yahoo, "2024-04-01T20:00+00:00").fetch(lvmh, None, None)) == "2024-03-28"
    # Once a later session has closed the bar is history, not forming, and is kept (the gate judges it).
    assert _last_day(_yf(fake_yahoo, "2024-04-02T16:45+00:00").fetch(lvmh, None, None)) == "2024-04-01"


def test_yahoo_fx_bar_is_forming_while_its_utc_day_is_today(fake_yahoo: FakeYahoo) -> None:
    fx = Instrument(symbol="EURUSD=X", source="yfinance")
    assert _last_day(_yf(fake_yahoo, "2024-03-29T23:30+00:00").fetch(fx, None, None)) == "2024-03-28"
    assert _last_day(_yf(fake_yahoo, "2024-03-30T00:30+00:00").fetch(fx, None, None)) == "2024-03-29"


def test_yahoo_window_of_only_a_forming_bar_is_empty_not_an_error(fake_yahoo: FakeYahoo) -> None:
    spy = Instrument(symbol="SPY", source="yfinance")
    df = _yf(fake_yahoo, "2024-03-28T12:00-04:00").fetch(spy, date(2024, 3, 28), None)
    assert df.empty and list(df.columns) == ["open", "high", "low", "close", "volume"]


def test_a_run_during_the_session_caches_no_forming_bar(cache: MarketCache, fake_yahoo: FakeYahoo) -> None:
    spy = Instrument(symbol="SPY", source="yfinance")
    universe = Universe(name="t", base_currency="USD", instruments=[spy], news=NewsConfig())
    during = {"yfinance": _yf(fake_yahoo, "2024-03-28T11:00-04:00")}
    data = load_universe_data(universe, cache, as_of=None, refresh=True, providers=during)
    assert _last_day(data.bars["SPY"]) == "2024-03-27" and cache.last_date("SPY", source="yfinance") == date(
        2024, 3, 27
    )
    after = {"yfinance": _yf(fake_yahoo, "2024-03-28T17:00-04:00")}
    data = load_universe_data(universe, cache, as_of=None, refresh=True, providers=after)
    assert fake_yahoo.calls[-1][1]["start"] == "2024-03-27"  # the tail from the last finished bar
    assert _last_day(data.bars["SPY"]) == "2024-03-28"
    assert data.bars["SPY"].loc["2024-03-28", "close"] == pytest.approx(
        float(fake_yahoo.recorded["SPY"]["Close"].iloc[-1])
    )


def test_provider_for_passes_the_clock_to_yahoo(
    monkeypatch: pytest.MonkeyPatch, fake_yahoo: FakeYahoo
) -> None:
    import yfinance as yf

    monkeypatch.setattr(yf, "Ticker", fake_yahoo)
    provider = provider_for("yfinance", clock=_at("2024-03-28T15:00-04:00"))
    assert _last_day(provider.fetch(Instrument(symbol="SPY", source="yfinance"), None, None)) == "2024-03-27"


# ---------------------------------------------------------------- staleness in sessions

SP = sample_frame("SP500")


def test_sessions_between_differ_by_calendar_over_easter() -> None:
    # Fri 2024-03-22 → Tue 2024-04-02: Good Friday closes New York and Paris, Easter Monday only Paris.
    last, as_of = date(2024, 3, 22), date(2024, 4, 2)
    counts = {c: sessions_between(c, last, as_of) for c in ("24/7", "24/5", "XNYS", "XPAR", "XLON")}
    assert counts == {"24/7": 11, "24/5": 7, "XNYS": 6, "XPAR": 5, "XLON": 5}
    assert sessions_between("XNYS", as_of, as_of) == 0 and sessions_between("XNYS", as_of, last) == 0


def test_staleness_over_thanksgiving_is_counted_in_nyse_sessions() -> None:
    # Last bar Wed 2008-11-19, as_of Fri 2008-11-28: 7 weekdays, 6 sessions (Thanksgiving, 27th, is none).
    bars, as_of = SP.loc[:"2008-11-19"], date(2008, 11, 28)
    assert validate_bars("SP500", bars, as_of, max_stale_sessions=6, calendar="XNYS").tradeable
    assert not validate_bars("SP500", bars, as_of, max_stale_sessions=6).tradeable  # the weekday rule
    result = validate_bars("SP500", bars, as_of, max_stale_sessions=5, calendar="XNYS")
    assert result.reasons == ["stale: last bar 2008-11-19 is 6 sessions before 2008-11-28"]


def test_the_weekday_shortcut_never_changes_a_verdict() -> None:
    # Around Thanksgiving and Christmas 2008, for every last bar and limit, the gate's verdict with the
    # shortcut equals the verdict from the exact session count.
    as_of = date(2008, 12, 31)
    for last in pd.bdate_range("2008-11-10", "2008-12-30"):
        bars = SP.loc[: last.strftime("%Y-%m-%d")]
        exact = sessions_between("XNYS", bars.index[-1].date(), as_of)
        for limit in range(0, 12):
            verdict = validate_bars("SP500", bars, as_of, max_stale_sessions=limit, calendar="XNYS").tradeable
            assert verdict == (exact <= limit), (last, limit)


def test_fresh_bars_do_not_build_a_calendar() -> None:
    calendars.exchange_calendar.cache_clear()
    calendars._table.cache_clear()
    assert validate_bars("SP500", SP.loc[:"2008-11-26"], date(2008, 11, 28), calendar="XNYS").tradeable
    assert calendars.exchange_calendar.cache_info().currsize == 0
    validate_bars("SP500", SP.loc[:"2008-11-12"], date(2008, 11, 28), calendar="XNYS")
    assert calendars.exchange_calendar.cache_info().currsize == 1


def test_crypto_keeps_counting_every_day() -> None:
    daily = pd.DataFrame(
        {"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0},
        index=pd.date_range("2024-01-01", "2024-01-20", freq="D", name="date"),
    )
    result = validate_bars("BTC/EUR", daily, date(2024, 1, 27), calendar="24/7")
    assert result.reasons == ["stale: last bar 2024-01-20 is 7 sessions before 2024-01-27"]


def _view(instruments: list[Instrument], bars: dict[str, pd.DataFrame], as_of: date) -> MarketView:
    universe = Universe(name="t", base_currency="USD", instruments=instruments, news=NewsConfig())
    data = UniverseData(universe=universe, as_of=as_of, bars=bars, fx={"USD": 1.0})
    return MarketView.build(data, as_of, max_stale_sessions=5)


def test_the_view_counts_each_instrument_in_its_own_sessions() -> None:
    # Bars to Mon 2024-03-25, as_of Wed 2024-04-03: 7 weekdays, 6 New York sessions, 5 Paris sessions.
    days = pd.bdate_range("2024-01-02", "2024-03-25", name="date")
    frame = (
        pd.DataFrame({"open": 10.0, "high": 11.0, "low": 9.0, "close": 10.0, "volume": 1.0}, index=days)
        * np.linspace(1.0, 1.1, len(days))[:, None]
    )
    instruments = [
        Instrument(symbol="AIR", source="csv:/x/air.csv", calendar="XPAR"),
        Instrument(symbol="AIRW", source="csv:/x/air.csv"),  # weekday rule
        Instrument(symbol="AIR.PA", source="yfinance"),  # XPAR by suffix
        Instrument(symbol="SPY", source="yfinance"),  # XNYS
    ]
    view = _view(instruments, {i.symbol: frame for i in instruments}, date(2024, 4, 3))
    assert view.validation["AIR"].tradeable and view.validation["AIR.PA"].tradeable
    assert view.validation["AIRW"].reasons == ["stale: last bar 2024-03-25 is 7 sessions before 2024-04-03"]
    assert view.validation["SPY"].reasons == ["stale: last bar 2024-03-25 is 6 sessions before 2024-04-03"]


def test_the_view_counts_sample_series_in_nyse_sessions() -> None:
    bars = {"SP500": SP.loc[:"2008-11-20"]}  # Thu → Fri 28th: 6 weekdays, 5 sessions
    view = _view([Instrument(symbol="SP500", source="sample")], bars, date(2008, 11, 28))
    assert view.validation["SP500"].tradeable
    later = _view([Instrument(symbol="SP500", source="sample")], bars, date(2008, 11, 28) + timedelta(days=3))
    assert later.validation["SP500"].reasons == ["stale: last bar 2008-11-20 is 6 sessions before 2008-12-01"]
