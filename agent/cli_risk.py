"""CLI: ``tradeagent risk limits|status|halt|reduce|resume``: the limits in force and the kill switch.

Deliberate decisions:
- The kill switch lives here (``risk halt|reduce|resume``), never in an LLM tool. ``resume`` and ``reduce``
  record the book's last equity-mark day as ``since``: the drawdown breaker measures its peak from there
  (``portfolio.breakers``). ``risk`` prints recorded text through ``printable`` (control characters escaped). ``risk limits`` shows the
  limits IN FORCE: the coded ceilings tightened by ``TRADEAGENT_HOME/risk.toml``, each with its ceiling,
  unit and meaning (``portfolio.risk.LIMIT_INFO``); ``--json`` keeps plain numbers under the limit names.
  A looser value keeps the ceiling and is reported on stderr; a risk.toml that does not parse or holds an
  unknown table, key or a non-number is ``RiskConfigError``: one line, exit 2 (the daily run refuses too).
- ``risk status`` also shows the drawdown the breaker judges (from the equity peak, restarted by a person's
  ``resume``, as of the book's last mark: ``portfolio.breakers.drawdown_from_peak``), the breaker's limit, and what
  the risk profile in force (``TRADEAGENT_PROFILE``) does at it: how much of each size its drawdown brake allows
  (``agent.profiles.brake_share``). ``--json`` adds ``drawdown``, ``as_of``, ``max_drawdown``, ``profile``,
  ``last_run_profile`` (the profile of the newest real run's results file: the book may have been run with another
  ``--profile`` than the environment's, and status says so), ``brake`` (null when unknown) and ``note`` (why something is unknown) to the state's keys. A ledger that cannot
  be read or a risk.toml that does not parse is one line: the mode is shown whatever else fails.
- The kill switch works whatever else is misconfigured: a bad variable other than ``TRADEAGENT_HOME`` (a typo in
  ``TRADEAGENT_PROFILE``) is a warning and its default is used (``load_settings_for_kill_switch``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from agent.cli_common import JsonFlag, cli_errors, console, err_console, newest_results, print_json
from agent.cli_explain import printable
from agent.profiles import BRAKE_LOW, brake_share, resolve
from agent.settings import Settings, load_settings_for_kill_switch
from portfolio import outbox
from portfolio.errors import LedgerError, RiskConfigError
from portfolio.ledger import Ledger
from portfolio.models import RiskMode, RiskState
from portfolio.risk import CEILINGS, LIMIT_INFO, RiskStateStore, drawdown_from_peak, load_limits
from portfolio.storage import connect

ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (recorded in the risk state).")]


risk_app = typer.Typer(help="Risk limits in force and the kill switch (halt, reduce, resume).",
                       no_args_is_help=True)


@risk_app.command("limits")
@cli_errors
def risk_limits_cmd(json_: JsonFlag = False) -> None:
    """Show the risk limits in force (coded ceilings tightened by risk.toml), with units and meanings."""
    limits, notes = load_limits(_settings().risk_config_path)
    for note in notes:
        err_console.print(Text.assemble(("warning: ", "yellow"), note), highlight=False)
    if json_:
        print_json(limits.model_dump())
        return
    table = Table("limit", "in force", "ceiling", "unit", "meaning")
    ceilings = CEILINGS.model_dump()
    for key, value in limits.model_dump().items():
        unit, meaning = LIMIT_INFO[key]
        table.add_row(key, _number(value), _number(ceilings[key]), unit, meaning)
    console.print(table)


def _settings() -> Settings:
    """The settings, with any bad variable but the home at its default and a warning: the kill switch always works."""
    settings, problems = load_settings_for_kill_switch()
    for problem in problems:
        err_console.print(Text.assemble(("warning: ", "yellow"), printable(problem),
                                        "; the risk commands use its default (the daily run refuses until it is fixed)"),
                          highlight=False)
    return settings


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


def _show_state(state: RiskState, json_: bool) -> None:
    """The state as one line; recorded text (reason, author) goes through ``printable``: no control characters."""
    if json_:
        print_json(state.model_dump(mode="json"))
    else:
        since = f" since {state.since}" if state.since else ""
        console.print(Text.assemble("Risk mode ", (printable(state.mode), "bold"),
                                    f"{since} ({printable(state.changed_by)}): {printable(state.reason)}"))


@risk_app.command("status")
@cli_errors
def risk_status_cmd(json_: JsonFlag = False) -> None:
    """Show the risk mode (ACTIVE, REDUCING, HALTED) and why, the drawdown and what the profile's brake does at it."""
    settings = _settings()
    state = RiskStateStore(settings.risk_state_path).load(book_exists=_book_exists(settings.db_path))
    where = drawdown_now(settings, state)
    if json_:
        print_json({**state.model_dump(mode="json"), **where})
        return
    _show_state(state, json_=False)
    drawdown, limit, profile, brake = where["drawdown"], where["max_drawdown"], where["profile"], where["brake"]
    if drawdown is None:
        console.print(f"drawdown: not known ({printable(where['note'])})", style="dim")
        return
    if limit is None:
        console.print(f"drawdown {drawdown:.2%} from the equity peak as of the {where['as_of']} mark; the breaker's "
                      f"limit is not known ({printable(where['note'])})")
        return
    console.print(f"drawdown {drawdown:.2%} from the equity peak as of the {where['as_of']} mark "
                  f"(the breaker halts the book beyond {limit:.2%})")
    if drawdown > limit and state.mode != "HALTED":  # a tightened risk.toml, or a fall since the last run
        console.print(Text.assemble(("beyond the limit: ", "red"), "the next daily run latches HALTED"))
    if where["last_run_profile"] not in (None, profile):  # the book's last run was sized by another profile
        console.print(f"profile {profile} (TRADEAGENT_PROFILE or the default); the book's last run used "
                      f"{printable(str(where['last_run_profile']))}", style="yellow")
    if brake is None:
        console.print(f"profile {profile}: no drawdown brake", style="dim")
    elif brake >= 1:
        start = min(resolve(profile).brake, 1.0) * limit  # type: ignore[union-attr]
        console.print(f"profile {profile}: the drawdown brake starts at {start:.2%} of drawdown: not binding", style="dim")
    else:
        console.print(Text.assemble(("drawdown brake: ", "yellow"), (
            f"profile {profile} holds each name at most {brake:.1%} of its size"
            + (" (nearly all cash)" if brake < BRAKE_LOW else "")
            + "; `tradeagent risk resume` restarts the peak the drawdown is measured from")))


