"""Pydantic models of the quant layer (frozen, ``extra="forbid"``): label rule, parameters, metrics, meta, I/O.

``ModelMeta`` is the schema of an artefact's ``meta.json``; a file with a missing, extra or mistyped key is
refused by the registry (``extra="forbid"`` is what makes a foreign ``meta.json`` fail loudly).
Classes are encoded ``SELL = 0, HOLD = 1, BUY = 2`` everywhere (``CLASSES``).

One meta schema for both kinds: ``label_rule``, ``class_weights``, ``validation`` and ``walk_forward`` belong to
``xgb`` (required there), ``ppo`` (``PpoDetails``: environment constants, scaler, held-out Sharpe) to ``ppo``
(required there); a meta carrying the other kind's fields is refused. ``KIND_FIELDS`` names them, so the
registry writes (and digests) only the fields of the artefact's own kind.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class PpoConfig(_Frozen):
    """One PPO training run (``tools.quant.ppo``): budget, seeds, SB3 hyper-parameters, held-out window.

    The default budget (``timesteps`` per seed x ``seeds``) trains ``train ppo --universe demo --end 2012-12-31``
    in well under 5 minutes on 2 busy cores (benchmarks/bench_quant.py measures it).
    """

    timesteps: int = Field(default=100_000, ge=256, description="environment steps per seed")
    seeds: int = Field(default=3, ge=1, le=20, description="policies trained, seeds seed, seed + 1, ...")
    seed: int = Field(default=0, ge=0)
    n_envs: int = Field(default=4, ge=1, le=16, description="environments stepped together (DummyVecEnv)")
    n_steps: int = Field(default=256, ge=8, description="steps per environment per rollout")
    batch_size: int = Field(default=128, ge=8)
    n_epochs: int = Field(default=5, ge=1, le=50)
    learning_rate: float = Field(default=3e-4, gt=0, lt=1)
    gamma: float = Field(default=0.99, gt=0, le=1)
    gae_lambda: float = Field(default=0.95, gt=0, le=1)
    clip_range: float = Field(default=0.2, gt=0, lt=1)
    ent_coef: float = Field(default=0.01, ge=0, lt=1)
    hidden: tuple[int, ...] = Field(default=(64, 64), min_length=1, max_length=4, description="MLP layer sizes")
    episode_days: int = Field(default=252, ge=5, le=5000, description="steps per training episode at most")
    validation_fraction: float = Field(default=0.2, gt=0, lt=0.5, description="held-out tail of the decision days")


class PpoValidation(_Frozen):
    """Out-of-sample figures on the held-out window (no training reward reads a bar of it)."""

    start: date
    end: date
    days: int = Field(description="decision days in the window (the union over symbols)")
    seeds: list[int]
    sharpe: list[float] = Field(description="per seed, the deterministic policy's Sharpe, same order as seeds")
    sharpe_mean: float
    sharpe_std: float | None = Field(description="sample std (ddof=1) over seeds; None with one seed")
    total_return: list[float] = Field(description="per seed")
    buy_hold_sharpe: float
    buy_hold_total_return: float
    kept_seed: int = Field(description="the seed whose policy is saved: the first, never the best on this window")
    verdict: str


class PpoDetails(_Frozen):
    """What a ``ppo`` artefact needs beyond the common meta to be rebuilt and judged."""

    timesteps: int
    env: dict[str, float | int | str] = Field(description="tools.quant.ppo_env constants the policy was trained on")
    actions: list[str]
    action_scores: list[float]
    scaler: dict[str, tuple[float, float]] = Field(description="feature -> (mean, std) of the fit rows only")
    fit_start: date = Field(description="first decision day a training episode could start on")
    fit_end: date = Field(description="last bar any training reward read (the day before the held-out window)")
    validation: PpoValidation


XGB_FIELDS: tuple[str, ...] = ("label_rule", "class_weights", "validation", "walk_forward")
KIND_FIELDS: dict[str, tuple[str, ...]] = {"xgb": XGB_FIELDS, "ppo": ("ppo",)}


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
    label_rule: LabelRule | None = Field(default=None, description="xgb only (required there)")
    seed: int
    params: dict[str, float | int | str]
    class_weights: list[float] = Field(default_factory=list, description="xgb: weights of SELL, HOLD, BUY")
    libraries: dict[str, str]
    validation: ClassificationMetrics | None = Field(default=None, description="xgb only (required there)")
    walk_forward: ClassificationMetrics | None = None
    model_file: str
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    ppo: PpoDetails | None = Field(default=None, description="ppo only (required there)")

    @model_validator(mode="after")
    def _fields_of_its_kind(self) -> ModelMeta:
        if self.kind == "xgb":
            if self.label_rule is None or self.validation is None or len(self.class_weights) != len(CLASSES):
                raise ValueError("an xgb meta needs label_rule, validation and 3 class_weights")
            if self.ppo is not None:
                raise ValueError("an xgb meta carries no ppo details")
        else:
            if self.ppo is None:
                raise ValueError("a ppo meta needs its ppo details")
            if self.label_rule is not None or self.validation is not None or self.walk_forward or self.class_weights:
                raise ValueError("a ppo meta carries no xgb fields")
        return self

    def other_kind_fields(self) -> set[str]:
        """Fields of the other kind, left out of ``meta.json`` and of the version digest."""
        return {f for kind, names in KIND_FIELDS.items() if kind != self.kind for f in names}


class PredictInput(_Frozen):
    """Which day and symbols to score; the bars come with the call's context, cut at ``as_of``."""

    universe: str = Field(min_length=1)
    as_of: date
    symbols: list[str] | None = Field(default=None, description="None: every symbol with bars")


class SymbolPrediction(_Frozen):
    symbol: str
    score: float = Field(ge=-1, le=1, description="xgb: p_buy - p_sell; ppo: the deterministic action's score")
    p_sell: float = Field(description="xgb: P(SELL); ppo: the policy's probability of any sell action")
    p_hold: float
    p_buy: float
    action: str | None = Field(default=None, description="ppo only: the deterministic action (e.g. buy_50)")
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
