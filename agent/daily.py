"""The daily run: settle yesterday's orders, refresh data, run the graph, guard, place, write the results file.

Contract (shared/DESIGN.md):
- D is the session whose CLOSE the decision reads. Orders decided on an earlier run fill at the OPEN of the
  first session after their decision day, before anything else happens on D.
- ``TRADEAGENT_HOME/results/daily/D.json`` holds every node's output, the proposed, approved and rejected
  orders with reasons, prompt hashes, the LLM used and timings. A dry run writes ``D.dry-run.json`` instead,
  so it never overwrites the day's real record.
- A second run for a date that already placed orders is idempotent: nothing is re-decided or re-placed; it
  reports the first run's file. A day that held (no orders) may be re-run, e.g. after the LLM came back.
- ``--dry-run`` changes nothing in the ledger: no settlement, no equity mark, no orders. Like a real run it
  refuses a day before the book's last activity (it would show that day a book from its future).
- A day that placed orders but whose results file is missing or unusable (killed before writing it, corrupted)
  gets it rebuilt from the ledger (``"status": "recovered"``); an unusable file is kept as ``D.json.corrupt``.
- Any failure past data loading ends in hold-all, and the results file says why.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from agent.cli_common import UserError
from agent.files import write_json_atomic
from agent.graph import build_graph
from agent.llm.base import Deadline, LLMClient, TokenBudget
from agent.llm.factory import make_client
from agent.settings import Settings
from agent.state import DayDeps
from portfolio.broker import PaperBroker
from portfolio.holdall import hold_all
from portfolio.ledger import Ledger
from portfolio.models import MarketSnapshot, Quote
from portfolio.risk import RiskStateStore, load_limits, update_breakers
from prompts.loader import load_prompt
from tools.cache import MarketCache
from tools.data import UniverseData, load_universe_data
from tools.indicators import correlation_matrix, indicators_as_of
from tools.models import Universe
from tools.universe import load_universe
from tools.view import MarketView

DEFAULT_STARTING_CASH = 10_000.0
ORDER_EXPIRY_SESSIONS = 5  # a pending order with no session to fill at for this long is cancelled
PROMPTS = ("system", "analyst", "sentiment", "quant", "risk")


@dataclass(frozen=True)
class DailyResult:
    run_date: date
    path: Path
    results: dict[str, Any]
    repeated: bool = False  # True when the day had already traded and nothing was re-run


def market_snapshot(view: MarketView, data: UniverseData, universe: Universe) -> MarketSnapshot:
    """Quotes at D's close (price, its date, FX, tradeability, shortability, volatility) and return correlations.

    Currency and shortability come from the universe's instruments; a symbol it does not list is long-only.
    """
    instruments = {i.symbol: i for i in universe.instruments}
    quotes: dict[str, Quote] = {}
    for symbol, bars in data.bars.items():
        if bars.empty:
            continue
        last = bars.iloc[-1]
        validation = view.validation.get(symbol)
        ind = view.indicators.get(symbol)
        vol = indicators_as_of(ind, view.as_of).get("vol_20") if ind is not None else None
        inst = instruments.get(symbol)
        currency = inst.currency if inst is not None else universe.base_currency
        quotes[symbol] = Quote(
            symbol=symbol,
            price=float(last["close"]),
            price_date=bars.index[-1].date(),
            currency=currency,
            fx_rate=float(data.fx.get(currency, float("nan"))),
            tradeable=bool(validation and validation.tradeable),
            untradeable_reason=None if validation is None or validation.tradeable else "; ".join(validation.reasons),
            shortable=inst is not None and inst.shortable,
            volatility=None if vol is None or pd.isna(vol) else float(vol),
        )
    closes = {s: b["close"] for s, b in data.bars.items() if len(b) > 1}
    corr = correlation_matrix(closes, view.as_of) if len(closes) > 1 else pd.DataFrame()
    correlations = {
        a: {b: float(v) for b, v in row.items() if a != b and pd.notna(v)} for a, row in corr.to_dict("index").items()
    }
    return MarketSnapshot(as_of=view.as_of, base_currency=universe.base_currency, quotes=quotes, correlations=correlations)


def _settle_pending(broker: PaperBroker, data: UniverseData, run_date: date) -> list[dict[str, str]]:
    """Fill pending orders at the open of the first session after their decision day, up to D; expire the rest.

    An order whose instrument has had no bar for ``ORDER_EXPIRY_SESSIONS`` sessions of the universe since its
    decision day (delisted, halted, history ended) is cancelled, so it stops reserving cash forever; the
    broker cancels the buys held back for an expired sell with it.
    """
    pending = broker.pending()
    if not pending:
        return []
    first_decided = min(o.run_date for o in pending)
    sessions = sorted(
        {ts.date() for bars in data.bars.values() for ts in bars.index if first_decided < ts.date() <= run_date}
    )
    for session in sessions:
        opens = {
            s: float(b.loc[pd.Timestamp(session), "open"])
            for s, b in data.bars.items()
            if pd.Timestamp(session) in b.index
        }
        broker.settle(session, opens, data.fx)
    return broker.expire(sessions, ORDER_EXPIRY_SESSIONS)


def _fills_since_previous_run(ledger: Ledger, run_date: date) -> list[dict[str, Any]]:
    """The fills D's run settled, read back from the ledger, so a re-run after a kill still reports them.

    Each run settles every pending order up to its own date, so the fills dated after the previous run's
    date (its equity mark) and up to D are exactly those settled at the start of D's run.
    """
    previous = max((day for day, _ in ledger.equity_curve() if day < run_date), default=None)
    return [f.model_dump(mode="json") for f in ledger.fills(after=previous, until=run_date)]


def _load_day(
    uni: Universe, cache: MarketCache, run_date: date | None, *, latest_common: bool, progress: bool
) -> tuple[UniverseData, date]:
    """Refresh the universe's data and cut it at D; without a date, D is the latest (or latest common) session."""
    data = load_universe_data(uni, cache, as_of=run_date, refresh=True, progress=progress)
    if run_date is None:
        if not any(len(df) for df in data.bars.values()):
            first = next(iter(data.errors.items()), ("-", "no instruments"))
            raise UserError(
                f"no instrument of universe {uni.name!r} has any data ({len(data.errors)} failed; "
                f"{first[0]}: {first[1]})"
            )
        lasts = [df.index[-1].date() for df in data.bars.values() if len(df)]
        run_date = min(lasts) if latest_common else max(lasts)  # the demo wants the last day all instruments share
        # now that D is known, read everything again point-in-time from the cache (no refetch)
        notes, errors = data.notes, data.errors
        data = load_universe_data(uni, cache, as_of=run_date, refresh=False)
        data.notes[:0], data.errors = notes, {**errors, **data.errors}
    if not any(len(b) and b.index[-1].date() == run_date for b in data.bars.values()):
        failed = "; ".join(f"{s}: {e}" for s, e in list(data.errors.items())[:3])
        if failed and not any(len(b) for b in data.bars.values()):
            raise UserError(f"no instrument of universe {uni.name!r} could be loaded ({failed})")
        why = f" (and {len(data.errors)} failed to load: {failed})" if failed else ""
        raise UserError(f"{run_date} is not a session of universe {uni.name!r}: no instrument has a bar that day{why}")
    return data, run_date


