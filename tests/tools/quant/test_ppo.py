"""PPO training and ``predict_ppo``: seeded determinism, the artefact and its meta, out-of-sample figures next to
buy-and-hold, never predicting inside the training window, refusing corrupt or foreign artefacts."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from stable_baselines3 import PPO

from tests.tools.quant.conftest import NOW
from tools.quant.errors import ArtefactError, NoUsableModelError
from tools.quant.features import FEATURE_COLUMNS, features_as_of, symbol_features
from tools.quant.models import PpoConfig, PredictInput
from tools.quant.ppo import (
    PpoTrainResult,
    action_probabilities,
    load_policy,
    pooled_returns,
    sharpe,
    split,
    train_ppo,
)
from tools.quant.ppo_env import ACTION_NAMES, ACTION_SCORES, FLAT, buy_and_hold, observations, scale
from tools.quant.predict import PredictContext, predict_ppo
from tools.quant.registry import META_FILE, latest_usable, load_artefact, sha256_of

END = date(2007, 12, 31)
TINY = PpoConfig(timesteps=1024, seeds=2, n_steps=128)


@pytest.fixture(scope="module")
def ppo_trained(demo_bars: Mapping[str, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> PpoTrainResult:
    return train_ppo(demo_bars, "demo", end=END, models_dir=tmp_path_factory.mktemp("ppo") / "models", now=NOW, config=TINY)


@pytest.fixture
def registry(ppo_trained: PpoTrainResult, tmp_path: Path) -> Path:
    models = tmp_path / "models"
    shutil.copytree(ppo_trained.artefact.path.parents[1], models)
    return models


def _held_out_obs(demo_bars: Mapping[str, pd.DataFrame]) -> np.ndarray:
    data = split(demo_bars, END, TINY.validation_fraction)
    return np.concatenate([observations(s.features) for s in data.held_out])


def test_training_is_deterministic_for_a_seed(
    demo_bars: Mapping[str, pd.DataFrame], ppo_trained: PpoTrainResult, tmp_path: Path
) -> None:
    again = train_ppo(demo_bars, "demo", end=END, models_dir=tmp_path / "a", now=NOW, config=TINY.model_copy(update={"seeds": 1}))
    other = train_ppo(demo_bars, "demo", end=END, models_dir=tmp_path / "b", now=NOW,
                      config=TINY.model_copy(update={"seeds": 1, "seed": 5}))  # fmt: skip
    obs = _held_out_obs(demo_bars)
    first = action_probabilities(load_policy(ppo_trained.artefact), obs)
    assert np.array_equal(first, action_probabilities(load_policy(again.artefact), obs))
    assert again.validation.sharpe[0] == ppo_trained.validation.sharpe[0]
    assert not np.array_equal(first, action_probabilities(load_policy(other.artefact), obs))  # the seed matters


def test_the_artefact_is_sb3s_zip_and_a_ppo_meta(ppo_trained: PpoTrainResult) -> None:
    art = ppo_trained.artefact
    assert sorted(p.name for p in art.path.iterdir()) == ["meta.json", "model.zip"]
    assert "policy.pth" in zipfile.ZipFile(art.model_path).namelist()
    meta = json.loads((art.path / META_FILE).read_text())
    assert meta["kind"] == "ppo" and meta["model_sha256"] == sha256_of(art.model_path)
    assert not {"label_rule", "class_weights", "validation", "walk_forward"} & set(meta)  # xgb's fields only in xgb
    assert meta["version"] == art.path.name and meta["version"].startswith("ppo-demo-2007")
    assert {"stable-baselines3", "torch", "gymnasium", "numpy"} <= set(meta["libraries"])
    ppo = meta["ppo"]
    assert list(ppo["scaler"]) == list(FEATURE_COLUMNS) and ppo["actions"] == list(ACTION_NAMES)
    assert ppo["env"]["commission_bps"] == 10 and ppo["env"]["slippage_bps"] == 5
    assert meta["seed"] == ppo["validation"]["kept_seed"] == 0 and ppo["validation"]["seeds"] == [0, 1]
    assert ppo["fit_end"] < ppo["validation"]["start"] <= meta["training_end"] <= str(END) == meta["data_end"]
    assert ppo["timesteps"] >= TINY.timesteps


def test_held_out_figures_per_seed_and_buy_and_hold_on_the_same_window(
    demo_bars: Mapping[str, pd.DataFrame], ppo_trained: PpoTrainResult
) -> None:
    v = ppo_trained.validation
    assert len(v.sharpe) == len(v.total_return) == 2
    assert v.sharpe_mean == pytest.approx(np.mean(v.sharpe), abs=1e-6)
    assert v.sharpe_std == pytest.approx(np.std(v.sharpe, ddof=1), abs=1e-6)
    data = split(demo_bars, END, TINY.validation_fraction)
    assert v.start == data.held_out_start
    assert v.buy_hold_sharpe == pytest.approx(sharpe(pooled_returns(data.held_out, buy_and_hold)), abs=1e-6)
    assert ("NOT above" in v.verdict) == (v.sharpe_mean <= v.buy_hold_sharpe)


def test_predict_ppo_matches_sb3s_deterministic_predict(
    demo_bars: Mapping[str, pd.DataFrame], ppo_trained: PpoTrainResult
) -> None:
    day = date(2008, 3, 3)
    out = predict_ppo(PredictInput(universe="demo", as_of=day), PredictContext(ppo_trained.artefact.path.parents[1], demo_bars))
    assert out.kind == "ppo" and out.model_version == ppo_trained.artefact.meta.version
    assert [p.symbol for p in out.predictions] == ["GOOG", "NASDAQ", "SP500"] and not out.skipped
    model = PPO.load(ppo_trained.artefact.model_path, device="cpu")  # SB3's own loader, for reference only
    scaler = ppo_trained.artefact.meta.ppo.scaler  # type: ignore[union-attr]
    for p in out.predictions:
        rows, _ = features_as_of({p.symbol: symbol_features(demo_bars[p.symbol].loc[:day])}, day)
        obs = observations(scale(rows, scaler), FLAT)
        action, _ = model.predict(obs, deterministic=True)
        assert p.action == ACTION_NAMES[int(action[0])] and p.score == pytest.approx(ACTION_SCORES[int(action[0])], abs=1e-6)
        assert p.p_sell + p.p_hold + p.p_buy == pytest.approx(1.0, abs=1e-5) and p.feature_date <= day


def test_the_book_state_reaches_the_policy(demo_bars: Mapping[str, pd.DataFrame], ppo_trained: PpoTrainResult) -> None:
    inp = PredictInput(universe="demo", as_of=date(2008, 3, 3))
    models = ppo_trained.artefact.path.parents[1]
    flat = predict_ppo(inp, PredictContext(models, demo_bars))
    held = predict_ppo(inp, PredictContext(models, demo_bars, ppo_state={s: (1.0, 0.3, 0.0) for s in demo_bars}))
    assert [(p.p_buy, p.p_sell) for p in flat.predictions] != [(p.p_buy, p.p_sell) for p in held.predictions]


def test_a_policy_is_never_used_inside_its_training_window(
    demo_bars: Mapping[str, pd.DataFrame], registry: Path, ppo_trained: PpoTrainResult
) -> None:
    end = ppo_trained.artefact.meta.training_end
    for day in (end, end - timedelta(days=300)):
        with pytest.raises(NoUsableModelError, match="never predicts a day it was trained on"):
            predict_ppo(PredictInput(universe="demo", as_of=day), PredictContext(registry, demo_bars))
    after = end + timedelta(days=3)
    stale = {**demo_bars, "GOOG": demo_bars["GOOG"].loc[:end]}  # GOOG's data stops inside the window
    out = predict_ppo(PredictInput(universe="demo", as_of=after), PredictContext(registry, stale))
    assert "GOOG" in out.skipped and "inside the model's training window" in out.skipped["GOOG"]
    assert latest_usable(registry, "ppo", "demo", as_of=end + timedelta(days=1)).meta.training_end == end
    none = predict_ppo(PredictInput(universe="demo", as_of=after),
                       PredictContext(registry, {s: b.loc[:end] for s, b in demo_bars.items()}))  # fmt: skip
    assert none.predictions == [] and set(none.skipped) == set(demo_bars)


def test_a_modified_zip_is_refused(registry: Path, ppo_trained: PpoTrainResult) -> None:
    folder = registry / "ppo" / ppo_trained.artefact.meta.version
    data = bytearray((folder / "model.zip").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "model.zip").write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match=r"sha256 of model\.zip does not match"):
        load_artefact(folder)
    with pytest.raises(ArtefactError, match="refused"):
        predict_ppo(PredictInput(universe="demo", as_of=date(2009, 1, 5)), PredictContext(registry, {}))


def _rehash(folder: Path) -> None:
    meta = json.loads((folder / META_FILE).read_text())
    meta["model_sha256"] = sha256_of(folder / "model.zip")
    (folder / META_FILE).write_text(json.dumps(meta))


@pytest.mark.parametrize("payload", ["not a zip", "foreign zip", "other weights"])
def test_a_foreign_zip_with_a_matching_hash_is_refused_in_one_line(
    registry: Path, ppo_trained: PpoTrainResult, payload: str
) -> None:
    folder = registry / "ppo" / ppo_trained.artefact.meta.version
    target = folder / "model.zip"
    if payload == "not a zip":
        target.write_bytes(b"PK\x03\x04 definitely not a model")
    elif payload == "foreign zip":
        target.unlink()
        with zipfile.ZipFile(target, "w") as z:
            z.writestr("data", "{}")
    else:  # a real SB3 zip of another architecture
        PPO("MlpPolicy", "CartPole-v1", device="cpu", seed=0).save(target)
    _rehash(folder)
    art = load_artefact(folder)  # the hash now matches: only the model loader can tell
    with pytest.raises(ArtefactError) as exc:
        load_policy(art)
    assert "\n" not in str(exc.value) and art.meta.version.split("-")[0] == "ppo"


def test_a_ppo_meta_must_carry_its_details_and_no_xgb_fields(registry: Path, ppo_trained: PpoTrainResult) -> None:
    folder = registry / "ppo" / ppo_trained.artefact.meta.version
    meta = json.loads((folder / META_FILE).read_text())
    for damaged in ({k: v for k, v in meta.items() if k != "ppo"}, {**meta, "label_rule": {"horizon": 5, "threshold": 0.02}}):
        (folder / META_FILE).write_text(json.dumps(damaged))
        with pytest.raises(ArtefactError, match="does not match the schema"):
            load_artefact(folder)
