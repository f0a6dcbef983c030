"""One trading day over an in-memory, point-in-time view: the core step the daily run and the replays share.

``trade_day(view, book, client)`` does, in order, on the book it is given:
1. the kill switch: HALTED cancels every pending order, REDUCING the ones that add risk (each with its reason);
2. settlement: every session after the ledger's settlement watermark, up to D, fills the pending orders at
   that session's open (FX: the last close before it), then orders whose instrument had no session to fill
   at for ``ORDER_EXPIRY_SESSIONS`` sessions expire, and a position whose instrument has had no bar for as
   long is closed at its last valuation close (delisted, or its data stopped: the paper book cannot price it
   any more);
3. the equity mark of D and the breakers (which can only tighten the saved risk state);
4. the graph: decide on D's close, guard, place (the kill switch is read again right before placing).
It returns the day's results (plain data); the edges load data, open the book and write files.

There is one trading day in the code: ``agent.daily`` (``tradeagent daily``) calls this once per run with the
user's book, and ``evals`` calls it once per replayed session with a book of its own.

Deliberate decisions:
- A dry run does all of it inside ``Ledger.scratch()`` (one transaction, always rolled back) and saves no
  risk state: it decides on exactly the book the real run would, settlement included, and changes nothing.
- Settlement moves forward only (a watermark), so an instrument whose data stops (delisted, halted, a mixed
  calendar) never blocks the others: its orders wait, then expire.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from agent.graph import run_day_graph
from agent.llm.base import LLMClient
from agent.memory_day import close_day, open_day
from agent.profiles import book_volatility, brake_share
from agent.quant_inputs import QuantSetup
from agent.state import DayDeps
from memory.store import MemoryStore
from portfolio import outbox
from portfolio.breakers import RiskStore, stricter
from portfolio.broker import PaperBroker
from portfolio.holdall import hold_all
from portfolio.ledger import Ledger
from portfolio.models import MarketSnapshot, Quote, RiskLimits
from portfolio.risk import drawdown_from_peak, update_breakers
from portfolio.storage import reraise_interrupt
from tools.fx import fx_rates_as_of
from tools.indicators import correlation_matrix
from tools.models import Universe, ValidationResult
from tools.news.store import LoadedNews
from tools.view import MarketView

ORDER_EXPIRY_SESSIONS = 5  # a pending order with no session to fill at for this long is cancelled
DELIST_AFTER_SESSIONS = ORDER_EXPIRY_SESSIONS  # a held instrument with no bar for this long is cashed out


@dataclass(frozen=True)
class Book:
    """What a day trades on: the ledger, its broker, the kill-switch store and the limits in force."""

    ledger: Ledger
    broker: PaperBroker
    risk_store: RiskStore
    limits: RiskLimits
    limit_notes: tuple[str, ...] = ()


def market_snapshot(view: MarketView, universe: Universe) -> MarketSnapshot:
    """Quotes at D's close (price, its date, FX, tradeability, shortability, volatility) and return correlations.

    Currency and shortability come from the universe's instruments; a symbol it does not list is long-only.

    ``price`` is the valuation close (``tools.validation.valuation_rows``): D's close, unless the gate's jump test
    refuses it or it is not a positive number; then the close the previous bar was valued at, and ``valued_at``
    names that day. The ledger marks the book at ``price``, so a refused print (a ×50 bad tick) never values it;
    the quote stays untradeable with the gate's reason (its orders are refused), which adds the valuation day.
    Correlations read the returns of the valuation closes too: a refused print's +4,900 % / −98 % pair would
    dominate 60 days of returns and hide (or invent) the correlation the guard's ``max_correlation`` check
    relies on; a real move the gate refused shows up on its 5th session, when its level is accepted.
    """
    instruments = {i.symbol: i for i in universe.instruments}
    quotes: dict[str, Quote] = {}
    closes: dict[str, pd.Series] = {}
    for symbol, bars in view.bars.items():
        if bars.empty:
            continue
        if len(bars) > 1:
            closes[symbol] = view.valuation_closes(symbol)  # bars["close"] itself unless a close is refused
        valued = view.valued_close(symbol)
        price = valued[0] if valued is not None else float("nan")
        valued_at = valued[1] if valued is not None and valued[1] != bars.index[-1].date() else None
        validation = view.validation.get(symbol)
        latest = view.latest_indicators(symbol)
        vol = latest.get("vol_20") if latest is not None else None
        inst = instruments.get(symbol)
        currency = inst.currency if inst is not None else universe.base_currency
        quotes[symbol] = Quote(
            symbol=symbol,
            price=price,
            price_date=bars.index[-1].date(),
            valued_at=valued_at,
            currency=currency,
            fx_rate=float(view.fx.get(currency, float("nan"))),
            tradeable=bool(validation and validation.tradeable),
            untradeable_reason=_untradeable_reason(validation, valued_at),
            exit_only=_exit_only(validation, valued_at, price),
            shortable=inst is not None and inst.shortable,
            volatility=None if vol is None or pd.isna(vol) else float(vol),
        )
    corr = correlation_matrix(closes, view.as_of) if len(closes) > 1 else pd.DataFrame()
    # numpy rows, not ``to_dict``: the same floats (NaN is the only value unequal to itself), a replay does this daily
    columns = [str(b) for b in corr.columns]
    correlations = {
        str(a): {b: float(v) for b, v in zip(columns, row, strict=True) if a != b and v == v}
        for a, row in zip(corr.index, corr.to_numpy(dtype="float64"), strict=True)
    }
    return MarketSnapshot(as_of=view.as_of, base_currency=universe.base_currency, quotes=quotes, correlations=correlations)


def _exit_only(validation: ValidationResult | None, valued_at: date | None, price: float) -> bool:
    """Refused by the gate for a past ``jump`` alone (every reason is ``code: detail``) and valued at the day's own
    accepted close: the guard may let a sell that only reduces a long pass (``Quote.exit_only``)."""
    return (validation is not None and not validation.tradeable and bool(validation.reasons)
            and all(r.split(":", 1)[0] == "jump" for r in validation.reasons)
            and valued_at is None and math.isfinite(price) and price > 0)


def _untradeable_reason(validation: ValidationResult | None, valued_at: date | None) -> str | None:
    """The gate's reasons (None when tradeable), and the day of the close the book is valued at when it is held."""
    if validation is None or validation.tradeable:
        return None
    held = f"; valued at the {valued_at} close" if valued_at is not None else ""
    return "; ".join(validation.reasons) + held


