"""Date phrases in chat questions resolve against the book's last session, not the wall clock."""

from __future__ import annotations

from datetime import date

import pytest

from agent.chat.dates import find_period, parse_day

WEDNESDAY = date(2012, 3, 7)


@pytest.mark.parametrize(("text", "start", "end"), [
    ("why did you buy GOOG on 2012-03-05?", date(2012, 3, 5), date(2012, 3, 5)),
    ("what happened on 5 March 2012", date(2012, 3, 5), date(2012, 3, 5)),
    ("what happened on March 5, 2012", date(2012, 3, 5), date(2012, 3, 5)),
    ("what happened on Mar 5th 2012", date(2012, 3, 5), date(2012, 3, 5)),
    ("what is my P&L this month?", date(2012, 3, 1), WEDNESDAY),
    ("and last month", date(2012, 2, 1), date(2012, 2, 29)),
    ("which orders did the guard reject last week?", date(2012, 2, 27), date(2012, 3, 4)),
    ("trades this week", date(2012, 3, 5), WEDNESDAY),
    ("what did you do last Tuesday", date(2012, 3, 6), date(2012, 3, 6)),
    ("what did you do last Wednesday", date(2012, 2, 29), date(2012, 2, 29)),
    ("and on Monday", date(2012, 3, 5), date(2012, 3, 5)),
    ("today", WEDNESDAY, WEDNESDAY),
    ("yesterday", date(2012, 3, 6), date(2012, 3, 6)),
    ("P&L over the last 10 days", date(2012, 2, 27), WEDNESDAY),
    ("this year", date(2012, 1, 1), WEDNESDAY),
    ("last year", date(2011, 1, 1), date(2011, 12, 31)),
    ("since 2012-03-02", date(2012, 3, 2), WEDNESDAY),
    ("between 2012-03-06 and 2012-03-01", date(2012, 3, 1), date(2012, 3, 6)),
    ("in February", date(2012, 2, 1), date(2012, 2, 29)),
    ("in December", date(2011, 12, 1), date(2011, 12, 31)),
    ("in March 2011", date(2011, 3, 1), date(2011, 3, 31)),
])  # fmt: skip
def test_phrases_resolve_against_the_anchor(text: str, start: date, end: date) -> None:
    period = find_period(text, WEDNESDAY)
    assert period is not None, text
    assert (period.start, period.end) == (start, end)


def test_no_date_is_none_and_relative_phrases_need_an_anchor() -> None:
    assert find_period("what do I hold?", WEDNESDAY) is None
    assert find_period("what is my P&L this month?", None) is None
    assert find_period("on 2012-03-05", None) is not None  # an explicit date needs no anchor


def test_impossible_dates_are_not_dates() -> None:
    assert parse_day("2012-02-30") is None
    assert parse_day("31 February 2012") is None
    assert find_period("on 2012-13-01", WEDNESDAY) is None


def test_the_label_says_how_the_phrase_was_read() -> None:
    period = find_period("last week", WEDNESDAY)
    assert period is not None and period.label == "last week (2012-02-27 to 2012-03-04)"
