"""Registry: versioned artefacts, latest usable model strictly before D, corrupt or foreign artefacts refused."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.tools.quant.conftest import NOW, TRAIN_END
from tools.cache import MarketCache
from tools.quant.errors import ArtefactError, NoUsableModelError
from tools.quant.registry import (
    META_FILE,
    Artefact,
    latest_usable,
    list_artefacts,
    load_artefact,
    read_performance,
    record_performance,
    save_artefact,
    sha256_of,
)
from tools.quant.train import TrainResult

META_KEYS = {
    "format", "kind", "version", "universe", "symbols", "created_at", "data_end", "training_start", "training_end",
    "features", "label_rule", "seed", "params", "class_weights", "libraries", "validation", "walk_forward",
    "model_file", "model_sha256",
}  # fmt: skip


@pytest.fixture
def registry(trained: TrainResult, tmp_path: Path) -> Path:
    """A private copy of the trained artefact's registry (tests below damage it)."""
    models = tmp_path / "models"
    shutil.copytree(trained.artefact.path.parents[1], models)
    return models


def _copy_with(artefact: Artefact, models: Path, training_end: date) -> Artefact:
    """Another artefact of the same model with another training window (as if trained at another end)."""
    fields = artefact.meta.model_dump(exclude={"version", "model_file", "model_sha256"})
    fields["training_end"] = training_end
    payload = artefact.model_path.read_bytes() + b" "  # another file, so another hash and version
    return save_artefact(models, fields, lambda p: p.write_bytes(payload))


def test_an_artefact_is_a_model_json_and_a_complete_meta(trained: TrainResult) -> None:
    art = trained.artefact
    assert sorted(p.name for p in art.path.iterdir()) == ["meta.json", "model.json"]
    meta = json.loads((art.path / META_FILE).read_text())
    assert set(meta) == META_KEYS
    assert meta["kind"] == "xgb" and meta["universe"] == "demo" and meta["data_end"] == str(TRAIN_END)
    assert meta["model_sha256"] == sha256_of(art.model_path)
    assert meta["version"] == art.path.name and meta["version"].startswith(f"xgb-demo-{meta['training_end'].replace('-', '')}-")
    assert meta["label_rule"] == {"horizon": 5, "threshold": 0.02}
    assert {"xgboost", "numpy", "pandas", "pandas-ta-classic"} <= set(meta["libraries"])
    assert meta["validation"]["majority"]["accuracy"] > 0 and meta["walk_forward"]["prior"]["log_loss"] > 0
    json.loads(art.model_path.read_text())  # the booster's own JSON, not a pickle


def test_training_end_is_the_last_label_window_end_on_or_before_the_data_end(trained: TrainResult) -> None:
    meta = trained.artefact.meta
    assert meta.training_end <= TRAIN_END and (TRAIN_END - meta.training_end).days < 7
    assert meta.training_start < meta.training_end


def test_a_model_is_never_used_on_a_day_inside_its_training_window(registry: Path, trained: TrainResult) -> None:
    end = trained.artefact.meta.training_end
    for day in (end, end - timedelta(days=400)):
        with pytest.raises(NoUsableModelError, match="never predicts a day it was trained on"):
            latest_usable(registry, "xgb", "demo", as_of=day)
    assert latest_usable(registry, "xgb", "demo", as_of=end + timedelta(days=1)).meta.training_end == end


def test_the_newest_model_trained_before_d_is_chosen(registry: Path, trained: TrainResult) -> None:
    first = load_artefact(registry / "xgb" / trained.artefact.meta.version)
    later = _copy_with(first, registry, date(2010, 6, 30))
    assert latest_usable(registry, "xgb", "demo", as_of=date(2010, 6, 30)).meta.version == first.meta.version
    assert latest_usable(registry, "xgb", "demo", as_of=date(2010, 7, 1)).meta.version == later.meta.version
    with pytest.raises(NoUsableModelError, match="universe other"):
        latest_usable(registry, "xgb", "other", as_of=date(2020, 1, 1))


