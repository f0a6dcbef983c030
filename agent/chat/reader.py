"""Everything the chat and the dashboard read, and nothing that writes: the book, results files, evals, risk.

Contract:
- ``Home(settings)`` reads ``TRADEAGENT_HOME`` live on every call; nothing is cached between calls, so a tab
  opened after a daily run shows that run.
- ``Home.book()`` opens the DuckDB ledger READ-ONLY, reads everything a request needs in one go and closes it
  at once (``Book``); no ledger yet is an empty ``Book`` (``exists`` False). A file held by a running daily
  job past ``portfolio.storage``'s lock wait raises ``BookBusy`` (one line, "the book is being updated").
- Days, a day's account and the nearest days come from ``agent.cli_explain`` (the same readers as
  ``tradeagent explain``); the portfolio summary from ``agent.cli_portfolio.book_summary``.
- ``risk()``, ``eval_reports()``, ``alerts()`` (the outbox, ``portfolio.outbox.alerts`` on a read-only
  connection) and ``memory_search()`` (the Chroma memory, ``memory.store``, searched point-in-time) are
  read-only too; a home without an outbox or a memory yet answers [] and creates nothing.

Deliberate decisions:
- Read-only by construction: this module never calls a ledger write, never opens the file read-write,
  never takes the risk state's lock and never writes a file. The chat's LLM tools are built on it alone.
- The book is opened per request and closed before returning (milliseconds): the daily run's own open
  waits for it (``portfolio.storage.connect`` retries a lock), so the two never block each other for long.
- Eval reports are read from ``TRADEAGENT_HOME/evals/<name>/report.json`` as JSON (``evals`` is a layer above
  ``agent``: it is never imported here).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from agent.cli_common import UserError
from agent.cli_explain import account, load_day, results_days
from agent.cli_portfolio import book_summary
from agent.cli_risk import drawdown_now
from agent.errors import AgentError
from agent.settings import Settings
from portfolio import outbox
from portfolio.breakers import RiskStateStore
from portfolio.errors import LedgerError, PortfolioError
from portfolio.ledger import Ledger
from portfolio.risk import load_limits
from portfolio.storage import StorageError, connect


class BookBusy(AgentError):
    """The DuckDB file is held by a running job (a daily run) for longer than the lock wait."""


class Unavailable(AgentError):
    """A feature this install does not have (yet), or a record that does not exist; the message says which."""


@dataclass(frozen=True)
class Book:
    """One read of the ledger: the ``portfolio --json`` summary, equity marks, orders, fills, guard log."""

    exists: bool
    summary: dict[str, Any]
    curve: list[tuple[date, float]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    guard_log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def base_currency(self) -> str:
        return str(self.summary.get("base_currency") or "USD")

    def symbols(self) -> set[str]:
        found = {str(o["symbol"]) for o in self.orders} | {str(p["symbol"]) for p in self.summary["positions"]}
        return found | {str(g["symbol"]) for g in self.guard_log if g.get("symbol")}

    def last_day(self) -> date | None:
        days = [d for d, _ in self.curve] + [o["run_date"] for o in self.orders] + [f["fill_date"] for f in self.fills]
        return max(days, default=None)


_DEFAULT_CASH = 10_000.0


class Home:
    """Read-only views of one ``TRADEAGENT_HOME``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # ------------------------------------------------------------ the ledger

    def book(self) -> Book:
        """The ledger read once, read-only, and closed; ``BookBusy`` when a running job holds the file."""
        try:
            ledger = Ledger.open_existing(self.settings.db_path, read_only=True)
        except LedgerError as exc:
            text = " ".join(str(exc).split())
            if "locked by another process" in text:
                raise BookBusy("the book is being updated by a running job (a daily run); try again in a moment") \
                    from None
            raise
        if ledger is None:
            cash = float(self.settings.starting_cash or _DEFAULT_CASH)
            return Book(exists=False, summary={
                "base_currency": "USD", "cash": cash, "equity": cash, "positions": [], "as_of": None,
                "starting_cash": cash, "realised_pnl": 0.0, "unrealised_pnl": 0.0, "fees": 0.0,
                "return_since_start": 0.0, "max_drawdown": None, "pending": []})  # fmt: skip
        try:
            summary, curve = book_summary(ledger)
            orders = [o.model_dump() for o in ledger.orders()]
            fills = [f.model_dump() for f in ledger.fills()]
            guard = ledger.guard_log()
        finally:
            ledger.close()
        return Book(exists=True, summary=summary, curve=curve, orders=orders, fills=fills, guard_log=guard)

    # ------------------------------------------------------------ results files

    def days(self) -> list[date]:
        """Days with a results file (real or dry run), oldest first."""
        return sorted(results_days(self.settings.daily_results_dir))

    def real_days(self) -> list[date]:
        """Days with a real run's results file (not only a dry run's), oldest first."""
        return sorted(d for d, paths in results_days(self.settings.daily_results_dir).items()
                      if not paths[0].name.endswith(".dry-run.json"))

    def day(self, day: date, symbol: str | None = None) -> dict[str, Any]:
        """``tradeagent explain D --json``'s account of ``day``; ``Unavailable`` (naming the nearest days) if none."""
        try:
            results, path = load_day(self.settings.daily_results_dir, day)
        except UserError as exc:
            raise Unavailable(str(exc)) from None
        acc = account(results, path, symbol.upper() if symbol else None)
        acc["source"] = self.relative(Path(acc["source"]))
        return acc

    def relative(self, path: Path) -> str:
        """``path`` relative to the home (how answers cite a file), else as it is."""
        try:
            return str(path.relative_to(self.settings.home))
        except ValueError:
            return str(path)

    def anchor(self, book: Book | None) -> date | None:
        """The book's last session: what "today", "this month" and "last week" are measured from."""
        days = self.real_days()
        candidates = [d for d in (book.last_day() if book is not None else None, days[-1] if days else None) if d]
        return max(candidates, default=None)

    # ------------------------------------------------------------ risk, evals, alerts, memory

    def risk(self, book_exists: bool) -> dict[str, Any]:
        """The kill-switch state, the limits in force (with risk.toml's notes) and the drawdown as the breaker judges
        it with what the profile's brake allows there (``agent.cli_risk.drawdown_now``), read-only."""
        state = RiskStateStore(self.settings.risk_state_path).load(book_exists=book_exists)
        try:
            limits, notes = load_limits(self.settings.risk_config_path)
            return {"state": state.model_dump(mode="json"), "limits": limits.model_dump(), "notes": notes,
                    "config_error": None, "drawdown": drawdown_now(self.settings, state)}
        except PortfolioError as exc:  # a broken risk.toml: the daily run refuses to trade; say so
            return {"state": state.model_dump(mode="json"), "limits": {}, "notes": [],
                    "config_error": " ".join(str(exc).split()), "drawdown": drawdown_now(self.settings, state)}

    def eval_reports(self) -> list[dict[str, Any]]:
        """Reports under ``TRADEAGENT_HOME/evals/*/report.json``, newest first: name, paths, window, metrics."""
        root = self.settings.home / "evals"
        if not root.is_dir():
            return []
        found = []
        for path in root.glob("*/report.json"):
            try:
                report = json.loads(path.read_text(encoding="utf-8"))
                policies = report["policies"]
                config = report.get("config") or {}
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if not isinstance(policies, dict):
                continue
            metrics = {name: (block.get("metrics") or {}) for name, block in policies.items() if isinstance(block, dict)}
            html = path.with_name("report.html")
            found.append({"name": path.parent.name, "report": self.relative(path), "path": str(path),
                          "html": str(html) if html.is_file() else None, "config": config, "metrics": metrics,
                          "mtime": path.stat().st_mtime})
        return sorted(found, key=lambda r: r["mtime"], reverse=True)

    def alerts(self, limit: int = 200) -> list[dict[str, Any]]:
        """The alert outbox (``portfolio.outbox``), newest first, read-only; [] without a book or an outbox."""
        if not self.settings.db_path.exists():
            return []
        try:
            con = connect(self.settings.db_path, read_only=True)
        except StorageError as exc:
            if "locked by another process" in str(exc):
                raise BookBusy("the book is being updated by a running job (a daily run); try again in a moment") \
                    from None
            raise Unavailable(f"the alerts cannot be read ({exc})") from None
        try:
            rows = outbox.alerts(con, limit=limit)
        finally:
            con.close()
        return [{"created": a.created_at.isoformat(timespec="seconds"), "run_date": a.run_date, "kind": a.kind,
                 "severity": a.severity, "title": a.title, "text": a.body,
                 "fields": "; ".join(f"{n}: {v}" for n, v in a.fields),
                 "delivered": a.delivered_at.isoformat(timespec="seconds") if a.delivered_at else "pending"}
                for a in reversed(rows)]

    def memory_search(self, text: str, as_of: date | None, k: int = 5,
                      symbol: str | None = None) -> list[dict[str, Any]]:
        """Past decisions like ``text`` that day ``as_of`` could recall (``memory``), read-only; [] without one."""
        if not (self.settings.memory_dir / "chroma.sqlite3").exists():  # opening would create the folder
            return []
        from agent.memory_inputs import hit_view  # chromadb and the embedder only when asked
        from agent.memory_open import embedder_for
        from memory.errors import MemoryStoreError
        from memory.models import date_int
        from memory.store import ChromaMemoryStore

        try:
            store = ChromaMemoryStore.persistent(self.settings.memory_dir, embedder_for(self.settings))
            try:
                hits = store.search([text], as_of=date_int(as_of or date(9999, 12, 31)), k=k, symbol=symbol)[0]
            finally:
                store.close()
        except MemoryStoreError as exc:
            raise Unavailable(f"the memory cannot be searched ({' '.join(str(exc).split())})") from None
        return [hit_view(h) for h in hits]
