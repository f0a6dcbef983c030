"""Choose the ``balanced`` risk profile walk-forward: a small grid replayed on the IN-SAMPLE span only.

The grid (``--grid``): v10 (default) is v9's ``balanced`` with each book volatility target of ``BOOK_VOLS`` and
v9's ``balanced`` itself (no target) as the incumbent; v9 is ``balanced`` with each core share of ``CORES_V9`` and each drawdown brake
of ``BRAKES``, and v8's ``balanced`` (core 0.25, no brake) as the incumbent; v8 is ``balanced`` with each core share
of ``CORES``, every other number as chosen in v6; v6 is the 20 candidates that chose v6's thresholds, spread and
trend gate. Every candidate is the
``agent`` policy (offline rules, rule 9) with one profile, replayed through the eval
harness on each universe named (``demo`` and ``synthetic-20`` by default) from 1999-01-01 to 2008-12-31, net of
the broker's costs. The winner is the highest mean in-sample Sharpe over the universes; ties within 0.02 go
to the lower mean turnover. Nothing after 2008 is read, so the 2009–2018 figures in the README are out of
sample. The choice is written into ``agent/profiles.py`` by hand (the print-out is kept in docs/tuning.md).

    .venv/bin/python scripts/tune_profiles.py [--part 1/2] [--universes demo,synthetic-20] [--out DIR]

Each line printed is one candidate on one universe (JSON); ``--summary FILE…`` ranks lines saved from the parts.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from collections import defaultdict
from dataclasses import replace
from datetime import date
from pathlib import Path

from agent.profiles import PROFILES, Profile
from agent.settings import Settings
from evals.replay import latched_modes
from evals.run import EvalConfig, run_eval

IN_SAMPLE = (date(1999, 1, 1), date(2008, 12, 31))
ENTRIES = (0.15, 0.30)
EXITS = (0.0, -0.15)
GATES = ("off", "entry", "hold")
SPREADS = (False, True)
VOL_TARGET = 0.15
BAND = 0.25
TIE = 0.02


CORES = (0.0, 0.25, 0.5, 0.75, 1.0)  # v8's grid: balanced (v6) with each core share, nothing else changed
BRAKES = (0.25, 0.5)  # v9's grid: balanced (v8) with each core share of CORES_V9 and each brake, plus v8 itself
CORES_V9 = (0.25, 0.5, 0.75, 1.0)
BOOK_VOLS = (0.04, 0.06, 0.08, 0.10, 0.12)  # v10's grid: v9's balanced with each book volatility target, plus itself


def grid(version: str = "v10") -> list[Profile]:
    base = PROFILES["balanced"]
    if version == "v10":
        v9 = replace(base, name="bookvol0", book_vol=0.0)  # the incumbent, v9's balanced
        return [v9, *(replace(base, name=f"bookvol{v:g}", book_vol=v) for v in BOOK_VOLS)]
    if version == "v9":
        v8 = replace(base, name="core0.25", core=0.25, brake=0.0, book_vol=0.0)  # the incumbent, v8's balanced
        return [v8, *(replace(base, name=f"core{c:g}brake{b:g}", core=c, brake=b, book_vol=0.0)
                      for c in CORES_V9 for b in BRAKES)]
    if version == "v8":
        return [replace(base, name=f"core{c:g}", core=c, brake=0.0, book_vol=0.0) for c in CORES]
    return [Profile(f"e{e:g}x{x:g}{'' if g == 'off' else g}{'s' if sp else ''}", vol_target=VOL_TARGET, entry=e, exit=x,
                    band=BAND, trend_gate=g, spread=sp)
            for sp, g, e, x in itertools.product(SPREADS, GATES, ENTRIES, EXITS)
            if sp or g != "entry"]  # the 20 candidates of docs/tuning.md (the entry gate was tried with spread only)


def replay(universes: list[str], part: str, out: Path, version: str) -> None:
    k, n = (int(x) for x in part.split("/"))
    mine = grid(version)[k - 1 :: n]
    for p in mine:  # the harness resolves agent@NAME through PROFILES (this process only: --jobs 1)
        PROFILES[p.name] = p
    for universe in universes:
        settings = Settings(home=out / "home")
        cfg = EvalConfig(universe=universe, start=IN_SAMPLE[0], end=IN_SAMPLE[1], out=out / f"{universe}-part{k}",
                         policies=tuple(f"agent@{p.name}" for p in mine))
        report = run_eval(settings, cfg).report
        for p in mine:
            m = report["policies"][f"agent@{p.name}"]["metrics"]
            print(json.dumps({"universe": universe, "profile": p.context(), "sharpe": round(m["sharpe"], 3),
                              "total_return": round(m["total_return"], 4), "max_drawdown": round(m["max_drawdown"], 4),
                              "exposure": round(m["exposure"], 3), "turnover": round(m["turnover"], 2),
                              "trades": m["trades"], "breaker": ", ".join(
                                  f"{mode} {day}" for mode, day in latched_modes(
                                      report["policies"][f"agent@{p.name}"]["notes"]))}),
                  flush=True)


def _gate(value: object) -> str:
    """The trend gate as printed; lines saved before it had three values said true for "hold"."""
    if value is True:
        return "hold"
    return "off" if value is None or value is False else str(value)


def summary(files: list[Path]) -> None:
    """Rank the candidates by mean Sharpe over the universes (ties within TIE: lower mean turnover).

    A candidate whose replay latched a breaker on any universe (``breaker`` in its line) is not chosen; its mean
    is struck through in the table.
    """
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.startswith("{")]
    by: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by[r["profile"]["name"]].append(r)
    universes = sorted({r["universe"] for r in rows})
    ranked = sorted(by.items(), key=lambda kv: -sum(r["sharpe"] for r in kv[1]) / len(kv[1]))
    # v8's amendment (docs/tuning.md): a candidate whose replay latched a breaker on any universe is out, since
    # a profile that drives the book into the guard's own kill switch in sample cannot run unattended
    eligible = [kv for kv in ranked if not any(r.get("breaker") for r in kv[1])]
    if not eligible:
        raise SystemExit("every candidate latched a breaker in sample: none can be chosen")
    best = sum(r["sharpe"] for r in eligible[0][1]) / len(eligible[0][1])
    near = [kv for kv in eligible if best - sum(r["sharpe"] for r in kv[1]) / len(kv[1]) <= TIE]
    chosen = min(near, key=lambda kv: sum(r["turnover"] for r in kv[1]) / len(kv[1]))[0]
    print("| entry | exit | spread | trend gate | core | brake | book vol | mean Sharpe | " + " | ".join(
        f"{u} Sharpe / return / max DD / turnover ×/yr / fills" for u in universes) + " |")
    print("|---|---|---|---|---|---|---|---|" + "---|" * len(universes))
    for name, rs in ranked:
        p, mean = rs[0]["profile"], sum(r["sharpe"] for r in rs) / len(rs)
        cells = []
        for u in universes:
            r = next((r for r in rs if r["universe"] == u), None)
            cells.append("—" if r is None else f"{r['sharpe']:.3f} / {r['total_return']:+.1%} / "
                         f"{r['max_drawdown']:.1%} / {r['turnover']:.2f} / {r['trades']}"
                         + (f" ({r['breaker']})" if r.get("breaker") else ""))
        mark = "**" if name == chosen else ("~~" if all(kv[0] != name for kv in eligible) else "")
        print(f"| {p['entry']:.2f} | {p['exit']:.2f} | {'on' if p.get('spread') else 'off'} | "
              f"{_gate(p.get('trend_gate'))} | {float(p.get('core') or 0.0):.2f} | {float(p.get('brake') or 0.0):.2f} | "
              f"{float(p.get('book_vol') or 0.0):.2f} | "
              f"{mark}{mean:.3f}{mark} | " + " | ".join(cells) + " |")
    print(f"\nchosen: {chosen}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", default="1/1", help="k/n: run every n-th candidate starting at k (two processes)")
    parser.add_argument("--universes", default="demo,synthetic-20")
    parser.add_argument("--grid", choices=("v6", "v8", "v9", "v10"), default="v10",
                        help="v10: v9's balanced with each book volatility target, and itself; v9: balanced with each core share and drawdown brake, and v8's balanced; v8: each core "
                             "share; v6: the 20 candidates of v6 (docs/tuning.md)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="tune-")))
    parser.add_argument("--summary", type=Path, nargs="+", help="rank the JSON lines saved from the parts instead")
    args = parser.parse_args()
    if args.summary:
        summary(args.summary)
    else:
        replay(args.universes.split(","), args.part, args.out, args.grid)


if __name__ == "__main__":
    main()
