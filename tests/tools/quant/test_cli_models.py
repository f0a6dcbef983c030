"""``tradeagent train xgb`` and ``models list`` through Typer's runner: round trip, metrics, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from tools.quant.registry import read_performance

runner = CliRunner()
SMALL = ["--max-rounds", "20"]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # no stray .env from the repo
    return tmp_path / "home"


def _one_line_error(args: list[str], needle: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], result.output


def test_train_then_list_round_trip_with_metrics_against_the_naive_references(home: Path) -> None:
    result = runner.invoke(app, ["train", "xgb", "--universe", "demo", "--end", "2006-12-31", *SMALL, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    model, wf = out["model"], out["walk_forward"]
    assert model["universe"] == "demo" and model["data_end"] == "2006-12-31" and model["training_end"] <= "2006-12-31"
    assert (wf["train_years"], wf["test_months"]) == (3, 6) and len(wf["folds"]) >= 6
    pooled = wf["pooled"]
    assert {"model", "majority", "prior", "confusion", "beats_naive", "verdict", "training_prior"} <= set(pooled)
    assert pooled["verdict"].startswith("The model beats" if pooled["beats_naive"] else "The model does NOT beat")
    assert out["validation"]["metrics"]["prior"]["log_loss"] > 0
    rows = read_performance(home / "tradeagent.duckdb", model["version"])
    assert len(rows) == len(wf["folds"]) + 1

    listed = runner.invoke(app, ["models", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    (entry,) = json.loads(listed.stdout)["models"]
    assert entry["version"] == model["version"] and entry["status"] == "ok"
    assert entry["walk_forward"]["model"]["accuracy"] == pooled["model"]["accuracy"]
    assert Path(entry["path"], "model.json").is_file()

    human = runner.invoke(app, ["models", "list"])
    assert human.exit_code == 0 and model["version"] in human.stdout


def test_human_output_prints_the_table_and_the_verdict(home: Path) -> None:
    result = runner.invoke(app, ["train", "xgb", "--end", "2005-06-30", *SMALL, "--train-years", "2"])
    assert result.exit_code == 0, result.output
    for needle in ("walk-forward", "majority (", "training prior", "log-loss", "SELL", "saved xgb-demo-2005"):
        assert needle in result.stdout
    assert "naive references" in result.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "xgb", "--end", "2012-13-01"], "is not a date"),
        (["train", "xgb", "--end", "1999-06-30"], "no labelled rows"),
        (["train", "xgb", "--universe", "nowhere"], "nowhere"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str) -> None:
    _one_line_error(args, needle)


def test_a_corrupt_artefact_is_listed_as_refused(home: Path) -> None:
    folder = home / "models" / "xgb" / "xgb-demo-20060101-000000000000"
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text("{oops")
    listed = runner.invoke(app, ["models", "list", "--json"])
    (entry,) = json.loads(listed.stdout)["models"]
    assert entry["status"] == "refused" and "is not JSON" in entry["error"]
    assert "REFUSED" in runner.invoke(app, ["models", "list"]).stdout


def test_trials_run_a_search_and_say_the_validation_figures_flatter_the_model(home: Path) -> None:
    result = runner.invoke(app, ["train", "xgb", "--end", "2005-06-30", "--train-years", "2", "--trials", "2", "--max-rounds", "10"])
    assert result.exit_code == 0, result.output
    assert "the search chose the parameters on this validation split" in result.stdout
    (entry,) = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)["models"]
    meta = json.loads(Path(entry["path"], "meta.json").read_text())
    assert meta["params"]["trials"] == 2 and meta["libraries"]["optuna"]
