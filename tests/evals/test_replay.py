"""The replay harness: point-in-time (perturbation), reproducible, listings and delistings, refusals.

Replays here run the real graph, guard, paper broker and DuckDB ledger (in memory) day by day.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.llm.base import LLMRequest, LLMResponse
from agent.quant_inputs import QuantSetup
from agent.settings import Settings
from evals.baselines import run_baselines
from evals.replay import ReplayBook, latched_modes, replay_policy, sessions_between
from evals.run import EvalConfig, EvalError, run_eval
from evals.training import train_walk_forward
from portfolio.risk import CEILINGS
from tests.agent.loopback_llm import reckless_but_valid, serve
from tests.agent.test_graph import analyst_says, risk_targets
from tools.cache import MarketCache
from tools.data import UniverseData, load_universe_data
from tools.models import Instrument, Universe
from tools.quant.models import TrainConfig, XgbParams
from tools.universe import load_universe
from tools.view import precompute_indicators


def demo_data(home: Path, end: date) -> UniverseData:
    cache = MarketCache(home / "cache.duckdb")
    try:
        return load_universe_data(load_universe("demo"), cache, as_of=end, refresh=True)
    finally:
        cache.close()


def replay(data: UniverseData, name: str, start: date, end: date, client: Any = None, quant: Any = None) -> Any:
    from agent.llm.offline import OfflineRulesClient

    llm = client or OfflineRulesClient()
    return replay_policy(name, data, sessions_between(data, start, end), indicators=precompute_indicators(data),
                         limits=CEILINGS, money=ReplayBook(), client_for_day=lambda _d: llm, quant=quant)


def walk_forward_models(data: UniverseData, start: date, end: date, out: Path) -> QuantSetup:
    trained = train_walk_forward(data.bars, data.universe.name, frozenset({"xgb"}), sessions_between(data, start, end),
                                 out, TrainConfig(params=XgbParams(max_rounds=30)))
    return QuantSetup(models_dir=trained.models_dir, kinds=trained.kinds, features=trained.features)


def garbage_after(data: UniverseData, day: date, seed: int = 7) -> UniverseData:
    """The same data with every bar after ``day`` replaced by random prices (dates kept)."""
    rng = np.random.default_rng(seed)
    bars = {}
    for symbol, df in data.bars.items():
        df = df.copy()
        later = df.index > pd.Timestamp(day)
        noise = rng.uniform(0.2, 5.0, size=(int(later.sum()), 1))
        for col in ("open", "high", "low", "close"):
            df.loc[later, col] = df.loc[later, "close"].to_numpy() * noise[:, 0]
        df.loc[later, "high"] = df.loc[later, ["open", "close"]].max(axis=1) * 1.01
        df.loc[later, "low"] = df.loc[later, ["open", "close"]].min(axis=1) * 0.99
        bars[symbol] = df
    return UniverseData(universe=data.universe, as_of=data.as_of, bars=bars, fx=dict(data.fx),
                        fx_series=dict(data.fx_series))


# ------------------------------------------------------------------ point-in-time


@pytest.mark.slow
def test_garbage_after_d_changes_no_decision_up_to_d_for_any_policy(tmp_path: Path) -> None:
    # two walk-forward windows: the model of the second (from 2012-04-02) is trained on the garbage
    start, cut, end = date(2011, 10, 3), date(2012, 1, 31), date(2012, 5, 31)
    data = demo_data(tmp_path, end)
    spoiled = garbage_after(data, cut)
    assert not spoiled.bars["SP500"].loc["2012-02-01":].equals(data.bars["SP500"].loc["2012-02-01":])
    models = {"clean": walk_forward_models(data, start, end, tmp_path / "clean"),
              "dirty": walk_forward_models(spoiled, start, end, tmp_path / "dirty")}
    for name in ("agent", "analyst", "xgb"):
        clean = replay(data, name, start, end, quant=models["clean"])
        dirty = replay(spoiled, name, start, end, quant=models["dirty"])
        upto = [d for d in clean.decisions if d["date"] <= cut.isoformat()]
        assert upto, f"{name} decided nothing before {cut}: the test would prove nothing"
        assert upto == [d for d in dirty.decisions if d["date"] <= cut.isoformat()]
        assert clean.equity[:cut].equals(dirty.equity[:cut])
        assert not clean.equity.equals(dirty.equity)  # the garbage was seen after D
    sessions = sessions_between(data, start, end)
    for bars in (data.bars, spoiled.bars):
        runs = run_baselines(bars, sessions[0], sessions[-1], cash=10_000.0)
        if bars is data.bars:
            reference = runs
            continue
        for name, run in runs.items():
            mine = [d for d in run.decisions if str(d["date"]) <= cut.isoformat()]
            assert mine == [d for d in reference[name].decisions if str(d["date"]) <= cut.isoformat()]
            assert run.equity[:cut].equals(reference[name].equity[:cut])


# ------------------------------------------------------------------ reproducible


def test_the_same_eval_twice_writes_byte_identical_reports_apart_from_timing(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    texts = []
    for out in ("a", "b"):
        cfg = EvalConfig(universe="demo", start=date(2012, 1, 2), end=date(2012, 2, 29), out=tmp_path / out,
                         policies=("agent", "buyhold", "holdall"), seed=3, memory=True)
        files = run_eval(settings, cfg)
        report = json.loads(files.json_path.read_text())
        assert report["timing"]["replay_seconds"] > 0
        report.pop("timing")
        texts.append(json.dumps(report, sort_keys=True))
    assert texts[0] == texts[1]
    report = json.loads(texts[0])
    assert set(report["policies"]) == {"agent", "agent+memory", "buyhold", "holdall"}  # memory's notes included
    assert report["config"]["llm"] == "offline" and report["config"]["model"] == "offline-rules-v1"
    assert any("not the risk guard" in n for b in report["policies"].values() for n in b["notes"])


@pytest.mark.slow
def test_a_recorded_llm_replays_without_the_server_to_the_same_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real HTTP path: record an eval against a loopback server, then replay it with the server gone."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-eval-0000000000")
    window = {"universe": "demo", "start": date(2012, 1, 2), "end": date(2012, 1, 31), "policies": ("agent", "buyhold")}
    with serve(reckless_but_valid) as (url, seen):
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        recorded = run_eval(Settings(home=tmp_path), EvalConfig(**window, out=tmp_path / "rec", llm="openai",
                                                               cache_mode="record"))
        calls = len(seen)
    assert calls > 0
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens: a live call would fail
    replayed = run_eval(Settings(home=tmp_path), EvalConfig(**window, out=tmp_path / "rep", llm="openai",
                                                           cache_mode="replay"))
    a, b = recorded.report, replayed.report
    assert a["policies"]["agent"]["llm"]["calls"] == calls
    for r in (a, b):
        r.pop("timing")
        r["config"].pop("llm_cache")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    # the model asked for 100% of everything every day: every buy the guard let through was clamped
    buys = [d for d in a["policies"]["agent"]["decisions"] if d["action"] == "buy"]
    assert buys and all(d["clamped"] for d in buys)
    assert a["policies"]["agent"]["metrics"]["exposure"] <= 1.0


# ------------------------------------------------------------------ listings and delistings


class Wants:
    """A deterministic model that always rates ``symbols`` a strong buy and sizes each at 15%."""

    provider, model = "scripted", "wants-v1"

    def __init__(self, *symbols: str) -> None:
        self.symbols = symbols

    def complete(self, request: LLMRequest) -> LLMResponse:
        scores = dict.fromkeys(self.symbols, 0.9)
        answer = analyst_says(**scores) if request.node != "risk" else risk_targets(**dict.fromkeys(self.symbols, 0.15))
        return answer  # type: ignore[return-value]


def _listed_and_delisted() -> UniverseData:
    days = pd.bdate_range("2019-01-01", "2020-06-30")
    rng = np.random.default_rng(1)

    def bars(idx: pd.DatetimeIndex) -> pd.DataFrame:
        close = 100 * np.exp(np.cumsum(rng.normal(0.0005, 0.01, len(idx))))
        return pd.DataFrame({"open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
                             "volume": 1e6}, index=idx)

    uni = Universe(name="lifetimes", base_currency="USD", instruments=[
        Instrument(symbol=s, source="synthetic", currency="USD") for s in ("OLD", "NEW")])
    return UniverseData(universe=uni, as_of=None, bars={"OLD": bars(days[days <= "2020-03-13"]),
                                                        "NEW": bars(days[days >= "2020-02-03"])})


def test_an_instrument_trades_only_while_it_has_data_and_its_position_is_closed_at_its_last_close() -> None:
    data = _listed_and_delisted()
    run = replay(data, "agent", date(2020, 1, 2), date(2020, 5, 29), client=Wants("OLD", "NEW"))
    buys = [d for d in run.decisions if d["action"] == "buy"]
    assert {d["symbol"] for d in buys} == {"OLD", "NEW"}
    assert min(d["date"] for d in buys if d["symbol"] == "NEW") >= "2020-02-03"  # not before its first bar
    assert max(d["date"] for d in buys if d["symbol"] == "OLD") <= "2020-03-13"  # not after its last
    rejected_new = [d for d in run.decisions if d["symbol"] == "NEW" and d["action"] == "rejected"]
    assert rejected_new and all(d["date"] < "2020-02-03" for d in rejected_new)
    (note,) = [n for n in run.notes if "delisted" in n]
    assert "no OLD bar since 2020-03-13" in note
    last_close = float(data.bars["OLD"]["close"].iloc[-1])
    (cash_out,) = [t for t in run.trades if t.symbol == "OLD" and t.side == "sell" and t.date > date(2020, 3, 13)]
    assert cash_out.price == pytest.approx(last_close) and cash_out.fees == 0.0
    assert run.weights is not None and run.weights.loc["2020-04-01":, "OLD"].eq(0).all()


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"policies": ("buyhold", "momentum")}, "unknown graph policy 'momentum'"),
        ({"policies": ("agent", "nope")}, "unknown graph policy 'nope'"),
        ({"start": date(2013, 1, 1), "end": date(2012, 1, 1)}, "is after --end"),
        ({"start": date(1950, 1, 2), "end": date(1950, 3, 1)}, "error"),
    ],
)
def test_a_policy_or_window_that_cannot_run_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any], message: str
) -> None:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path))
    cfg = {"universe": "demo", "start": date(2012, 1, 2), "end": date(2012, 2, 1), "out": tmp_path / "out"} | changes
    args = ["eval", "--universe", cfg["universe"], "--start", cfg["start"].isoformat(), "--end", cfg["end"].isoformat(),
            "--out", str(cfg["out"])]
    if "policies" in changes:
        args += ["--policy", ",".join(cfg["policies"])]
    if changes.get("memory"):
        args += ["--memory", "on"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and (message in lines[0] or message == "error")
    assert not (tmp_path / "out" / "report.json").exists()


@pytest.mark.parametrize(("policies", "message"), [
    (("agent", "agent"), "twice"),
    (("agent@BALANCED", "agent@balanced"), "twice"),  # one profile in two spellings (found by an attacker)
    (("buyhold@balanced",), "takes no risk profile"),
])
def test_eval_config_refuses_a_policy_named_twice_or_a_benchmark_with_a_profile(
    policies: tuple[str, ...], message: str
) -> None:
    with pytest.raises(EvalError, match=message):
        run_eval(Settings(home=Path("/nonexistent")), EvalConfig(universe="demo", start=date(2012, 1, 2),
                                                                  end=date(2012, 2, 1), out=Path("/tmp/x"),
                                                                  policies=policies))


def test_an_llm_cutoff_splits_every_policys_metrics_and_says_the_days_before_are_not_evidence(tmp_path: Path) -> None:
    cfg = EvalConfig(universe="demo", start=date(2012, 1, 2), end=date(2012, 3, 30), out=tmp_path / "out",
                     policies=("agent", "buyhold"), llm_cutoff=date(2012, 2, 15))
    report = run_eval(Settings(home=tmp_path / "home"), cfg).report
    assert any("not evidence" in n for n in report["notes"])
    for block in report["policies"].values():
        before, after = block["cutoff"]["before"], block["cutoff"]["after"]
        assert before["total_return"] != after["total_return"]
        whole = 1 + block["metrics"]["total_return"]
        assert (1 + before["total_return"]) * (1 + after["total_return"]) == pytest.approx(whole, rel=1e-6)


def test_walk_forward_models_never_predict_a_day_they_were_trained_on(tmp_path: Path) -> None:
    from tools.quant.registry import latest_usable, list_artefacts

    start, end = date(2011, 1, 3), date(2012, 6, 29)
    data = demo_data(tmp_path, end)
    setup = walk_forward_models(data, start, end, tmp_path / "out")
    assert len(list_artefacts(setup.models_dir, "xgb")) == 3  # windows from 2011-01-03, 2011-07-03, 2012-01-03
    for day in sessions_between(data, start, end):
        meta = latest_usable(setup.models_dir, "xgb", "demo", as_of=day).meta
        assert meta.training_end < day  # labels included
        assert (day - meta.training_end).days <= 200  # and it is the model of D's own window, not an older one


def test_an_out_folder_that_cannot_be_made_is_refused_before_the_replay(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for out in (blocker, blocker / "sub"):
        cfg = EvalConfig(universe="demo", start=date(2012, 1, 2), end=date(2012, 2, 1), out=out)
        with pytest.raises(EvalError, match="--out"):
            run_eval(Settings(home=tmp_path / "home"), cfg)
    assert not (tmp_path / "home").exists()  # refused before any data was loaded


def test_a_breaker_that_latches_in_a_replay_is_said_and_the_book_stops_trading(tmp_path: Path) -> None:
    # A 1% drawdown limit latches HALTED in the August 2011 fall; nobody resumes a replay, so nothing trades
    # after it, and the eval says so (the metrics after that day are those of a frozen book). v9's profile: the
    # default's book volatility target (v10) holds so little in that fall that its brake keeps it under 1%.
    (tmp_path / "risk.toml").write_text("[limits]\nmax_drawdown = 0.01\n")
    result = CliRunner().invoke(app, ["eval", "--universe", "demo", "--start", "2011-06-01", "--end", "2011-10-31",
                                      "--policy", "agent@v9", "--out", str(tmp_path / "out")],
                                env={"TRADEAGENT_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    block = json.loads((tmp_path / "out" / "report.json").read_text())["policies"]["agent@v9"]
    changes = [n for n in block["notes"] if ": kill switch ACTIVE -> HALTED: " in n]
    summary = [n for n in block["notes"] if n.startswith("kill switch latched:")]
    assert len(changes) == 1 and "drawdown" in changes[0], block["notes"]
    halted_on = changes[0].split(":", 1)[0]
    assert latched_modes(block["notes"]) == [("HALTED", halted_on)]  # how the results tables read it
    assert len(summary) == 1 and " HALTED (no order" in summary[0]
    assert "warning: agent@v9: kill switch latched:" in result.output
    assert block["decisions"] and all(d["date"] <= halted_on for d in block["decisions"])  # no order after it
    assert max(d["date"] for d in block["decisions"]) < "2011-10-31"
    as_json = CliRunner().invoke(app, ["eval", "--universe", "demo", "--start", "2011-06-01", "--end", "2011-10-31",
                                       "--policy", "agent@v9", "--out", str(tmp_path / "out2"), "--json"],
                                 env={"TRADEAGENT_HOME": str(tmp_path)})
    warnings = json.loads(as_json.stdout)["warnings"]
    assert warnings == [f"agent@v9: {summary[0]}"]