def run_daily(
    settings: Settings,
    *,
    universe: str = "demo",
    run_date: date | None = None,
    dry_run: bool = False,
    llm: Literal["offline", "openai"] | None = None,
    cache_mode: Literal["record", "replay", "off"] = "off",
    progress: bool = False,
    latest_common: bool = False,
    client: LLMClient | None = None,
    today: date | None = None,
) -> DailyResult:
    """Run one trading day. ``client`` replaces the LLM built from settings (tests, evals).

    ``today`` (the edge's clock) refuses a D after it: bars dated in the future are wrong data, not a day to trade.
    """
    started = time.perf_counter()
    settings.ensure_home()
    uni = load_universe(universe)
    cache = MarketCache(settings.db_path)
    try:
        data, run_date = _load_day(uni, cache, run_date, latest_common=latest_common, progress=progress)
    finally:
        cache.close()
    if today is not None and run_date > today:
        raise UserError(f"{run_date} is after today ({today}): bars dated in the future are wrong data")
    data_seconds = time.perf_counter() - started
    # a dry run never overwrites the day's real record
    path = settings.daily_results_dir / f"{run_date.isoformat()}{'.dry-run' if dry_run else ''}.json"

    ledger = Ledger(settings.db_path, base_currency=uni.base_currency, starting_cash=settings.starting_cash or DEFAULT_STARTING_CASH)
    try:
        last = ledger.last_activity()
        if last is not None and last > run_date:  # dry runs too: today's book must not be shown to an older day
            raise UserError(
                f"the paper book already has activity on {last}; a daily run cannot go back to {run_date} "
                "(replays of history belong to the eval harness)"
            )
        history = ledger.history(run_date)
        if not dry_run and history.orders_today > 0:
            previous = _read_results(path, run_date)
            if previous is None:  # the run that placed them died before writing a usable file: rebuild it
                previous = _recovered_results(run_date, uni, ledger, settings, started, _set_aside(path))
                write_json_atomic(path, previous, indent=2, default=str)
            return DailyResult(run_date=run_date, path=path, results=previous, repeated=True)

        broker = PaperBroker(ledger, commission_bps=settings.commission_bps, slippage_bps=settings.slippage_bps)
        expired = [] if dry_run else _settle_pending(broker, data, run_date)
        view = MarketView.build(data, run_date)
        market = market_snapshot(view, data, uni)
        snapshot = ledger.snapshot(market)
        limits, limit_notes = load_limits(settings.risk_config_path)
        store = RiskStateStore(settings.risk_state_path)
        risk_state = store.load()
        fills = [] if dry_run else _fills_since_previous_run(ledger, run_date)
        if not dry_run:
            ledger.record_equity(run_date, snapshot)
            latched = update_breakers(ledger.equity_curve(), limits, risk_state, run_date)
            if latched != risk_state:
                store.save(latched)
                risk_state = latched
        if client is None:
            client = make_client(settings, llm, cache_mode, budget=TokenBudget(settings.llm_token_budget),
                                 deadline=Deadline(settings.llm_run_deadline_seconds))
        # history again: settlement above changed what is pending and when each symbol last traded
        deps = DayDeps(
            run_date=run_date, universe=uni, view=view, market=market, portfolio=snapshot, limits=limits,
            risk_state=risk_state, history=ledger.history(run_date), client=client, ledger=ledger,
            broker=None if dry_run else broker, fee_bps=broker.cost_bps,
        )  # fmt: skip
        graph_started = time.perf_counter()
        try:
            state = build_graph(deps).invoke({"nodes": {}, "timings": {}})
        except Exception as exc:
            state = {"hold": hold_all("graph_error", type(exc).__name__).model_dump(), "nodes": {}, "timings": {}}
        graph_seconds = time.perf_counter() - graph_started

        guard_result = state.get("guard")
        results = _results(
            run_date=run_date, uni_name=uni.name, base=uni.base_currency, dry_run=dry_run,
            llm={"llm": getattr(client, "provider", "unknown"), "model": getattr(client, "model", "unknown")},
            status=_status(state, dry_run), state=state,
            orders={
                "approved": [o.model_dump(mode="json") for o in guard_result.approved] if guard_result else [],
                "rejected": [r.model_dump(mode="json") for r in guard_result.rejections] if guard_result else [],
                "clamps": [c.model_dump(mode="json") for c in guard_result.clamps] if guard_result else [],
            },
            fills=fills, expired=expired, snapshot=snapshot.model_dump(mode="json"), risk_state=risk_state.model_dump(mode="json"),
            limits=limits.model_dump(mode="json"), limit_notes=limit_notes,
            data={"notes": list(data.notes), "errors": dict(data.errors),
                  "untradeable": {s: v.reasons for s, v in view.validation.items() if not v.tradeable}},
            prompts={name: {"version": p.version, "sha256": p.sha256} for name in PROMPTS for p in [load_prompt(name)]},
            timings={"data_seconds": round(data_seconds, 4), "graph_seconds": round(graph_seconds, 4),
                     "total_seconds": round(time.perf_counter() - started, 4)},
        )  # fmt: skip
        write_json_atomic(path, results, indent=2, default=str)
        return DailyResult(run_date=run_date, path=path, results=results)
    finally:
        ledger.close()


