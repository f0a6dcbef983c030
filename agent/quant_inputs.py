"""What the quant node reads on day D: each trained model's prediction for the whole universe, from the tools.

``QuantSetup`` is built at the edge (the daily run: the user's ``TRADEAGENT_HOME/models``; a replay: the models
it trained walk-forward, in its own folder) and says which model kinds the day may use. ``read_models`` calls
the typed prediction tools (``tools.quant.predict``) once per kind, batched over the universe, and returns
per symbol the values the quant prompt and the offline rules read:
- ``xgb_prob_up`` = 0.5 + (P(BUY) − P(SELL)) / 2, so that the prompt's "score = 2p − 1" is the model's score;
- ``ppo_action`` = the PPO policy's action mapped to [-1, 1].
A kind with no model trained before D (``NoUsableModelError``) is simply absent; a corrupt artefact is
reported as missing with its one-line reason, never silently replaced by an older model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from tools.quant.errors import ModelError, NoUsableModelError
from tools.quant.models import PredictInput, PredictOutput
from tools.quant.predict import PredictContext, predict_ppo, predict_xgb
from tools.view import MarketView

Predictor = Callable[[PredictInput, PredictContext], PredictOutput]
PREDICTORS: dict[str, tuple[str, Predictor]] = {
    "xgb": ("xgb_prob_up", predict_xgb),
    "ppo": ("ppo_action", predict_ppo),
}


@dataclass(frozen=True)
class QuantSetup:
    models_dir: Path
    kinds: frozenset[str] = frozenset(PREDICTORS)
    features: Mapping[str, pd.DataFrame] | None = field(default=None, repr=False)  # precomputed (replays)


@dataclass(frozen=True)
class ModelReadings:
    symbols: dict[str, dict[str, float | None]]  # symbol -> {xgb_prob_up, ppo_action}
    versions: dict[str, str]  # kind -> model version used
    missing: dict[str, str]  # kind -> why it gave nothing


def read_models(setup: QuantSetup, universe: str, view: MarketView, as_of: date) -> ModelReadings:
    """Every configured model kind's predictions for ``view``'s symbols on ``as_of`` (see the module doc)."""
    keys = {kind: PREDICTORS[kind][0] for kind in sorted(setup.kinds) if kind in PREDICTORS}
    table: dict[str, dict[str, float | None]] = {s: dict.fromkeys(keys.values()) for s in view.bars}
    versions: dict[str, str] = {}
    missing: dict[str, str] = {k: "this kind of model is not built yet" for k in sorted(setup.kinds - set(PREDICTORS))}
    context = PredictContext(models_dir=setup.models_dir, bars=view.bars, features=setup.features,
                             indicators=view.indicators)
    for kind, key in keys.items():
        try:
            out = PREDICTORS[kind][1](PredictInput(universe=universe, as_of=as_of, symbols=sorted(view.bars)), context)
        except NoUsableModelError as exc:
            missing[kind] = str(exc)
            continue
        except ModelError as exc:  # a corrupt or foreign artefact: said, never replaced by another model
            missing[kind] = f"refused: {exc}"
            continue
        versions[kind] = out.model_version
        for p in out.predictions:
            table.setdefault(p.symbol, dict.fromkeys(keys.values()))[key] = (
                round(0.5 + p.score / 2.0, 6) if kind == "xgb" else round(p.score, 6))
    return ModelReadings(symbols={s: v for s, v in table.items() if any(x is not None for x in v.values())},
                         versions=versions, missing=missing)
