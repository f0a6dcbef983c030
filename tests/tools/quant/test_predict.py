"""predict_xgb: batched, point-in-time, never inside the model's training window, deterministic."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.tools.quant.conftest import NOW, SMALL, TRAIN_END
from tools.indicators import compute_indicators, cut_at
from tools.quant.errors import ArtefactError, NoUsableModelError
from tools.quant.features import FEATURE_COLUMNS, precompute_features
from tools.quant.models import PredictInput
from tools.quant.predict import PredictContext, predict_xgb
from tools.quant.train import TrainResult, train_xgb
from tools.quant.xgb import load_booster

D = date(2008, 10, 15)


def _cut(bars: Mapping[str, pd.DataFrame], day: date) -> dict[str, pd.DataFrame]:
    return {s: cut_at(b, day) for s, b in bars.items()}


def _context(trained: TrainResult, bars: Mapping[str, pd.DataFrame], **kw: object) -> PredictContext:
    return PredictContext(models_dir=trained.artefact.path.parents[1], bars=bars, **kw)  # type: ignore[arg-type]


def test_every_symbol_gets_a_score_its_probabilities_and_the_model_window(demo_bars: Mapping[str, pd.DataFrame], trained: TrainResult) -> None:
    out = predict_xgb(PredictInput(universe="demo", as_of=D), _context(trained, _cut(demo_bars, D)))
    meta = trained.artefact.meta
    assert out.model_version == meta.version and out.kind == "xgb"
    assert (out.training_start, out.training_end) == (meta.training_start, meta.training_end)
    assert [p.symbol for p in out.predictions] == ["GOOG", "NASDAQ", "SP500"] and out.skipped == {}
    for p in out.predictions:
        assert p.feature_date == D
        assert p.p_sell + p.p_hold + p.p_buy == pytest.approx(1.0, abs=1e-5)
        assert p.score == pytest.approx(p.p_buy - p.p_sell, abs=1e-5) and -1 <= p.score <= 1
    assert len({p.score for p in out.predictions}) == 3  # one batched call, still one answer per symbol


def test_the_batch_equals_the_booster_on_each_symbols_features_at_d(demo_bars: Mapping[str, pd.DataFrame], trained: TrainResult) -> None:
    out = predict_xgb(PredictInput(universe="demo", as_of=D, symbols=["SP500"]), _context(trained, _cut(demo_bars, D)))
    from tools.quant.features import symbol_features
    from tools.quant.xgb import predict_proba

    row = symbol_features(cut_at(demo_bars["SP500"], D)).iloc[[-1]][list(FEATURE_COLUMNS)].to_numpy("float32")
    expected = predict_proba(load_booster(trained.artefact), row, np.asarray(trained.artefact.meta.class_weights))[0]
    (p,) = out.predictions
    assert (p.p_sell, p.p_hold, p.p_buy) == pytest.approx(tuple(expected), abs=1e-6)


def test_bars_after_d_in_the_context_change_nothing(demo_bars: Mapping[str, pd.DataFrame], trained: TrainResult) -> None:
    inp = PredictInput(universe="demo", as_of=D)
    clean = predict_xgb(inp, _context(trained, _cut(demo_bars, D)))
    garbage = {s: b.assign(close=np.where(b.index > pd.Timestamp(D), b["close"] * 5, b["close"])) for s, b in demo_bars.items()}
    assert predict_xgb(inp, _context(trained, garbage)) == clean
    full = precompute_features(garbage)  # a replay's features over the whole span, garbage included
    assert predict_xgb(inp, _context(trained, garbage, features=full)) == clean
    inds = {s: compute_indicators(b) for s, b in garbage.items()}
    assert predict_xgb(inp, _context(trained, garbage, indicators=inds)) == clean


def test_no_prediction_on_or_before_the_end_of_the_training_window(demo_bars: Mapping[str, pd.DataFrame], trained: TrainResult) -> None:
    end = trained.artefact.meta.training_end
    for day in (end, date(2006, 3, 1)):
        with pytest.raises(NoUsableModelError):
            predict_xgb(PredictInput(universe="demo", as_of=day), _context(trained, _cut(demo_bars, day)))
    after = predict_xgb(PredictInput(universe="demo", as_of=end + timedelta(days=1)), _context(trained, demo_bars))
    assert all(p.feature_date > end for p in after.predictions)


def test_a_symbol_whose_data_stopped_inside_the_training_window_is_skipped(demo_bars: Mapping[str, pd.DataFrame], trained: TrainResult) -> None:
    bars = _cut(demo_bars, D) | {"GOOG": cut_at(demo_bars["GOOG"], date(2007, 6, 1))}
    out = predict_xgb(PredictInput(universe="demo", as_of=D, symbols=["GOOG", "SP500", "TSLA"]), _context(trained, bars))
    assert [p.symbol for p in out.predictions] == ["SP500"]
    assert "inside the model's training window" in out.skipped["GOOG"] and out.skipped["TSLA"] == "no bars"


def test_a_symbol_still_warming_up_is_skipped_with_the_reason(demo_bars: Mapping[str, pd.DataFrame], trained: TrainResult) -> None:
    young = demo_bars["SP500"].loc["2008-06-01":str(D)]
    out = predict_xgb(PredictInput(universe="demo", as_of=D), _context(trained, {"YOUNG": young, "SP500": _cut(demo_bars, D)["SP500"]}))
    assert "warming up" in out.skipped["YOUNG"] and [p.symbol for p in out.predictions] == ["SP500"]


def test_same_seed_same_model_same_predictions(demo_bars: Mapping[str, pd.DataFrame], trained: TrainResult, tmp_path: Path) -> None:
    again = train_xgb(demo_bars, "demo", end=TRAIN_END, models_dir=tmp_path / "models", db_path=None, now=NOW, config=SMALL)
    assert again.artefact.meta.model_sha256 == trained.artefact.meta.model_sha256
    assert again.artefact.meta.version == trained.artefact.meta.version
    inp = PredictInput(universe="demo", as_of=D)
    assert predict_xgb(inp, PredictContext(tmp_path / "models", _cut(demo_bars, D))) == predict_xgb(
        inp, _context(trained, _cut(demo_bars, D))
    )


def test_a_tampered_model_is_refused_before_it_predicts(demo_bars: Mapping[str, pd.DataFrame], trained: TrainResult, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(trained.artefact.path.parents[1], models)
    model = models / "xgb" / trained.artefact.meta.version / "model.json"
    doc = json.loads(model.read_text())
    model.write_text(json.dumps(doc))  # same trees, re-serialised: a different file, so a different hash
    with pytest.raises(ArtefactError, match="sha256"):
        predict_xgb(PredictInput(universe="demo", as_of=D), PredictContext(models, _cut(demo_bars, D)))
