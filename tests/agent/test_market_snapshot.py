"""The quotes the guard sees: built at D's close from the universe's instruments (currency, shortability)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from agent.day import market_snapshot
from tools.cache import MarketCache
from tools.data import load_universe_data
from tools.universe import load_universe
from tools.view import MarketView

DAY = date(2012, 6, 1)


def test_quotes_carry_the_instruments_shortability_currency_and_the_close_of_d(tmp_path: Path) -> None:
    toml = tmp_path / "u.toml"
    toml.write_text(
        'name = "mixed"\nbase_currency = "USD"\n'
        '[[instruments]]\nsymbol = "SP500"\nsource = "sample"\nshortable = true\n'
        '[[instruments]]\nsymbol = "NASDAQ"\nsource = "sample"\n'
    )
    uni = load_universe(str(toml))
    with MarketCache(tmp_path / "t.duckdb") as cache:
        data = load_universe_data(uni, cache, as_of=DAY, refresh=True)
    market = market_snapshot(MarketView.build(data, DAY), uni)
    sp, nq = market.quotes["SP500"], market.quotes["NASDAQ"]
    assert (sp.shortable, nq.shortable) == (True, False)
    assert sp.price_date == DAY and sp.price == float(data.bars["SP500"]["close"].iloc[-1])
    assert sp.currency == "USD" and sp.fx_rate == 1.0 and sp.tradeable
    assert 0.0 < sp.volatility < 1.0  # annualised 20-day volatility of the index
    assert -1.0 <= market.correlations["SP500"]["NASDAQ"] <= 1.0 and market.correlations["SP500"]["NASDAQ"] > 0.5
