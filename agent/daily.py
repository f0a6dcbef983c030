"""The daily run's edge: check the inputs, refresh data, open the user's book, run the day, write the results file.

The day itself (kill switch, settlement, equity mark, breakers, graph) is ``agent.day.trade_day``, shared with
the eval harness's replays.

Contract (shared/DESIGN.md):
- D is the session whose CLOSE the decision reads. Orders decided on an earlier run fill at the OPEN of the
  first session after their decision day, before anything else happens on D.
- ``TRADEAGENT_HOME/results/daily/D.json`` holds every node's output, the proposed, approved and rejected
  orders with reasons, prompt hashes, the LLM used and timings. A dry run writes ``D.dry-run.json`` instead,
  so it never overwrites the day's real record.
- A second run for a date that already placed orders is idempotent: nothing is re-decided or re-placed; it
  reports the first run's file. A day that held (no orders) may be re-run, e.g. after the LLM came back.
- ``--dry-run`` changes nothing in the ledger, but decides on the book the real run would see: it settles,
  marks and runs the breakers inside a transaction that is rolled back (``Ledger.scratch``). Like a real run it
  refuses a day before the book's last activity (it would show that day a book from its future).
- Settings, the LLM client and risk.toml are checked before the ledger is opened: a refused run (exit 2)
  never changes the book.
- A day that placed orders but whose results file is missing or unusable (killed before writing it, corrupted)
  gets it rebuilt from the ledger (``"status": "recovered"``); an unusable file is kept as ``D.json.corrupt``.
- Any failure past data loading ends in hold-all, and the results file says why.
- A real run installs the alert outbox (``portfolio.outbox``) in the user's DuckDB file: the day's alerts
  (orders, guard verdicts, breaker changes, hold-all, the summary) are written there in the same
  transactions as what they report. Delivering them is the layer above's job (``schedules``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal

from agent.cli_common import UserError
from agent.day import Book, fills_since_previous_run, trade_day
from agent.files import write_json_atomic
from agent.llm.base import Deadline, LLMClient, TokenBudget
from agent.llm.factory import make_client
from agent.memory_open import open_user_memory
from agent.news_inputs import load_for_run
from agent.profiles import LEGACY, Profile, UnknownProfile, brake_share, resolve
from agent.quant_inputs import QuantSetup
from agent.settings import Settings
from portfolio import outbox
from portfolio.broker import PaperBroker
from portfolio.ledger import Ledger
from portfolio.risk import RiskStateStore, drawdown_from_peak, load_limits
from prompts.loader import load_prompt
from tools.cache import MarketCache
from tools.data import UniverseData, load_universe_data
from tools.models import Universe
from tools.universe import load_universe
from tools.view import MarketView

DEFAULT_STARTING_CASH = 10_000.0
# Without --date, a run more than this many days after the book's last activity asks for an explicit date:
# a month covers holidays and a fortnight away, and stops the demo book jumping from 2013 to 2018 unasked.
MAX_SILENT_GAP_DAYS = 31
PROMPTS = ("system", "analyst", "sentiment", "quant", "risk", "offline_rules")  # offline_rules: which rule version decided


@dataclass(frozen=True)
class DailyResult:
    run_date: date
    path: Path
    results: dict[str, Any]
    repeated: bool = False  # True when the day had already traded and nothing was re-run


def _last_tradeable_common_session(data: UniverseData) -> date:
    """The last session every loaded instrument trades on AND has a session after (the demo's day).

    Orders decided on it fill for every instrument at the next open; the last bar of a series whose history
    ends (GOOG's sample stops in 2013) would leave its orders with nothing to fill at.
    """
    frames = [df for df in data.bars.values() if len(df)]
    cutoff = min(df.index[-1] for df in frames)
    common = frames[0].index[frames[0].index < cutoff]
    for df in frames[1:]:
        common = common.intersection(df.index)
    if common.empty:
        raise UserError(f"the instruments of universe {data.universe.name!r} share no session before {cutoff.date()}")
    return common[-1].date()


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
        run_date = _last_tradeable_common_session(data) if latest_common else max(
            df.index[-1].date() for df in data.bars.values() if len(df))
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
    profile: str | None = None,
) -> DailyResult:
    """Run one trading day. ``client`` replaces the LLM built from settings (tests, evals).

    Everything that can be refused (the universe, the LLM settings, risk.toml, the date) is checked before the
    ledger is opened: a refused run never changes the book. ``today`` (the edge's clock) refuses a D after it:
    bars dated in the future are wrong data, not a day to trade.
    """
    started = time.perf_counter()
    picked = run_date is None
    settings.ensure_home()
    uni = load_universe(universe)
    if client is None:
        client = make_client(settings, llm, cache_mode, budget=TokenBudget(settings.llm_token_budget),
                             deadline=Deadline(settings.llm_run_deadline_seconds))
    limits, limit_notes = load_limits(settings.risk_config_path)
    risk_profile = _profile(profile or settings.profile)
    cache = MarketCache(settings.db_path)
    try:
        data, run_date = _load_day(uni, cache, run_date, latest_common=latest_common, progress=progress)
    finally:
        cache.close()
    if today is not None and run_date > today:
        raise UserError(f"{run_date} is after today ({today}): bars dated in the future are wrong data")
    news, news_note = load_for_run(settings.db_path, run_date)  # before the ledger opens; no connection kept
    data_seconds = time.perf_counter() - started
    # a dry run never overwrites the day's real record
    path = settings.daily_results_dir / f"{run_date.isoformat()}{'.dry-run' if dry_run else ''}.json"

    ledger = Ledger(_book_path(settings, dry_run), base_currency=uni.base_currency,
                    starting_cash=settings.starting_cash or DEFAULT_STARTING_CASH)
    try:
        if not dry_run:  # the user's book has an outbox: the day's alerts are written with what they report
            with ledger.transaction() as con:
                outbox.install(con)
        last = ledger.last_activity()
        if last is not None and last > run_date:  # dry runs too: today's book must not be shown to an older day
            raise UserError(
                f"the paper book already has activity on {last}; a daily run cannot go back to {run_date} "
                "(replays of history belong to the eval harness)"
            )
        if picked and last is not None and (run_date - last).days > MAX_SILENT_GAP_DAYS:
            raise UserError(
                f"without --date the run would be {run_date}, the latest session of {uni.name!r}, but the paper "
                f"book's last activity is {last}: pass --date (the next session after {last} continues the book; "
                f"--date {run_date} jumps it {(run_date - last).days} days ahead)"
            )
        if not dry_run and ledger.history(run_date).orders_today > 0:
            previous = _read_results(path, run_date)
            if previous is None:  # the run that placed them died before writing a usable file: rebuild it
                previous = _recovered_results(run_date, uni, ledger, settings, started, _set_aside(path))
                write_json_atomic(path, previous, indent=2, default=str)
                with ledger.transaction() as con:  # its summary alert died with it too (unless it was queued)
                    if not any(a.kind == "summary" and a.run_date == run_date for a in outbox.alerts(con)):
                        outbox.enqueue_day(con, previous)
            return DailyResult(run_date=run_date, path=path, results=previous, repeated=True)

        book = Book(
            ledger=ledger, risk_store=RiskStateStore(settings.risk_state_path), limits=limits,
            limit_notes=tuple(limit_notes),
            broker=PaperBroker(ledger, commission_bps=settings.commission_bps, slippage_bps=settings.slippage_bps,
                               collar=limits.max_price_deviation),
        )  # fmt: skip
        view = MarketView.build(data, run_date)
        memory, memory_off = open_user_memory(settings)  # optional: the day goes on without it, and says why
        results = trade_day(view, uni, book, client, dry_run=dry_run, quant=QuantSetup(settings.models_dir),
                            news=news, memory=memory,
                            configure=(lambda deps: replace(deps, profile=risk_profile)) if risk_profile else None)
        results["profile"] = risk_profile.name if risk_profile else LEGACY
        if memory_off is not None:
            results["memory"] = {"status": "off" if not settings.memory else "unavailable", "reason": memory_off}
        results["data"] = {"notes": [*data.notes, *([news_note] if news_note else [])], "errors": dict(data.errors),
                           "untradeable": _untradeable(view)}
        results["prompts"] = _prompt_hashes()
        results["universe_source"] = universe  # the --universe argument: `portfolio` reloads a TOML universe by it
        results["timings"].update({"data_seconds": round(data_seconds, 4),
                                   "total_seconds": round(time.perf_counter() - started, 4)})
        write_json_atomic(path, results, indent=2, default=str)
        return DailyResult(run_date=run_date, path=path, results=results)
    finally:
        ledger.close()


def _profile(name: str | None) -> Profile | None:
    try:
        return resolve(name)
    except UnknownProfile as exc:
        raise UserError(f"--profile: {exc}") from None


def _book_path(settings: Settings, dry_run: bool) -> Path:
    """The user's book; for a dry run on a home without one, a book in memory.

    Creating the ledger fixes its base currency and starting cash: a dry run must not do that for the real
    run that follows (it would trade the dry run's settings).
    """
    if dry_run:
        existing = Ledger.open_existing(settings.db_path)
        if existing is None:
            return Path(":memory:")
        existing.close()
    return settings.db_path


def _prompt_hashes() -> dict[str, dict[str, str]]:
    return {name: {"version": p.version, "sha256": p.sha256} for name in PROMPTS for p in [load_prompt(name)]}


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
    state = RiskStateStore(settings.risk_state_path).load(book_exists=True)
    drawdown = drawdown_from_peak(ledger.equity_curve(), state, run_date)  # facts of the ledger, as the run saw them
    profile = resolve(settings.profile)  # the profile set now (the run's own is not recorded anywhere else)
    return {
        "date": run_date.isoformat(), "universe": uni.name, "base_currency": uni.base_currency,
        "status": "recovered", "dry_run": False, "llm": "unknown", "model": "unknown", "hold": None,
        "recovered": (
            f"the run that placed {len(orders)} order(s) on {run_date} stopped before writing this file"
            + (f" (an unreadable file was moved to {set_aside.name})" if set_aside else "")
            + "; orders and guard verdicts come from the ledger, node outputs and LLM answers are lost"
        ),
        "nodes": {}, "proposed": [],
        "approved": [o.model_dump(mode="json") for o in orders],
        "rejected": [{k: e[k] for k in ("symbol", "raw", "code", "detail")} for e in log if e["kind"] == "rejection"],
        "clamps": [{"order_id": e["order_id"], "code": e["code"], "detail": e["detail"],
                    "from_quantity": e["from_quantity"], "to_quantity": e["to_quantity"]}
                   for e in log if e["kind"] == "clamp"],
        "placed": [o.order_id for o in orders],
        "fills": fills_since_previous_run(ledger, run_date), "expired": [], "cancelled": [],
        "portfolio": ledger.snapshot().model_dump(mode="json"),
        "risk": {"state": state.model_dump(mode="json"), "limits": limits.model_dump(mode="json"), "notes": limit_notes,
                 "drawdown": drawdown, "brake": (brake_share(profile.brake, drawdown, limits.max_drawdown)
                                                  if profile is not None and profile.brake > 0 else None)},
        "data": {"notes": [], "errors": {}, "untradeable": {}},
        "prompts": {},  # which templates that run used is not known; today's hashes would lie
        "llm_calls": 0, "tokens": 0,
        "timings": {"total_seconds": round(time.perf_counter() - started, 4)},
    }  # fmt: skip


def _untradeable(view: MarketView) -> dict[str, list[str]]:
    """The gate's reasons per refused symbol, and the day of the close its position is valued at when that is
    not the day's own close (a refused print: ``tools.validation.valuation_rows``), so `explain` shows it."""
    out: dict[str, list[str]] = {}
    for symbol, check in view.validation.items():
        if check.tradeable:
            continue
        reasons = list(check.reasons)
        valued = view.valued_close(symbol)
        if valued is not None and valued[1] != view.bars[symbol].index[-1].date():
            reasons.append(f"valued at the {valued[1]} close")
        out[symbol] = reasons
    return out
