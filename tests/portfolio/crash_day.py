"""Child process of the crash test: runs trading days (settle → guard → submit → record) against a DuckDB file.

Usage: ``python -m tests.portfolio.crash_day DB_PATH STATE_PATH DAYS SLEEP_SECONDS``. Re-running it is the
recovery: it resumes at the ledger's last day with any activity; every step is idempotent, so a day killed
half-way is finished and a finished day changes nothing.
"""

from __future__ import annotations

import math
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from portfolio.broker import PaperBroker
from portfolio.ledger import Ledger
from portfolio.models import MarketSnapshot, Quote
from portfolio.risk import CEILINGS, RiskStateStore, guard, update_breakers

START = date(2024, 1, 1)
SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]


def price(sym: str, day: date) -> float:
    i, k = SYMBOLS.index(sym), (day - START).days
    return round(50 + 10 * i + 8 * math.sin(k / 2 + i), 2)


def market(day: date) -> MarketSnapshot:
    quotes = {s: Quote(symbol=s, price=price(s, day), price_date=day, currency="EUR" if s == "FFF" else "USD",
                       fx_rate=1.1 if s == "FFF" else 1.0) for s in SYMBOLS}
    return MarketSnapshot(as_of=day, base_currency="USD", quotes=quotes)


def proposals(day: date) -> list[dict[str, object]]:
    k = (day - START).days
    out: list[dict[str, object]] = []
    for i, sym in enumerate(SYMBOLS):
        if (k + i) % 3 == 0:
            out.append({"symbol": sym, "side": "buy", "weight": 0.05 + 0.01 * i, "reason": f"day {k}"})
        elif (k + i) % 3 == 1:
            out.append({"symbol": sym, "side": "sell", "quantity": 3 + i, "reason": f"day {k}"})
    out.append({"symbol": "AAA", "side": "buy", "quantity": "lots"})  # garbage is logged, never traded
    return out


def _step(day: date, name: str) -> None:
    print(day, name, flush=True)  # the parent reads where a kill landed


def run_day(ledger: Ledger, broker: PaperBroker, store: RiskStateStore, day: date, pause: float) -> None:
    mkt = market(day)
    _step(day, "start")
    broker.settle(day, {s: q.price for s, q in mkt.quotes.items()}, fx_rates={"EUR": 1.1})
    _step(day, "settled")
    time.sleep(pause)
    snap = ledger.snapshot(mkt)
    state = store.load()
    result = guard(proposals(day), portfolio=snap, market=mkt, limits=CEILINGS, state=state,
                   history=ledger.history(day), run_date=day, fee_bps=broker.cost_bps)
    time.sleep(pause)
    broker.submit(result.approved)
    _step(day, "submitted")
    time.sleep(pause)
    ledger.record_guard(day, result)
    ledger.record_equity(day, ledger.snapshot(mkt))
    store.save(update_breakers(ledger.equity_curve(), CEILINGS, state, day))
    _step(day, "end")
    time.sleep(pause)


def main(db: str, state_path: str, days: int, pause: float) -> None:
    with Ledger(Path(db), base_currency="USD", starting_cash=100_000) as ledger:
        broker = PaperBroker(ledger, commission_bps=10, slippage_bps=5)
        store = RiskStateStore(Path(state_path))
        # Resume at the last day with any activity (re-running a finished day is a no-op), never earlier.
        last = ledger.last_activity()
        first = (last - START).days if last else 0
        for k in range(first, days):
            run_day(ledger, broker, store, START + timedelta(days=k), pause)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
