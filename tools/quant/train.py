"""A training run: walk-forward evaluation, then the model to keep, saved in the registry.

``train_xgb(bars, universe, end=E, models_dir=…, db_path=…, config=…, now=…)``:
1. builds the pooled dataset once (features + labels of every symbol, bars cut at E);
2. walk-forward (``plan_folds``): train on ``train_years`` of rows, predict the next ``test_months``, roll.
   A fold's training rows have their label known BEFORE its first test day (``label_end < test_start``);
   its test rows are scored only where their label is known by E. Every fold has its own early-stopping
   split, class weights, references and (``trials`` > 0) its own search;
3. fits the model to keep on the last ``train_years`` whose labels are known by E, the same way, and saves it
   with its meta (``training_end`` = its last label window's end) and the ``model_performance`` rows (one per
   walk-forward fold, one for the final validation split).

Deliberate decisions:
- Walk-forward folds start when a full training window of complete rows exists (first row + ``train_years``);
  test windows are calendar months from there. A window with too few rows is skipped, not padded.
- The walk-forward metrics describe the recipe (same parameters, same procedure) on data the fold models never
  saw; the saved model itself is validated on its own purged split. Both are in its meta.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd

from tools.indicators import cut_at
from tools.quant.errors import TrainingError
from tools.quant.features import FEATURE_COLUMNS, build_dataset, in_window, split_validation
from tools.quant.metrics import evaluate
from tools.quant.models import ClassificationMetrics, FoldMetrics, TrainConfig, WalkForwardReport
from tools.quant.registry import Artefact, record_performance, save_artefact
from tools.quant.xgb import Design, FitResult, booster_params, fit, predict_proba

Progress = Callable[[int, int, str], None]  # (done, total, label)


@dataclass(frozen=True)
class Fold:
    train_start: date
    test_start: date
    test_end: date  # inclusive


@dataclass(frozen=True)
class TrainResult:
    artefact: Artefact
    walk_forward: WalkForwardReport
    validation: FoldMetrics
    seconds: float


def plan_folds(ds: pd.DataFrame, end: date, *, train_years: int, test_months: int) -> list[Fold]:
    """Test windows of ``test_months`` from the first full training window up to the last labelled day."""
    labelled = ds.loc[ds["label"].notna() & (ds["label_end"] <= pd.Timestamp(end)), "date"]
    if ds.empty or labelled.empty:
        return []
    start = pd.Timestamp(ds["date"].min()) + pd.DateOffset(years=train_years)
    start = start.normalize() + pd.offsets.MonthBegin(0)  # the first of a month, on or after
    folds, last = [], pd.Timestamp(labelled.max())
    while start <= last:
        nxt = start + pd.DateOffset(months=test_months)
        train_start = start - pd.DateOffset(years=train_years)
        folds.append(Fold(train_start.date(), start.date(), (nxt - pd.Timedelta(days=1)).date()))
        start = nxt
    return folds


def fold_rows(ds: pd.DataFrame, fold: Fold, end: date) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, test rows) of a fold: training labels known before ``test_start``; test labels by ``end``."""
    train = in_window(ds, fold.train_start, fold.test_start - timedelta(days=1))
    dates = ds["date"]
    test = in_window(ds, fold.test_start, end) & (dates <= pd.Timestamp(fold.test_end)).to_numpy()
    return train, test


def fit_window(
    ds: pd.DataFrame, design: Design, rows: np.ndarray, config: TrainConfig
) -> tuple[FitResult, np.ndarray, np.ndarray]:
    """Fit on one training window: purged validation split, optional search, early stopping.
    Returns the fit and the (fit rows, validation rows) masks it used."""
    fit_rows, val_rows = split_validation(ds, rows, config.validation_fraction)
    params = config.params
    if config.trials > 0:
        from tools.quant.search import tune

        params = tune(design, fit_rows, val_rows, params, trials=config.trials, seed=config.seed, nthread=config.nthread)
    return fit(design, fit_rows, val_rows, params, seed=config.seed, nthread=config.nthread), fit_rows, val_rows


