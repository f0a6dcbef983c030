"""Benchmark: XGBoost and PPO training on the demo universe, batched inference, features, predict_xgb/ppo calls.

Run: ``PYTHONPATH=. python benchmarks/bench_quant.py [--symbols 100] [--days 2500] [--trials 0] [--only xgb|ppo]``
Prints figures; asserts nothing (speed is measured here, not in unit tests; shared/DESIGN.md).
Targets: ``tradeagent train xgb --universe demo --end 2012-12-31`` under 60 s on 2 cores (the whole command,
imports and data loading included); XGBoost inference of at least 200,000 symbol-days per second, batched.
``tradeagent train ppo --universe demo --end 2012-12-31`` (default budget) under 5 minutes on 2 cores; PPO
policy inference of at least 20,000 symbol-days per second, batched.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from tools.market_data import synthetic_frame
from tools.quant.features import FEATURE_COLUMNS, precompute_features
from tools.quant.models import PredictInput
from tools.quant.predict import PredictContext, predict_xgb
from tools.quant.registry import latest_usable
from tools.quant.xgb import load_booster, predict_proba

END = "2012-12-31"


def bench_train_command(home: Path, trials: int) -> float:
    env = {**os.environ, "TRADEAGENT_HOME": str(home)}
    args = [sys.executable, "-m", "agent", "train", "xgb", "--universe", "demo", "--end", END, "--json"]
    if trials:
        args += ["--trials", str(trials)]
    t = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"train failed: {done.stderr.strip()}")
    import json

    out = json.loads(done.stdout)
    pooled = out["walk_forward"]["pooled"]
    print(f"train xgb demo --end {END}{f' --trials {trials}' if trials else ''}: {seconds:6.1f} s "
          f"(command), {out['seconds']:.1f} s training, {len(out['walk_forward']['folds'])} walk-forward windows, "
          f"best iteration {out['model']['best_iteration']}")  # fmt: skip
    m, maj, pri = pooled["model"], pooled["majority"], pooled["prior"]
    print(f"  walk-forward (n={m['n']}): accuracy {m['accuracy']:.3f} vs majority {maj['accuracy']:.3f}, "
          f"prior {pri['accuracy']:.3f}; log-loss {m['log_loss']:.4f} vs prior {pri['log_loss']:.4f}; "
          f"beats naive: {pooled['beats_naive']}")  # fmt: skip
    return seconds


def bench_inference(models: Path, symbols: int, days: int) -> None:
    art = latest_usable(models, "xgb", "demo", as_of=date(2013, 1, 2))
    booster, weights = load_booster(art), np.asarray(art.meta.class_weights)
    frames = {f"SYN{i:03d}": synthetic_frame(f"SYN{i:03d}").iloc[-days:] for i in range(symbols)}
    t = time.perf_counter()
    feats = precompute_features(frames)
    ft = time.perf_counter() - t
    print(f"features: {symbols} symbols x {days} days in {ft:.2f} s ({symbols * days / ft:,.0f} symbol-days/s)")
    X = np.concatenate([f[list(FEATURE_COLUMNS)].dropna().to_numpy("float32") for f in feats.values()])
    predict_proba(booster, X[:1000], weights)  # warm-up
    best = min(_timed(lambda: predict_proba(booster, X, weights)) for _ in range(3))
    print(f"inference, batched: {len(X):,} symbol-days in {best * 1000:.1f} ms ({len(X) / best:,.0f} symbol-days/s; "
          f"{booster.num_boosted_rounds()} rounds x 3 trees)")  # fmt: skip
    deep = _full_depth_booster(X, art.meta.params)
    worst = min(_timed(lambda: predict_proba(deep, X, weights)) for _ in range(3))
    print(f"inference, batched, at the {deep.num_boosted_rounds()}-round ceiling (no early stop): "
          f"{len(X) / worst:,.0f} symbol-days/s")  # fmt: skip
    day = frames["SYN000"].index[-1].date()
    ctx = PredictContext(models_dir=models, bars=frames, features=feats)
    inp = PredictInput(universe="demo", as_of=day)
    predict_xgb(inp, ctx)
    one = min(_timed(lambda: predict_xgb(inp, ctx)) for _ in range(5))
    print(f"predict_xgb, {symbols} symbols on one day (precomputed features, registry checks included): {one * 1000:.1f} ms")
    small = PredictContext(models_dir=models, bars={s: frames[s] for s in list(frames)[:3]})
    cold = min(_timed(lambda: predict_xgb(inp, small)) for _ in range(3))
    print(f"predict_xgb, 3 symbols from bars (features computed in the call): {cold * 1000:.1f} ms")


def bench_train_ppo_command(home: Path) -> float:
    env = {**os.environ, "TRADEAGENT_HOME": str(home)}
    args = [sys.executable, "-m", "agent", "train", "ppo", "--universe", "demo", "--end", END, "--json"]
    t = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"train ppo failed: {done.stderr.strip()}")
    import json

    out = json.loads(done.stdout)
    held, model = out["held_out"], out["model"]
    spread = "" if held["sharpe_std"] is None else f" ± {held['sharpe_std']:.2f}"
    print(f"train ppo demo --end {END} (default budget): {seconds:6.1f} s (command), {out['seconds']:.1f} s training, "
          f"{len(held['seeds'])} seeds x {model['timesteps']:,} steps")  # fmt: skip
    per_seed = ", ".join(f"seed {s}: {v:.2f}" for s, v in zip(held["seeds"], held["sharpe"], strict=True))
    print(f"  held-out {held['start']} … {held['end']} ({held['days']} days): Sharpe {held['sharpe_mean']:.2f}{spread} "
          f"({per_seed}) vs buy-and-hold {held['buy_hold_sharpe']:.2f}; total return "
          f"{', '.join(f'{r:+.1%}' for r in held['total_return'])} vs {held['buy_hold_total_return']:+.1%}")  # fmt: skip
    return seconds


def bench_ppo_inference(models: Path, symbols: int, days: int) -> None:
    from tools.quant.ppo import action_probabilities, load_policy
    from tools.quant.ppo_env import observations, scale
    from tools.quant.predict import predict_ppo

    art = latest_usable(models, "ppo", "demo", as_of=date(2013, 1, 2))
    policy = load_policy(art)
    assert art.meta.ppo is not None
    frames = {f"SYN{i:03d}": synthetic_frame(f"SYN{i:03d}").iloc[-days:] for i in range(symbols)}
    feats = precompute_features(frames)
    t = time.perf_counter()
    obs = observations(scale(pd.concat(list(feats.values())).dropna(), art.meta.ppo.scaler))
    st = time.perf_counter() - t
    print(f"ppo observations (scaler + book state) for {len(obs):,} symbol-days: {st * 1000:.1f} ms")
    action_probabilities(policy, obs[:1000])  # warm-up
    best = min(_timed(lambda: action_probabilities(policy, obs)) for _ in range(3))
    print(f"ppo inference, batched (one forward pass, 1 torch thread): {len(obs):,} symbol-days in "
          f"{best * 1000:.1f} ms ({len(obs) / best:,.0f} symbol-days/s)")  # fmt: skip
    sb3 = min(_timed(lambda: policy.predict(obs, deterministic=True)) for _ in range(3))
    print(f"ppo inference, SB3 policy.predict(deterministic=True) on the same array: {len(obs) / sb3:,.0f} symbol-days/s")
    day = frames["SYN000"].index[-1].date()
    ctx = PredictContext(models_dir=models, bars=frames, features=feats)
    inp = PredictInput(universe="demo", as_of=day)
    predict_ppo(inp, ctx)
    one = min(_timed(lambda: predict_ppo(inp, ctx)) for _ in range(5))
    print(f"predict_ppo, {symbols} symbols on one day (precomputed features, registry checks included): {one * 1000:.1f} ms")


def _full_depth_booster(X: np.ndarray, params: dict[str, float | int | str]) -> xgb.Booster:
    """A booster of ``max_rounds`` rounds (what early stopping may keep at most) on random labels."""
    rng = np.random.default_rng(0)
    n = min(len(X), 20_000)
    train = xgb.DMatrix(X[:n], label=rng.integers(0, 3, n), feature_names=list(FEATURE_COLUMNS))
    keep = {k: v for k, v in params.items() if k not in {"best_iteration", "max_rounds", "early_stopping_rounds"}}
    return xgb.train(keep, train, num_boost_round=int(params["max_rounds"]))


def _timed(fn: object) -> float:
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--days", type=int, default=2500)
    parser.add_argument("--trials", type=int, default=0, help="also time a --trials N run")
    parser.add_argument("--only", choices=("xgb", "ppo"), default=None, help="one model kind only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        if args.only in (None, "xgb"):
            bench_train_command(home, 0)
            if args.trials:
                bench_train_command(home / "trials", args.trials)
            bench_inference(home / "models", args.symbols, args.days)
        if args.only in (None, "ppo"):
            bench_train_ppo_command(home)
            bench_ppo_inference(home / "models", args.symbols, args.days)


if __name__ == "__main__":
    main()
