"""Charts: `data show --plot` and `portfolio --plot` write real PNGs that draw what the data and ledger hold."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from typer.testing import CliRunner

from agent.cli import app
from agent.daily import run_daily
from agent.plots import equity_figure, price_figure
from agent.settings import Settings
from portfolio.ledger import Ledger
from tools.indicators import compute_indicators
from tools.market_data import sample_frame

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
AS_OF = pd.Timestamp("2008-10-15")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def sp500_until(as_of: pd.Timestamp) -> pd.DataFrame:
    bars = sample_frame("SP500")
    bars = bars[bars.index <= as_of]
    return bars.join(compute_indicators(bars).drop(columns=["close"]))


def lines(ax: object) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {ln.get_label(): (np.asarray(ln.get_xdata()), np.asarray(ln.get_ydata())) for ln in ax.get_lines()}  # type: ignore[attr-defined]


def test_data_show_plot_writes_a_png_and_keeps_json_on_stdout_clean(home: Path, tmp_path: Path) -> None:
    chart = tmp_path / "charts" / "sp500.png"
    chart.parent.mkdir()
    code, out, err = invoke("data", "show", "SP500", "--as-of", "2008-10-15", "--json", "--plot", str(chart))
    assert code == 0, err
    assert json.loads(out)["bars"][-1]["date"] == "2008-10-15"
    assert f"chart: {chart}" in err.replace("\n", "")
    assert chart.read_bytes()[:8] == PNG_MAGIC
    height, width = imread(chart).shape[:2]
    assert (width, height) == (1210, 935)  # 11 × 8.5 inches at 110 dpi
    assert imread(chart)[..., :3].std() > 0.05  # something was drawn, not a blank canvas


def test_the_price_chart_draws_the_indicators_and_nothing_after_as_of() -> None:
    frame = sp500_until(AS_OF).iloc[-252:]
    fig = price_figure(frame, "SP500 as of 2008-10-15")
    price, _volume, rsi, macd = fig.axes
    drawn = lines(price)
    assert {"close", "SMA 20", "SMA 50", "SMA 200"} <= drawn.keys()
    x, y = drawn["close"]
    assert mdates.date2num(AS_OF) == pytest.approx(max(mdates.date2num(v) for v in x))
    np.testing.assert_allclose(y.astype(float), frame["close"].to_numpy())
    np.testing.assert_allclose(lines(price)["SMA 200"][1].astype(float), frame["sma_200"].to_numpy())
    rsi_y = next(iter(lines(rsi).values()))[1].astype(float)
    np.testing.assert_allclose(rsi_y, frame["rsi_14"].to_numpy())
    assert {"MACD 12/26", "signal 9"} <= lines(macd).keys()


def test_the_equity_chart_marks_fills_and_draws_the_drawdown(home: Path) -> None:
    settings = Settings(home=home)
    for day in (date(2013, 2, 26), date(2013, 2, 27), date(2013, 2, 28), date(2013, 3, 1)):
        run_daily(settings, universe="demo", run_date=day, llm="offline")
    with Ledger(settings.db_path, base_currency="USD", starting_cash=10_000.0) as ledger:
        curve, fills = ledger.equity_curve(), ledger.fills()
    assert fills and len(curve) == 4
    fig = equity_figure(curve, fills, "equity")
    top, bottom = fig.axes
    _, y = lines(top)["equity"]
    np.testing.assert_allclose(y.astype(float), [v for _, v in curve])
    marked = {c.get_label(): len(c.get_offsets()) for c in top.collections}
    assert marked.get("buy fill", 0) + marked.get("sell fill", 0) == len({(f.side, f.fill_date) for f in fills})
    equity = np.array([v for _, v in curve])
    lowest = ((equity / np.maximum.accumulate(equity)) - 1).min() * 100
    drawn = bottom.collections[0].get_paths()[0].vertices[:, 1]
    assert drawn.min() == pytest.approx(min(lowest, 0.0))

    code, _, err = invoke("portfolio", "--plot", str(home / "equity.png"))
    assert code == 0, err
    assert (home / "equity.png").read_bytes()[:8] == PNG_MAGIC


def test_plot_errors_are_one_line(home: Path, tmp_path: Path) -> None:
    code, _, err = invoke("portfolio", "--plot", str(tmp_path / "equity.png"))
    assert code == 2 and "no ledger yet" in err and len(err.strip().splitlines()) == 1
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = invoke("data", "show", "SP500", "--plot", str(blocker / "chart.png"))
    assert code == 2 and "cannot write the chart" in err and "Traceback" not in err


def test_a_plot_into_a_missing_folder_is_refused_and_creates_nothing(home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    for args in (("data", "show", "SP500", "--json"), ("portfolio",)):
        code, out, err = invoke(*args, "--plot", str(missing / "x.png"))
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
        assert f"folder {missing} does not exist" in err.replace("\n", "")
    assert not (tmp_path / "nonexistent").exists()