def settle(broker: PaperBroker, view: MarketView) -> list[dict[str, str]]:
    """Fill pending orders at every session after the watermark up to D (each at its own open); expire the rest.

    An order whose instrument has had no bar for ``ORDER_EXPIRY_SESSIONS`` sessions of the universe since its
    decision day is cancelled, so it stops reserving cash; the broker cancels the buys held back for it.
    """
    sessions = view.sessions(broker.ledger.settled_through())
    if not broker.pending():
        if sessions:  # nothing to fill: every session up to D is settled (a cash-out may be booked on D next)
            broker.ledger.mark_settled(sessions[-1])
        return []
    for session in sessions:
        broker.settle(session, view.opens(session), view.fx_before(session))
    still = broker.pending()
    if not still:
        return []
    return broker.expire(view.sessions(min(o.run_date for o in still)), ORDER_EXPIRY_SESSIONS)


def close_delisted(ledger: Ledger, view: MarketView, universe: Universe) -> list[dict[str, Any]]:
    """Cash out positions whose instrument has had no bar for ``DELIST_AFTER_SESSIONS`` sessions of the universe.

    At its last valuation close (``MarketView.valuation_rows``: the last close the gate's jump test accepts that
    is a positive number; never a refused ×50 print or a NaN last row) and the FX rate of that close's day,
    booked on D with no fees, pending orders cancelled (``Ledger.close_delisted``). A series with no usable close
    at all is kept (marked) rather than cashed out at an invented price. Point-in-time: it reads only the
    sessions seen up to D, never whether the data will come back. A paper book cannot hold a position it can no
    longer price or sell for ever.
    """
    closed: list[dict[str, Any]] = []
    currencies = {i.symbol: i.currency for i in universe.instruments}
    for symbol in ledger.position_costs():
        bars = view.bars.get(symbol)
        if bars is None or bars.empty:
            continue
        last = bars.index[-1].date()
        if last >= view.as_of or len(view.sessions(last)) < DELIST_AFTER_SESSIONS:
            continue
        at_close = view.valued_close(symbol)
        if at_close is None:
            continue  # no usable close to value it at: keep it (marked) rather than invent a price
        price, valued = at_close
        currency = currencies.get(symbol, universe.base_currency)
        fx = 1.0 if currency == universe.base_currency else fx_rates_as_of(view.fx_series, universe.base_currency, valued).get(currency)
        if fx is None:
            continue  # no rate to value it: keep it (marked) rather than invent one
        at = "its last close" if valued == last else f"its last accepted close (of {valued})"
        reason = f"delisted: no {symbol} bar since {last} ({DELIST_AFTER_SESSIONS}+ sessions); closed at {at} {price:g}"
        fill = ledger.close_delisted(symbol, view.as_of, price, fx, reason)
        if fill is not None:
            closed.append({"symbol": symbol, "quantity": fill.quantity, "price": price, "last_bar": last.isoformat(),
                           "reason": reason})
    return closed


