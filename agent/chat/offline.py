"""The chat without an LLM: an intent router over the read-only readers, saying it is the offline mode.

Contract:
- ``answer(question, home)`` returns an ``Answer``: markdown text (every piece of recorded text escaped with
  ``agent.chat.text.esc``) that starts with ``OFFLINE_NOTE`` and ends with the records it was read from
  (``Sources: results/daily/D.json · ledger pf_orders …``), and ``sources``, the same list.
- Intents, tried in this order: a request to act (refused: the chat is read-only), memory search ("similar",
  "remember", "lesson"), why/explain a day's decision, the guard's rejections and clamps, P&L and drawdown
  over a period, risk status and limits, eval reports, alerts, trades (orders and fills; "what trades did I
  make" is trades, "how much did I make" P&L), the portfolio. Anything else is "I don't know" with what the
  offline mode can answer.
- Symbols: a word is a symbol when the book's ledger, its universe (symbols and aliases) or the last results
  file know it; a word in capitals standing where a symbol goes ("on AAPL", "for AAPL", "buy AAPL") that is
  none of those is "no record of AAPL"; common words in capitals ("NOW", "EU") are not tickers.
- Periods: a date the rules cannot read ("03/05/2013", "2013-02-30") or a period they do not recognise is
  "I don't know which day/period you mean" with the forms understood (``agent.chat.dates.FORMS``), never
  another day or the whole book in its place. P&L is for the whole book: a P&L question naming a symbol
  says so rather than answering the book's.
- Dates are read by ``agent.chat.dates.find_period`` against the book's last session (``Home.anchor``).

Deliberate decisions:
- It never guesses: a day without a results file, a symbol the book never mentions, or a period without
  equity marks gets "I don't know" / "no record" with the nearest facts, not an estimate.
- "Why did you buy X on D" also covers D being the day the buy FILLED (decisions fill at the next open):
  the answer then says so and explains the decision day.
- A book held by a running daily job is "being updated, try again"; questions about a day are still
  answered from its results file, and the guard's log falls back to the results files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from agent.chat import offline_intents
from agent.chat.dates import FORMS, find_period, mentions_time, unreadable
from agent.chat.offline_intents import Ctx
from agent.chat.reader import Book, BookBusy, Home, Unavailable
from agent.chat.text import esc
from agent.cli_explain import load_day
from tools.models import Universe
from tools.universe import load_universe

OFFLINE_NOTE = "*Offline mode: rule-based answers read from the book and the results files, no LLM.*"
CAPABILITIES = ("why a trade was made on a day (\"why did you buy GOOG on 2012-03-05?\"), your P&L over a period "
                "(\"what is my P&L this month?\"), the guard's rejections and clamps (\"which orders did the guard "
                "reject last week?\"), positions, trades and fills, risk status and limits, and eval reports")
_ACT = re.compile(r"^\s*(please\s+)?(buy|sell|cancel|halt|stop|resume|place|liquidate|set|change|raise|lower|"
                  r"reduce|increase|delete|remove|reset|short)\b")
_INTENTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((name, re.compile(rx)) for name, rx in (
    ("memory", r"\bmemory\b|\bremember|\bsimilar\b|\blessons?\b"),
    ("explain", r"\bwhy\b|\bexplain|\breason|\bwhat happened\b|\bdecision|\bdecide"),
    ("guard", r"\bguard\b|\breject|\bclamp|\bblocked\b|\brefused\b"),
    # the drawdown now and the brake: the breaker's measure (risk); a period's deepest drawdown stays P&L
    ("risk", r"\bbrake\b|\b(my|current|the) drawdown\??\s*$|\bdrawdown (now|today)\b"),
    ("pnl", r"p&l|p/l|\bpnl\b|\bprofit|\bloss(es)?\b|\bgain|\breturn|\bearn|\bperform|\bdrawdown"),
    ("risk", r"\brisk\b|\blimit|\bkill.?switch|\bhalt|\bbreaker|\bexposure\b"),
    ("evals", r"\beval|\bbacktest|\breplay|\bsharpe\b|\breport"),
    ("alerts", r"\balert"),
    ("trades", r"\btrade|\border|\bfill|\bbought\b|\bsold\b|\bbuy|\bsell"),
    # "how much did I make": P&L, but only after trades ("what trades did I make" is about trades)
    ("pnl", r"\bmake\b|\bmade\b|\blose\b|\blost\b"),
    ("portfolio", r"\bposition|\bholding|\bportfolio\b|\bcash\b|\bequity\b|\bown\b|\bhold\b|\bworth\b|\bbalance\b"),
))  # fmt: skip
_PERIOD_INTENTS = ("explain", "guard", "pnl", "trades")
_SYMBOL_INTENTS = ("explain", "guard", "pnl", "trades", "portfolio", "memory")
# A word in capitals is a ticker only if the book's universe, ledger or results know it, or if it stands where a
# symbol goes ("in AAPL", "of AAPL", "buy AAPL") and is not a common English word written in capitals.
_SLOT = re.compile(r"\b(?:in|of|on|for|about|buy|sell|bought|sold|short|hold|holding|holdings|position|positions)"
                   r"\s+([A-Z][A-Z0-9.\-^=]{1,9})\b")
_NOT_TICKERS = {"I", "PNL", "P", "L", "ID", "USD", "EUR", "GBP", "CHF", "JPY", "OK", "AND", "OR", "THE", "ETF", "LLM",
                "UTC", "A", "AN", "NOW", "EU", "US", "USA", "UK", "ALL", "ANY", "MY", "ME", "IT", "IS", "IN", "ON", "AT",
                "TO", "OF", "FOR", "WHAT", "WHY", "HOW", "WHEN", "WHO", "TODAY", "YESTERDAY", "WEEK", "MONTH", "YEAR",
                "YTD", "MTD", "QTD", "PM", "AM", "EST", "CET", "GMT", "NYSE", "API", "UI", "PDF", "CSV",
                "JSON", "FAQ", "ASAP", "FYI", "TOTAL", "CASH", "RISK", "GUARD", "BOOK", "PLEASE", "THIS", "LAST",
                "THAT", "NOT", "NO", "YES", "DAY", "DAYS", "SESSION", "OPEN", "CLOSE", "TRADES", "ORDERS", "EVERYTHING"}


@dataclass(frozen=True)
class Answer:
    text: str
    sources: list[str] = field(default_factory=list)


def _say(body: str) -> Answer:
    return Answer(f"{OFFLINE_NOTE}\n\n{body}")


def answer(question: str, home: Home) -> Answer:
    """The offline answer to ``question`` (see the module doc)."""
    question = " ".join(str(question).split())[:500]
    low = question.lower()
    if _ACT.search(low):
        return _say("I can't do that: the chat is read-only. It cannot place, cancel or change orders, the kill "
                    "switch or the limits. Use `tradeagent orders cancel`, `tradeagent risk halt|reduce|resume` or "
                    "`tradeagent daily` in a terminal.")
    intent = next((name for name, rx in _INTENTS if rx.search(low)), None)
    if intent is None:
        return _say(f"I don't know how to answer that in offline mode. I can answer: {CAPABILITIES}.")
    try:
        book: Book | None = home.book()
    except BookBusy:
        book = None
    if book is None and intent in ("pnl", "trades", "portfolio"):
        return _say("The book is being updated by a running job (a daily run); try again in a moment.")
    if intent in ("pnl", "trades", "portfolio", "guard", "explain") and (book is None or not book.exists) \
            and not home.days():
        return _say("There is no paper book in this home yet, so there is nothing to report. Run `tradeagent demo` "
                    "or `tradeagent daily` first.")
    symbol, unknown = _symbol(question, book, home)
    if unknown and intent in _SYMBOL_INTENTS:
        return _say(f"I don't know: the book has no record of {esc(unknown)}.")
    anchor = home.anchor(book)
    period = find_period(question, anchor, _sessions(book, home))
    if intent in _PERIOD_INTENTS:
        if (bad := unreadable(question)) is not None:
            return _say(f"I don't know which day you mean by {esc(bad)}: it is not a date I can read. "
                        f"I understand {esc(FORMS)}.")
        if period is None and mentions_time(question):
            return _say(f"I don't know which period you mean. I understand {esc(FORMS)}.")
    ctx = Ctx(question, low, home, book, anchor, period, symbol)
    body = getattr(offline_intents, intent)(ctx)
    sources = " · ".join(esc(s) for s in ctx.sources)
    return Answer(f"{OFFLINE_NOTE}\n\n{body}" + (f"\n\nSources: {sources}" if sources else ""), list(ctx.sources))


def _sessions(book: Book | None, home: Home) -> list[date]:
    """The book's sessions (equity marks and results days): what "yesterday" steps back over."""
    marks = [d for d, _ in book.curve] if book is not None else []
    return sorted(set(marks) | set(home.real_days()))


