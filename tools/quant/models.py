"""Pydantic models of the quant layer (frozen, ``extra="forbid"``): label rule, parameters, metrics, meta, I/O.

``ModelMeta`` is the schema of an artefact's ``meta.json``; a file with a missing, extra or mistyped key is
refused by the registry (``extra="forbid"`` is what makes a foreign ``meta.json`` fail loudly).
Classes are encoded ``SELL = 0, HOLD = 1, BUY = 2`` everywhere (``CLASSES``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CLASSES: tuple[str, str, str] = ("SELL", "HOLD", "BUY")
ModelKind = Literal["xgb", "ppo"]
KINDS: tuple[str, ...] = ("xgb", "ppo")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LabelRule(_Frozen):
    """BUY when close[t + horizon] / close[t] - 1 > threshold, SELL when < -threshold, HOLD otherwise."""

    horizon: int = Field(default=5, ge=1, le=250, description="sessions of the symbol's own bars")
    threshold: float = Field(default=0.02, gt=0, lt=1, allow_inf_nan=False)


class XgbParams(_Frozen):
    max_depth: int = Field(default=4, ge=1, le=12)
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    subsample: float = Field(default=0.8, gt=0, le=1)
    colsample_bytree: float = Field(default=0.8, gt=0, le=1)
    min_child_weight: float = Field(default=5.0, ge=0)
    reg_lambda: float = Field(default=1.0, ge=0)
    # A ceiling on the model's size, hence on inference cost: 150 rounds x 3 trees of depth 4 still score
    # > 200,000 symbol-days/s on one thread (benchmarks/bench_quant.py); 400 rounds fell to ~75,000. Early
    # stopping keeps far fewer on the demo universe (~40 at the default learning rate).
    max_rounds: int = Field(default=150, ge=1, description="boosting rounds before early stopping")
    early_stopping_rounds: int = Field(default=30, ge=1)


class TrainConfig(_Frozen):
    """One training run: label rule, booster parameters, walk-forward shape, seed and threads."""

    rule: LabelRule = LabelRule()
    params: XgbParams = XgbParams()
    seed: int = 0
    # Fixed so results do not depend on the machine. 1 by default: the windows are small (thousands of rows)
    # and on a busy 2-core machine 2 OpenMP threads ran the demo walk-forward 7x slower than 1 (81 s vs 12 s).
    nthread: int = Field(default=1, ge=1)
    train_years: int = Field(default=3, ge=1, le=30)
    test_months: int = Field(default=6, ge=1, le=60)
    validation_fraction: float = Field(default=0.2, gt=0, lt=0.5)
    trials: int = Field(default=0, ge=0, description="Optuna trials per training window; 0: no search")


class Scores(_Frozen):
    """Classification quality on one set of rows (``log_loss`` is None where it has no meaning)."""

    n: int
    accuracy: float
    log_loss: float | None


class ClassificationMetrics(_Frozen):
    """A model's scores next to two naive references fitted on the same training rows.

    ``majority``: always the training window's most frequent class (its log-loss is undefined: None).
    ``prior``: the training window's class frequencies as probabilities for every row; its accuracy is the
    expected accuracy of drawing from that prior. ``beats_naive`` needs a higher accuracy than both and a
    lower log-loss than the prior; ``verdict`` says so in a sentence.
    """

    model: Scores
    majority: Scores
    prior: Scores
    majority_class: str
    training_prior: dict[str, float]
    confusion: list[list[int]] = Field(description="rows: true SELL, HOLD, BUY; columns: predicted")
    beats_naive: bool
    verdict: str


class FoldMetrics(_Frozen):
    train_start: date
    train_end: date = Field(description="last label window's end used for training")
    test_start: date
    test_end: date
    metrics: ClassificationMetrics


class WalkForwardReport(_Frozen):
    train_years: int
    test_months: int
    folds: list[FoldMetrics]
    pooled: ClassificationMetrics | None = Field(description="every fold's test rows together; None: no fold")


class ModelMeta(_Frozen):
    """``meta.json`` of one artefact (see ``tools.quant.registry``)."""

    format: Literal["tradeagent-model/1"] = "tradeagent-model/1"
    kind: ModelKind
    version: str
    universe: str
    symbols: list[str]
    created_at: datetime
    data_end: date = Field(description="last bar the training run could read (--end)")
    training_start: date = Field(description="first row (feature day) used for training")
    training_end: date = Field(description="last day whose label is known: the last label window's end")
    features: list[str]
    label_rule: LabelRule
    seed: int
    params: dict[str, float | int | str]
    class_weights: list[float] = Field(description="weights of SELL, HOLD, BUY used in training")
    libraries: dict[str, str]
    validation: ClassificationMetrics
    walk_forward: ClassificationMetrics | None = None
    model_file: str
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class PredictInput(_Frozen):
    """Which day and symbols to score; the bars come with the call's context, cut at ``as_of``."""

    universe: str = Field(min_length=1)
    as_of: date
    symbols: list[str] | None = Field(default=None, description="None: every symbol with bars")


class SymbolPrediction(_Frozen):
    symbol: str
    score: float = Field(ge=-1, le=1, description="p_buy - p_sell")
    p_sell: float
    p_hold: float
    p_buy: float
    feature_date: date = Field(description="the bar the features were read from (on or before as_of)")


class PredictOutput(_Frozen):
    kind: ModelKind
    as_of: date
    universe: str
    model_version: str
    training_start: date
    training_end: date
    predictions: list[SymbolPrediction]
    skipped: dict[str, str] = Field(default_factory=dict, description="symbol -> why it has no prediction")
