"""Typed errors of the portfolio layer. The CLI prints any ``PortfolioError`` as one line and exits 2."""

from __future__ import annotations


class PortfolioError(Exception):
    """Base error of the portfolio layer (ledger, broker, risk state)."""


class LedgerError(PortfolioError):
    """The ledger file cannot be opened or does not match the settings (e.g. another base currency)."""


class RiskStateError(PortfolioError):
    """The kill-switch state cannot be written."""
