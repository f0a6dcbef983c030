"""The alert outbox: every alert is a row in the DuckDB file before anything tries to deliver it.

Contract:
- ``install(con)`` creates the ``alert_outbox`` table (``IF NOT EXISTS``); the edges that own the user's book
  call it (the daily run, ``risk halt|reduce|resume``, the monitor, the scheduler). ``enqueue`` on a
  connection without the table does nothing and returns ``None``: a replay's scratch book (``evals``) has no
  outbox, so the trading day's code can enqueue unconditionally and a replay sends nothing.
- ``enqueue(con, …)`` takes the connection of the transaction it belongs to (``with ledger.transaction() as
  con``), so an alert is committed with what it reports (orders, guard verdicts) or not at all.
- Idempotent per alert id: the id is a hash of the alert's ``kind`` and ``key`` (or, without a key, of its
  whole content). Enqueueing the same alert again (a re-run of a day, a monitor pass seeing the same move)
  is a no-op, and the delivery side marks each id delivered once, so nothing is sent twice.
- Rows are never deleted: ``delivered_at`` is set on delivery; ``attempts`` and ``last_error`` say why a
  pending alert has not gone out yet.

Deliberate decisions:
- Text is stored as given (market data, LLM output); escaping for a destination (Discord markdown,
  mentions) is the delivery side's job, where the destination's rules are known.
- ``created_at`` is the wall clock (UTC) of the enqueueing process: bookkeeping, never a trading input.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

import duckdb

from portfolio.models import GuardResult, RiskState

Severity = Literal["info", "warning", "critical"]
KINDS = ("orders", "guard", "breaker", "kill_switch", "hold", "monitor", "summary", "error")
TABLE = "alert_outbox"

_DDL = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    alert_id VARCHAR PRIMARY KEY, seq BIGINT NOT NULL, created_at TIMESTAMP NOT NULL, run_date DATE,
    kind VARCHAR NOT NULL, severity VARCHAR NOT NULL, title VARCHAR NOT NULL, body VARCHAR NOT NULL,
    fields VARCHAR NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error VARCHAR, delivered_at TIMESTAMP)"""
_COLS = "alert_id, seq, created_at, run_date, kind, severity, title, body, fields, attempts, last_error, delivered_at"


@dataclass(frozen=True)
class Alert:
    alert_id: str
    seq: int
    created_at: datetime
    run_date: date | None
    kind: str
    severity: str
    title: str
    body: str
    fields: list[tuple[str, str]]
    attempts: int
    last_error: str | None
    delivered_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id, "seq": self.seq, "created_at": self.created_at.isoformat(),
            "run_date": self.run_date.isoformat() if self.run_date else None, "kind": self.kind,
            "severity": self.severity, "title": self.title, "body": self.body,
            "fields": [{"name": n, "value": v} for n, v in self.fields], "attempts": self.attempts,
            "last_error": self.last_error,
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
            "status": "delivered" if self.delivered_at else "pending",
        }  # fmt: skip


