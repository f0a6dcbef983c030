"""``tradeagent train ppo`` and ``models list`` through Typer's runner: a tiny budget, per-seed figures next to
buy-and-hold, the artefact listed next to xgb ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app

runner = CliRunner()
TINY = ["--universe", "demo", "--end", "2006-12-31", "--timesteps", "512", "--seeds", "2"]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # no stray .env from the repo
    return tmp_path / "home"


def test_train_ppo_then_models_list_shows_it(home: Path) -> None:
    result = runner.invoke(app, ["train", "ppo", *TINY, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    model, held = out["model"], out["held_out"]
    assert model["kind"] == "ppo" and model["data_end"] == "2006-12-31" and model["training_end"] <= "2006-12-31"
    assert model["fit_end"] < held["start"] and held["seeds"] == [0, 1] and len(held["sharpe"]) == 2
    assert held["sharpe_std"] is not None and isinstance(held["buy_hold_sharpe"], float)
    assert Path(model["path"], "model.zip").is_file()

    listed = runner.invoke(app, ["models", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    (entry,) = json.loads(listed.stdout)["models"]
    assert entry["version"] == model["version"] and entry["kind"] == "ppo" and entry["status"] == "ok"
    assert entry["held_out"]["sharpe_mean"] == held["sharpe_mean"] and entry["validation"] is None

    human = runner.invoke(app, ["models", "list"])
    assert human.exit_code == 0 and model["version"] in human.stdout and "buy-and-hold" in human.stdout


def test_human_output_prints_each_seed_the_mean_and_buy_and_hold(home: Path) -> None:
    result = runner.invoke(app, ["train", "ppo", *TINY, "--seed", "4"])
    assert result.exit_code == 0, result.output
    for needle in ("ppo seed 4 (saved)", "ppo seed 5", "mean over 2 seed(s)", "buy-and-hold (same fees)",
                   "out-of-sample Sharpe", "saved ppo-demo-2006"):  # fmt: skip
        assert needle in result.stdout, needle


def test_too_little_data_is_one_line(home: Path) -> None:
    result = runner.invoke(app, ["train", "ppo", "--universe", "demo", "--end", "1999-06-30", "--timesteps", "512"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "PPO" in lines[0], result.output
