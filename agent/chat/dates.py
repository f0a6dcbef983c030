"""Dates in a question ("on 2012-03-05", "last Tuesday", "this month", "last week"), resolved against an anchor.

Contract:
- ``find_period(text, anchor)`` returns the first date expression of ``text`` as a ``Period`` (first and last
  day, both included, and a label that says how it was read), or None when the text names no date.
- The anchor is the book's last session, not the wall clock: a book replayed in 2012 asks about 2012.
- Single days: ISO ``2012-03-05``, ``5 March 2012``, ``March 5, 2012`` (also ``Mar 5 2012``), ``today``,
  ``yesterday`` (the anchor's previous calendar day), ``last <weekday>`` (the most recent one strictly
  before the anchor), ``on <weekday>`` (the most recent one on or before it).
- Ranges: ``this|last week`` (Monday to Sunday; this week ends at the anchor), ``this|last month``,
  ``this|last year``, ``last|past N days|weeks``, ``since D``, ``between D and D`` / ``from D to D``,
  a month by name (``in March 2012``, ``in March`` = the latest March up to the anchor).

Deliberate decisions:
- Calendar arithmetic, not exchange sessions: the answer lists the days it actually found in the range,
  so a weekend inside "last week" costs nothing and needs no calendar.
- No fuzzy parsing library: a date the rules do not recognise is no date, and the router then says which
  day it would need rather than guessing one.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

_WEEKDAYS = {name: i for i, name in enumerate(
    ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))}
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_ISO = r"\d{4}-\d{2}-\d{2}"
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


def _relative(text: str, anchor: date) -> Period | None:
    iso = anchor.isoformat()
    if re.search(r"\btoday\b", text):
        return Period(anchor, anchor, f"today ({iso}, the book's last session)")
    if re.search(r"\byesterday\b", text):
        day = anchor - timedelta(days=1)
        return Period(day, day, f"yesterday ({day})")
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
    if match := re.search(r"\b(?:last|past)\s+(\d{1,4})\s+(day|week)s?\b", text):
        count, unit = int(match.group(1)), match.group(2)
        start = anchor - timedelta(days=count * (7 if unit == "week" else 1) - 1)
        return Period(start, anchor, f"the last {count} {unit}(s) ({start} to {iso})")
    if match := re.search(r"\b(last|on|this)\s+(" + "|".join(_WEEKDAYS) + r")\b", text):
        which, name = match.groups()
        back = (anchor.weekday() - _WEEKDAYS[name]) % 7
        if which == "last" and back == 0:
            back = 7
        day = anchor - timedelta(days=back)
        return Period(day, day, f"{which} {name.capitalize()} ({day})")
    return None


def find_period(text: str, anchor: date | None) -> Period | None:
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
            end = anchor if anchor is not None and anchor >= first else first
            return Period(first, end, f"since {first} (to {end})")
    if match := re.search(_DAY_RE, low):
        day = parse_day(match.group(0))
        if day:
            return Period(day, day, day.isoformat())
    if anchor is not None and (found := _relative(low, anchor)):
        return found
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
