"""PPO: one stable-baselines3 policy per universe, trained on the pooled environment, judged out of sample.

``train_ppo(bars, universe, end=E, models_dir=…, now=…, config=PpoConfig(), progress=…)``:
1. cuts every symbol's bars at E and computes its features once (causal);
2. splits the pooled decision days in time: the last ``validation_fraction`` is the held-out window, starting V.
   The scaler is fitted on feature rows before V only; the training environment's series end on the last bar
   before V, and a reward reads one bar past its decision day, so no training reward reads a bar of V or later
   (purged);
3. trains ``seeds`` policies (``PPO("MlpPolicy")`` on CPU, seeds seed, seed + 1, …; each seeds the
   environments, numpy, torch and the action space; one torch thread), runs each one's deterministic policy
   from flat over every symbol of the held-out window, and reports the Sharpe of the equal-weight, daily
   rebalanced mean of the symbols' daily returns (mean / std(ddof=1) · √252), next to buy-and-hold of the same
   symbols on the same window with the same fees;
4. saves the FIRST seed's policy (``model.save``: SB3's own zip) with its meta (``ModelMeta.ppo``: environment
   constants, scaler, fit window, the held-out figures of every seed). ``training_end`` is the last bar read
   (the held-out window included), so ``latest_usable`` offers the model only after everything its policy or
   its figures saw.

``load_policy(artefact)`` rebuilds the policy from the meta and loads only the zip's tensors
(``load_from_zip_file(load_data=False)``: ``torch.load(weights_only=True)``); the zip's pickled ``data`` entry
is never deserialised, so a foreign zip cannot run code. The registry has checked its sha256 first.
``action_probabilities(policy, obs)`` is one batched forward pass; its argmax is what
``model.predict(obs, deterministic=True)`` returns (a test keeps them equal).

Deliberate decisions:
- The saved policy is the first seed's, never the best one on the held-out window: choosing on that window
  would make its figures flatter the saved policy. The other seeds measure the spread of the recipe.
- The whole history before V trains (no training-years cap): a policy needs many market regimes more than
  recent ones, and the environment samples a start day uniformly.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache, partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.vec_env import DummyVecEnv

from tools.indicators import cut_at
from tools.quant.errors import ArtefactError, TrainingError
from tools.quant.features import FEATURE_COLUMNS, fit_scaler, precompute_features
from tools.quant.models import PpoConfig, PpoDetails, PpoValidation
from tools.quant.ppo_env import (
    ACTION_NAMES,
    ACTION_SCORES,
    ACTIONS,
    OBS_DIM,
    Series,
    TradingEnv,
    build_series,
    buy_and_hold,
    env_constants,
    run_book,
    spaces,
)
from tools.quant.registry import Artefact, save_artefact

Progress = Callable[[int, int, str], None]  # (done, total, label)
TRADING_DAYS = 252
MIN_FIT_DAYS = 50
MIN_HELD_OUT_DAYS = 20


@dataclass(frozen=True)
class Split:
    """The fit and held-out series of every symbol, and the scaler fitted on the fit rows."""

    fit: list[Series]
    held_out: list[Series]
    scaler: dict[str, tuple[float, float]]
    held_out_start: date
    last_bar: date


@dataclass(frozen=True)
class PpoTrainResult:
    artefact: Artefact
    validation: PpoValidation
    seconds: float
    timesteps: int  # per seed, as run (SB3 rounds up to whole rollouts)


def split(bars: Mapping[str, pd.DataFrame], end: date, fraction: float) -> Split:
    """Bars cut at ``end``; fit series before the held-out window, held-out series from its first day."""
    cut = {s: cut_at(b, end) for s, b in sorted(bars.items()) if len(cut_at(b, end)) >= 2}
    feats = precompute_features(cut)
    finite = {s: f[np.isfinite(f.to_numpy("float64")).all(axis=1)] for s, f in feats.items()}
    stamps = [f.index.to_numpy("datetime64[ns]") for f in finite.values()]
    days = np.unique(np.concatenate(stamps)) if stamps else np.array([], "datetime64[ns]")
    if len(days) < MIN_FIT_DAYS + MIN_HELD_OUT_DAYS:
        raise TrainingError(f"too few days with complete features before {end} to train PPO ({len(days)}; "
                            f"need {MIN_FIT_DAYS + MIN_HELD_OUT_DAYS}, after a ~200-bar warm-up)")  # fmt: skip
    start = pd.Timestamp(days[min(len(days) - MIN_HELD_OUT_DAYS, int(len(days) * (1.0 - fraction)))])
    before = start - pd.Timedelta(days=1)
    scaler = fit_scaler(pd.concat([f.loc[:before] for f in finite.values()])[list(FEATURE_COLUMNS)])
    fit = [x for s in cut if (x := build_series(s, cut[s], feats[s], scaler, None, before)) is not None]
    held = [x for s in cut if (x := build_series(s, cut[s], feats[s], scaler, start, end)) is not None]
    n_fit = sum(len(x) - 1 for x in fit)
    if n_fit < MIN_FIT_DAYS or not held:
        raise TrainingError(f"too few decision days to train PPO before {start.date()} ({n_fit}; need {MIN_FIT_DAYS})")
    last = max(pd.Timestamp(b.index[-1]) for b in cut.values()).date()
    return Split(fit, held, scaler, start.date(), last)


def _first(series: list[Series]) -> date:
    return pd.Timestamp(min(x.dates[0] for x in series)).date()


def _last(series: list[Series]) -> date:
    return pd.Timestamp(max(x.dates[-1] for x in series)).date()


def sharpe(returns: pd.Series) -> float:
    """Annualised Sharpe of daily returns (risk-free 0, ddof=1); 0 when they do not vary."""
    std = float(returns.std(ddof=1)) if len(returns) > 1 else 0.0
    return float(returns.mean() / std * np.sqrt(TRADING_DAYS)) if std > 0 else 0.0


def pooled_returns(series: list[Series], run: Callable[[Series], pd.Series]) -> pd.Series:
    """The mean over symbols of each day's returns: an equal-weight book of the per-symbol books."""
    return pd.concat([run(x) for x in series], axis=1).mean(axis=1)


