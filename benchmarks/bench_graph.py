"""Graph overhead per trading day and LLM calls per day, with the offline rule policy.

Runs consecutive daily runs on synthetic universes of growing size in a temporary TRADEAGENT_HOME and prints,
per universe size: data seconds/day (load + refresh from the local source), graph seconds/day (all nodes,
guard, broker), LLM calls per day, and LLM calls per node per day. The target is at most one LLM call per
node per day for the whole universe, whatever its size.

    python benchmarks/bench_graph.py [--days 10] [--sizes 3,20,50]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import pandas as pd

from agent.daily import run_daily
from agent.settings import Settings


def _bench(size: int, days: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        first = run_daily(settings, universe=f"synthetic-{size}", llm="offline", dry_run=True)  # finds the last session
        # the `days` sessions before the last one, in order, so each day's orders fill at the next open
        sessions = pd.bdate_range(end=pd.Timestamp(first.run_date), periods=days + 1)[:-1]
        data_s, graph_s, calls, per_node = [], [], [], []
        for session in sessions:
            result = run_daily(settings, universe=f"synthetic-{size}", run_date=session.date(), llm="offline")
            timings = result.results["timings"]
            data_s.append(timings["data_seconds"])
            graph_s.append(timings["graph_seconds"])
            calls.append(result.results["llm_calls"])
            per_node.append(max((n.get("llm_calls", 0) for n in result.results["nodes"].values()), default=0))
    return {
        "data_s": statistics.median(data_s),
        "graph_s": statistics.median(graph_s),
        "calls": statistics.mean(calls),
        "max_per_node": max(per_node),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--sizes", default="3,20,50")
    args = parser.parse_args()
    print(f"{'symbols':>8} {'data s/day':>11} {'graph s/day':>12} {'LLM calls/day':>14} {'max calls/node':>15}")
    for size in (int(s) for s in args.sizes.split(",")):
        r = _bench(size, args.days)
        print(f"{size:>8} {r['data_s']:>11.3f} {r['graph_s']:>12.3f} {r['calls']:>14.1f} {r['max_per_node']:>15}")


if __name__ == "__main__":
    main()
