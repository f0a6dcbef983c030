"""Which instruments of a universe a piece of text is about: tickers, names and aliases on word boundaries.

Rules (``SymbolMatcher``):
- The symbol itself ("GOOG", "MC.PA", "BTC/EUR") matches case-sensitively, as does any alias or name written
  entirely in capitals ("LVMH", "BTC"): capitals are how tickers are written, and "AI" must not match "ai".
- Other aliases ("bitcoin", "Airbus") and the instrument's ``name`` (without any parenthesised note) match
  ignoring case.
- A match needs a boundary on both sides: no letter or digit touching it ("AI" is not in "SAID", "ETH" is not
  in "ETHICS"), and "$" before a ticker is allowed ("$GOOG"). Names with punctuation ("S&P 500") work too.

Deliberate decisions:
- No automatic ticker roots: "MC" for MC.PA or "DOT" for DOT/EUR would match far more noise than news about
  the instrument. A universe adds the short forms it wants as aliases.
- Names shorter than 3 characters are ignored (only the symbol and capitalised aliases can be that short).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tools.models import Universe

_NOTE = re.compile(r"\s*\([^)]*\)")


def _capitals(term: str) -> bool:
    return term.upper() == term and any(c.isalpha() for c in term)


def _pattern(term: str, ignore_case: bool) -> re.Pattern[str]:
    flags = re.IGNORECASE if ignore_case else 0
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(term)}(?![A-Za-z0-9])", flags)


@dataclass(frozen=True)
class SymbolMatcher:
    patterns: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]

    @classmethod
    def for_universe(cls, universe: Universe) -> SymbolMatcher:
        table = []
        for inst in universe.instruments:
            pats = [_pattern(inst.symbol, ignore_case=False)]
            for alias in inst.aliases:
                if _capitals(alias) or len(alias) >= 3:
                    pats.append(_pattern(alias, ignore_case=not _capitals(alias)))
            name = _NOTE.sub("", inst.name or "").strip()
            if len(name) >= 3 and name != inst.symbol:
                pats.append(_pattern(name, ignore_case=not _capitals(name)))
            table.append((inst.symbol, tuple(pats)))
        return cls(patterns=tuple(table))

    def match(self, *texts: str) -> tuple[str, ...]:
        """Symbols any of ``texts`` mentions, in universe order."""
        joined = "\n".join(t for t in texts if t)
        return tuple(sym for sym, pats in self.patterns if any(p.search(joined) for p in pats))