def test_saving_the_same_model_twice_keeps_one_version(registry: Path, trained: TrainResult) -> None:
    art = load_artefact(registry / "xgb" / trained.artefact.meta.version)
    fields = art.meta.model_dump(exclude={"version", "model_file", "model_sha256"})
    again = save_artefact(registry, fields, lambda p: shutil.copyfile(art.model_path, p))
    assert again.meta.version == art.meta.version and len(list_artefacts(registry)) == 1
    assert not [p for p in (registry / "xgb").iterdir() if p.name.startswith(".")]  # no temporary folder left
    other = save_artefact(registry, {**fields, "walk_forward": None}, lambda p: shutil.copyfile(art.model_path, p))
    assert other.meta.version != art.meta.version and other.meta.model_sha256 == art.meta.model_sha256
    assert len(list_artefacts(registry)) == 2  # the same trees with other recorded metrics: its own version


def _damage(folder: Path, how: str) -> None:
    meta_path = folder / META_FILE
    meta = json.loads(meta_path.read_text())
    if how == "bad json":
        meta_path.write_text("{not json")
    elif how == "hash mismatch":
        (folder / "model.json").write_text((folder / "model.json").read_text().replace("0", "1", 1))
    elif how == "unknown kind":
        meta_path.write_text(json.dumps({**meta, "kind": "lstm"}))
    elif how == "missing file":
        (folder / "model.json").unlink()
    elif how == "extra key":
        meta_path.write_text(json.dumps({**meta, "pickle": "yes"}))
    elif how == "missing meta":
        meta_path.unlink()
    elif how == "another version":
        meta_path.write_text(json.dumps({**meta, "version": "xgb-demo-20990101-000000000000"}))


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("bad json", "is not JSON"),
        ("hash mismatch", "sha256 of model.json does not match"),
        ("unknown kind", "unknown kind 'lstm'"),
        ("missing file", "model file model.json is missing"),
        ("extra key", "does not match the schema"),
        ("missing meta", "no meta.json"),
        ("another version", "names version"),
    ],
)
def test_a_corrupt_artefact_is_refused_in_one_line(registry: Path, trained: TrainResult, how: str, reason: str) -> None:
    folder = registry / "xgb" / trained.artefact.meta.version
    _damage(folder, how)
    with pytest.raises(ArtefactError, match=reason) as caught:
        load_artefact(folder)
    assert "\n" not in str(caught.value) and folder.name in str(caught.value)
    with pytest.raises(ArtefactError, match="remove it or retrain"):  # fails closed: never an older model instead
        latest_usable(registry, "xgb", "demo", as_of=date(2020, 1, 1))
    (listing,) = list_artefacts(registry)
    assert listing.artefact is None and listing.error is not None and reason in listing.error


def test_a_model_filed_under_another_kind_is_foreign(registry: Path, trained: TrainResult) -> None:
    folder = registry / "xgb" / trained.artefact.meta.version
    (registry / "ppo").mkdir()
    moved = folder.rename(registry / "ppo" / folder.name)
    with pytest.raises(ArtefactError, match="filed under ppo/"):
        load_artefact(moved)
    with pytest.raises(ArtefactError, match="unknown model kind"):
        latest_usable(registry, "lstm", "demo", as_of=date(2020, 1, 1))


def test_performance_rows_one_per_model_and_window_next_to_the_market_cache(trained: TrainResult, tmp_path: Path) -> None:
    db = tmp_path / "tradeagent.duckdb"
    with MarketCache(db):  # another module's tables in the same file, open at the same time
        meta, folds = trained.artefact.meta, trained.walk_forward.folds
        assert record_performance(db, meta, "walk_forward", folds, recorded_at=NOW) == len(folds)
        record_performance(db, meta, "walk_forward", folds, recorded_at=NOW)  # again: replaced, not duplicated
        rows = read_performance(db, meta.version)
    assert len(rows) == len(folds)
    assert rows[0]["accuracy"] == folds[0].metrics.model.accuracy and rows[0]["window_start"] == folds[0].test_start
    assert {"majority_accuracy", "prior_accuracy", "prior_log_loss", "beats_naive"} <= set(rows[0])
    assert read_performance(db, "no-such-version") == []


def test_the_training_run_recorded_its_windows(trained: TrainResult) -> None:
    db = trained.artefact.path.parents[2] / "tradeagent.duckdb"
    rows = read_performance(db, trained.artefact.meta.version)
    kinds = [r["evaluation"] for r in rows]
    assert kinds.count("walk_forward") == len(trained.walk_forward.folds) and kinds.count("validation") == 1
