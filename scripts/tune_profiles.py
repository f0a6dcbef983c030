"""Choose the ``balanced`` risk profile walk-forward: a small grid replayed on the IN-SAMPLE span only.

Every candidate is the ``agent`` policy (offline rules, rule 9) with one profile, replayed through the eval
harness on the demo universe from 1999-01-01 to 2008-12-31, net of the broker's costs. The winner is the
highest Sharpe; ties within 0.02 go to the lower turnover. Nothing after 2008 is read, so the 2009–2018
figures in the README are out of sample. The choice is written into ``agent/profiles.py`` by hand (the
grid's print-out is kept in docs/tuning.md).

    .venv/bin/python scripts/tune_profiles.py [--part 1/2] [--out DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from datetime import date
from pathlib import Path

from agent.profiles import PROFILES, Profile
from agent.settings import Settings
from evals.run import EvalConfig, run_eval

IN_SAMPLE = (date(1999, 1, 1), date(2008, 12, 31))
ENTRIES = (0.05, 0.15, 0.30)
EXITS = (0.0, -0.15, -0.30)
VOL_TARGETS = (0.15,)
BAND = 0.25


def grid() -> list[Profile]:
    return [Profile(f"e{e:g}x{x:g}v{v:g}", vol_target=v, entry=e, exit=x, band=BAND)
            for v, e, x in itertools.product(VOL_TARGETS, ENTRIES, EXITS)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", default="1/1", help="k/n: run every n-th candidate starting at k (two processes)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="tune-")))
    parser.add_argument("--vol-targets", default=None, help="comma list replacing the grid's vol targets")
    args = parser.parse_args()
    k, n = (int(x) for x in args.part.split("/"))
    global VOL_TARGETS
    if args.vol_targets:
        VOL_TARGETS = tuple(float(v) for v in args.vol_targets.split(","))
    mine = grid()[k - 1 :: n]
    for p in mine:  # the harness resolves agent@NAME through PROFILES (this process only: --jobs 1)
        PROFILES[p.name] = p
    settings = Settings(home=args.out / "home")
    cfg = EvalConfig(universe="demo", start=IN_SAMPLE[0], end=IN_SAMPLE[1], out=args.out / f"part{k}",
                     policies=tuple(f"agent@{p.name}" for p in mine))
    report = run_eval(settings, cfg).report
    for p in mine:
        m = report["policies"][f"agent@{p.name}"]["metrics"]
        print(json.dumps({"profile": p.context(), "sharpe": round(m["sharpe"], 3), "total_return": round(m["total_return"], 4),
                          "max_drawdown": round(m["max_drawdown"], 4), "exposure": round(m["exposure"], 3),
                          "turnover": round(m["turnover"], 2), "trades": m["trades"]}), flush=True)


if __name__ == "__main__":
    main()