def _policy_kwargs(hidden: tuple[int, ...]) -> dict[str, Any]:
    return {"net_arch": {"pi": list(hidden), "vf": list(hidden)}, "activation_fn": torch.nn.Tanh}


class _Progress(BaseCallback):
    def __init__(self, report: Progress | None, offset: int, total: int, label: str) -> None:
        super().__init__()
        self.report, self.offset, self.total, self.label = report, offset, total, label
        self.last = 0

    def _on_step(self) -> bool:
        if self.report is not None and self.num_timesteps - self.last >= 512:
            self.last = self.num_timesteps
            self.report(min(self.total, self.offset + self.num_timesteps), self.total, self.label)
        return True


def fit_policy(fit: list[Series], config: PpoConfig, seed: int, progress: _Progress | None = None) -> PPO:
    """One seeded PPO policy trained on the fit series (see the module contract)."""
    torch.set_num_threads(1)
    env = DummyVecEnv([lambda: TradingEnv(fit, config.episode_days) for _ in range(config.n_envs)])
    model = PPO(
        "MlpPolicy", env, learning_rate=config.learning_rate, n_steps=config.n_steps, batch_size=config.batch_size,
        n_epochs=config.n_epochs, gamma=config.gamma, gae_lambda=config.gae_lambda, clip_range=config.clip_range,
        ent_coef=config.ent_coef, policy_kwargs=_policy_kwargs(config.hidden), seed=seed, device="cpu", verbose=0,
    )  # fmt: skip
    model.learn(total_timesteps=config.timesteps, callback=progress)
    return model


def action_probabilities(policy: ActorCriticPolicy, obs: np.ndarray) -> np.ndarray:
    """(n, 7) probabilities of the actions for a batch of observations; one forward pass."""
    if len(obs) == 0:
        return np.zeros((0, len(ACTIONS)))
    torch.set_num_threads(1)
    with torch.no_grad():
        dist = policy.get_distribution(torch.as_tensor(np.asarray(obs, dtype="float32")))
        return dist.distribution.probs.numpy().astype("float64")  # type: ignore[union-attr]


def _decide(policy: ActorCriticPolicy) -> Callable[[int, np.ndarray], tuple[str, float]]:
    def decide(_t: int, obs: np.ndarray) -> tuple[str, float]:
        return ACTIONS[int(action_probabilities(policy, obs[None, :])[0].argmax())]

    return decide


def _verdict(v: dict[str, Any]) -> str:
    spread = "" if v["sharpe_std"] is None else f" ± {v['sharpe_std']:.2f}"
    seeds = len(v["seeds"])
    above = v["sharpe_mean"] > v["buy_hold_sharpe"]
    return (f"out-of-sample Sharpe {v['sharpe_mean']:.2f}{spread} over {seeds} seed{'s' * (seeds > 1)} vs "
            f"buy-and-hold {v['buy_hold_sharpe']:.2f} on {v['start']} … {v['end']}: "
            f"{'above' if above else 'NOT above'} buy-and-hold")  # fmt: skip