def drawdown_now(settings: Settings, state: RiskState) -> dict[str, Any]:
    """The drawdown as the breaker judges it at the book's last mark, the limit, the profile's brake share, and a
    ``note`` saying what could not be known (null when everything was)."""
    last_run = next((r.get("profile") for r in newest_results(settings.daily_results_dir) if r.get("profile")), None)
    where: dict[str, Any] = {"drawdown": None, "as_of": None, "max_drawdown": None, "profile": settings.profile,
                             "last_run_profile": last_run, "brake": None, "note": None}
    try:
        ledger = Ledger.open_existing(settings.db_path)
    except LedgerError as exc:
        return {**where, "note": f"the ledger cannot be read: {' '.join(str(exc).split())}"}
    if ledger is None:
        return {**where, "note": "there is no ledger yet"}
    try:
        curve = ledger.equity_curve()
    finally:
        ledger.close()
    if not curve:
        return {**where, "note": "the book has no equity marks yet"}
    as_of: date = curve[-1][0]
    drawdown = drawdown_from_peak(curve, state, as_of)
    if drawdown is None:
        return {**where, "note": "the equity marks cannot be read"}
    where.update(drawdown=drawdown, as_of=as_of.isoformat())
    try:
        limits, _ = load_limits(settings.risk_config_path)
    except RiskConfigError as exc:
        return {**where, "note": f"risk.toml: {exc}"}
    profile = resolve(settings.profile)
    where.update(max_drawdown=limits.max_drawdown,
                 brake=brake_share(profile.brake, drawdown, limits.max_drawdown)
                 if profile is not None and profile.brake > 0 else None)
    return where