def fills_since_previous_run(ledger: Ledger, run_date: date) -> list[dict[str, Any]]:
    """The fills D's run settled, read back from the ledger, so a re-run after a kill still reports them.

    Each run settles every pending order up to its own date, so the fills dated after the previous run's
    date (its equity mark) and up to D are exactly those settled at the start of D's run.
    """
    previous = max((day for day, _ in ledger.equity_curve() if day < run_date), default=None)
    return [f.model_dump(mode="json") for f in ledger.fills(after=previous, until=run_date)]


def trade_day(
    view: MarketView,
    universe: Universe,
    book: Book,
    client: LLMClient,
    *,
    dry_run: bool = False,
    configure: Callable[[DayDeps], DayDeps] | None = None,
    quant: QuantSetup | None = None,
    news: LoadedNews | None = None,
    memory: MemoryStore | None = None,
) -> dict[str, Any]:
    """Run day ``view.as_of`` on ``book``: kill switch, settlement, equity mark, breakers, graph. Returns results.

    ``configure`` may adjust the day's dependencies before the graph runs (eval policies are graph
    configurations); ``quant`` says which trained models the quant node may read (None: it abstains); ``news`` what the sentiment node may
    read (None: it abstains); ``memory`` the store of past decisions (``agent.memory_day``: outcomes attached
    before the graph, the day's records written after it, ``results["memory"]``; None: no memory).
    The results dict is the body of ``results/daily/D.json`` without the edge's fields.
    """
    if dry_run:
        with book.ledger.scratch():
            return _trade(view, universe, book, client, dry_run=True, configure=configure, quant=quant, news=news,
                          memory=memory)
    return _trade(view, universe, book, client, dry_run=False, configure=configure, quant=quant, news=news,
                  memory=memory)