def libraries() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("stable-baselines3", "gymnasium", "torch", "numpy", "pandas", "pandas-ta-classic"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def train_ppo(
    bars: Mapping[str, pd.DataFrame],
    universe: str,
    *,
    end: date,
    models_dir: Path,
    now: datetime,
    config: PpoConfig | None = None,
    progress: Progress | None = None,
) -> PpoTrainResult:
    """Train ``config.seeds`` policies, judge each on the held-out window, save the first (module contract)."""
    cfg = config or PpoConfig()
    t0 = time.perf_counter()
    data = split(bars, end, cfg.validation_fraction)
    seeds = [cfg.seed + i for i in range(cfg.seeds)]
    total = cfg.seeds * cfg.timesteps
    kept: PPO | None = None
    figures: list[tuple[float, float]] = []
    for i, seed in enumerate(seeds):
        model = fit_policy(data.fit, cfg, seed, _Progress(progress, i * cfg.timesteps, total, f"seed {seed}"))
        returns = pooled_returns(data.held_out, partial(run_book, decide=_decide(model.policy)))
        figures.append((sharpe(returns), float((1.0 + returns).prod() - 1.0)))
        if kept is None:
            kept = model
    assert kept is not None
    bh = pooled_returns(data.held_out, buy_and_hold)
    sharpes = [round(s, 6) for s, _ in figures]
    v: dict[str, Any] = {
        "start": data.held_out_start, "end": _last(data.held_out),
        "days": len(np.unique(np.concatenate([x.dates[1:] for x in data.held_out]))),
        "seeds": seeds, "sharpe": sharpes, "sharpe_mean": round(float(np.mean(sharpes)), 6),
        "sharpe_std": round(float(np.std(sharpes, ddof=1)), 6) if len(sharpes) > 1 else None,
        "total_return": [round(r, 6) for _, r in figures], "buy_hold_sharpe": round(sharpe(bh), 6),
        "buy_hold_total_return": round(float((1.0 + bh).prod() - 1.0), 6), "kept_seed": seeds[0],
    }  # fmt: skip
    validation = PpoValidation(**v, verdict=_verdict(v))
    details = PpoDetails(
        timesteps=int(kept.num_timesteps), env={**env_constants(), "episode_days": cfg.episode_days},
        actions=list(ACTION_NAMES), action_scores=[round(x, 6) for x in ACTION_SCORES], scaler=data.scaler,
        fit_start=_first(data.fit), fit_end=_last(data.fit), validation=validation,
    )  # fmt: skip
    params: dict[str, float | int | str] = {
        **cfg.model_dump(exclude={"hidden", "seed"}), "hidden": ",".join(str(h) for h in cfg.hidden),
        "policy": "MlpPolicy", "activation": "tanh",
    }  # fmt: skip
    fields = {
        "kind": "ppo", "universe": universe, "symbols": sorted(x.symbol for x in data.fit), "created_at": now,
        "data_end": end, "training_start": details.fit_start, "training_end": data.last_bar,
        "features": list(FEATURE_COLUMNS), "seed": seeds[0], "params": params, "libraries": libraries(),
        "ppo": details,
    }  # fmt: skip
    keep: PPO = kept
    artefact = save_artefact(models_dir, fields, lambda path: keep.save(path))
    if progress:
        progress(total, total, "saved")
    return PpoTrainResult(artefact, validation, time.perf_counter() - t0, int(kept.num_timesteps))


def load_policy(artefact: Artefact) -> ActorCriticPolicy:
    """The artefact's policy (the registry verified its hash), rebuilt from the meta; cached per file and hash."""
    meta = artefact.meta
    if meta.kind != "ppo" or meta.ppo is None:
        raise ArtefactError(f"model artefact {meta.version} is a {meta.kind} model, not ppo")
    if tuple(meta.features) != FEATURE_COLUMNS or tuple(meta.ppo.scaler) != FEATURE_COLUMNS:
        raise ArtefactError(
            f"model artefact {meta.version} was trained on another feature list ({len(meta.features)} features); retrain it"
        )
    if meta.ppo.env.get("obs_dim") != OBS_DIM or tuple(meta.ppo.actions) != ACTION_NAMES:
        raise ArtefactError(f"model artefact {meta.version} was trained on another environment; retrain it")
    return _load(str(artefact.model_path), meta.model_sha256, str(meta.params.get("hidden", "")))


@lru_cache(maxsize=8)
def _load(path: str, sha256: str, hidden: str) -> ActorCriticPolicy:
    try:
        sizes = tuple(int(h) for h in hidden.split(","))
    except ValueError:
        raise ArtefactError(f"model file {path}: its meta's hidden layer sizes {hidden!r} are not integers") from None
    try:
        _, params, _ = load_from_zip_file(path, load_data=False, device="cpu")
    except Exception as exc:  # a damaged zip or tensor file: SB3 and torch raise several kinds
        raise ArtefactError(f"model file {path} is not a stable-baselines3 model ({type(exc).__name__})") from None
    state = params.get("policy")
    if not isinstance(state, dict):
        raise ArtefactError(f"model file {path} holds no policy weights")
    policy = ActorCriticPolicy(*spaces(), lambda _: 0.0, **_policy_kwargs(sizes))
    try:
        policy.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, TypeError):  # missing, extra or mis-shaped tensors
        raise ArtefactError(
            f"model file {path}: its weights do not fit a {hidden} MLP policy over {OBS_DIM} inputs and {len(ACTIONS)} actions"
        ) from None
    policy.set_training_mode(False)
    return policy