def _symbol(question: str, book: Book | None, home: Home) -> tuple[str | None, str | None]:
    """The symbol the question names (the book's, its universe's or the last results file's, or an alias of
    one), or an unknown ticker standing in a symbol slot ("on AAPL"); common words in capitals are not tickers."""
    known = set(book.symbols()) if book is not None else set()
    aliases: dict[str, str] = {}
    days = home.days()
    if days:
        try:
            acc = home.day(days[-1])
            known |= {str(s.get("symbol")) for n in acc["nodes"] for s in n["signals"] + n["targets"]}
            universe = _universe(home, days[-1])
            if universe is not None:
                known |= set(universe.symbols)
                aliases = {a.lower(): i.symbol for i in universe.instruments for a in i.aliases}
        except Unavailable:
            pass
    by_upper = {s.upper(): s for s in known}
    for token in re.findall(r"[A-Za-z0-9][A-Za-z0-9.\-^=/]{0,19}", question):
        if token.upper() in by_upper:
            return by_upper[token.upper()], None
    low = question.lower()
    for alias, sym in sorted(aliases.items(), key=lambda a: -len(a[0])):
        if re.search(rf"(?<!\w){re.escape(alias)}(?!\w)", low):
            return sym, None
    for match in _SLOT.finditer(question):
        token = match.group(1).rstrip(".")
        if token not in _NOT_TICKERS and not token.isdigit():
            return None, token
    return None, None


def _universe(home: Home, day: date) -> Universe | None:
    """The universe the last results file was run on (by its ``--universe`` argument), if it still loads."""
    try:
        results, _ = load_day(home.settings.daily_results_dir, day)
        source = results.get("universe_source") or results.get("universe")
        return load_universe(str(source)) if source else None
    except Exception:  # a moved TOML file or an old results file: the ledger's symbols still answer
        return None
