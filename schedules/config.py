"""The scheduler's and the monitor's configuration: ``[schedule]`` and ``[monitor]`` in ``TRADEAGENT_HOME/config.toml``.

```toml
[schedule]
universe = "demo"                 # the book's universe (a built-in name or a TOML path)
timezone = "UTC"                  # the zone the times below are read in
daily = "30 22 * * mon-fri"       # crontab; unset: 22:30 on weekdays, every day for a 24/7 (crypto) universe
news = "0 22 * * mon-fri"         # `news fetch` for the universe's feeds, before the daily run (unset: as daily's days)
monitor = "0 8-20/2 * * mon-fri"  # the intraday monitor, every universe
retrain = "0 4 * * sat"           # weekly retrain of the quant models that exist
deliver = "0 7 * * *"             # a delivery pass over the alert outbox (every job also delivers after it runs)
daily_grace_minutes = 360         # how late a missed daily run may still start (machine asleep at 22:30)

[monitor]
position_move = 0.02              # a held position moving ±2% since the last close
index_move = 0.03                 # an instrument not held (index, ETF) moving ±3%
portfolio_drop = 0.015            # the portfolio down more than 1.5% on the day
```

Deliberate decisions:
- One universe per home: a ``TRADEAGENT_HOME`` holds ONE paper book, and two universes' daily runs on one book
  would be one book traded twice a day (the second run of a session would only report the first's orders).
  Several universes are several homes, each with its own ``tradeagent serve``.
- A missing file or table means the defaults; an unknown table (``[schedul]``) or key, a crontab APScheduler cannot read or a threshold
  outside (0, 1) is a one-line ``UserError`` naming the key: a typo must not silently leave a job at its default.
- The daily default follows the universe's calendars: weekdays for exchanges, every day when every instrument
  trades 24/7. An explicit ``daily`` is used as written for every universe; the session check
  (``schedules.sessions``) still skips a fire time with no new closed session (a holiday).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from agent.cli_common import UserError

DAILY_WEEKDAYS = "30 22 * * mon-fri"
DAILY_EVERY_DAY = "30 22 * * *"
_SCHEDULE_KEYS = {"universe", "timezone", "daily", "news", "monitor", "retrain", "deliver", "daily_grace_minutes"}
NEWS_WEEKDAYS = "0 22 * * mon-fri"
NEWS_EVERY_DAY = "0 22 * * *"
_MONITOR_KEYS = {"position_move", "index_move", "portfolio_drop"}
_TABLES = {"schedule", "monitor"}  # every table this file may hold; anything else is a typo


@dataclass(frozen=True)
class Thresholds:
    position_move: float = 0.02
    index_move: float = 0.03
    portfolio_drop: float = 0.015


@dataclass(frozen=True)
class ScheduleConfig:
    universe: str = "demo"
    timezone: str = "UTC"
    daily: str | None = None  # None: DAILY_WEEKDAYS, or DAILY_EVERY_DAY for a 24/7 universe
    news: str | None = None  # None: NEWS_WEEKDAYS, or NEWS_EVERY_DAY for a 24/7 universe
    monitor: str = "0 8-20/2 * * mon-fri"
    retrain: str = "0 4 * * sat"
    deliver: str = "0 7 * * *"
    daily_grace_minutes: int = 360
    thresholds: Thresholds = field(default_factory=Thresholds)
    source: Path | None = None  # the file read, if any

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def cron(self, expr: str) -> CronTrigger:
        return CronTrigger.from_crontab(expr, timezone=self.tz)


def load_config(home: Path) -> ScheduleConfig:
    """``home/config.toml``'s tables (the defaults without it); any bad value is one ``UserError`` line."""
    path = home / "config.toml"
    if not path.exists():
        return ScheduleConfig()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"cannot read {path}: {' '.join(str(exc).split())}") from None
    unknown = sorted(set(raw) - _TABLES)
    if unknown:
        name = unknown[0]
        what = f"unknown table [{name}]" if isinstance(raw[name], dict) else f"unknown top-level key {name}"
        raise UserError(f"{path}: {what}; known tables: {', '.join(f'[{t}]' for t in sorted(_TABLES))}")
    sched, mon = _table(raw, "schedule", path), _table(raw, "monitor", path)
    _known(sched, _SCHEDULE_KEYS, "schedule", path)
    _known(mon, _MONITOR_KEYS, "monitor", path)
    thresholds = Thresholds(**{k: _fraction(mon[k], k, path) for k in _MONITOR_KEYS if k in mon})
    grace = sched.get("daily_grace_minutes", 360)
    if not isinstance(grace, int) or isinstance(grace, bool) or not 1 <= grace <= 24 * 60:
        raise UserError(f"{path} [schedule] daily_grace_minutes must be a whole number of minutes, 1 to 1440")
    config = ScheduleConfig(
        universe=_text(sched, "universe", "demo", path), timezone=_text(sched, "timezone", "UTC", path), daily=sched.get("daily"), news=sched.get("news"),
        monitor=_text(sched, "monitor", ScheduleConfig.monitor, path), retrain=_text(sched, "retrain", ScheduleConfig.retrain, path),
        deliver=_text(sched, "deliver", ScheduleConfig.deliver, path), daily_grace_minutes=grace, thresholds=thresholds,
        source=path,
    )  # fmt: skip
    try:
        config.tz  # noqa: B018 - validates the zone name
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"{path} [schedule] timezone {config.timezone!r} is not a time zone name (UTC, Europe/Paris…)") from None
    for key in ("daily", "news", "monitor", "retrain", "deliver"):
        expr = getattr(config, key)
        if expr is None:
            continue
        if not isinstance(expr, str):
            raise UserError(f"{path} [schedule] {key} must be a crontab string such as '30 22 * * mon-fri'")
        try:
            config.cron(expr)
        except ValueError as exc:
            raise UserError(f"{path} [schedule] {key} = {expr!r} is not a crontab: {exc}") from None
    return config


def _table(raw: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise UserError(f"{path}: [{name}] must be a table")
    return table


def _known(table: dict[str, Any], keys: set[str], name: str, path: Path) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise UserError(f"{path} [{name}] has unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(keys))}")


def _text(table: dict[str, Any], key: str, default: str, path: Path) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{path} [schedule] {key} must be a non-empty string")
    return value


def _fraction(value: Any, key: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise UserError(f"{path} [monitor] {key} must be a fraction between 0 and 1 (0.02 is 2%), not {value!r}")
    return float(value)
