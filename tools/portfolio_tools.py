"""LLM-facing read-only portfolio tools: the book and the risk limits in force.

Both are views: they read a snapshot and the limits the run already holds, and can change nothing.
The kill switch and every state change live in the CLI (``tradeagent risk …``), never in a tool.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from portfolio.models import PortfolioSnapshot, RiskLimits


class GetPortfolioInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GetRiskLimitsInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def get_portfolio(inp: GetPortfolioInput, snapshot: PortfolioSnapshot) -> PortfolioSnapshot:
    """The paper portfolio at today's close: cash, equity and each position's quantity, value and weight (base currency)."""
    return snapshot


def get_risk_limits(inp: GetRiskLimitsInput, limits: RiskLimits) -> RiskLimits:
    """The hard risk limits in force (weights are fractions of equity). Orders beyond them are rejected or clamped."""
    return limits
