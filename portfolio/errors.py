"""Typed errors of the portfolio layer. The CLI prints any ``PortfolioError`` as one line and exits 2."""

from __future__ import annotations


class PortfolioError(Exception):
    """Base error of the portfolio layer (ledger, broker, risk state)."""


class LedgerError(PortfolioError):
    """The ledger file cannot be opened or does not match the settings (e.g. another base currency)."""


class RiskStateError(PortfolioError):
    """The kill-switch state cannot be written."""


class RiskConfigError(PortfolioError):
    """``risk.toml`` cannot be trusted, so nothing may trade until it is fixed or removed.

    Unreadable, not TOML, an unknown table or key, a value that is not a finite non-negative number: the
    limits the user meant to tighten are unknown, and the coded ceilings are the loosest there are.
    """
