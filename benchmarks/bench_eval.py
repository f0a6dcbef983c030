"""Replay speed of ``tradeagent eval``: the ``agent`` policy, offline rules, memory off, on ``synthetic-N``.

Prints seconds per replayed session and the extrapolation to the issue's target (1,260 sessions of
``synthetic-20`` under 20 s on 2 cores), and how the time grows when the window doubles (target: at most
×2.3). Nothing here asserts: the figures go in the README and the closing notes.

    .venv/bin/python benchmarks/bench_eval.py [--symbols 20] [--days 126]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

from agent.settings import Settings
from evals.run import EvalConfig, run_eval
from tools.cache import MarketCache
from tools.data import load_universe_data
from tools.universe import load_universe


def _sessions_from(universe: str, home: Path, start: date, n: int) -> date:
    """The date of the ``n``-th session on or after ``start`` (synthetic universes trade on weekdays)."""
    cache = MarketCache(home / "tradeagent.duckdb")
    try:
        data = load_universe_data(load_universe(universe), cache, as_of=None, refresh=True)
    finally:
        cache.close()
    days = sorted({ts.date() for bars in data.bars.values() for ts in bars.index if ts.date() >= start})
    return days[min(n, len(days)) - 1]


def _time(settings: Settings, universe: str, start: date, end: date, out: Path) -> tuple[float, int, float]:
    cfg = EvalConfig(universe=universe, start=start, end=end, out=out, policies=("agent",))
    t0 = time.perf_counter()
    files = run_eval(settings, cfg)
    total = time.perf_counter() - t0
    return total, int(files.report["config"]["sessions"]), float(files.report["timing"]["replay_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--days", type=int, default=126, help="sessions of the shorter window (doubled next)")
    args = parser.parse_args()
    universe = f"synthetic-{args.symbols}"
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        settings = Settings(home=home)
        start = date(2012, 1, 2)
        figures = []
        for n in (args.days, 2 * args.days):
            end = _sessions_from(universe, home, start, n)
            total, sessions, replay = _time(settings, universe, start, end, home / f"out-{n}")
            figures.append((sessions, replay, total))
            print(f"{universe}, agent policy, offline: {sessions} sessions replayed in {replay:.1f} s "
                  f"({replay / sessions * 1000:.0f} ms a session, {sessions / replay:.1f} sessions/s; "
                  f"{total:.1f} s with data loading and the report)")
        (n1, r1, _), (n2, r2, _) = figures
        print(f"doubling the window ({n1} -> {n2} sessions) multiplied the replay time by {r2 / r1:.2f} (target <= 2.3)")
        print(f"extrapolated to 1,260 sessions: {r2 / n2 * 1260:.0f} s (target < 20 s)")


if __name__ == "__main__":
    main()
