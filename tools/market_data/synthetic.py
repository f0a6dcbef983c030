"""``synthetic``: seeded stationary block bootstrap of real daily returns, for scale tests.

Any symbol name works (``SYN000``, ``SYN001``…); its series is a pure function of ``(symbol, seed)``.

Method (Politis & Romano 1994, the *stationary* bootstrap, ``arch.bootstrap.StationaryBootstrap``): daily
log returns are drawn in blocks from one real series (S&P 500 or NASDAQ Composite 1999-2018, chosen per
symbol); block lengths are geometric with mean ``MEAN_BLOCK`` days, blocks start at uniform positions and
wrap around. Blocks preserve short-range dependence (volatility clustering) that an i.i.d. resample would
destroy, and random lengths keep the resampled series stationary. One arch replicate is as long as the
pool; a longer series concatenates successive replicates (each starts a new block).

Seeding contract: everything random comes from one ``numpy.random.Generator`` seeded with
``sha256(f"{seed}:{symbol}")``, handed to arch as its ``seed`` and then used for the bars' noise. So the
same ``(symbol, seed)`` gives the same series in every process and on every machine (for one numpy and
arch version); another symbol or seed gives another series.

Bars: closes compound the drawn returns from a per-symbol start price; the open gaps a little from the
previous close; high/low extend beyond open/close by half-normal noise scaled to the day's move;
volume is log-normal and rises with the absolute move. The index is business days
``2000-01-03 … 2019-12-31`` (5,218 bars), cut to the requested window, so a slice never depends on the
window asked for.
"""

from __future__ import annotations

import hashlib
from datetime import date
from functools import cache

import numpy as np
import pandas as pd
from arch.bootstrap import StationaryBootstrap

from tools.market_data.base import cut
from tools.market_data.sample import sample_frame
from tools.models import Instrument

MEAN_BLOCK = 20
SYN_START = date(2000, 1, 3)
SYN_END = date(2019, 12, 31)
_POOLS = ("SP500", "NASDAQ")


@cache
def return_pools() -> tuple[np.ndarray, ...]:
    """Daily log returns of the real source series (read-only arrays)."""
    pools = []
    for symbol in _POOLS:
        close = sample_frame(symbol)["close"].to_numpy()
        r = np.diff(np.log(close))
        r.setflags(write=False)
        pools.append(r)
    return tuple(pools)


def _rng(symbol: str, seed: int) -> np.random.Generator:
    # hashlib, not hash(): Python's str hash is salted per process and would break determinism.
    digest = hashlib.sha256(f"{seed}:{symbol}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def stationary_bootstrap(pool: np.ndarray, n: int, rng: np.random.Generator, mean_block: int) -> np.ndarray:
    """``n`` draws from ``pool`` in circular blocks of geometric length (mean ``mean_block``), using ``rng``."""
    bootstrap = StationaryBootstrap(mean_block, np.asarray(pool), seed=rng)
    replicates = -(-n // len(pool))  # ceil: one replicate is as long as the pool
    draws = [positional[0] for positional, _ in bootstrap.bootstrap(replicates)]
    return np.concatenate(draws)[:n]


@cache
def _index() -> pd.DatetimeIndex:
    return pd.bdate_range(SYN_START, SYN_END, name="date").astype("datetime64[ns]")


def synthetic_frame(symbol: str, seed: int = 0) -> pd.DataFrame:
    index = _index()
    n = len(index)
    rng = _rng(symbol, seed)
    pools = return_pools()
    r = stationary_bootstrap(pools[int(rng.integers(len(pools)))], n, rng, MEAN_BLOCK)
    close0 = float(rng.uniform(20.0, 200.0))
    close = close0 * np.exp(np.cumsum(r))
    prev = np.concatenate([[close0], close[:-1]])
    move = np.abs(r)
    open_ = prev * np.exp(rng.normal(0.0, 0.25 * move + 0.001))
    spread = 0.5 * move + 0.003
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, spread)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, spread)))
    volume = np.round(1e6 * np.exp(rng.normal(0.0, 0.3, n)) * (1.0 + 20.0 * move))
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    ).astype("float64")


class SyntheticData:
    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.name = "synthetic" if seed == 0 else f"synthetic:{seed}"

    def fetch(self, instrument: Instrument, start: date | None, end: date | None) -> pd.DataFrame:
        return cut(synthetic_frame(instrument.symbol, self.seed), start, end)