def _status(state: dict[str, Any], dry_run: bool) -> str:
    guard_result = state.get("guard")
    if state.get("hold"):
        return "hold"
    if state.get("placed"):
        return "orders_placed"
    if dry_run and guard_result is not None and guard_result.approved:
        return "dry_run"
    return "no_orders"


def _read_results(path: Path, run_date: date) -> dict[str, Any] | None:
    """The day's results file, or None when it is missing or is not a results file of that day."""
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, unreadable, not UTF-8, not JSON
        return None
    ok = isinstance(results, dict) and results.get("date") == run_date.isoformat()
    return results if ok and isinstance(results.get("placed"), list) else None


def _set_aside(path: Path) -> Path | None:
    """Move an unusable results file out of the way (kept, never deleted); None when there was none."""
    if not path.exists():
        return None
    n = 0
    while (aside := path.with_name(f"{path.name}.corrupt{'' if n == 0 else f'.{n}'}")).exists():
        n += 1
    path.replace(aside)
    return aside


def _recovered_results(
    run_date: date, uni: Universe, ledger: Ledger, settings: Settings, started: float, set_aside: Path | None
) -> dict[str, Any]:
    """The results file of a run that placed orders and was stopped (killed, power cut) before writing it.

    Node outputs and LLM answers died with that process; what it decided is in the ledger: its orders and,
    stored in the same transaction, the guard's rejections and clamps. Nothing is re-decided: re-running the
    graph could only be refused (the orders exist) and would overwrite the record of what was traded.
    """
    orders = [o for o in ledger.orders() if o.run_date == run_date]
    log = ledger.guard_log(run_date)
    limits, limit_notes = load_limits(settings.risk_config_path)
    return _results(
        run_date=run_date, uni_name=uni.name, base=uni.base_currency, dry_run=False,
        llm={"llm": "unknown", "model": "unknown"}, status="recovered",
        state={"nodes": {}, "placed": [o.order_id for o in orders], "recovered": (
            f"the run that placed {len(orders)} order(s) on {run_date} stopped before writing this file"
            + (f" (an unreadable file was moved to {set_aside.name})" if set_aside else "")
            + "; orders and guard verdicts come from the ledger, node outputs and LLM answers are lost"
        )},
        orders={
            "approved": [o.model_dump(mode="json") for o in orders],
            "rejected": [{k: e[k] for k in ("symbol", "raw", "code", "detail")} for e in log if e["kind"] == "rejection"],
            "clamps": [{"order_id": e["order_id"], "code": e["code"], "detail": e["detail"],
                        "from_quantity": e["from_quantity"], "to_quantity": e["to_quantity"]}
                       for e in log if e["kind"] == "clamp"],
        },
        fills=_fills_since_previous_run(ledger, run_date),
        expired=[], snapshot=ledger.snapshot().model_dump(mode="json"),
        risk_state=RiskStateStore(settings.risk_state_path).load().model_dump(mode="json"),
        limits=limits.model_dump(mode="json"), limit_notes=limit_notes, data={"notes": [], "errors": {}, "untradeable": {}},
        prompts={},  # which templates that run used is not known; today's hashes would lie
        timings={"total_seconds": round(time.perf_counter() - started, 4)},
    )  # fmt: skip