def _book_exists(db_path: Path) -> bool:
    """Whether a paper book with activity exists (a locked file counts: a run holding it has a book)."""
    try:
        ledger = Ledger.open_existing(db_path)
    except LedgerError:
        return True
    if ledger is None:
        return False
    try:
        return ledger.last_activity() is not None
    finally:
        ledger.close()


def _last_mark_day(db_path: Path) -> tuple[date | None, str | None]:
    """The book's last equity-mark day (read-only), or None and why not (no ledger, no marks, a locked file)."""
    try:
        ledger = Ledger.open_existing(db_path)
    except LedgerError as exc:
        return None, f"the ledger cannot be read ({' '.join(str(exc).split())})"
    if ledger is None:
        return None, "there is no ledger yet"
    try:
        curve = ledger.equity_curve()
    finally:
        ledger.close()
    return (curve[-1][0], None) if curve else (None, "the book has no equity marks yet")


def _set_mode(mode: RiskMode, reason: str, json_: bool) -> None:
    """A person's word: written under the store's lock, so a run about to place orders reads it first or not at all.

    ``resume`` and ``reduce`` record the BOOK's last equity-mark day as ``since`` (not the wall clock: a book
    may live in 2013): the breakers measure the drawdown peak from that mark on (``portfolio.breakers``).
    """
    settings = _settings()
    settings.ensure_home()
    since, why_not = (date.today(), None) if mode == "HALTED" else _last_mark_day(settings.db_path)
    state = RiskState(mode=mode, reason=reason, since=since, changed_by="cli")
    store = RiskStateStore(settings.risk_state_path)
    with store.locked():
        before = store.load()
        store.save(state)
    _show_state(state, json_)
    _queue_alert(settings.db_path, before, state)
    if why_not is not None and not json_:
        console.print(f"the drawdown is still measured from the whole equity curve's peak: {printable(why_not)}",
                      style="dim")
    elif mode != "HALTED" and not json_:  # the drawdown brake of the risk profiles steers by the same number
        console.print(f"the drawdown is measured from the {since} equity mark on: a risk profile's drawdown brake "
                      "releases, and the next daily run may size every name back up", style="dim")
    if mode != "ACTIVE" and not json_:
        what = "every pending order" if mode == "HALTED" else "pending orders that add risk"
        console.print(f"the next daily run cancels {what} before settling", style="dim")


def _queue_alert(db_path: Path, before: RiskState, after: RiskState) -> None:
    """The change goes to the alert outbox right after the state file is saved (it is a file, not a ledger row).

    The switch has changed whatever happens here: a DuckDB file held by a running daily run is a warning line.
    """
    try:
        con = connect(db_path)
        try:
            con.begin()
            outbox.install(con)
            outbox.enqueue_risk_change(con, before, after, run_date=None, source="kill_switch",
                                       event=datetime.now(UTC).isoformat())
            con.commit()
        finally:
            con.close()
    except Exception as exc:
        err_console.print(f"warning: the alert for this change was not queued ({printable(str(exc))})", style="yellow")


@risk_app.command("halt")
@cli_errors
def risk_halt_cmd(reason: ReasonOpt = "halted by hand", json_: JsonFlag = False) -> None:
    """Stop all trading: nothing passes the guard until `risk resume`."""
    _set_mode("HALTED", reason, json_)


@risk_app.command("reduce")
@cli_errors
def risk_reduce_cmd(reason: ReasonOpt = "reducing by hand", json_: JsonFlag = False) -> None:
    """Only risk-reducing orders (sells) pass until `risk resume`."""
    _set_mode("REDUCING", reason, json_)


@risk_app.command("resume")
@cli_errors
def risk_resume_cmd(reason: ReasonOpt = "resumed by hand", json_: JsonFlag = False) -> None:
    """Back to ACTIVE (releases a breaker's latch). The max_drawdown breaker then measures from the book's last
    equity mark, not from the old peak (else the next run would halt again)."""
    _set_mode("ACTIVE", reason, json_)

