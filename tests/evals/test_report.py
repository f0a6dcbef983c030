"""evals.report: the report.json contract and its determinism, the self-contained HTML, the CLI table."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evals.baselines import run_baselines
from evals.models import LLMUsage, PolicyRun, Trade
from evals.report import build_report, dumps, metrics_table, metrics_text, write_report
from tests.evals.helpers import random_bars

METRIC_KEYS = {"total_return", "cagr", "sharpe", "sortino", "calmar", "max_drawdown", "max_drawdown_days",
               "volatility", "win_rate", "profit_factor", "exposure", "trades", "turnover"}
HOSTILE = "</script><script>alert(1)</script>"


def _agent_run(equity: pd.Series, name: str = "agent") -> PolicyRun:
    """A graph-policy-like run: decisions with extra fields, LLM usage, weights, no trade P&Ls."""
    rng = np.random.default_rng(3)
    wiggle = equity * (1.0 + np.cumsum(rng.normal(0.0, 0.002, len(equity))))
    weights = pd.DataFrame({"S00": 0.3, "S01": 0.2}, index=equity.index)
    trades = tuple(Trade(d.date(), "S00", "buy" if i % 2 == 0 else "sell", 1.0 + i, 50.0, 0.05)
                   for i, d in enumerate(equity.index[1:40:3]))
    decisions = tuple({"date": d.date(), "symbol": "S00", "action": "hold", "reason": HOSTILE, "confidence": 0.5}
                      for d in equity.index[:5])
    return PolicyRun(name=name, equity=wiggle, exposure=weights.sum(axis=1), trades=trades, decisions=decisions,
                     weights=weights, llm=LLMUsage(calls=12, tokens=3456, cost=0.0123), notes=("offline-rules",))


def _runs() -> list[PolicyRun]:
    base = run_baselines(random_bars(5, 400, seed=9), "2020-01-01", "2021-12-31")
    runs = [r.to_policy_run() for r in base.values()]
    return [_agent_run(runs[0].equity), *runs]


CONFIG = {"universe": "synthetic-5", "start": date(2020, 1, 2), "end": "2021-07-30", "policies": ["agent", "buyhold"],
          "seed": 0, "path": Path("/tmp/x")}
TIMING = {"total_seconds": 12.5, "train_seconds": 0.0, "replay_seconds": 12.0, "days_per_second": 33.3}


@pytest.fixture(scope="module")
def runs() -> list[PolicyRun]:
    return _runs()


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, runs: list[PolicyRun]) -> tuple[Path, Path]:
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    write_report(a, runs, config=CONFIG, timing=TIMING, reps=200)
    write_report(b, _runs(), config=CONFIG, timing={**TIMING, "total_seconds": 99.0}, reps=200)
    return a, b


def test_report_json_has_the_design_schema(written: tuple[Path, Path]) -> None:
    report = json.loads((written[0] / "report.json").read_text())
    assert set(report) == {"config", "policies", "timing", "notes"}
    assert set(report["policies"]) == {"agent", "buyhold", "equalweight", "holdall"}
    assert set(report["timing"]) == {"total_seconds", "train_seconds", "replay_seconds", "days_per_second"}
    assert report["config"]["start"] == "2020-01-02" and report["config"]["path"] == "/tmp/x"
    for name, block in report["policies"].items():
        assert {"metrics", "equity", "decisions", "regimes", "intervals", "llm", "win_rate_basis", "notes"} <= set(block)
        assert set(block["metrics"]) == METRIC_KEYS, name
        assert set(block["llm"]) == {"calls", "tokens", "cost"}
        assert set(block["intervals"]) == {"sharpe", "sharpe_vs_buyhold"}
        assert set(block["regimes"]) == {"bull", "bear", "sideways", "unknown"}
        day, value = block["equity"][0]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", day) and isinstance(value, float)
        for d in block["decisions"]:
            assert {"date", "symbol", "action"} <= set(d)
    agent = report["policies"]["agent"]
    assert agent["llm"] == {"calls": 12, "tokens": 3456, "cost": 0.0123}
    assert agent["win_rate_basis"] == "daily returns"
    assert report["policies"]["buyhold"]["win_rate_basis"] == "closed trades"
    assert agent["decisions"][0]["confidence"] == 0.5
    sharpe = agent["intervals"]["sharpe"]
    assert sharpe["low"] < sharpe["estimate"] < sharpe["high"]
    assert agent["intervals"]["sharpe_vs_buyhold"]["days"] == len(agent["equity"]) - 1
    assert report["policies"]["buyhold"]["intervals"]["sharpe_vs_buyhold"] is None
    assert report["policies"]["holdall"]["intervals"] == {"sharpe": None, "sharpe_vs_buyhold": None}
    assert any("regimes from the buyhold" in n for n in report["notes"])


def test_report_json_is_byte_identical_apart_from_timing(written: tuple[Path, Path]) -> None:
    a, b = (json.loads((d / "report.json").read_text()) for d in written)
    assert a["timing"]["total_seconds"] != b["timing"]["total_seconds"]
    a.pop("timing"), b.pop("timing")
    assert a == b
    text_a, text_b = ((d / "report.json").read_text() for d in written)
    strip = re.compile(r'"total_seconds": [0-9.]+')
    assert strip.sub("", text_a) == strip.sub("", text_b)


def test_report_json_has_no_nan_and_rounds_floats(written: tuple[Path, Path]) -> None:
    text = (written[0] / "report.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    for number in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", text):
        assert len(number.lstrip("-").split("e")[0].replace(".", "").lstrip("0")) <= 10


def test_dumps_writes_nan_and_infinity_as_null_and_refuses_unknown_objects() -> None:
    assert json.loads(dumps({"a": float("nan"), "b": float("inf"), "c": np.float64(1 / 3), "d": np.int64(2)})) == {
        "a": None, "b": None, "c": 0.3333333333, "d": 2}
    with pytest.raises(TypeError, match="cannot write object"):
        dumps({"x": object()})


def test_build_report_refuses_duplicate_names_and_unknown_timing(runs: list[PolicyRun]) -> None:
    with pytest.raises(ValueError, match="unique"):
        build_report([runs[1], runs[1]], config={})
    with pytest.raises(ValueError, match="timing"):
        build_report(runs[1:2], config={}, timing={"wall": 1.0})


def test_a_report_without_buyhold_says_so_and_a_benchmark_gives_regimes(runs: list[PolicyRun]) -> None:
    bench = pd.Series(np.linspace(100.0, 200.0, 700), index=pd.bdate_range("2018-04-02", periods=700))
    report = build_report([runs[0]], config={}, benchmark=bench, reps=50)
    assert report["policies"]["agent"]["intervals"]["sharpe_vs_buyhold"] is None
    assert any("no buyhold policy" in n for n in report["notes"])
    regimes = report["policies"]["agent"]["regimes"]
    assert regimes["bull"]["days"] > 0 and regimes["unknown"]["days"] == 0  # the benchmark starts before the window


def test_html_is_self_contained_with_every_figure_and_policy(written: tuple[Path, Path]) -> None:
    page = (written[0] / "report.html").read_text()
    assert page.count("Plotly.newPlot") == 3
    for div in ("equity-drawdown", "exposure", "weights"):
        assert f'id="{div}"' in page
    for name in ("agent", "buyhold", "equalweight", "holdall"):
        assert f"<td>{name}</td>" in page
    assert not re.search(r"<script[^>]*\bsrc=", page)  # plotly.js is inlined, nothing loads from a network
    assert len(page) > 1_000_000  # the inlined plotly.js bundle
    assert "Position weights: agent" in page
    assert "ΔSharpe vs buyhold" in page


def test_html_escapes_text_and_caps_the_trades_table(tmp_path: Path, runs: list[PolicyRun]) -> None:
    hostile = _agent_run(runs[1].equity, name=HOSTILE)
    files = write_report(tmp_path, [hostile, *runs[1:]], config={"note": HOSTILE}, reps=50, max_trades=7)
    page = files.html_path.read_text()
    assert HOSTILE not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    total = sum(len(r.trades) for r in [hostile, *runs[1:]])
    assert f"Showing the last 7 of {total} trades." in page
    assert json.loads(files.json_path.read_text())["policies"][HOSTILE]["decisions"][0]["reason"] == HOSTILE


def test_metrics_text_for_the_cli(written: tuple[Path, Path]) -> None:
    report = json.loads((written[0] / "report.json").read_text())
    text = metrics_text(report)
    for name in ("agent", "buyhold", "equalweight", "holdall"):
        assert name in text
    assert "Sharpe" in text and "\x1b[" not in text
    table = metrics_table(report)
    assert table.row_count == 15  # the 13 metrics, the Sharpe interval, the difference against buyhold
    assert len(table.columns) == 5  # the metric's name, then one column per policy
