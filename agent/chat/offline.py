"""The chat without an LLM: an intent router over the read-only readers, saying it is the offline mode.

Contract:
- ``answer(question, home)`` returns an ``Answer``: markdown text (every piece of recorded text escaped with
  ``agent.chat.text.esc``) that starts with ``OFFLINE_NOTE`` and ends with the records it was read from
  (``Sources: results/daily/D.json · ledger pf_orders …``), and ``sources``, the same list.
- Intents, tried in this order: a request to act (refused: the chat is read-only), why/explain a day's
  decision, the guard's rejections and clamps, P&L and drawdown over a period, risk status and limits,
  eval reports, memory search, alerts, trades (orders and fills), the portfolio. Anything else is
  "I don't know" with what the offline mode can answer.
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

from agent.chat import offline_intents
from agent.chat.dates import find_period
from agent.chat.offline_intents import Ctx
from agent.chat.reader import Book, BookBusy, Home, Unavailable
from agent.chat.text import esc

OFFLINE_NOTE = "*Offline mode: rule-based answers read from the book and the results files, no LLM.*"
CAPABILITIES = ("why a trade was made on a day (\"why did you buy GOOG on 2012-03-05?\"), your P&L over a period "
                "(\"what is my P&L this month?\"), the guard's rejections and clamps (\"which orders did the guard "
                "reject last week?\"), positions, trades and fills, risk status and limits, and eval reports")
_ACT = re.compile(r"^\s*(please\s+)?(buy|sell|cancel|halt|stop|resume|place|liquidate|set|change|raise|lower|"
                  r"reduce|increase|delete|remove|reset|short)\b")
_INTENTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((name, re.compile(rx)) for name, rx in (
    ("explain", r"\bwhy\b|\bexplain|\breason|\bwhat happened\b|\bdecision|\bdecide"),
    ("guard", r"\bguard\b|\breject|\bclamp|\bblocked\b|\brefused\b"),
    ("pnl", r"p&l|p/l|\bpnl\b|\bprofit|\bloss(es)?\b|\bgain|\breturn|\bmake\b|\bmade\b|\bearn|\bperform|\bdrawdown"),
    ("risk", r"\brisk\b|\blimit|\bkill.?switch|\bhalt|\bbreaker|\bexposure\b"),
    ("evals", r"\beval|\bbacktest|\breplay|\bsharpe\b|\breport"),
    ("memory", r"\bmemory\b|\bremember|\bsimilar\b|\blesson"),
    ("alerts", r"\balert"),
    ("trades", r"\btrade|\border|\bfill|\bbought\b|\bsold\b|\bbuy|\bsell"),
    ("portfolio", r"\bposition|\bholding|\bportfolio\b|\bcash\b|\bequity\b|\bown\b|\bhold\b|\bworth\b|\bbalance\b"),
))  # fmt: skip
_NOT_TICKERS = {"I", "PNL", "P", "L", "ID", "USD", "EUR", "OK", "AND", "OR", "THE", "ETF", "LLM", "UTC", "A"}


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
    if unknown and intent in ("explain", "trades", "portfolio"):
        return _say(f"I don't know: the book has no record of {esc(unknown)}.")
    anchor = home.anchor(book)
    ctx = Ctx(question, low, home, book, anchor, find_period(question, anchor), symbol)
    body = getattr(offline_intents, intent)(ctx)
    sources = " · ".join(esc(s) for s in ctx.sources)
    return Answer(f"{OFFLINE_NOTE}\n\n{body}" + (f"\n\nSources: {sources}" if sources else ""), list(ctx.sources))


def _symbol(question: str, book: Book | None, home: Home) -> tuple[str | None, str | None]:
    """The symbol the question names (one the book or the last results file knows), or an unknown ticker."""
    known = set(book.symbols()) if book is not None else set()
    days = home.days()
    if days:
        try:
            acc = home.day(days[-1])
            known |= {str(s.get("symbol")) for n in acc["nodes"] for s in n["signals"] + n["targets"]}
        except Unavailable:
            pass
    by_upper = {s.upper(): s for s in known}
    for token in re.findall(r"[A-Za-z0-9][A-Za-z0-9.\-^=/]{0,19}", question):
        if token.upper() in by_upper:
            return by_upper[token.upper()], None
    for token in re.findall(r"\b[A-Z]{2,6}\b", question):
        if token not in _NOT_TICKERS:
            return None, token
    return None, None
