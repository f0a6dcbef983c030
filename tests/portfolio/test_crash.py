"""Crash test: SIGKILL a trading run at random moments, re-run it, and the books are still right.

A child process runs several trading days against a DuckDB file; the parent kills it at random points, many
times, then lets it finish. The result must reconcile from the fills and hold exactly the orders and fills of
a run that was never interrupted: no order or fill twice, none lost.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from portfolio.ledger import Ledger

from .crash_day import START, market
from .helpers import assert_reconciles

ROOT = Path(__file__).resolve().parents[2]
DAYS = 100


def _child(tmp: Path, name: str, pause: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.portfolio.crash_day", str(tmp / f"{name}.duckdb"),
                             str(tmp / f"{name}.json"), str(DAYS), str(pause)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _books(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[tuple[object, float]]]:
    ledger = Ledger(path, base_currency="USD", starting_cash=100_000)
    try:
        orders = [(o.order_id, o.status, o.quantity, o.filled_quantity) for o in ledger.orders()]
        fills = [(f.order_id, f.quantity, f.price, f.commission, f.fill_date) for f in ledger.fills()]
        ids = [o[0] for o in orders]
        assert len(ids) == len(set(ids))
        assert len({f[0] for f in fills}) == len(fills)
        assert_reconciles(ledger, market(START + timedelta(days=DAYS - 1)))
        return orders, fills, ledger.equity_curve()
    finally:
        ledger.close()


@pytest.mark.slow
def test_killed_runs_recover_to_exactly_the_uninterrupted_result(tmp_path: Path) -> None:
    reference = _child(tmp_path, "reference", 0.0)
    _, err = reference.communicate(timeout=120)
    assert reference.returncode == 0, err.decode()

    rng = random.Random(20240304)
    kills, mid_day = 0, 0
    deadline = time.monotonic() + 45
    while kills < 20 and time.monotonic() < deadline:
        child = _child(tmp_path, "crashed", 0.02)
        time.sleep(rng.uniform(0.5, 1.5))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
            steps = child.communicate()[0].decode().split()
            mid_day += bool(steps) and steps[-1] != "end"
        child.wait()
    assert kills >= 15
    assert mid_day >= 10  # most kills interrupt a day between its steps, not between two days

    finisher = _child(tmp_path, "crashed", 0.0)
    _, err = finisher.communicate(timeout=120)
    assert finisher.returncode == 0, err.decode()

    ref_orders, ref_fills, ref_curve = _books(tmp_path / "reference.duckdb")
    orders, fills, curve = _books(tmp_path / "crashed.duckdb")
    assert len(ref_fills) > 10
    assert orders == ref_orders
    assert fills == ref_fills
    assert curve == ref_curve and len(curve) == DAYS
