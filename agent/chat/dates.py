"""Dates in a question ("on 2012-03-05", "last Tuesday", "this month", "last week"), resolved against an anchor.

Contract:
- ``find_period(text, anchor)`` returns the first date expression of ``text`` as a ``Period`` (first and last
  day, both included, and a label that says how it was read), or None when the text names no date.
- The anchor is the book's last session, not the wall clock: a book replayed in 2012 asks about 2012.
- Single days: ISO ``2012-03-05``, ``5 March 2012``, ``March 5, 2012`` (also ``Mar 5 2012``), ``on March 5``
  / ``on 5 March`` (the latest such day up to the anchor), ``today``, ``yesterday`` (the session before the
  anchor: the previous day in ``sessions`` when given, else the previous weekday), ``last <weekday>`` (the
  most recent one strictly before the anchor), ``on <weekday>`` (the most recent one on or before it).
- Ranges: ``this week`` (Monday to the anchor), ``last week`` (the previous calendar week, Monday to
  Sunday), ``past week`` (the last 7 days ending at the anchor, like ``last|past 7 days``), ``this|last
  month``, ``this|last year``, ``last|past N days|weeks|months``, ``in 2012`` (a year), ``since D``,
  ``between D and D`` / ``from D to D``, a month by name (``in March 2012``, ``in March`` = the latest March
  up to the anchor).
- ``unreadable(text)`` names a date-like piece the rules cannot read (``03/05/2013``, ``2013-02-30``), and
  ``mentions_time(text)`` says whether the text speaks of a period at all: the router then answers "I don't
  know which day/period you mean" with ``FORMS`` rather than answering about another one.
- ``Period.phrase`` is the label with the right preposition ("on 2012-03-05", "in March 2012", "last week
  (…)") for sentences such as "the guard's rejections {phrase}".

Deliberate decisions:
- Calendar arithmetic, not exchange sessions: the answer lists the days it actually found in the range,
  so a weekend inside "last week" costs nothing and needs no calendar.
- No fuzzy parsing library: a date the rules do not recognise is no date, and the router then says which
  day it would need rather than guessing one.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

_WEEKDAYS = {name: i for i, name in enumerate(
    ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))}
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_ISO = r"\d{4}-\d{2}-\d{2}"
FORMS = ("a day as 2013-03-05, 5 March 2013, March 5, 2013 or \"on March 5\"; today, yesterday, last Friday; "
         "this/last week, past week, this/last month, this/last year, in 2012, in March 2013, last N days/weeks/"
         "months, since 2013-03-01, between 2013-03-01 and 2013-03-08")
_DAY_RE = (rf"(?:{_ISO}|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTH_RE})\.?,?\s+\d{{4}}"
           rf"|(?:{_MONTH_RE})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}})")


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    label: str

    @property
    def single_day(self) -> bool:
        return self.start == self.end

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end

    @property
    def phrase(self) -> str:
        """The label with its preposition: "on 2012-03-05", "in March 2012", "over the last 7 days (…)"."""
        if self.label.startswith("the last"):
            return f"over {self.label}"
        if re.match(r"(today|yesterday|since|this|last|past|between)\b", self.label):
            return self.label
        return f"on {self.label}" if self.single_day else f"in {self.label}"


_DATEISH = re.compile(r"\b\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}\b")
_TIME_WORDS = re.compile(
    r"\b(days?|weeks?|months?|years?|quarters?|q[1-4]|sessions?|today|yesterday|tomorrow|ytd|mtd|since|between|"
    r"weekend|(19|20)\d\d|" + "|".join(_WEEKDAYS) + "|" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b")


def unreadable(text: str) -> str | None:
    """A date-like piece of ``text`` that is not a date these rules read (``03/05/2013``, ``2013-02-30``)."""
    for match in _DATEISH.finditer(text):
        if parse_day(match.group(0)) is None:
            return match.group(0)
    return None


def mentions_time(text: str) -> bool:
    """Whether ``text`` speaks of a day or a period (a time word, a year, a month or weekday name)."""
    low = re.sub(r"\b(per|a|each|every)\s+(day|week|month|year)\b|\bdaily\b", " ", text.lower())
    low = re.sub(r"\bmay\b(?!\s+\d)", " ", low)  # "may" the verb, not the month (unless a day follows)
    return bool(_TIME_WORDS.search(low))


def parse_day(text: str) -> date | None:
    """One explicit day (ISO, ``5 March 2012``, ``March 5, 2012``); None when ``text`` is not one."""
    text = text.strip().lower().replace(",", " ")
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    words = [w.rstrip(".") for w in text.split()]
    if len(words) != 3:
        return None
    first, second, year = words
    day_word, month_word = (first, second) if first[:1].isdigit() else (second, first)
    day_word = re.sub(r"(st|nd|rd|th)$", "", day_word)
    month = _MONTHS.get(month_word)
    if month is None or not day_word.isdigit() or not year.isdigit():
        return None
    try:
        return date(int(year), month, int(day_word))
    except ValueError:
        return None


def _month_period(year: int, month: int, anchor: date, label: str) -> Period:
    last = date(year, month, calendar.monthrange(year, month)[1])
    return Period(date(year, month, 1), min(last, anchor) if last >= anchor >= date(year, month, 1) else last, label)


def _previous_session(anchor: date, sessions: Sequence[date]) -> date:
    before = [d for d in sessions if d < anchor]
    if before:
        return max(before)
    day = anchor - timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def _months_back(anchor: date, count: int) -> date:
    month = anchor.year * 12 + anchor.month - 1 - count
    year, month = divmod(month, 12)
    return date(year, month + 1, min(anchor.day, calendar.monthrange(year, month + 1)[1])) + timedelta(days=1)


def _relative(text: str, anchor: date, sessions: Sequence[date]) -> Period | None:
    iso = anchor.isoformat()
    if re.search(r"\btoday\b", text):
        return Period(anchor, anchor, f"today ({iso}, the book's last session)")
    if re.search(r"\byesterday\b", text):
        day = _previous_session(anchor, sessions)
        return Period(day, day, f"yesterday ({day}, the session before {iso})")
    if re.search(r"\b(past|last)\s+(7|seven)\s+days\b|\bpast\s+week\b", text):
        start = anchor - timedelta(days=6)
        return Period(start, anchor, f"the last 7 days ({start} to {iso})")
    if match := re.search(r"\b(this|last|past)\s+(week|month|year)\b", text):
        which, unit = match.groups()
        if unit == "week":
            monday = anchor - timedelta(days=anchor.weekday())
            if which == "this":
                return Period(monday, anchor, f"this week ({monday} to {iso})")
            start = monday - timedelta(days=7)
            return Period(start, start + timedelta(days=6), f"last week ({start} to {start + timedelta(days=6)})")
        if unit == "month":
            if which == "this":
                first = anchor.replace(day=1)
                return Period(first, anchor, f"this month ({first} to {iso})")
            prev = anchor.replace(day=1) - timedelta(days=1)
            return _month_period(prev.year, prev.month, anchor, f"last month ({prev:%B %Y})")
        if which == "this":
            first = date(anchor.year, 1, 1)
            return Period(first, anchor, f"this year ({first} to {iso})")
        return Period(date(anchor.year - 1, 1, 1), date(anchor.year - 1, 12, 31), f"last year ({anchor.year - 1})")
    if match := re.search(r"\b(?:last|past)\s+(\d{1,4}|two|three|four|five|six)\s+(day|week|month)s?\b", text):
        word, unit = match.group(1), match.group(2)
        count = int(word) if word.isdigit() else ("two", "three", "four", "five", "six").index(word) + 2
        if count == 0:
            return None
        if unit == "month":
            start = _months_back(anchor, count)
        else:
            start = anchor - timedelta(days=count * (7 if unit == "week" else 1) - 1)
        return Period(start, anchor, f"the last {count} {unit}(s) ({start} to {iso})")
    if match := re.search(r"\b(last|on|this)\s+(" + "|".join(_WEEKDAYS) + r")\b", text):
        which, name = match.groups()
        back = (anchor.weekday() - _WEEKDAYS[name]) % 7
        if which == "last" and back == 0:
            back = 7
        day = anchor - timedelta(days=back)
        label = f"last {name.capitalize()} ({day})" if which == "last" else f"{name.capitalize()} {day}"
        return Period(day, day, label)
    return None


def _day_without_year(text: str, anchor: date) -> Period | None:
    """``on March 5`` / ``on 5 March``: the latest such day up to the anchor."""
    match = re.search(rf"\bon\s+(?:({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?|(\d{{1,2}})(?:st|nd|rd|th)?\s+"
                      rf"(?:of\s+)?({_MONTH_RE}))\b(?!\.?,?\s+\d{{4}})", text)
    if not match:
        return None
    month = _MONTHS[match.group(1) or match.group(4)]
    day_of = int(match.group(2) or match.group(3))
    for year in (anchor.year, anchor.year - 1, anchor.year - 2, anchor.year - 3, anchor.year - 4):
        try:
            day = date(year, month, day_of)
        except ValueError:
            continue
        if day <= anchor:
            return Period(day, day, day.isoformat())
    return None


def find_period(text: str, anchor: date | None, sessions: Sequence[date] = ()) -> Period | None:
    """The first date expression of ``text`` (see the module doc); relative ones need an ``anchor``."""
    low = " ".join(text.lower().split())
    if match := re.search(rf"\b(?:between|from)\s+({_DAY_RE})\s+(?:and|to|until)\s+({_DAY_RE})", low):
        first, last = parse_day(match.group(1)), parse_day(match.group(2))
        if first and last:
            first, last = min(first, last), max(first, last)
            return Period(first, last, f"{first} to {last}")
    if match := re.search(rf"\bsince\s+({_DAY_RE})", low):
        first = parse_day(match.group(1))
        if first:
            if anchor is not None and anchor < first:
                return Period(first, first, f"since {first} (after the book's last session, {anchor})")
            end = anchor if anchor is not None else first
            return Period(first, end, f"since {first} (to {end})")
    if match := re.search(_DAY_RE, low):
        day = parse_day(match.group(0))
        if day:
            return Period(day, day, day.isoformat())
    if anchor is not None and (found := _relative(low, anchor, sessions) or _day_without_year(low, anchor)):
        return found
    if match := re.search(r"\b(?:in|during|for|of)\s+((?:19|20)\d\d)\b", low):
        year = int(match.group(1))
        end = date(year, 12, 31)
        if anchor is not None and year == anchor.year:
            end = anchor
        return Period(date(year, 1, 1), end, f"{year} ({year}-01-01 to {end})")
    if match := re.search(rf"\b(?:in|during|for)\s+({_MONTH_RE})\b(?:\s+(\d{{4}}))?", low):
        month = _MONTHS[match.group(1)]
        if match.group(2):
            year = int(match.group(2))
        elif anchor is not None:
            year = anchor.year if month <= anchor.month else anchor.year - 1
        else:
            return None
        return _month_period(year, month, anchor or date.max, f"{calendar.month_name[month]} {year}")
    return None
