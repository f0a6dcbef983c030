"""Walk-forward training inside the replay: ``train_walk_forward`` fits one model per test window, blind to it.

Contract:
- Test windows are ``TrainConfig.test_months`` long (default 6), from the replay's first session. For each window
  starting on W, the model is fitted with ``tools.quant.train.fit_final`` on the ``train_years`` before W whose
  labels were known by W − 1 day (the registry's ``training_end`` < W), and saved in the eval's own models folder
  (``OUT/models``, emptied first). During the replay the quant node reads ``latest_usable(as_of=D)``: the model
  of D's window, trained strictly before D. No model ever sees a day it predicts.
- PPO (``ppo``): one policy per window on every bar before it, with a smaller budget (``HARNESS_PPO``).
- A window without enough history (the first years of a series) gets no model; its days run with the quant node
  abstaining, and the notes say which windows those were.
- Training time is reported apart from replay time (``timing.train_seconds``).

Deliberate decisions:
- The dataset (features and labels) is built once over the whole loaded span and sliced per window by label
  end: every feature is causal and ``in_window`` drops any row whose label window closes after the cut.
- ``created_at`` of every artefact is the window's start (not the wall clock), so reruns give identical folders.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from tools.quant.errors import ModelError, TrainingError
from tools.quant.features import build_dataset, precompute_features
from tools.quant.models import PpoConfig, TrainConfig
from tools.quant.ppo import train_ppo
from tools.quant.train import fit_final
from tools.quant.xgb import Design

TRAINERS = ("xgb", "ppo")  # model kinds the harness can train walk-forward
# PPO per window: one seed, a fifth of `train ppo`'s default budget per seed (~7 s a window on 2 cores), so a
# 13-year replay (26 windows) trains in minutes. The standalone `train ppo` keeps its full budget and seeds.
HARNESS_PPO = PpoConfig(timesteps=20_000, seeds=1)


@dataclass(frozen=True)
class Trained:
    models_dir: Path
    kinds: frozenset[str]
    features: Mapping[str, pd.DataFrame]
    seconds: float
    notes: tuple[str, ...]


def windows(first: date, last: date, months: int) -> list[date]:
    """Start days of the test windows covering [first, last]."""
    starts, w = [], pd.Timestamp(first)
    while w <= pd.Timestamp(last):
        starts.append(w.date())
        w = w + pd.DateOffset(months=months)
    return starts


def train_walk_forward(
    bars: Mapping[str, pd.DataFrame], universe: str, kinds: frozenset[str], sessions: list[date], out: Path,
    config: TrainConfig | None = None,
) -> Trained:
    """Fit one model of each kind in ``kinds`` per test window of ``sessions``; see the module contract."""
    cfg = config or TrainConfig()
    started = time.perf_counter()
    models_dir = out / "models"
    shutil.rmtree(models_dir, ignore_errors=True)
    models_dir.mkdir(parents=True)
    features = precompute_features(bars)
    notes: list[str] = []
    if "xgb" in kinds:
        notes += _train_xgb(bars, features, universe, sessions, models_dir, cfg)
    if "ppo" in kinds:
        notes += _train_ppo(bars, universe, sessions, models_dir, cfg.test_months)
    return Trained(models_dir=models_dir, kinds=frozenset(kinds), features=features,
                   seconds=time.perf_counter() - started, notes=tuple(notes))


def _train_xgb(bars: Mapping[str, pd.DataFrame], features: Mapping[str, pd.DataFrame], universe: str,
               sessions: list[date], models_dir: Path, cfg: TrainConfig) -> list[str]:
    ds = build_dataset(dict(bars), cfg.rule, features)
    design = Design.of(ds)
    skipped, fitted = [], 0
    for start in windows(sessions[0], sessions[-1], cfg.test_months):
        end = start - timedelta(days=1)
        try:
            fit_final(ds, design, universe, sorted(bars), end=end, models_dir=models_dir,
                      now=datetime.combine(start, datetime.min.time()), config=cfg)
            fitted += 1
        except TrainingError:
            skipped.append(start.isoformat())
    notes = [f"xgb: {fitted} model(s) trained walk-forward, one per {cfg.test_months}-month window, each on the "
             f"{cfg.train_years} years before its window (labels known before it)"]
    if skipped:
        notes.append(f"xgb: no model for the window(s) starting {', '.join(skipped)} (not enough history): "
                     "the quant node abstained there")
    return notes


def _train_ppo(bars: Mapping[str, pd.DataFrame], universe: str, sessions: list[date], models_dir: Path,
               months: int) -> list[str]:
    skipped, fitted = [], 0
    for start in windows(sessions[0], sessions[-1], months):
        cut = {s: b[b.index < pd.Timestamp(start)] for s, b in bars.items()}
        try:
            train_ppo({s: b for s, b in cut.items() if len(b)}, universe, end=start - timedelta(days=1),
                      models_dir=models_dir, now=datetime.combine(start, datetime.min.time()), config=HARNESS_PPO)
            fitted += 1
        except (ModelError, ValueError):  # too little history before the window
            skipped.append(start.isoformat())
    notes = [f"ppo: {fitted} policy(ies) trained walk-forward, one per {months}-month window on every bar before it "
             f"({HARNESS_PPO.timesteps:,} steps, 1 seed each; `train ppo` uses {PpoConfig().timesteps:,} x {PpoConfig().seeds})"]
    if skipped:
        notes.append(f"ppo: no policy for the window(s) starting {', '.join(skipped)} (not enough history): "
                     "the quant node abstained there")
    return notes
