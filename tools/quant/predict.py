"""``predict_xgb`` and ``predict_ppo``: the model tools the agent's quant node calls on day D, for the whole
universe at once.

Contract:
- Input ``PredictInput(universe, as_of, symbols)`` and a ``PredictContext`` carrying each symbol's bars cut at
  D (a ``MarketView``'s ``bars`` fit as they are), the registry folder, and optionally features or
  indicators precomputed over a longer span (a replay): everything is cut at ``as_of`` again here, so a
  context holding later rows still cannot leak them.
- The model is ``registry.latest_usable(kind="xgb", universe, as_of)``: trained, labels included, strictly
  before D. A symbol whose last feature row falls inside that training window (its data stopped) is skipped
  with the reason, so no model ever scores a day it was trained on.
- One batched ``inplace_predict`` over every symbol's feature row at D.
- Errors: ``NoUsableModelError`` (no model trained before D), ``ArtefactError`` (corrupt or foreign artefact).
  A symbol without bars or still in its feature warm-up goes to ``skipped`` with the reason.
- ``predict_ppo`` follows the same rules with ``kind="ppo"``: the features at D scaled with the policy's own
  scaler, plus the book part of the observation (flat unless ``PredictContext.ppo_state`` gives it), scored in
  one batched forward pass of the policy. torch and stable-baselines3 are imported on its first call only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from tools.indicators import cut_at
from tools.quant.features import FEATURE_COLUMNS, features_as_of, symbol_features
from tools.quant.models import PredictInput, PredictOutput, SymbolPrediction
from tools.quant.registry import latest_usable
from tools.quant.xgb import load_booster, predict_proba


@dataclass(frozen=True)
class PredictContext:
    models_dir: Path
    bars: Mapping[str, pd.DataFrame]
    features: Mapping[str, pd.DataFrame] | None = None  # tools.quant.features.precompute_features
    indicators: Mapping[str, pd.DataFrame] | None = None  # e.g. MarketView.indicators
    # predict_ppo: symbol -> (position share, unrealised P&L, cash share) of the book; absent: flat (0, 0, 1)
    ppo_state: Mapping[str, tuple[float, float, float]] | None = None


def predict_xgb(inp: PredictInput, context: PredictContext) -> PredictOutput:
    """Score each symbol with the universe's XGBoost model trained before as_of.

    score = P(BUY) - P(SELL), in [-1, 1]: BUY (SELL) means the close `horizon` sessions later is more than
    `threshold` above (below) the close of as_of (the model's label rule; default 5 sessions, 2%). Also
    returns the three probabilities, the model version and its training window. Probabilities are
    re-weighted to the training period's class frequencies, so a score near 0 means no edge.
    """
    artefact = latest_usable(context.models_dir, "xgb", inp.universe, as_of=inp.as_of)
    meta = artefact.meta
    booster = load_booster(artefact)
    wanted = list(inp.symbols) if inp.symbols is not None else sorted(context.bars)
    skipped = {s: "no bars" for s in wanted if s not in context.bars}
    present = [s for s in wanted if s in context.bars]
    feats = _features(present, inp, context)
    rows, why = features_as_of(feats, inp.as_of)
    skipped |= why
    stale = rows["feature_date"] <= pd.Timestamp(meta.training_end)
    for symbol, day in rows.loc[stale, "feature_date"].items():
        skipped[str(symbol)] = f"last bar {day.date()} is inside the model's training window (ends {meta.training_end})"
    rows = rows.loc[~stale]
    proba = predict_proba(booster, rows[list(FEATURE_COLUMNS)].to_numpy(dtype="float32"), np.asarray(meta.class_weights))
    predictions = [
        SymbolPrediction(
            symbol=str(symbol),
            score=round(float(p[2] - p[0]), 6),
            p_sell=round(float(p[0]), 6),
            p_hold=round(float(p[1]), 6),
            p_buy=round(float(p[2]), 6),
            feature_date=day.date(),
        )
        for symbol, day, p in zip(rows.index, rows["feature_date"], proba, strict=True)
    ]
    return PredictOutput(
        kind="xgb",
        as_of=inp.as_of,
        universe=inp.universe,
        model_version=meta.version,
        training_start=meta.training_start,
        training_end=meta.training_end,
        predictions=predictions,
        skipped=dict(sorted(skipped.items())),
    )


def predict_ppo(inp: PredictInput, context: PredictContext) -> PredictOutput:
    """Score each symbol with the action the universe's PPO policy, trained before as_of, takes on as_of.

    score = the deterministic action mapped to [-1, 1]: hold 0; buy with 25/50/75% of cash +1/3, +2/3, +1;
    sell 25/50/100% of the position -1/3, -2/3, -1. The book is taken as flat (no position, all cash) unless
    the caller gives it; from a flat book a sell changes nothing, so there a score below 0 means "no buy", not
    a short view. Also returns the policy's probabilities of any sell, hold and any buy, the action's name, the
    model version and its training window.
    """
    from tools.quant.ppo import action_probabilities, load_policy
    from tools.quant.ppo_env import ACTION_NAMES, ACTION_SCORES, FLAT, observations, scale

    artefact = latest_usable(context.models_dir, "ppo", inp.universe, as_of=inp.as_of)
    meta = artefact.meta
    policy = load_policy(artefact)
    assert meta.ppo is not None  # load_policy refuses a meta without it
    rows, skipped = _rows_at(inp, context, meta.training_end)
    states = [(context.ppo_state or {}).get(str(s), FLAT) for s in rows.index]
    obs = observations(scale(rows, meta.ppo.scaler), np.asarray(states, dtype="float32").reshape(-1, 3))
    proba = action_probabilities(policy, obs)
    side = np.array([name.split("_")[0] for name in ACTION_NAMES])
    predictions = []
    for symbol, day, p in zip(rows.index, rows["feature_date"], proba, strict=True):
        a = int(p.argmax())
        predictions.append(
            SymbolPrediction(
                symbol=str(symbol), score=round(ACTION_SCORES[a], 6), p_sell=round(float(p[side == "sell"].sum()), 6),
                p_hold=round(float(p[side == "hold"].sum()), 6), p_buy=round(float(p[side == "buy"].sum()), 6),
                action=ACTION_NAMES[a],
                feature_date=day.date(),
            )
        )  # fmt: skip
    return PredictOutput(
        kind="ppo", as_of=inp.as_of, universe=inp.universe, model_version=meta.version,
        training_start=meta.training_start, training_end=meta.training_end, predictions=predictions,
        skipped=dict(sorted(skipped.items())),
    )  # fmt: skip


def _rows_at(inp: PredictInput, context: PredictContext, training_end: date) -> tuple[pd.DataFrame, dict[str, str]]:
    """Each wanted symbol's feature row at ``as_of``; those without one, or inside the training window, skipped."""
    wanted = list(inp.symbols) if inp.symbols is not None else sorted(context.bars)
    skipped = {s: "no bars" for s in wanted if s not in context.bars}
    rows, why = features_as_of(_features([s for s in wanted if s in context.bars], inp, context), inp.as_of)
    skipped |= why
    stale = rows["feature_date"] <= pd.Timestamp(training_end)
    for symbol, day in rows.loc[stale, "feature_date"].items():
        skipped[str(symbol)] = f"last bar {day.date()} is inside the model's training window (ends {training_end})"
    return rows.loc[~stale], skipped


def _features(symbols: list[str], inp: PredictInput, context: PredictContext) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    for s in symbols:
        if context.features is not None and s in context.features:
            out[s] = cut_at(context.features[s], inp.as_of)
            continue
        bars = cut_at(context.bars[s], inp.as_of)
        ind = context.indicators.get(s) if context.indicators is not None else None
        out[s] = symbol_features(bars, None if ind is None else cut_at(ind, inp.as_of))
    return out
