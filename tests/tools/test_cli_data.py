"""``tradeagent data fetch|show`` through Typer's runner: JSON shape, indicator values, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pandas_ta_classic as ta
import pytest
from typer.testing import CliRunner

from agent.cli_data import app
from tests.tools.conftest import DATA
from tools.market_data import sample_frame

runner = CliRunner()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # no stray .env from the repo
    return tmp_path / "home"


def _json(args: list[str]) -> dict:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_show_json_shape_and_point_in_time() -> None:
    out = _json(["show", "SP500", "--as-of", "2008-10-15", "--indicators", "--json"])
    assert set(out) == {"symbol", "as_of", "source", "bars", "validation"}
    assert out["symbol"] == "SP500" and out["as_of"] == "2008-10-15" and out["source"] == "sample"
    assert len(out["bars"]) == 10 and out["bars"][-1]["date"] == "2008-10-15"
    assert all(bar["date"] <= "2008-10-15" for bar in out["bars"])
    assert {
        "date",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "rsi_14",
        "macd",
        "bb_percent",
        "adx_14",
    } <= set(out["bars"][0])
    assert out["validation"] == {"tradeable": True, "reasons": []}


def test_show_indicators_equal_pandas_ta_classic_on_the_same_data() -> None:
    out = _json(["show", "SP500", "--as-of", "2008-10-15", "--indicators", "--json", "--last", "3"])
    df = sample_frame("SP500").loc[:"2008-10-15"]
    c, h, low = df["close"], df["high"], df["low"]
    expected = pd.DataFrame(
        {
            "sma_200": ta.sma(c, length=200), "ema_12": ta.ema(c, length=12), "rsi_14": ta.rsi(c, length=14),
            "macd": ta.macd(c, 12, 26, 9)["MACD_12_26_9"], "bb_upper": ta.bbands(c, 20, 2)["BBU_20_2.0"],
            "atr_14": ta.atr(h, low, c, length=14), "adx_14": ta.adx(h, low, c, length=14)["ADX_14"],
            "obv": ta.obv(c, df["volume"]),
        }
    ).iloc[-3:]  # fmt: skip
    for name in expected.columns:
        got = [bar[name] for bar in out["bars"]]
        np.testing.assert_allclose(got, expected[name].to_numpy(), rtol=1e-12, err_msg=name)


def test_show_without_indicators_has_only_ohlcv() -> None:
    out = _json(["show", "GOOG", "--json", "--last", "2"])
    assert out["as_of"] == "2013-03-01" and set(out["bars"][0]) == {
        "date",
        "open",
        "high",
        "low",
        "close",
        "volume",
    }


def test_show_human_output_mentions_validation() -> None:
    result = runner.invoke(app, ["show", "SP500", "--as-of", "2008-10-15", "--indicators", "--last", "3"])
    assert result.exit_code == 0 and "907.84" in result.stdout and "rsi_14" in result.stdout
    assert "validation: tradeable" in result.stdout


def test_show_from_a_csv_universe(tmp_path: Path) -> None:
    uni = tmp_path / "u.toml"
    uni.write_text(f'name = "u"\n[[instruments]]\nsymbol = "ACME"\nsource = "csv:{DATA / "csv_good.csv"}"\n')
    out = _json(["show", "ACME", "--universe", str(uni), "--json"])
    assert [b["close"] for b in out["bars"]] == [100.5, 101.0, 103.0, 103.5, 104.5]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "AAPL"], "error: 'AAPL' is not in universe demo; symbols: SP500, NASDAQ, GOOG"),
        (
            ["show", "SP500", "--as-of", "2008-15-10"],
            "error: --as-of '2008-15-10' is not a date; use YYYY-MM-DD",
        ),
        (
            ["show", "SP500", "--as-of", "1990-01-02"],
            "error: 1990-01-02 is before the data starts (first bar 1999-01-04)",
        ),
        (["show", "SP500", "--universe", "nope"], "error: unknown universe 'nope'"),
        (
            ["show", "SPY", "--universe", "etf-eu"],
            "error: no cached bars for SPY (yfinance); run `tradeagent data fetch`",
        ),
    ],
)
def test_errors_are_one_line_with_exit_code_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), result.output
    assert "Traceback" not in result.output


def test_malformed_csv_is_one_line_error(tmp_path: Path) -> None:
    uni = tmp_path / "u.toml"
    uni.write_text(
        f'name = "u"\n[[instruments]]\nsymbol = "BAD"\nsource = "csv:{DATA / "csv_bad_date.csv"}"\n'
    )
    result = runner.invoke(app, ["show", "BAD", "--universe", str(uni)])
    assert result.exit_code == 2 and "unparsable date '2021-13-45'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_fetch_json_summarises_every_symbol(home: Path) -> None:
    out = _json(["fetch", "--universe", "demo", "--end", "2010-12-31", "--json"])
    rows = {r["symbol"]: r for r in out["symbols"]}
    assert set(rows) == {"SP500", "NASDAQ", "GOOG"} and out["errors"] == {}
    assert rows["SP500"]["first"] == "1999-01-04" and rows["SP500"]["last"] == "2010-12-31"
    assert rows["GOOG"]["source"] == "sample" and rows["GOOG"]["bars"] > 1500
    assert (home / "tradeagent.duckdb").is_file()


def test_fetch_without_network_is_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from curl_cffi.requests.exceptions import ConnectionError as CurlConnectionError

    class NoNetwork:
        def __init__(self, symbol: str) -> None:
            self.symbol = symbol

        def history(self, **kwargs: object) -> pd.DataFrame:
            raise CurlConnectionError("Could not resolve host: query2.finance.yahoo.com")

    import yfinance as yf

    monkeypatch.setattr(yf, "Ticker", NoNetwork)
    result = runner.invoke(app, ["fetch", "--universe", "etf-eu", "--json"])
    assert result.exit_code == 2
    assert "error: nothing loaded for universe etf-eu: all 20 instruments failed (first, SPY: yfinance unreachable" in result.output
    human = runner.invoke(app, ["fetch", "--universe", "etf-eu"])
    assert human.exit_code == 2 and "┃" not in human.output  # no table repeating one failure 20 times
    payload = json.loads(result.stdout)
    assert len(payload["errors"]) == 20
