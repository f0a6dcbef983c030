"""The daily graph's state and its injected dependencies.

``DayState`` holds only what the day produces (plain data, JSON-serialisable through ``results``);
``DayDeps`` holds what the day reads and acts through (market view, ledger, LLM client, broker). Deps are
built at the edge (``agent.daily``) and closed over by the nodes, so the graph itself has no I/O setup.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, TypedDict

from agent.llm.base import LLMClient
from agent.memory_inputs import DayMemory
from agent.profiles import Profile
from agent.quant_inputs import QuantSetup
from portfolio.breakers import RiskStore
from portfolio.broker import Broker
from portfolio.ledger import Ledger, TradingHistory
from portfolio.models import GuardResult, MarketSnapshot, PortfolioSnapshot, RiskLimits, RiskState
from tools.models import Universe
from tools.news.store import LoadedNews
from tools.view import MarketView


@dataclass(frozen=True)
class DayDeps:
    run_date: date
    universe: Universe
    view: MarketView
    market: MarketSnapshot
    portfolio: PortfolioSnapshot
    limits: RiskLimits
    risk_state: RiskState
    history: TradingHistory
    client: LLMClient
    ledger: Ledger
    broker: Broker | None  # None in --dry-run: nothing can be placed
    fee_bps: float = 15.0  # commission + slippage the broker will charge; the guard reserves cash for it
    # Which signal nodes may speak: an eval policy is a graph configuration (``analyst`` alone, ...). A node
    # left out abstains with reason ``not_in_policy`` and carries no weight.
    signal_nodes: frozenset[str] = frozenset({"analyst", "sentiment", "quant"})
    quant: QuantSetup | None = None  # the models the quant node may read (None: it abstains, ``no_models``)
    news: LoadedNews | None = None  # news the sentiment node may read, point-in-time (None: it abstains, ``no_news``)
    memory: DayMemory | None = None  # past decisions as day D may read them (None: no memory key, no tool)
    risk_store: RiskStore | None = None  # re-read right before placing: a halt issued mid-run stops the orders
    profile: Profile | None = None  # the risk node's sizing brief (agent.profiles); None: offline rules v3
    drawdown: float | None = None  # the book's fall from its equity peak, as the drawdown breaker measures it


class DayState(TypedDict, total=False):
    features: dict[str, dict[str, Any]]  # per-symbol indicator snapshot as of the run date
    nodes: Annotated[dict[str, dict[str, Any]], operator.or_]  # node name -> NodeOutcome dump
    proposals: list[dict[str, Any]]  # orders the decision node proposed (before the guard)
    guard: GuardResult  # approved orders (which only the guard can build), rejections and clamps
    can_place: bool  # a broker is there (not a dry run): the route after the guard
    placed: list[str]  # order ids handed to the broker
    risk_now: dict[str, Any]  # the kill switch re-read before placing, when it was stricter than at the start
    hold: dict[str, Any] | None  # portfolio.holdall.Hold dump when the day holds
    timings: Annotated[dict[str, float], operator.or_]
