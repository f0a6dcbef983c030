"""XGBoost fit, walk-forward and metrics: purged folds, deterministic trees, honest naive references."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from tests.tools.quant.conftest import SMALL
from tools.quant.features import FEATURE_COLUMNS, build_dataset, in_window, split_validation
from tools.quant.metrics import class_prior, evaluate, log_loss
from tools.quant.models import LabelRule, TrainConfig, XgbParams
from tools.quant.train import fit_window, fold_rows, plan_folds, walk_forward
from tools.quant.xgb import Design, class_weights, fit, predict_proba

END = date(2009, 12, 31)


@pytest.fixture(scope="module")
def ds(demo_bars: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    return build_dataset({s: b.loc[:str(END)] for s, b in demo_bars.items()}, LabelRule())


def test_evaluate_against_hand_computed_references() -> None:
    y = np.array([1, 1, 1, 0, 2])
    perfect = np.eye(3)[y] * 0.9 + 0.1 / 3
    prior = np.array([0.2, 0.6, 0.2])
    m = evaluate(y, perfect, prior)
    assert m.model.accuracy == 1.0 and m.majority.accuracy == pytest.approx(0.6)
    assert m.prior.accuracy == pytest.approx((3 * 0.6 + 0.2 + 0.2) / 5)
    assert m.prior.log_loss == pytest.approx(-(3 * np.log(0.6) + 2 * np.log(0.2)) / 5)
    assert m.majority_class == "HOLD" and m.confusion == [[1, 0, 0], [0, 3, 0], [0, 0, 1]]
    assert m.beats_naive and "beats both" in m.verdict
    parrot = evaluate(y, np.tile(prior, (5, 1)), prior)  # predicting the prior is not beating it
    assert not parrot.beats_naive and "does NOT beat" in parrot.verdict
    assert parrot.model.log_loss == pytest.approx(parrot.prior.log_loss)


def test_log_loss_is_finite_for_a_confidently_wrong_model() -> None:
    assert log_loss(np.array([0]), np.array([[0.0, 1.0, 0.0]])) == pytest.approx(-np.log(1e-15))


def test_balanced_class_weights_give_each_class_the_same_total_weight() -> None:
    y = np.array([0] * 10 + [1] * 70 + [2] * 20)
    w = class_weights(y)
    totals = np.bincount(y, weights=w[y])
    assert np.allclose(totals, totals[0]) and w[1] < w[2] < w[0]
    assert class_weights(np.array([1, 1, 2]))[0] == 1.0  # an absent class does not divide by zero


def test_probabilities_are_corrected_back_to_the_training_prior(ds: pd.DataFrame) -> None:
    design = Design.of(ds)
    rows = in_window(ds, date(2005, 1, 1), END)
    result, fit_rows, _ = fit_window(ds, design, rows, SMALL)
    proba = predict_proba(result.booster, design.X[fit_rows], result.class_weights)
    assert np.allclose(proba.sum(axis=1), 1.0)
    raw = result.booster.inplace_predict(design.X[fit_rows]).mean(axis=0)
    prior = class_prior(design.y[fit_rows])
    # Balanced weights pull the raw probabilities towards 1/3 each; the correction brings them back near the prior.
    assert np.abs(proba.mean(axis=0) - prior).sum() < np.abs(raw - prior).sum()


def test_same_seed_same_model_and_another_seed_another(ds: pd.DataFrame) -> None:
    design = Design.of(ds)
    fit_rows, val_rows = split_validation(ds, in_window(ds, date(2006, 1, 1), END), 0.2)
    params = XgbParams(max_rounds=30, early_stopping_rounds=30)

    def run(seed: int) -> np.ndarray:
        r = fit(design, fit_rows, val_rows, params, seed=seed, nthread=1)
        return predict_proba(r.booster, design.X, r.class_weights)

    first, again, other = run(7), run(7), run(8)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)  # the seed drives the subsampling: it matters


def test_folds_train_only_on_labels_known_before_their_test_window(ds: pd.DataFrame) -> None:
    folds = plan_folds(ds, END, train_years=3, test_months=6)
    assert len(folds) >= 6 and folds[0].test_start >= date(2002, 10, 1)
    for fold in folds:
        train, test = fold_rows(ds, fold, END)
        assert ds.loc[train, "label_end"].max() < pd.Timestamp(fold.test_start)
        assert ds.loc[test, "date"].min() >= pd.Timestamp(fold.test_start)
        assert ds.loc[test, "label_end"].max() <= pd.Timestamp(END)
    assert all(a.test_end + timedelta(days=1) == b.test_start for a, b in itertools.pairwise(folds))


def test_a_fold_model_does_not_change_when_every_label_after_its_training_window_does(ds: pd.DataFrame) -> None:
    fold = plan_folds(ds, END, train_years=3, test_months=6)[3]
    train, test = fold_rows(ds, fold, END)
    scrambled = ds.copy()
    late = (scrambled["label_end"] >= pd.Timestamp(fold.test_start)) & scrambled["label"].notna()
    scrambled.loc[late, "label"] = np.random.default_rng(0).integers(0, 3, late.sum()).astype(float)
    scrambled.loc[late, list(FEATURE_COLUMNS)] *= 3.0
    a, _, _ = fit_window(ds, Design.of(ds), train, SMALL)
    b, _, _ = fit_window(scrambled, Design.of(scrambled), train, SMALL)
    X = Design.of(ds).X[test]
    assert np.array_equal(predict_proba(a.booster, X, a.class_weights), predict_proba(b.booster, X, b.class_weights))
    assert a.validation == b.validation and a.best_iteration == b.best_iteration  # early stopping saw none either


def test_walk_forward_reports_every_fold_against_the_naive_references(ds: pd.DataFrame) -> None:
    report = walk_forward(ds, Design.of(ds), END, SMALL)
    assert report.pooled is not None and len(report.folds) >= 6
    assert report.pooled.model.n == sum(f.metrics.model.n for f in report.folds)
    for f in report.folds:
        assert f.train_end < f.test_start <= f.test_end
        m = f.metrics
        assert m.prior.log_loss is not None and m.majority.log_loss is None
        assert m.beats_naive == (
            m.model.accuracy > max(m.majority.accuracy, m.prior.accuracy) and m.model.log_loss < m.prior.log_loss
        )
        assert ("NOT" in m.verdict) != m.beats_naive
        assert sum(map(sum, m.confusion)) == m.model.n


def test_the_search_is_seeded_and_sees_only_the_training_window(ds: pd.DataFrame) -> None:
    pytest.importorskip("optuna")
    from tools.quant.search import tune

    design = Design.of(ds)
    fit_rows, val_rows = split_validation(ds, in_window(ds, date(2007, 1, 1), END), 0.2)
    base = XgbParams(max_rounds=15, early_stopping_rounds=5)
    first = tune(design, fit_rows, val_rows, base, trials=3, seed=3, nthread=1)
    assert first == tune(design, fit_rows, val_rows, base, trials=3, seed=3, nthread=1)
    assert first != base and first.max_rounds == 15
    # Rows outside the two masks (the window to predict) cannot move the search: scramble them.
    outside = ~(fit_rows | val_rows)
    other = Design(X=np.where(outside[:, None], design.X * 5.0, design.X), y=np.where(outside, 0.0, design.y),
                   dates=design.dates, label_end=design.label_end)  # fmt: skip
    assert tune(other, fit_rows, val_rows, base, trials=3, seed=3, nthread=1) == first


def test_too_little_data_is_a_training_error(ds: pd.DataFrame) -> None:
    from tools.quant.errors import TrainingError

    rows = in_window(ds, date(2009, 12, 7), END)  # three weeks of three symbols
    with pytest.raises(TrainingError, match="too few labelled rows"):
        fit_window(ds, Design.of(ds), rows, TrainConfig())