def walk_forward(
    ds: pd.DataFrame, design: Design, end: date, config: TrainConfig, progress: Progress | None = None
) -> WalkForwardReport:
    folds = plan_folds(ds, end, train_years=config.train_years, test_months=config.test_months)
    done: list[FoldMetrics] = []
    y_all, p_all, prior_all = [], [], []
    for i, fold in enumerate(folds):
        if progress:
            progress(i, len(folds) + 1, f"walk-forward {fold.test_start:%Y-%m}")
        train, test = fold_rows(ds, fold, end)
        if not test.any():
            continue
        try:
            result, fit_rows, val_rows = fit_window(ds, design, train, config)
        except TrainingError:
            continue  # a thin window (a gap in the data): skipped, and the report counts only real folds
        proba = predict_proba(result.booster, design.X[test], result.class_weights)
        y = design.y[test].astype(int)
        used = fit_rows | val_rows
        done.append(
            FoldMetrics(
                train_start=pd.Timestamp(design.dates[used].min()).date(),
                train_end=pd.Timestamp(design.label_end[used].max()).date(),
                test_start=pd.Timestamp(design.dates[test].min()).date(),
                test_end=pd.Timestamp(design.dates[test].max()).date(),
                metrics=evaluate(y, proba, result.train_prior),
            )
        )
        y_all.append(y)
        p_all.append(proba)
        prior_all.append(np.tile(result.train_prior, (len(y), 1)))
    pooled = evaluate(np.concatenate(y_all), np.concatenate(p_all), np.concatenate(prior_all)) if y_all else None
    return WalkForwardReport(
        train_years=config.train_years, test_months=config.test_months, folds=done, pooled=pooled
    )


def fit_final(
    ds: pd.DataFrame,
    design: Design,
    universe: str,
    symbols: list[str],
    *,
    end: date,
    models_dir: Path,
    now: datetime,
    config: TrainConfig,
    walk_forward_metrics: ClassificationMetrics | None = None,
) -> tuple[Artefact, FoldMetrics]:
    """Fit the model to keep on the last ``train_years`` whose labels are known by ``end``; save it.

    ``ds`` may hold rows after ``end`` (a replay builds it once over its whole span): ``in_window`` keeps only
    rows whose label window closed by ``end``, so none of them is seen.
    """
    window_start = pd.Timestamp(end) - pd.DateOffset(years=config.train_years)
    rows = in_window(ds, window_start, end)
    if not rows.any():
        raise TrainingError(f"no labelled rows for universe {universe} in the {config.train_years} years before {end}")
    final, fit_rows, val_rows = fit_window(ds, design, rows, config)
    used = fit_rows | val_rows
    train_start = pd.Timestamp(design.dates[used].min()).date()
    train_end = pd.Timestamp(design.label_end[used].max()).date()
    params = {**booster_params(final.params, seed=config.seed, nthread=config.nthread), "best_iteration": final.best_iteration,
              "max_rounds": final.params.max_rounds, "early_stopping_rounds": final.params.early_stopping_rounds, "trials": config.trials}  # fmt: skip
    fields = {
        "kind": "xgb",
        "universe": universe,
        "symbols": symbols,
        "created_at": now,
        "data_end": end,
        "training_start": train_start,
        "training_end": train_end,
        "features": list(FEATURE_COLUMNS),
        "label_rule": config.rule,
        "seed": config.seed,
        "params": params,
        "class_weights": [float(w) for w in final.class_weights],
        "libraries": library_versions(),
        "validation": final.validation,
        "walk_forward": walk_forward_metrics,
    }
    artefact = save_artefact(models_dir, fields, lambda path: final.booster.save_model(str(path)))
    val_days = design.dates[val_rows]
    validation = FoldMetrics(
        train_start=train_start,
        train_end=pd.Timestamp(design.label_end[fit_rows].max()).date(),
        test_start=pd.Timestamp(val_days.min()).date(),
        test_end=pd.Timestamp(val_days.max()).date(),
        metrics=final.validation,
    )
    return artefact, validation


def library_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("xgboost", "numpy", "pandas", "pandas-ta-classic", "optuna"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def train_xgb(
    bars: Mapping[str, pd.DataFrame],
    universe: str,
    *,
    end: date,
    models_dir: Path,
    db_path: Path | str | None,
    now: datetime,
    config: TrainConfig | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Walk-forward report, final model, registry artefact and performance rows (``db_path`` None: no rows)."""
    cfg = config or TrainConfig()
    t0 = time.perf_counter()
    cut = {s: cut_at(b, end) for s, b in bars.items() if len(cut_at(b, end))}
    ds = build_dataset(cut, cfg.rule)
    design = Design.of(ds)
    report = walk_forward(ds, design, end, cfg, progress)
    if progress:
        progress(len(report.folds), len(report.folds) + 1, "final model")
    artefact, validation = fit_final(ds, design, universe, sorted(cut), end=end, models_dir=models_dir, now=now,
                                     config=cfg, walk_forward_metrics=report.pooled)
    if db_path is not None:
        record_performance(db_path, artefact.meta, "walk_forward", report.folds, recorded_at=now)
        record_performance(db_path, artefact.meta, "validation", [validation], recorded_at=now)
    if progress:
        progress(len(report.folds) + 1, len(report.folds) + 1, "saved")
    return TrainResult(artefact, report, validation, time.perf_counter() - t0)