def _trade(
    view: MarketView,
    universe: Universe,
    book: Book,
    client: LLMClient,
    *,
    dry_run: bool,
    configure: Callable[[DayDeps], DayDeps] | None,
    quant: QuantSetup | None,
    news: LoadedNews | None = None,
    memory: MemoryStore | None = None,
) -> dict[str, Any]:
    run_date, ledger, broker = view.as_of, book.ledger, book.broker
    alerts_error: str | None = None
    book_exists = ledger.last_activity() is not None
    risk_state = book.risk_store.load(book_exists=book_exists)
    cancelled = broker.cancel_for_mode(risk_state.mode, risk_state.reason)
    expired = settle(broker, view)
    delisted = close_delisted(ledger, view, universe)
    market = market_snapshot(view, universe)
    snapshot = ledger.snapshot(market)
    fills = fills_since_previous_run(ledger, run_date)
    ledger.record_equity(run_date, snapshot)
    curve = ledger.equity_curve()
    latched = update_breakers(curve, book.limits, risk_state, run_date)
    if dry_run:
        risk_state = stricter(risk_state, latched)
    else:  # saves only a stricter state (or a missing file): a person's HALT written meanwhile stands
        before, risk_state = risk_state, book.risk_store.escalate(latched, book_exists=book_exists)
        if risk_state.mode != before.mode:
            try:  # the state file is saved; its alert follows at once (an outbox failure never stops the day)
                with ledger.transaction() as con:
                    outbox.enqueue_risk_change(con, before, risk_state, run_date=run_date, source="breaker")
            except Exception as exc:
                reraise_interrupt(exc)
                alerts_error = f"{type(exc).__name__}: {exc}"
    # outcomes due by D are attached after settlement; a memory failure is reported, never fails the day
    day_memory, memory_report = open_day(memory, view, dry_run=dry_run) if memory is not None else (None, {})
    deps = DayDeps(
        run_date=run_date, universe=universe, view=view, market=market, portfolio=snapshot, limits=book.limits,
        risk_state=risk_state, history=ledger.history(run_date), client=client, ledger=ledger,
        broker=None if dry_run else broker, fee_bps=broker.cost_bps, risk_store=book.risk_store, quant=quant,
        news=news, memory=day_memory, drawdown=drawdown_from_peak(curve, risk_state, run_date),
    )  # fmt: skip
    if configure is not None:
        deps = configure(deps)
    started = time.perf_counter()
    try:
        state = run_day_graph(deps)
    except Exception as exc:
        reraise_interrupt(exc)
        state = {"hold": hold_all("graph_error", type(exc).__name__).model_dump(), "nodes": {}, "timings": {}}
    guard_result = state.get("guard")
    results = {
        "date": run_date.isoformat(),
        "universe": universe.name,
        "base_currency": universe.base_currency,
        "status": _status(state, dry_run),
        "dry_run": dry_run,
        "llm": getattr(client, "provider", "unknown"),
        "model": getattr(client, "model", "unknown"),
        "hold": state.get("hold"),
        "recovered": None,
        "nodes": state.get("nodes", {}),
        "proposed": state.get("proposals", []),
        "approved": [o.model_dump(mode="json") for o in guard_result.approved] if guard_result else [],
        "rejected": [r.model_dump(mode="json") for r in guard_result.rejections] if guard_result else [],
        "clamps": [c.model_dump(mode="json") for c in guard_result.clamps] if guard_result else [],
        "placed": state.get("placed", []),
        "fills": fills,
        "expired": expired,
        "cancelled": cancelled,
        "delisted": delisted,
        "portfolio": snapshot.model_dump(mode="json"),
        "risk": {"state": state.get("risk_now") or risk_state.model_dump(mode="json"),
                 "limits": book.limits.model_dump(mode="json"),
                 "notes": list(book.limit_notes),
                 # the fall from the equity peak as the breaker measures it, and the share of each size rule 9's
                 # brake allows at it (null without a brake in the profile)
                 "drawdown": deps.drawdown,
                 "brake": (brake_share(deps.profile.brake, deps.drawdown, book.limits.max_drawdown)
                           if deps.profile is not None and deps.profile.brake > 0 else None),
                 # the estimated volatility of the planned book against the profile's book volatility target
                 "book_vol": _planned_book_vol(state, deps)},
        "llm_calls": sum(int(n.get("llm_calls", 0)) for n in state.get("nodes", {}).values()),
        "tokens": sum(int(n.get("tokens", 0)) for n in state.get("nodes", {}).values()),
        "timings": {**state.get("timings", {}), "graph_seconds": round(time.perf_counter() - started, 4)},
    }
    if memory is not None and day_memory is not None:  # the day's records, after the guard (a dry run writes none)
        results["memory"] = close_day(memory, day_memory, memory_report, state.get("features", {}), results,
                                      dry_run=dry_run)
    if not dry_run:  # the summary and a hold-all's cause; an outbox failure is reported, never fails the day
        try:
            with ledger.transaction() as con:
                outbox.enqueue_day(con, results)
        except Exception as exc:
            reraise_interrupt(exc)
            alerts_error = f"{type(exc).__name__}: {exc}"
    if alerts_error is not None:
        results["alerts_error"] = alerts_error
    return results


def _planned_book_vol(state: dict[str, Any], deps: DayDeps) -> dict[str, float] | None:
    """``{target, planned}``: the profile's book volatility target (rule 9, v10) and the estimated annualised
    volatility of the risk node's plan (any plan, an LLM's too; names without a volatility estimate not counted).
    None without a target in the profile or without a plan."""
    risk = (state.get("nodes") or {}).get("risk") or {}
    if deps.profile is None or deps.profile.book_vol <= 0 or risk.get("status") != "ok" or not risk.get("output"):
        return None
    quotes = deps.market.quotes
    weights = {t["symbol"]: float(t["target_weight"]) for t in risk["output"].get("targets", [])
               if (q := quotes.get(t["symbol"])) is not None and q.volatility is not None and q.volatility > 0}
    vols = {s: float(quotes[s].volatility or 0.0) for s in weights}
    return {"target": deps.profile.book_vol,
            "planned": round(book_volatility(weights, vols, deps.market.correlations), 6)}


def _status(state: dict[str, Any], dry_run: bool) -> str:
    guard_result = state.get("guard")
    if state.get("hold"):
        return "hold"
    if state.get("placed"):
        return "orders_placed"
    if dry_run and guard_result is not None and guard_result.approved:
        return "dry_run"
    return "no_orders"