def _results(
    *,
    run_date: date,
    uni_name: str,
    base: str,
    dry_run: bool,
    llm: dict[str, str],
    status: str,
    state: dict[str, Any],
    orders: dict[str, list[dict[str, Any]]],
    fills: list[dict[str, Any]],
    expired: list[dict[str, Any]],
    snapshot: dict[str, Any],
    risk_state: dict[str, Any],
    limits: dict[str, Any],
    limit_notes: list[str],
    data: dict[str, Any],
    prompts: dict[str, dict[str, str]],
    timings: dict[str, float],
) -> dict[str, Any]:
    nodes = state.get("nodes", {})
    return {
        "date": run_date.isoformat(),
        "universe": uni_name,
        "base_currency": base,
        "status": status,
        "dry_run": dry_run,
        **llm,
        "hold": state.get("hold"),
        "recovered": state.get("recovered"),
        "nodes": nodes,
        "proposed": state.get("proposals", []),
        **orders,
        "placed": state.get("placed", []),
        "fills": fills,
        "expired": expired,
        "portfolio": snapshot,
        "risk": {"state": risk_state, "limits": limits, "notes": limit_notes},
        "data": data,
        "prompts": prompts,
        "llm_calls": sum(int(n.get("llm_calls", 0)) for n in nodes.values()),
        "tokens": sum(int(n.get("tokens", 0)) for n in nodes.values()),
        "timings": {**state.get("timings", {}), **timings},
    }
