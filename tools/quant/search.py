"""Optional hyperparameter search (Optuna, seeded TPE) inside one training window.

``tune(design, fit_rows, val_rows, base, trials=N, seed=S, nthread=T)`` returns the ``XgbParams`` whose model,
trained on ``fit_rows`` and early-stopped on ``val_rows``, has the lowest validation log-loss. Both masks are
the purged split of the TRAINING window (``features.split_validation``): the window the model will predict is
never seen by the search. Walk-forward runs the search again in every fold, on that fold's window only.

Deliberate decisions:
- The validation split scores the trials AND early-stops the final fit, so after a search its metrics are
  optimistic; the walk-forward metrics (a search per fold, scored on the next months) are the honest ones.
- ``TPESampler(seed=seed)`` and one trial at a time: the same inputs give the same trials and the same result.
- The search space is small (depth, learning rate, subsampling, child weight, L2): enough to matter, few
  enough dimensions for tens of trials. ``max_rounds`` and early stopping stay the caller's (the learning
  rate starts at 0.02 so that the round ceiling can still reach a fit). Depth stops at 4 and rounds at the
  caller's ceiling because inference cost grows with both: depth 6 at 150 rounds scored ~128,000 symbol-days/s
  on one thread, under the 200,000 target; depth 4 ~235,000.
- Optuna is imported here only, on first use: training without ``--trials`` never loads it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tools.quant.models import XgbParams
from tools.quant.xgb import Design, fit


def tune(
    design: Design,
    fit_rows: np.ndarray,
    val_rows: np.ndarray,
    base: XgbParams,
    *,
    trials: int,
    seed: int,
    nthread: int,
) -> XgbParams:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def candidate(trial: Any) -> XgbParams:
        return base.model_copy(
            update={
                "max_depth": trial.suggest_int("max_depth", 2, 4),
                "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
                "subsample": trial.suggest_float("subsample", 0.5, 1.0),
                "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
                "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 50.0, log=True),
                "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
            }
        )

    def objective(trial: Any) -> float:
        result = fit(design, fit_rows, val_rows, candidate(trial), seed=seed, nthread=nthread)
        loss = result.validation.model.log_loss
        return float("inf") if loss is None else loss

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials, n_jobs=1)
    return candidate(study.best_trial)
