"""XGBoost: one pooled 3-class model per universe (``multi:softprob``), fitted on a purged training window.

Contract:
- ``fit(design, fit_rows, val_rows, params, seed=…, nthread=…)`` trains on ``fit_rows`` with balanced class
  weights and stops early on ``val_rows`` (the time-ordered, purged tail of the training window: see
  ``features.split_validation``). The returned booster is cut at the best iteration, so what is saved is what
  was validated. Same data, parameters, seed and ``nthread`` give the same trees (``tree_method=hist``).
- ``predict_proba(booster, X, class_weights)``: probabilities of SELL, HOLD, BUY, batched (``inplace_predict``).
- ``load_booster(artefact)``: the booster of a registry artefact, refused (``ArtefactError``) when it is not an
  ``xgb`` artefact, does not parse, or was trained on another feature list than ``FEATURE_COLUMNS``.

Deliberate decisions:
- Class weights (n / (3 · count)) let the trees see the rare BUY/SELL rows; the probabilities are then mapped
  back to the training prior (p_c ∝ p̂_c / w_c, the standard prior-shift correction), so they stay
  probabilities: log-loss compares fairly with the prior reference and a score near 0 means "no edge".
- The artefact is the booster's own JSON (``Booster.save_model``), never a pickle.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import xgboost as xgb

from tools.quant.errors import ArtefactError, TrainingError
from tools.quant.features import FEATURE_COLUMNS
from tools.quant.metrics import class_prior, evaluate
from tools.quant.models import CLASSES, ClassificationMetrics, XgbParams
from tools.quant.registry import Artefact


@dataclass(frozen=True)
class Design:
    """The dataset as arrays, built once: features (float32), labels (NaN: unknown), dates, label ends."""

    X: np.ndarray
    y: np.ndarray
    dates: np.ndarray
    label_end: np.ndarray

    @classmethod
    def of(cls, ds: pd.DataFrame) -> Design:
        return cls(
            X=ds[list(FEATURE_COLUMNS)].to_numpy(dtype="float32"),
            y=ds["label"].to_numpy(dtype="float64"),
            dates=ds["date"].to_numpy(dtype="datetime64[ns]"),
            label_end=ds["label_end"].to_numpy(dtype="datetime64[ns]"),
        )


@dataclass(frozen=True)
class FitResult:
    booster: xgb.Booster
    best_iteration: int
    class_weights: np.ndarray
    params: XgbParams
    validation: ClassificationMetrics
    train_prior: np.ndarray


def class_weights(y: np.ndarray) -> np.ndarray:
    """Balanced weights n / (3 · count) of SELL, HOLD, BUY; 1.0 for a class absent from ``y``."""
    counts = np.bincount(y.astype(int), minlength=len(CLASSES)).astype(float)
    return np.where(counts > 0, len(y) / (len(CLASSES) * np.maximum(counts, 1.0)), 1.0)


def booster_params(params: XgbParams, *, seed: int, nthread: int) -> dict[str, float | int | str]:
    return {
        "objective": "multi:softprob",
        "num_class": len(CLASSES),
        "eval_metric": "mlogloss",
        "tree_method": "hist",
        "max_depth": params.max_depth,
        "eta": params.learning_rate,
        "subsample": params.subsample,
        "colsample_bytree": params.colsample_bytree,
        "min_child_weight": params.min_child_weight,
        "lambda": params.reg_lambda,
        "seed": seed,
        "nthread": nthread,
        "verbosity": 0,
    }


def fit(
    design: Design, fit_rows: np.ndarray, val_rows: np.ndarray, params: XgbParams, *, seed: int, nthread: int
) -> FitResult:
    """Train on ``fit_rows``, early-stop on ``val_rows`` (boolean masks over ``design``)."""
    y_fit, y_val = design.y[fit_rows], design.y[val_rows]
    if len(y_fit) < 50 or len(y_val) < 10:
        raise TrainingError(
            f"too few labelled rows to train ({len(y_fit)} to fit, {len(y_val)} to validate; need 50 and 10)"
        )
    weights = class_weights(y_fit)
    names = list(FEATURE_COLUMNS)
    dfit = xgb.DMatrix(design.X[fit_rows], label=y_fit, weight=weights[y_fit.astype(int)], feature_names=names, nthread=nthread)
    dval = xgb.DMatrix(design.X[val_rows], label=y_val, weight=weights[y_val.astype(int)], feature_names=names, nthread=nthread)
    trained = xgb.train(
        booster_params(params, seed=seed, nthread=nthread),
        dfit,
        num_boost_round=params.max_rounds,
        evals=[(dval, "validation")],
        early_stopping_rounds=params.early_stopping_rounds,
        verbose_eval=False,
    )
    best = int(getattr(trained, "best_iteration", trained.num_boosted_rounds() - 1))
    booster = trained[: best + 1]
    prior_rows = np.concatenate([y_fit, y_val])  # the references know the whole training window, as the model
    return FitResult(
        booster=booster,
        best_iteration=best,
        class_weights=weights,
        params=params,
        validation=evaluate(y_val, predict_proba(booster, design.X[val_rows], weights), class_prior(prior_rows)),
        train_prior=class_prior(prior_rows),
    )


def predict_proba(booster: xgb.Booster, X: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n, 3) probabilities of SELL, HOLD, BUY, corrected back to the training prior; one batched call."""
    if len(X) == 0:
        return np.zeros((0, len(CLASSES)))
    raw = np.asarray(booster.inplace_predict(np.ascontiguousarray(X, dtype="float32")), dtype="float64")
    adjusted = raw.reshape(len(X), len(CLASSES)) / weights
    return adjusted / adjusted.sum(axis=1, keepdims=True)


def load_booster(artefact: Artefact) -> xgb.Booster:
    """The artefact's booster (verified by the registry first), cached per file and hash."""
    meta = artefact.meta
    if meta.kind != "xgb":
        raise ArtefactError(f"model artefact {meta.version} is a {meta.kind} model, not xgb")
    if tuple(meta.features) != FEATURE_COLUMNS:
        raise ArtefactError(
            f"model artefact {meta.version} was trained on another feature list ({len(meta.features)} features); retrain it"
        )
    return _load(str(artefact.model_path), meta.model_sha256, len(meta.features))


@lru_cache(maxsize=8)
def _load(path: str, sha256: str, n_features: int) -> xgb.Booster:
    booster = xgb.Booster()
    try:
        booster.load_model(path)
    except xgb.core.XGBoostError as exc:
        raise ArtefactError(f"model file {path} is not an XGBoost model ({str(exc).splitlines()[0]})") from None
    if booster.num_features() != n_features:
        raise ArtefactError(f"model file {path} has {booster.num_features()} features, its meta lists {n_features}")
    return booster
