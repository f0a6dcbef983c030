"""Universes: the built-ins, a user's TOML file, and the errors for unknown or malformed ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.errors import DataError, UnknownUniverseError
from tools.universe import list_universes, load_universe


def test_demo_is_the_three_offline_sample_series() -> None:
    u = load_universe("demo")
    assert u.symbols == ["SP500", "NASDAQ", "GOOG"]
    assert {i.source for i in u.instruments} == {"sample"} and u.base_currency == "USD"


def test_etf_eu_mixes_usd_etfs_and_eur_cac40_stocks() -> None:
    u = load_universe("etf-eu")
    by_ccy = {c: [i.symbol for i in u.instruments if i.currency == c] for c in ("USD", "EUR")}
    assert u.base_currency == "EUR" and 18 <= len(u.instruments) <= 24
    assert {"SPY", "QQQ", "TLT", "GLD"} <= set(by_ccy["USD"])
    assert {"MC.PA", "OR.PA", "TTE.PA", "SAN.PA", "AIR.PA"} <= set(by_ccy["EUR"])
    assert all(s.endswith(".PA") for s in by_ccy["EUR"])
    assert {i.source for i in u.instruments} == {"yfinance"}


def test_crypto_eur_is_ten_kraken_eur_pairs() -> None:
    u = load_universe("crypto-eur")
    assert len(u.instruments) == 10 and u.base_currency == "EUR"
    assert all(
        i.source == "ccxt:kraken" and i.symbol.endswith("/EUR") and i.currency == "EUR" for i in u.instruments
    )
    assert {"BTC/EUR", "ETH/EUR", "SOL/EUR"} <= set(u.symbols)


def test_synthetic_n_has_n_symbols() -> None:
    u = load_universe("synthetic-25")
    assert len(u.symbols) == 25 and u.symbols[0] == "SYN000" and u.symbols[-1] == "SYN024"
    with pytest.raises(UnknownUniverseError):
        load_universe("synthetic-0")


def test_list_universes_names_every_builtin() -> None:
    assert list_universes() == ["crypto-eur", "demo", "etf-eu", "synthetic-N"]


def test_toml_file_in_the_design_format(tmp_path: Path) -> None:
    (tmp_path / "msft.csv").write_text("Date,Open,High,Low,Close,Volume\n2021-01-04,1,1,1,1,1\n")
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\nbase_currency = "eur"\n\n[[instruments]]\nsymbol = "MSFT"\nsource = "csv:msft.csv"\n'
        'currency = "USD"\n\n[[instruments]]\nsymbol = "SP500"\nsource = "sample"\n\n'
        '[news]\nfeeds = ["https://example.org/feed.xml"]\nsubreddits = ["stocks"]\n'
    )
    u = load_universe(str(path))
    assert u.name == "mine" and u.base_currency == "EUR" and u.symbols == ["MSFT", "SP500"]
    # A relative csv path is resolved against the TOML file's folder.
    assert u.instruments[0].source == f"csv:{(tmp_path / 'msft.csv').resolve()}"
    assert u.news.feeds == ["https://example.org/feed.xml"] and u.news.subreddits == ["stocks"]
    assert u.instruments[1].currency == "USD" and u.instruments[1].shortable is False


def test_unknown_name_lists_the_builtins() -> None:
    with pytest.raises(
        UnknownUniverseError,
        match="unknown universe 'nasdaq100'; built-in: crypto-eur, demo, etf-eu, synthetic-N",
    ):
        load_universe("nasdaq100")
    with pytest.raises(UnknownUniverseError, match="not found"):
        load_universe("/nowhere/u.toml")


def test_malformed_toml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\n[[instruments]]\nsymbol = "X\nsource = "sample"\n')
    with pytest.raises(DataError, match=r"bad.toml: invalid TOML: .*line 3") as info:
        load_universe(str(path))
    assert "\n" not in str(info.value)


def test_schema_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text('name = "t"\n[[instruments]]\nsymbol = "X"\nsource = "sample"\ncurency = "EUR"\n')
    with pytest.raises(DataError, match=r"typo.toml: instruments.0.curency: Extra inputs are not permitted"):
        load_universe(str(path))
    path.write_text('name = "t"\ninstruments = []\n')
    with pytest.raises(DataError, match="instruments"):
        load_universe(str(path))


def test_shortable_must_be_a_toml_boolean(tmp_path: Path) -> None:
    path = tmp_path / "u.toml"
    path.write_text('name = "u"\nbase_currency = "USD"\n[[instruments]]\nsymbol = "SP500"\nsource = "sample"\n'
                    'shortable = "yes"\n')
    with pytest.raises(DataError, match="shortable"):
        load_universe(str(path))
