"""Child process of the daily crash test: runs ``run_daily`` on the demo universe for a list of sessions.

Usage: ``python -m tests.agent.crash_daily HOME FIRST LAST``. Re-running it is the recovery a user does (run
the daily job again): it resumes at the ledger's last active day, which may have been killed half-way, and
goes on. It prints ``ready`` once imported, then ``start D`` and ``end D`` around each day.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

from arch.data import sp500

from agent.daily import run_daily
from agent.settings import Settings
from portfolio.ledger import Ledger


def sessions(first: str, last: str) -> list[date]:
    return [ts.date() for ts in sp500.load().loc[first:last].index]


def main(home: Path, first: str, last: str) -> None:
    settings = Settings(home=home)
    print("ready", flush=True)
    for day in sessions(first, last):
        ledger = Ledger.open_existing(settings.db_path)
        resume = ledger.last_activity() if ledger is not None else None
        if ledger is not None:
            ledger.close()
        if resume is not None and day < resume:
            continue  # finished by an earlier run
        print("start", day, flush=True)
        run_daily(settings, universe="demo", run_date=day, llm="offline")
        print("end", day, flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3])
