"""The daily trigger on real exchange calendars, with an injected clock: holidays, weekends, crypto, mixed universes."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime
from pathlib import Path

from apscheduler.triggers.cron import CronTrigger

from schedules.sessions import SessionTrigger, has_new_session, ready_session

WEEKDAYS_2230 = CronTrigger.from_crontab("30 22 * * mon-fri", timezone=UTC)
EVERY_DAY_2230 = CronTrigger.from_crontab("30 22 * * *", timezone=UTC)


def at(y: int, m: int, d: int, hh: int = 22, mm: int = 30) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


def test_xnys_skips_thanksgiving_and_runs_the_early_close_friday() -> None:
    trigger = SessionTrigger(WEEKDAYS_2230, ("XNYS",))
    # Wednesday 2026-11-25 ran; Thursday 26 is Thanksgiving; Friday 27 closes early (18:00 UTC)
    assert trigger.get_next_fire_time(None, at(2026, 11, 25, 23, 0)) == at(2026, 11, 27)
    assert ready_session(("XNYS",), at(2026, 11, 27)) == (date(2026, 11, 27), datetime(2026, 11, 27, 18, 0, tzinfo=UTC))
    assert ready_session(("XNYS",), at(2026, 11, 26))[0] == date(2026, 11, 25)  # type: ignore[index]


def test_xpar_skips_labour_day_and_good_friday() -> None:
    trigger = SessionTrigger(WEEKDAYS_2230, ("XPAR",))
    assert trigger.get_next_fire_time(None, at(2026, 4, 30, 23, 0)) == at(2026, 5, 4)  # 1 May 2026 is a Friday
    assert trigger.get_next_fire_time(None, at(2026, 4, 2, 23, 0)) == at(2026, 4, 7)  # Good Friday, Easter Monday


def test_a_crypto_universe_runs_on_sunday_on_saturdays_bar() -> None:
    trigger = SessionTrigger(EVERY_DAY_2230, ("24/7",))
    assert trigger.get_next_fire_time(None, at(2026, 11, 28, 23, 0)) == at(2026, 11, 29)  # a Sunday
    assert ready_session(("24/7",), at(2026, 11, 29))[0] == date(2026, 11, 28)  # type: ignore[index]
    # the same cron on an exchange universe skips the weekend
    assert SessionTrigger(EVERY_DAY_2230, ("XNYS",)).get_next_fire_time(None, at(2026, 11, 28, 0, 0)) == at(2026, 11, 30)


def test_a_mixed_universe_runs_when_any_exchange_traded_and_after_the_last_close() -> None:
    mixed = ("XNYS", "XPAR")
    # Thanksgiving: Paris traded, New York did not: the day runs (on the Paris session)
    assert SessionTrigger(WEEKDAYS_2230, mixed).get_next_fire_time(None, at(2026, 11, 25, 23, 0)) == at(2026, 11, 26)
    # an ordinary day is done only once New York has closed (21:00 UTC in winter), not at the Paris close
    assert ready_session(mixed, at(2026, 12, 1, 20, 0))[0] == date(2026, 11, 30)  # type: ignore[index]
    assert ready_session(mixed, at(2026, 12, 1, 21, 0))[0] == date(2026, 12, 1)  # type: ignore[index]
    # 24/7 instruments beside an exchange do not hold the day back until midnight
    assert ready_session(("24/7", "XNYS"), at(2026, 12, 1))[0] == date(2026, 12, 1)  # type: ignore[index]


def test_a_time_before_the_close_trades_the_previous_session_once() -> None:
    noon = CronTrigger.from_crontab("0 12 * * *", timezone=UTC)
    trigger = SessionTrigger(noon, ("XNYS",))
    # Friday's session (early close 18:00 UTC) runs at Saturday noon, within 24 h of its close; Monday noon has
    # nothing new (Friday's close is 66 h old); Monday's session runs on Tuesday at noon
    assert trigger.get_next_fire_time(None, at(2026, 11, 27, 19, 0)) == at(2026, 11, 28, 12, 0)
    assert not has_new_session(("XNYS",), at(2026, 11, 30, 12, 0))
    assert trigger.get_next_fire_time(None, at(2026, 11, 28, 13, 0)) == at(2026, 12, 1, 12, 0)


def test_the_trigger_survives_the_job_store() -> None:
    trigger = SessionTrigger(WEEKDAYS_2230, ("XNYS", "XPAR"))
    again = pickle.loads(pickle.dumps(trigger))
    assert str(again) == str(trigger)
    assert again.get_next_fire_time(None, at(2026, 11, 25, 23, 0)) == at(2026, 11, 26)


def test_a_frequent_cron_on_a_sunday_still_finds_mondays_close() -> None:
    for expr in ("*/5 * * * *", "* * * * *"):
        trigger = SessionTrigger(CronTrigger.from_crontab(expr, timezone=UTC), ("XNYS",))
        # Sunday 29 November 2026: Friday's early close is > 24 h old; Monday closes at 21:00 UTC
        assert trigger.get_next_fire_time(None, at(2026, 11, 29, 10, 0)) == at(2026, 11, 30, 21, 0)


def test_a_daily_cron_that_never_meets_a_new_session_is_one_line_not_never(tmp_path: Path) -> None:
    import pytest

    from agent.cli_common import UserError
    from agent.settings import Settings
    from schedules.config import ScheduleConfig
    from schedules.jobs import Context
    from schedules.serve import list_jobs

    settings = Settings(home=tmp_path, openai_api_key=None, discord_webhook_url=None)
    sunday = Context(settings=settings, config=ScheduleConfig(daily="*/5 * * * *"), clock=lambda: at(2026, 11, 29, 10, 0))
    assert {j["id"]: j["next_run"] for j in list_jobs(sunday)}["daily"] == "2026-11-30T21:00:00+00:00"
    never = Context(settings=settings, config=ScheduleConfig(daily="30 22 * * sun"), clock=lambda: at(2026, 11, 29, 10, 0))
    with pytest.raises(UserError, match="never fires within 400 days"):
        list_jobs(never)
