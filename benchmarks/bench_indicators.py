"""Benchmark: indicators for many symbols, and the DuckDB cache's write and point-in-time read speed.

Run: ``PYTHONPATH=. python benchmarks/bench_indicators.py [--symbols 100] [--days 5000] [--jobs 2]``
Prints figures; asserts nothing (speed is measured here, not in unit tests; shared/DESIGN.md).
Target: indicators for 100 synthetic symbols × 5,000 days in under 10 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import pandas as pd

from tools.cache import MarketCache
from tools.data import load_universe_data
from tools.indicators import compute_indicators
from tools.market_data import synthetic_frame
from tools.universe import synthetic_universe


def _frames(n: int, days: int) -> dict[str, pd.DataFrame]:
    return {f"SYN{i:03d}": synthetic_frame(f"SYN{i:03d}").iloc[-days:] for i in range(n)}


def _indicators_of(symbol: str, days: int) -> int:
    return len(compute_indicators(synthetic_frame(symbol).iloc[-days:]))


def bench_indicators(frames: dict[str, pd.DataFrame], jobs: int) -> None:
    n, days = len(frames), len(next(iter(frames.values())))
    compute_indicators(next(iter(frames.values())))  # warm-up: imports and first-call costs
    t = time.perf_counter()
    for df in frames.values():
        compute_indicators(df)
    serial = time.perf_counter() - t
    print(
        f"indicators, 1 process : {n} symbols x {days} days in {serial:6.2f} s ({serial / n * 1000:.1f} ms/symbol)"
    )
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            list(pool.map(_indicators_of, ["SYN000"] * jobs, [days] * jobs))  # start workers first
            t = time.perf_counter()
            rows = sum(pool.map(_indicators_of, list(frames), [days] * n, chunksize=max(1, n // (4 * jobs))))
            parallel = time.perf_counter() - t
        print(f"indicators, {jobs} processes: {n} symbols x {days} days in {parallel:6.2f} s ({rows:,} rows)")


def bench_cache(frames: dict[str, pd.DataFrame], reads: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, MarketCache(Path(tmp) / "bench.duckdb") as cache:
        total = sum(len(df) for df in frames.values())
        t = time.perf_counter()
        for symbol, df in frames.items():
            cache.upsert(symbol, "synthetic", df)
        write = time.perf_counter() - t
        print(f"cache write (insert)  : {total:,} bars in {write:6.2f} s = {total / write:,.0f} bars/s")
        t = time.perf_counter()
        for symbol, df in frames.items():
            cache.upsert(symbol, "synthetic", df)
        rewrite = time.perf_counter() - t
        print(f"cache write (replace) : {total:,} bars in {rewrite:6.2f} s = {total / rewrite:,.0f} bars/s")

        rng = random.Random(0)
        symbols = list(frames)
        index = next(iter(frames.values())).index
        t, got = time.perf_counter(), 0
        for _ in range(reads):
            as_of = index[rng.randrange(len(index))].date()
            got += len(cache.bars(rng.choice(symbols), as_of=as_of, source="synthetic"))
        read = time.perf_counter() - t
        print(
            f"cache point-in-time   : {reads} reads in {read:6.2f} s = {reads / read:,.0f} reads/s,"
            f" {got / read:,.0f} bars/s (mean {got / reads:,.0f} bars/read)"
        )
        t, got = time.perf_counter(), 0
        for _ in range(reads):
            as_of = index[rng.randrange(len(index))].date()
            got += len(
                cache.bars(
                    rng.choice(symbols),
                    as_of=as_of,
                    start=as_of.replace(year=as_of.year - 1),
                    source="synthetic",
                )
            )
        read = time.perf_counter() - t
        print(
            f"cache 1-year window   : {reads} reads in {read:6.2f} s = {reads / read:,.0f} reads/s, {got / read:,.0f} bars/s"
        )


def bench_load(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, MarketCache(Path(tmp) / "bench.duckdb") as cache:
        universe = synthetic_universe(n)
        for label in ("first load (fills cache)", "second load (cache warm)"):
            t = time.perf_counter()
            data = load_universe_data(universe, cache, as_of=date(2019, 6, 28), refresh=False)
            took = time.perf_counter() - t
            bars = sum(len(df) for df in data.bars.values())
            print(f"load_universe_data    : synthetic-{n}, {label}: {took:6.2f} s ({bars:,} bars)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--days", type=int, default=5000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--reads", type=int, default=500)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs; pandas {pd.__version__}")
    t = time.perf_counter()
    frames = _frames(args.symbols, args.days)
    print(
        f"synthetic data        : {args.symbols} symbols x {args.days} days generated in {time.perf_counter() - t:6.2f} s"
    )
    bench_indicators(frames, args.jobs)
    bench_cache(frames, args.reads)
    bench_load(args.symbols)


if __name__ == "__main__":
    main()
