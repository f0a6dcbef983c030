"""A small CSV universe on a real exchange calendar, a settings object on a temporary home, and a fixed clock."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from agent.settings import Settings
from schedules.config import ScheduleConfig
from schedules.jobs import Context
from tools.calendars import exchange_calendar


def write_universe(folder: Path, *, calendar: str = "XNYS", end: date, symbols: tuple[str, ...] = ("AAA", "BBB"),
                   sessions: int = 320, last_moves: dict[str, float] | None = None) -> Path:
    """CSV files of steadily rising prices on ``calendar``'s sessions up to ``end``, and their universe TOML.

    ``last_moves`` sets the move of a symbol's last bar (the "intraday" bar of a monitor test).
    """
    folder.mkdir(parents=True, exist_ok=True)
    cal = exchange_calendar(calendar)
    days = cal.sessions_in_range(pd.Timestamp(end) - pd.Timedelta(days=sessions * 2), pd.Timestamp(end))[-sessions:]
    lines = ['name = "sched-test"', 'base_currency = "USD"']
    for i, symbol in enumerate(symbols):
        rng = np.random.default_rng(i)
        close = 100 * np.cumprod(1 + 0.002 + rng.normal(0, 0.004, len(days)))
        if last_moves and symbol in last_moves:
            close[-1] = close[-2] * (1 + last_moves[symbol])
        frame = pd.DataFrame({"Date": [d.date().isoformat() for d in days], "Open": close, "High": close * 1.005,
                              "Low": close * 0.995, "Close": close, "Volume": 1_000_000})  # fmt: skip
        frame.loc[frame.index[-1], "Open"] = close[-2]
        frame.loc[frame.index[-1], "High"] = max(close[-1], close[-2]) * 1.001
        frame.loc[frame.index[-1], "Low"] = min(close[-1], close[-2]) * 0.999
        path = folder / f"{symbol}.csv"
        frame.to_csv(path, index=False)
        lines += ["[[instruments]]", f'symbol = "{symbol}"', f'source = "csv:{path}"', 'currency = "USD"',
                  f'calendar = "{calendar}"']  # fmt: skip
    universe = folder / "universe.toml"
    universe.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return universe


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def context(home: Path, universe: Path | str, clock: Clock) -> Context:
    settings = Settings(home=home, openai_api_key=None, discord_webhook_url=None)
    return Context(settings=settings, config=ScheduleConfig(universe=str(universe)), clock=clock, deliver_after=False)


def utc(y: int, m: int, d: int, hh: int = 22, mm: int = 31) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)
