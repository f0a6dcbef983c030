"""Benchmark: symbol-days per second of the eval baselines (buyhold, equalweight, holdall).

Run: ``PYTHONPATH=. python benchmarks/bench_baselines.py [--repeat 3]``
Prints figures; asserts nothing (speed is measured here, not in unit tests; shared/DESIGN.md).
Target: at least 1,000,000 symbol-days per second for each baseline, bars already in memory, on 2 cores.
Cases: 20 symbols × 5,000 days and 500 symbols × 2,520 days of seeded random walks (business days).
The time covers everything ``run_baseline`` does: building the arrays, the simulation, the trade list and
the realised P&L of every trade; ``to_policy_run`` and the metrics are timed on their own line.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd

from evals.baselines import BASELINES, run_baseline
from evals.metrics import compute_metrics

CASES = ((20, 5_000), (500, 2_520))


def random_walks(n_symbols: int, days: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2000-01-03", periods=days, name="date")
    out = {}
    for i in range(n_symbols):
        close = 50.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, days)))
        open_ = close * np.exp(rng.normal(0.0, 0.003, days))
        out[f"SYN{i:03d}"] = pd.DataFrame(
            {"open": open_, "high": np.maximum(open_, close), "low": np.minimum(open_, close), "close": close,
             "volume": 1e6}, index=idx)
    return out


def _best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    for n_symbols, days in CASES:
        bars = random_walks(n_symbols, days)
        start, end = bars["SYN000"].index[0], bars["SYN000"].index[-1]
        symbol_days = n_symbols * days
        print(f"{n_symbols} symbols × {days} days ({symbol_days:,} symbol-days)")
        for name in BASELINES:
            seconds = _best_of(args.repeat, partial(run_baseline, name, bars, start, end))
            result = run_baseline(name, bars, start, end)
            print(f"  {name:<12} {seconds:7.3f} s  {symbol_days / seconds:>12,.0f} symbol-days/s  "
                  f"({len(result.trades):,} trades)")
            run = result.to_policy_run()
            seconds = _best_of(args.repeat, partial(compute_metrics, run.equity, exposure=run.exposure,
                                                    trades=run.trades, trade_pnls=run.trade_pnls))
            print(f"  {'':<12} {seconds:7.3f} s  metrics of {name}")


if __name__ == "__main__":
    main()
