"""The intraday monitor: latest prices against the last close; alerts in the outbox; never trades.

Contract (``tradeagent monitor [--universe U] [--json]``):
- For each instrument of the universe, the latest price is the close of its bar dated today (the clock's UTC
  date; during a session that is the still-forming bar) and the reference is the close of the bar before it.
  An instrument without a bar today has nothing to report (market not open yet, holiday).
- Rules (``[monitor]`` in config.toml, ``schedules.config.Thresholds``): a HELD position moving beyond
  ±``position_move`` (2%), any other instrument of the universe (its indices and ETFs) beyond ±``index_move``
  (3%), and the portfolio down more than ``portfolio_drop`` (1.5%) on the day: Σ position value × its move
  / equity, from the book's last marks.
- Each alert goes to the outbox (one transaction for the pass). Identity: universe, day, symbol, rule and
  direction: a move seen again by the next pass (every 2 hours) is not alerted again that day.
- Exit 0: nothing to report; 1: at least one rule crossed (whether or not it was already alerted); 2: bad
  input. It reads the book read-only and opens the DuckDB file for writing only to enqueue; it places and
  cancels nothing.

Deliberate decisions:
- The universe has no "index or ETF" field: what is not held is watched with the market threshold.
- Network providers (yfinance, ccxt) drop a still-forming bar for the daily run; the monitor asks them with
  their forming-bar cut moved past today, because here the forming bar IS the latest price.
- Intraday FX moves are ignored: a position's move is its own price's move.
- A symbol whose data fails is listed under ``errors``; it never stops the pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from agent.settings import Settings
from portfolio import outbox
from portfolio.ledger import Ledger
from portfolio.storage import connect
from schedules.config import Thresholds
from tools.market_data import provider_for
from tools.universe import load_universe

LOOKBACK_DAYS = 15  # enough calendar days to hold the last close before today across a long holiday


@dataclass
class MonitorReport:
    universe: str
    as_of: datetime
    thresholds: Thresholds
    checks: list[dict[str, Any]] = field(default_factory=list)
    portfolio: dict[str, Any] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    queue_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"universe": self.universe, "as_of": self.as_of.isoformat(), "thresholds": self.thresholds.__dict__,
                "checks": self.checks, "portfolio": self.portfolio, "alerts": self.alerts, "errors": self.errors,
                "queued": self.queue_error is None, "queue_error": self.queue_error}  # fmt: skip


def _book(settings: Settings) -> tuple[dict[str, float], float | None, str | None]:
    """Held symbols -> market value (base, last mark), the equity, the base currency; empty without a book."""
    # read-write, though it only reads: inside `serve` another thread may hold the file read-write, and DuckDB
    # refuses a read-only connection in that process
    ledger = Ledger.open_existing(settings.db_path, read_only=False)
    if ledger is None:
        return {}, None, None
    try:
        snap = ledger.snapshot()
        return {p.symbol: p.market_value for p in snap.positions}, snap.equity, snap.base_currency
    finally:
        ledger.close()


def _latest(source: str, instrument: Any, now: datetime) -> tuple[date, float, date, float] | None:
    """(today, latest close, previous session, its close) or None when there is no bar today."""
    provider = provider_for(source, clock=lambda: now + timedelta(days=2))
    today = now.astimezone(UTC).date()
    bars = provider.fetch(instrument, today - timedelta(days=LOOKBACK_DAYS), None)
    bars = bars[bars.index.date <= today] if len(bars) else bars
    if len(bars) < 2 or bars.index[-1].date() != today:
        return None
    return today, float(bars["close"].iloc[-1]), bars.index[-2].date(), float(bars["close"].iloc[-2])


def run_monitor(settings: Settings, universe: str, *, now: datetime, thresholds: Thresholds) -> MonitorReport:
    uni = load_universe(universe)
    held, equity, _ = _book(settings)
    report = MonitorReport(universe=uni.name, as_of=now, thresholds=thresholds)
    today = now.astimezone(UTC).date()
    day_pnl = 0.0
    raised: list[tuple[str, str, str, str]] = []  # (key, severity, title, body)
    for inst in uni.instruments:
        try:
            latest = _latest(inst.source, inst, now)
        except Exception as exc:  # one symbol's data never stops the pass
            report.errors[inst.symbol] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            continue
        is_held = inst.symbol in held
        limit = thresholds.position_move if is_held else thresholds.index_move
        check: dict[str, Any] = {"symbol": inst.symbol, "held": is_held, "threshold": limit, "alert": False}
        if latest is None:
            report.checks.append({**check, "status": "no bar today"})
            continue
        _, price, prev_day, prev = latest
        move = price / prev - 1.0
        check.update(status="ok", price=price, last_close=prev, last_close_date=prev_day.isoformat(), move=round(move, 6))
        if is_held:
            day_pnl += held[inst.symbol] * move
        if abs(move) > limit:
            check["alert"] = True
            rule, direction = ("position" if is_held else "market"), ("up" if move > 0 else "down")
            raised.append((f"{uni.name}:{today}:{inst.symbol}:{rule}:{direction}", "warning",
                           f"{inst.symbol} {move:+.2%} since the {prev_day} close · {uni.name}",
                           f"{'held position' if is_held else 'market'} move beyond ±{limit:.1%}: {prev:g} → {price:g}"))
        report.checks.append(check)
    if equity:
        change = day_pnl / equity
        report.portfolio = {"equity": equity, "move": round(change, 6), "threshold": thresholds.portfolio_drop,
                            "alert": change < -thresholds.portfolio_drop}  # fmt: skip
        if report.portfolio["alert"]:
            raised.append((f"{uni.name}:{today}:portfolio:down", "critical",
                           f"portfolio {change:+.2%} on the day · {uni.name}",
                           f"down more than {thresholds.portfolio_drop:.1%} since the last close (equity {equity:,.2f})"))
    if raised:
        _enqueue(settings, raised, today, report)
    return report


def _enqueue(settings: Settings, raised: list[tuple[str, str, str, str]], today: date, report: MonitorReport) -> None:
    try:
        settings.ensure_home()
        con = connect(settings.db_path)
    except Exception as exc:
        report.queue_error = " ".join(str(exc).split())
        report.alerts = [{"title": t, "body": b, "alert_id": None, "new": None} for _, _, t, b in raised]
        return
    try:
        con.begin()
        outbox.install(con)
        for key, severity, title, body in raised:
            aid = outbox.alert_id("monitor", key)
            new = not con.execute(f"SELECT count(*) FROM {outbox.TABLE} WHERE alert_id = ?", [aid]).fetchone()[0]  # type: ignore[index]
            outbox.enqueue(con, kind="monitor", key=key, severity=severity, title=title, body=body, run_date=today)  # type: ignore[arg-type]
            report.alerts.append({"alert_id": aid, "title": title, "body": body, "new": new})
        con.commit()
    finally:
        con.close()
