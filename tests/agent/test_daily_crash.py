"""Crash test of the daily job itself: SIGKILL ``run_daily`` at random moments, run it again, lose nothing.

The child (``tests/agent/crash_daily.py``) runs three weeks of demo sessions with the offline rules, writing
the market cache, the ledger and the results files; the parent kills it ``KILLS`` times, then lets it finish.
Each kill follows a fixed plan (after the child's n-th ``start`` line, wait a fixed delay, SIGKILL), drawn
once from a fixed seed: the number of kills never depends on how fast the machine is, only where inside a
day each one lands does, and nothing is asserted about that. The ledger must end exactly as an uninterrupted run's, and every day's results file must
report the same orders and fills, a killed day's included (rebuilt from the ledger when the kill came after
its orders were placed, and then marked ``recovered``).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portfolio.ledger import Ledger
from tests.portfolio.helpers import assert_reconciles

ROOT = Path(__file__).resolve().parents[2]
FIRST, LAST = "2012-01-03", "2012-01-27"  # 18 sessions; the offline rules trade on 9 of them


def _child(home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OPENAI_API_KEY", None)
    return subprocess.Popen([sys.executable, "-m", "tests.agent.crash_daily", str(home), FIRST, LAST], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _books(home: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[tuple[object, float]]]:
    with Ledger(home / "tradeagent.duckdb", base_currency="USD", starting_cash=10_000.0) as ledger:
        orders = [(o.order_id, o.status, o.quantity, o.filled_quantity) for o in ledger.orders()]
        fills = [(f.order_id, f.quantity, f.price, f.commission, f.fill_date) for f in ledger.fills()]
        assert len({o[0] for o in orders}) == len(orders) and len({f[0] for f in fills}) == len(fills)
        assert_reconciles(ledger)
        return orders, fills, [(d, round(v, 6)) for d, v in ledger.equity_curve()]


def _days(home: Path) -> dict[str, dict[str, object]]:
    files = sorted((home / "results" / "daily").glob("*.json"))
    return {f.stem: json.loads(f.read_text()) for f in files}


KILLS = 12
_rng = random.Random(20261122)
# (start lines to let pass, then seconds to wait) per kill. The first kill comes the instant the first day
# starts: that child has all 18 days ahead of it, so it is always alive to be killed.
PLAN = [(0, 0.0)] + [(int(_rng.random() < 0.25), round(_rng.uniform(0.0, 1.5), 3)) for _ in range(KILLS - 1)]


def _until_start(child: subprocess.Popen[str], starts: int) -> list[str]:
    """Lines the child printed up to its ``starts``-th ``start`` line (all of them when it ends before)."""
    assert child.stdout is not None
    said: list[str] = []
    for line in child.stdout:
        said.append(line.strip())
        if line.startswith("start") and sum(s.startswith("start") for s in said) == starts:
            break
    return said


@pytest.mark.slow
def test_a_killed_daily_job_recovers_to_exactly_the_uninterrupted_books_and_reports(tmp_path: Path) -> None:
    reference = _child(tmp_path / "reference")
    _, err = reference.communicate(timeout=180)
    assert reference.returncode == 0, err

    home = tmp_path / "crashed"
    kills, mid_day = 0, 0
    for skip, delay in PLAN:
        child = _child(home)
        said = _until_start(child, skip + 1)
        if not said or not said[-1].startswith("start"):
            child.wait()  # it finished (or failed): the finisher below reports which
            break
        time.sleep(delay)
        if child.poll() is not None:
            break  # it finished the remaining days within the delay
        child.send_signal(signal.SIGKILL)
        kills += 1
        said += [line.strip() for line in child.communicate()[0].split("\n") if line.strip()]
        mid_day += said[-1].startswith("start")  # killed inside a day's run, not between two days
    assert kills >= 1  # the plan's first kill cannot miss (see PLAN)

    finisher = _child(home)
    _, err = finisher.communicate(timeout=180)
    assert finisher.returncode == 0, err

    assert _books(home) == _books(tmp_path / "reference")
    reference_days, days = _days(tmp_path / "reference"), _days(home)
    assert days.keys() == reference_days.keys() and len(days) == 18
    traded = [d for d, r in reference_days.items() if r["placed"]]
    assert len(traded) >= 5 and sum(bool(r["fills"]) for r in reference_days.values()) >= 5
    for day, ref in reference_days.items():
        r = days[day]
        assert r["placed"] == ref["placed"], day
        assert [o["order_id"] for o in r["approved"]] == [o["order_id"] for o in ref["approved"]], day
        assert r["fills"] == ref["fills"], day
        assert r["status"] == ref["status"] or (r["status"] == "recovered" and ref["status"] == "orders_placed"), day
    recovered = sum(r["status"] == "recovered" for r in days.values())
    print(f"{kills} kills, {mid_day} inside a day, {recovered} day(s) recovered from the ledger")
