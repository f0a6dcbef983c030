"""Typed errors of the data layer. The CLI prints any ``DataError`` as ``error: <message>`` and exits 2.

Contract: a message is one line, names what is wrong (symbol, file, date, provider) and never carries a
secret (no URLs with keys, no headers). Infrastructure failure raises one of these; an empty result
never stands for "failed" (shared/DESIGN.md).
"""

from __future__ import annotations


class DataError(Exception):
    """Base of every market-data failure; its message is shown to the user as one line."""

    def __init__(self, message: str) -> None:
        # Collapse newlines so a provider's multi-line message cannot break the one-line contract.
        super().__init__(" ".join(str(message).split()))


class UnknownSymbolError(DataError):
    """The provider (or the universe, or the view) does not know this symbol."""


class UnknownUniverseError(DataError):
    """No built-in universe by that name and no such TOML file."""


class MalformedDataError(DataError):
    """A file or a provider answer has the wrong shape (missing columns, unparsable dates, text prices)."""


class DataUnavailableError(DataError):
    """The provider cannot be reached or refuses service now (network down, rate limited, exchange down)."""


class DateOutOfRangeError(DataError):
    """The requested date lies outside the data (e.g. before the first bar of every symbol)."""
