"""Classification metrics against naive references: accuracy, log-loss, confusion matrix.

``evaluate(y_true, proba, prior)`` scores predicted probabilities (columns SELL, HOLD, BUY) and builds the two
references from the TRAINING labels' class frequencies, never from the rows being scored (that would be hindsight):
- majority: always predict the training window's most frequent class;
- prior: predict the training class frequencies for every row (log-loss), or draw from them (accuracy:
  the expected hit rate, the mean over rows of prior[true class]).
A model "beats the naive references" when its accuracy exceeds both and its log-loss is below the prior's.

Log-loss clips probabilities to [1e-15, 1 - 1e-15] (scikit-learn's convention) and is the mean natural log.
"""

from __future__ import annotations

import numpy as np

from tools.quant.models import CLASSES, ClassificationMetrics, Scores

_EPS = 1e-15


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    p = np.clip(proba[np.arange(len(y)), y.astype(int)], _EPS, 1.0 - _EPS)
    return float(-np.mean(np.log(p)))


def confusion(y: np.ndarray, pred: np.ndarray) -> list[list[int]]:
    m = np.zeros((len(CLASSES), len(CLASSES)), dtype=int)
    np.add.at(m, (y.astype(int), pred.astype(int)), 1)
    return m.tolist()


def class_prior(y_train: np.ndarray) -> np.ndarray:
    counts = np.bincount(y_train.astype(int), minlength=len(CLASSES)).astype(float)
    return counts / counts.sum()


def evaluate(y_true: np.ndarray, proba: np.ndarray, prior: np.ndarray) -> ClassificationMetrics:
    """Scores of ``proba`` on ``y_true`` next to the majority and prior references of the training ``prior``.

    ``prior`` is the training class frequencies (``class_prior``), shape (3,), or one row per scored row,
    shape (n, 3), when rows come from several training windows (pooled walk-forward folds).
    """
    y = np.asarray(y_true).astype(int)
    if len(y) == 0:
        raise ValueError("evaluate needs at least one scored row")
    rows = np.broadcast_to(np.asarray(prior, dtype="float64"), (len(y), len(CLASSES)))
    majority_rows = rows.argmax(axis=1)
    majority = int(np.bincount(majority_rows, minlength=len(CLASSES)).argmax())
    picked = np.arange(len(y)), y
    model = Scores(n=len(y), accuracy=float(np.mean(proba.argmax(axis=1) == y)), log_loss=log_loss(y, proba))
    maj = Scores(n=len(y), accuracy=float(np.mean(majority_rows == y)), log_loss=None)
    pri = Scores(n=len(y), accuracy=float(np.mean(rows[picked])), log_loss=log_loss(y, rows))
    assert model.log_loss is not None and pri.log_loss is not None
    beats = model.accuracy > max(maj.accuracy, pri.accuracy) and model.log_loss < pri.log_loss
    return ClassificationMetrics(
        model=model,
        majority=maj,
        prior=pri,
        majority_class=CLASSES[majority],
        training_prior={c: round(float(p), 6) for c, p in zip(CLASSES, rows.mean(axis=0), strict=True)},
        confusion=confusion(y, proba.argmax(axis=1)),
        beats_naive=beats,
        verdict=_verdict(beats, model, maj, pri),
    )


def _verdict(beats: bool, model: Scores, maj: Scores, pri: Scores) -> str:
    figures = (
        f"accuracy {model.accuracy:.3f} vs majority {maj.accuracy:.3f} and prior {pri.accuracy:.3f}; "
        f"log-loss {model.log_loss:.4f} vs prior {pri.log_loss:.4f} (n={model.n})"
    )
    if beats:
        return f"The model beats both naive references: {figures}."
    return f"The model does NOT beat the naive references: {figures}."