# Per connection: whether its database has the outbox. A replay asks once per day and its book never has one;
# the catalog query costs ~5 ms, the cached answer nothing. ``install`` on a connection forgets it; a
# connection opened before another one installed the table keeps its cached "no" (the edges install on
# their own connection before the day starts).
_INSTALLED: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, bool] = weakref.WeakKeyDictionary()


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Create the outbox table in this DuckDB file (idempotent)."""
    con.execute(_DDL)
    _INSTALLED.pop(con, None)  # asked again (once) rather than assumed: this transaction might still roll back


def installed(con: duckdb.DuckDBPyConnection) -> bool:
    known = _INSTALLED.get(con)
    if known is None:
        row = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'", [TABLE]
        ).fetchone()
        known = _INSTALLED[con] = bool(row and row[0])
    return known


def alert_id(kind: str, key: str) -> str:
    return hashlib.sha256(json.dumps([kind, key]).encode("utf-8")).hexdigest()[:20]


def enqueue(
    con: duckdb.DuckDBPyConnection,
    *,
    kind: str,
    title: str,
    body: str = "",
    severity: Severity = "info",
    run_date: date | None = None,
    fields: Sequence[tuple[str, str]] = (),
    key: str | None = None,
    at: datetime | None = None,
) -> str | None:
    """Store one alert; returns its id, or ``None`` when this database has no outbox (a replay's book).

    ``key`` names what the alert is about (an order id, ``date:symbol:rule``): the same kind and key is one
    alert, whatever its text. Without a key the whole content is the identity.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown alert kind {kind!r}")
    if not installed(con):
        return None
    pairs = [(str(n), str(v)) for n, v in fields]
    identity = key if key is not None else json.dumps([str(run_date), title, body, pairs])
    aid = alert_id(kind, identity)
    seq_row = con.execute(f"SELECT coalesce(max(seq), 0) + 1 FROM {TABLE}").fetchone()
    seq = int(seq_row[0]) if seq_row else 1
    stamp = (at or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    con.execute(
        f"INSERT OR IGNORE INTO {TABLE} (alert_id, seq, created_at, run_date, kind, severity, title, body, fields) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [aid, seq, stamp, run_date, kind, severity, title, body, json.dumps(pairs)],
    )
    return aid


def _alert(row: tuple[Any, ...]) -> Alert:
    aid, seq, created, run_date, kind, severity, title, body, fields, attempts, error, delivered = row
    return Alert(alert_id=aid, seq=int(seq), created_at=created, run_date=run_date, kind=kind, severity=severity,
                 title=title, body=body, fields=[(str(n), str(v)) for n, v in json.loads(fields)],
                 attempts=int(attempts), last_error=error, delivered_at=delivered)  # fmt: skip


def alerts(con: duckdb.DuckDBPyConnection, *, pending_only: bool = False, limit: int | None = None) -> list[Alert]:
    """Alerts in the order they were enqueued (pending ones only when asked); [] without an outbox."""
    if not installed(con):
        return []
    sql = f"SELECT {_COLS} FROM {TABLE}" + (" WHERE delivered_at IS NULL" if pending_only else "") + " ORDER BY seq"
    if limit is not None:
        sql = f"SELECT * FROM ({sql} DESC LIMIT {int(limit)}) ORDER BY seq"
    return [_alert(r) for r in con.execute(sql).fetchall()]


def mark_delivered(con: duckdb.DuckDBPyConnection, aid: str, at: datetime | None = None) -> bool:
    """Record one delivery; False when it was already delivered (the caller then must not send it again)."""
    stamp = (at or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    row = con.execute(
        f"UPDATE {TABLE} SET delivered_at = ?, attempts = attempts + 1, last_error = NULL "
        "WHERE alert_id = ? AND delivered_at IS NULL RETURNING alert_id",
        [stamp, aid],
    ).fetchone()
    return row is not None


def mark_failed(con: duckdb.DuckDBPyConnection, aid: str, error: str) -> None:
    """Count a failed attempt; the alert stays pending for the next pass. ``error`` must already be redacted."""
    con.execute(f"UPDATE {TABLE} SET attempts = attempts + 1, last_error = ? WHERE alert_id = ? AND delivered_at IS NULL",
                [error[:500], aid])


def is_delivered(con: duckdb.DuckDBPyConnection, aid: str) -> bool:
    row = con.execute(f"SELECT delivered_at FROM {TABLE} WHERE alert_id = ?", [aid]).fetchone()
    return bool(row and row[0] is not None)


# --------------------------------------------------------------------------- what the trading day reports

MAX_FIELDS = 25  # Discord's limit on an embed's fields; the rest are counted in the body


def _listed(lines: list[tuple[str, str]], what: str) -> tuple[list[tuple[str, str]], str]:
    shown = lines[:MAX_FIELDS]
    more = len(lines) - len(shown)
    return shown, (f"{more} more {what} not shown (see the results file)" if more else "")


def enqueue_guard(
    con: duckdb.DuckDBPyConnection, run_date: date, universe: str, result: GuardResult, placed: Sequence[str]
) -> list[str]:
    """The day's orders placed (one alert) and the guard's rejections and clamps (another), in ``con``'s transaction.

    Keyed by the day and the order ids (or the verdicts): a re-run of the day enqueues nothing new.
    """
    ids: list[str] = []
    orders = [o for o in result.approved if o.order_id in set(placed)]
    if orders:
        lines = [(f"{o.side.upper()} {o.quantity:g} {o.symbol}",
                  f"~{o.reference_price:g} {o.currency}" + (f" (clamped: {o.clamped})" if o.clamped else "")
                  + (f" · {o.reason}" if o.reason else "")) for o in orders]  # fmt: skip
        shown, more = _listed(lines, "orders")
        aid = enqueue(con, kind="orders", run_date=run_date, title=f"{len(orders)} order(s) placed · {universe} · {run_date}",
                      body="They fill at the next session's open." + (f" {more}" if more else ""), fields=shown,
                      key=f"{universe}:{run_date}:" + ",".join(sorted(o.order_id for o in orders)))  # fmt: skip
        ids += [aid] if aid else []
    verdicts = [(f"rejected {r.symbol or '?'}", f"{r.code}: {r.detail}") for r in result.rejections]
    verdicts += [(f"clamped {c.order_id}", f"{c.code}: {c.detail} ({c.from_quantity:g} → {c.to_quantity:g})")
                 for c in result.clamps]  # fmt: skip
    if verdicts:
        shown, more = _listed(verdicts, "verdicts")
        aid = enqueue(con, kind="guard", severity="warning", run_date=run_date, fields=shown,
                      title=f"risk guard: {len(result.rejections)} rejected, {len(result.clamps)} clamped · {universe} · {run_date}",
                      body=f"mode {result.mode}" + (f"; {more}" if more else ""))  # fmt: skip
        ids += [aid] if aid else []
    return ids


def enqueue_risk_change(
    con: duckdb.DuckDBPyConnection, before: RiskState, after: RiskState, *, run_date: date | None, source: str,
    event: str = "",
) -> str | None:
    """A kill-switch mode change (``source``: ``breaker``, or ``kill_switch`` for a person's command).

    ``event`` tells two changes with the same state apart (a person's halt, resume, halt on one day: the CLI
    passes its clock); a breaker's latch is one alert per state.
    """
    if before.mode == after.mode and source == "breaker":
        return None
    severity: Severity = "critical" if after.mode == "HALTED" else ("warning" if after.mode == "REDUCING" else "info")
    kind = "breaker" if source == "breaker" else "kill_switch"
    return enqueue(con, kind=kind, severity=severity, run_date=run_date,
                   title=f"risk {before.mode} → {after.mode}" + (f" · {run_date}" if run_date else ""),
                   body=after.reason, fields=[("changed by", after.changed_by), ("since", str(after.since or "-"))],
                   key=f"{before.mode}:{after.mode}:{after.since}:{after.changed_by}:{after.reason}:{event}")  # fmt: skip


def enqueue_day(con: duckdb.DuckDBPyConnection, results: dict[str, Any]) -> list[str]:
    """The day's summary and, for a hold-all fallback, an alert with its cause, from the results dict.

    The summary's identity is its content: a re-run of a held day that ends the same way adds nothing, one
    that ends differently (the LLM came back and orders were placed) is a new summary.
    """
    run_date = date.fromisoformat(str(results["date"]))
    universe = str(results.get("universe", "?"))
    hold = results.get("hold") or {}
    ids: list[str] = []
    if hold.get("fallback"):
        aid = enqueue(con, kind="hold", severity="critical", run_date=run_date,
                      title=f"HOLD-ALL {hold.get('reason')} · {universe} · {run_date}",
                      body=f"No orders today. Cause: {hold.get('detail')}", key=f"{universe}:{run_date}:{hold.get('reason')}")
        ids += [aid] if aid else []
    p = results.get("portfolio") or {}
    risk = ((results.get("risk") or {}).get("state") or {}).get("mode", "?")
    fields = [("status", str(results.get("status"))), ("llm", str(results.get("llm"))),
              ("orders placed", str(len(results.get("placed") or []))),
              ("fills", str(len(results.get("fills") or []))),
              ("rejected", str(len(results.get("rejected") or []))),
              ("equity", f"{float(p.get('equity', 0)):,.2f} {p.get('base_currency', '')}"),
              ("cash", f"{float(p.get('cash', 0)):,.2f}"), ("positions", str(len(p.get("positions") or []))),
              ("risk", str(risk))]  # fmt: skip
    brake = (results.get("risk") or {}).get("brake")
    if ((results.get("nodes") or {}).get("risk") or {}).get("status") != "ok":
        brake = None  # no plan was made (HALTED, a hold-all): the brake capped nothing today
    if brake is not None and brake < 1:  # rule 9's drawdown brake binds: the book is being sold down
        drawdown = float((results.get("risk") or {}).get("drawdown") or 0.0)
        fields.append(("drawdown brake", f"each name at most {brake:.0%} of its size (drawdown {drawdown:.1%}); "
                                         "`tradeagent risk resume` restarts the peak"))
    why = f" ({hold.get('reason')}: {hold.get('detail')})" if hold else ""
    severity: Severity = "critical" if hold.get("fallback") else ("warning" if brake is not None and brake < 1 else "info")
    aid = enqueue(con, kind="summary", run_date=run_date, severity=severity,
                  title=f"daily summary · {universe} · {run_date}", body=f"{results.get('status')}{why}", fields=fields)
    ids += [aid] if aid else []
    return ids
