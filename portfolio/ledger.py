"""The DuckDB ledger: cash, positions, orders, fills, the equity curve and the guard's log.

Contract:
- One DuckDB FILE shared with other modules (the market-data ``ohlcv`` table lives there too): the ledger
  creates only its own ``pf_*`` tables, ``IF NOT EXISTS``, and never drops anything.
- Time never runs backwards: ``history(D)`` reports the last day with any activity, and the guard rejects a
  run for an earlier day; the broker refuses to settle a session older than the last fill.
- Settlement has a watermark (``settled_through``): each session is settled once, in order, and a session at
  or before the watermark is skipped. An order waits at every later session until its instrument has an open
  (or it expires), so one instrument without bars never blocks the others.
- Every change runs in ONE transaction (BEGIN/COMMIT, ROLLBACK on any error): a crash leaves the ledger as it
  was before the change or after it, never half-way.
- Base currency and starting cash are stored when the ledger is created; reopening it with another base
  currency raises ``LedgerError``. (A different starting cash on reopen is ignored: the stored one holds.)
- Order ids are deterministic (see ``portfolio.risk.order_id_for``) and the primary key: storing an existing
  id is a no-op, so re-running a day never trades twice. A fill's key is its order id: one fill per order.
- Money is in the base currency. Positions keep ``avg_price`` (instrument currency) and ``avg_cost_base``
  (base per unit, for P&L in base). Realised P&L excludes commission, which is summed in ``fees``; slippage is
  in the fill price. Hence ``equity = starting_cash + realised + unrealised - fees``.
- Shorts (only for orders the guard approved with ``opens_short``; ``apply_fill(..., allow_short=True)``):
  quantities are signed. A sell beyond the holding opens or increases a short; a buy first covers a short,
  then opens a long. A fill that crosses zero (long 5, sell 8) closes the old side (realising its P&L) and
  opens the rest (3) at the fill price, in one step. Short sale proceeds less commission are credited to cash;
  a short's market value is negative (quantity × price × fx), so ``equity = cash + Σ market values`` still.
  ``avg_price``/``avg_cost_base`` of a short are its average ENTRY price; covering ``c`` units realises
  ``c × (avg_cost_base − price × fx)``. A sell of an instrument not flagged ``allow_short`` beyond its holding
  raises ``LedgerError``: a long-only position never turns negative.
- Valuation: ``snapshot(market)`` marks each position at its quote (price × fx). Without a usable quote, or
  with ``market=None`` (the CLI has no market data), it uses the last mark the ledger stored — set when a
  position is filled (the open price) and by ``record_equity`` — and, failing that, the average cost.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal

import duckdb

from portfolio.errors import LedgerError
from portfolio.models import (
    ApprovedOrder,
    Fill,
    GuardResult,
    MarketSnapshot,
    OrderRecord,
    PortfolioSnapshot,
    Position,
    PositionView,
    TradingHistory,
)
from portfolio.storage import StorageError, connect

_DUST = 1e-9  # a position smaller than this many units is closed

# Bumped on any change to the tables below. A ledger of another version is refused with a one-line error
# rather than read wrongly; migrations, when one is needed, go next to this constant.
SCHEMA_VERSION = 1

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS pf_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS pf_account (
        id INTEGER PRIMARY KEY, base_currency VARCHAR NOT NULL, starting_cash DOUBLE NOT NULL,
        cash DOUBLE NOT NULL, realised_pnl DOUBLE NOT NULL, fees DOUBLE NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS pf_positions (
        symbol VARCHAR PRIMARY KEY, quantity DOUBLE NOT NULL, avg_price DOUBLE NOT NULL,
        avg_cost_base DOUBLE NOT NULL, currency VARCHAR NOT NULL, mark_base DOUBLE, mark_date DATE)""",
    """CREATE TABLE IF NOT EXISTS pf_orders (
        order_id VARCHAR PRIMARY KEY, seq BIGINT NOT NULL, run_date DATE NOT NULL, symbol VARCHAR NOT NULL,
        side VARCHAR NOT NULL, quantity DOUBLE NOT NULL, filled_quantity DOUBLE NOT NULL,
        reference_price DOUBLE NOT NULL, currency VARCHAR NOT NULL, fx_rate DOUBLE NOT NULL,
        notional_base DOUBLE NOT NULL, strategy VARCHAR NOT NULL, reason VARCHAR NOT NULL, clamped VARCHAR,
        status VARCHAR NOT NULL, status_reason VARCHAR, opens_short BOOLEAN NOT NULL DEFAULT FALSE)""",
    """CREATE TABLE IF NOT EXISTS pf_fills (
        order_id VARCHAR PRIMARY KEY, seq BIGINT NOT NULL, symbol VARCHAR NOT NULL, side VARCHAR NOT NULL, quantity DOUBLE NOT NULL,
        price DOUBLE NOT NULL, commission DOUBLE NOT NULL, slippage DOUBLE NOT NULL, fill_date DATE NOT NULL,
        currency VARCHAR NOT NULL, fx_rate DOUBLE NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS pf_equity (
        day DATE PRIMARY KEY, equity DOUBLE NOT NULL, cash DOUBLE NOT NULL, market_value DOUBLE NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS pf_guard_log (
        seq BIGINT NOT NULL, run_date DATE NOT NULL, kind VARCHAR NOT NULL, symbol VARCHAR, order_id VARCHAR,
        code VARCHAR NOT NULL, detail VARCHAR NOT NULL, raw VARCHAR, from_quantity DOUBLE, to_quantity DOUBLE)""",
]

_ORDER_COLS = ("order_id, run_date, symbol, side, quantity, filled_quantity, reference_price, currency, fx_rate, "
               "notional_base, strategy, reason, clamped, status, status_reason, opens_short")


def _check_schema(con: duckdb.DuckDBPyConnection, db_path: Path) -> None:
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    version = None
    if "pf_meta" in tables:
        rows = con.execute("SELECT value FROM pf_meta WHERE key = 'schema_version'").fetchall()
        version = rows[0][0] if rows else None
    if version != str(SCHEMA_VERSION):
        found = f"schema v{version}" if version is not None else "a pre-release schema"
        raise LedgerError(f"the ledger at {db_path} has {found}; this tradeagent reads schema v{SCHEMA_VERSION} "
                          "(use another TRADEAGENT_HOME, or an older tradeagent to read it)")


class Ledger:
    """The paper portfolio's books in a DuckDB file (``Path(':memory:')`` works for tests)."""

    def __init__(self, db_path: Path, *, base_currency: str, starting_cash: float) -> None:
        if not isinstance(base_currency, str) or not base_currency.strip():
            raise LedgerError("base currency must be a non-empty code such as 'USD'")
        if not math.isfinite(starting_cash) or starting_cash <= 0:
            raise LedgerError(f"starting cash must be positive and finite, got {starting_cash}")
        self.path = Path(db_path)
        try:
            self._con = connect(db_path)
        except StorageError as exc:
            raise LedgerError(f"cannot open the ledger: {exc}") from None
        self._in_tx = False
        if str(db_path) == ":memory:":
            # A replay's private book: only tiny statements, where DuckDB's thread pool costs ~30% of each one.
            # (A file ledger shares its database instance with the market cache, whose scans use the threads.)
            self._con.execute("SET threads = 1")
        tables = {r[0] for r in self._con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "pf_account" in tables:
            try:
                _check_schema(self._con, self.path)
            except LedgerError:
                self.close()
                raise
        with self.transaction():
            for ddl in _SCHEMA:
                self._con.execute(ddl)
            row = self._con.execute("SELECT base_currency FROM pf_account WHERE id = 1").fetchone()
            if row is None:
                self._con.execute("INSERT INTO pf_account VALUES (1, ?, ?, ?, 0, 0)",
                                  [base_currency.strip().upper(), float(starting_cash), float(starting_cash)])
                self._con.execute("INSERT OR REPLACE INTO pf_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        stored = self.base_currency
        if stored != base_currency.strip().upper():
            self.close()
            raise LedgerError(f"the ledger at {db_path} is in {stored}, not {base_currency}; "
                              "use another TRADEAGENT_HOME for another base currency")

    @classmethod
    def open_existing(cls, db_path: Path, *, read_only: bool = True) -> Ledger | None:
        """Open a ledger that already exists (its stored base currency), or None when there is none yet.

        Read-only by default (for the CLI): it never creates tables, and DuckDB allows several readers.
        """
        if str(db_path) != ":memory:" and not Path(db_path).exists():
            return None
        try:
            con = connect(db_path, read_only=read_only)
        except StorageError as exc:
            raise LedgerError(f"cannot open the ledger: {exc}") from None
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "pf_account" not in tables or not con.execute("SELECT count(*) FROM pf_account").fetchone()[0]:  # type: ignore[index]
            con.close()
            return None
        try:
            _check_schema(con, Path(db_path))
        except LedgerError:
            con.close()
            raise
        ledger = cls.__new__(cls)
        ledger.path, ledger._con, ledger._in_tx = Path(db_path), con, False
        return ledger

    # ------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Ledger]:
        """Run the block against the book and then undo all of it (a dry run): one transaction, always rolled back.

        Every ``transaction()`` inside joins it, so settlement, equity marks and guard logs written by the
        block are visible to the block and discarded at its end, whatever happens.
        """
        if self._in_tx:
            raise LedgerError("a scratch block cannot start inside a transaction")
        self._con.begin()
        self._in_tx = True
        try:
            yield self
        finally:
            with contextlib.suppress(duckdb.Error):
                self._con.rollback()
            self._in_tx = False

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One BEGIN/COMMIT around the block (ROLLBACK on error); nested use joins the outer transaction."""
        if self._in_tx:
            yield self._con
            return
        self._con.begin()
        self._in_tx = True
        try:
            yield self._con
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                self._con.rollback()
            raise
        else:
            self._con.commit()
        finally:
            self._in_tx = False

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._con.execute(sql, list(params)).fetchall()

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self._con.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ reads

    @functools.cached_property
    def base_currency(self) -> str:  # fixed when the ledger is created: read once
        return str(self._rows("SELECT base_currency FROM pf_account WHERE id = 1")[0][0])

    @property
    def starting_cash(self) -> float:
        return float(self._rows("SELECT starting_cash FROM pf_account WHERE id = 1")[0][0])

    def account(self) -> dict[str, float]:
        cash, realised, fees = self._rows("SELECT cash, realised_pnl, fees FROM pf_account WHERE id = 1")[0]
        return {"cash": float(cash), "realised_pnl": float(realised), "fees": float(fees)}

    def positions(self) -> list[Position]:
        rows = self._rows("SELECT symbol, quantity, avg_price, currency FROM pf_positions "
                          "WHERE quantity <> 0 ORDER BY symbol")
        return [Position(symbol=s, quantity=q, avg_price=a, currency=c) for s, q, a, c in rows]

    def position_costs(self) -> dict[str, tuple[float, float, float | None]]:
        """symbol → (signed quantity, average cost in base per unit, last mark in base per unit or None)."""
        rows = self._rows("SELECT symbol, quantity, avg_cost_base, mark_base FROM pf_positions WHERE quantity <> 0")
        return {s: (float(q), float(c), None if m is None else float(m)) for s, q, c, m in rows}

    def orders(self, status: str | None = None) -> list[OrderRecord]:
        sql = f"SELECT {_ORDER_COLS} FROM pf_orders"
        params: list[Any] = []
        if status is not None:
            sql += " WHERE status = ?"
            params.append(status)
        names = [c.strip() for c in _ORDER_COLS.split(",")]
        return [OrderRecord(**dict(zip(names, row, strict=True)))
                for row in self._rows(sql + " ORDER BY seq", params)]

    def fills(self, *, after: date | None = None, until: date | None = None) -> list[Fill]:
        """Fills in booking order; ``after`` < fill date <= ``until`` when given."""
        rows = self._rows("SELECT f.order_id, f.symbol, f.side, f.quantity, f.price, f.commission, f.slippage, "
                          "f.fill_date, f.currency, f.fx_rate FROM pf_fills f "
                          "WHERE (? IS NULL OR f.fill_date > ?) AND (? IS NULL OR f.fill_date <= ?) ORDER BY f.seq",
                          [after, after, until, until])
        keys = ("order_id", "symbol", "side", "quantity", "price", "commission", "slippage", "fill_date",
                "currency", "fx_rate")
        return [Fill(**dict(zip(keys, r, strict=True))) for r in rows]

    def equity_curve(self) -> list[tuple[date, float]]:
        return [(d, float(v)) for d, v in self._rows("SELECT day, equity FROM pf_equity ORDER BY day")]

    def history(self, run_date: date) -> TradingHistory:
        """Orders stored for ``run_date``, each symbol's last order date, the last active day, pending orders."""
        ids = [r[0] for r in self._rows("SELECT order_id FROM pf_orders WHERE run_date = ? ORDER BY seq",
                                        [run_date])]
        last = dict(self._rows("SELECT symbol, max(run_date) FROM pf_orders WHERE run_date <= ? GROUP BY symbol",
                               [run_date]))
        decided = [r[0] for r in self._rows("SELECT DISTINCT strategy FROM pf_orders WHERE run_date = ? "
                                            "ORDER BY strategy", [run_date])]
        return TradingHistory(run_date=run_date, order_ids_today=ids, last_trade=last,
                              latest_activity=self.last_activity(), decided_strategies=decided,
                              pending=self.orders(status="pending"))

    def last_activity(self) -> date | None:
        """The last day with an order, a fill or an equity mark: where an interrupted run resumes."""
        return self._rows("SELECT max(d) FROM (SELECT max(run_date) AS d FROM pf_orders UNION ALL "
                          "SELECT max(day) FROM pf_equity UNION ALL SELECT max(fill_date) FROM pf_fills)")[0][0]

    def last_fill_date(self) -> date | None:
        return self._rows("SELECT max(fill_date) FROM pf_fills")[0][0]

    def settled_through(self) -> date | None:
        """The last session whose opens settlement has processed (every later session is still to settle).

        Stored in ``pf_meta`` by ``mark_settled`` in the settling transaction. A ledger written before the
        watermark existed falls back to its last equity mark or fill: a run marks equity only after it has
        settled every session up to its own date.
        """
        rows = self._rows("SELECT value FROM pf_meta WHERE key = 'settled_through'")
        if rows:
            return date.fromisoformat(rows[0][0])
        return self._rows("SELECT max(d) FROM (SELECT max(day) AS d FROM pf_equity UNION ALL "
                          "SELECT max(fill_date) FROM pf_fills)")[0][0]

    def guard_log(self, run_date: date | None = None) -> list[dict[str, Any]]:
        sql = ("SELECT run_date, kind, symbol, order_id, code, detail, raw, from_quantity, to_quantity "
               "FROM pf_guard_log")
        params: list[Any] = []
        if run_date is not None:
            sql += " WHERE run_date = ?"
            params.append(run_date)
        keys = ("run_date", "kind", "symbol", "order_id", "code", "detail", "raw", "from_quantity", "to_quantity")
        return [dict(zip(keys, r, strict=True)) for r in self._rows(sql + " ORDER BY seq", params)]

    def snapshot(self, market: MarketSnapshot | None = None) -> PortfolioSnapshot:
        """Value the book: at ``market``'s quotes where usable, else at the last stored marks (see module doc)."""
        acct = self.account()
        lots = self._rows("SELECT symbol, quantity, avg_price, avg_cost_base, mark_base, mark_date "
                          "FROM pf_positions WHERE quantity <> 0 ORDER BY symbol")
        values: list[tuple[str, float, float, float]] = []
        unrealised = 0.0
        for symbol, qty, avg_price, avg_cost, mark, _ in lots:
            unit = _quote_unit(market, symbol)
            if unit is None:
                unit = float(mark) if mark is not None else float(avg_cost)
            values.append((symbol, float(qty), float(avg_price), qty * unit))  # negative for a short
            unrealised += qty * (unit - avg_cost)  # signed quantity: a short gains when the price falls
        equity = acct["cash"] + sum(v for *_, v in values)
        positions = [PositionView(symbol=s, quantity=q, avg_price=a, market_value=v,
                                  weight=v / equity if equity > 0 else 0.0) for s, q, a, v in values]
        return PortfolioSnapshot(as_of=market.as_of if market is not None else self._last_mark_date(),
                                 base_currency=self.base_currency, cash=acct["cash"], equity=equity,
                                 positions=positions, realised_pnl=acct["realised_pnl"],
                                 unrealised_pnl=unrealised, fees=acct["fees"])

    def _last_mark_date(self) -> date:
        row = self._rows("SELECT max(d) FROM (SELECT max(day) AS d FROM pf_equity UNION ALL "
                         "SELECT max(mark_date) FROM pf_positions UNION ALL SELECT max(fill_date) FROM pf_fills)")
        return row[0][0] if row and row[0][0] is not None else date.min

    # ------------------------------------------------------------ writes

    def add_orders(self, orders: Sequence[ApprovedOrder]) -> list[str]:
        """Store approved orders as pending, in one transaction; an id already stored is left as it is.

        An order decided before the book's last activity is refused (``LedgerError``): it was approved against
        an older book, and time never runs backwards in the ledger.
        """
        last = self.last_activity()
        stale = [o.order_id for o in orders if last is not None and o.run_date < last]
        if stale:
            raise LedgerError(f"order(s) {', '.join(stale[:3])} decided before the book's last activity ({last})")
        if not orders:
            return []
        with self.transaction() as con:
            seq = int(con.execute("SELECT coalesce(max(seq), 0) FROM pf_orders").fetchone()[0])  # type: ignore[index]
            # One multi-row statement: submit order is the seq order, a stored id keeps its row (and its seq).
            rows = ", ".join("(?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, 'pending', NULL, ?)" for _ in orders)
            params = [x for n, o in enumerate(orders, start=seq + 1)
                      for x in (n, o.order_id, o.run_date, o.symbol, o.side, o.quantity, o.reference_price,
                                o.currency, o.fx_rate, o.notional_base, o.strategy, o.reason, o.clamped,
                                o.opens_short)]
            con.execute(f"INSERT INTO pf_orders (seq, {_ORDER_COLS}) VALUES {rows} ON CONFLICT DO NOTHING", params)
        return [o.order_id for o in orders]

    def cancel(self, order_id: str, reason: str) -> bool:
        """Cancel a pending order; False when it is not pending."""
        with self.transaction() as con:
            n = con.execute("SELECT count(*) FROM pf_orders WHERE order_id = ? AND status = 'pending'",
                            [order_id]).fetchone()[0]  # type: ignore[index]
            if n:
                con.execute("UPDATE pf_orders SET status = 'cancelled', status_reason = ? WHERE order_id = ?",
                            [reason, order_id])
        return bool(n)

    def close_delisted(self, symbol: str, day: date, price: float, fx_rate: float, reason: str) -> Fill | None:
        """Close the whole position in ``symbol`` at ``price`` (its last close) because its data ended.

        Not a trade anyone decided: an instrument that stops trading is cashed out at its last price, with no
        commission or slippage, booked on ``day`` (the ledger never goes back in time) as a filled order of
        strategy ``delisting``. Its pending orders are cancelled with ``reason``. None when nothing was held.
        """
        held = {s: q for s, (q, _, _) in self.position_costs().items()}.get(symbol, 0.0)
        with self.transaction() as con:
            for o in self.pending_before(date.max):
                if o.symbol == symbol:
                    self.cancel(o.order_id, reason)
            if held == 0.0:
                return None
            side: Literal["buy", "sell"] = "sell" if held > 0 else "buy"
            qty = abs(held)
            order_id = f"{day:%Y%m%d}-{symbol}-{side}-delisting"
            currency = con.execute("SELECT currency FROM pf_positions WHERE symbol = ?", [symbol]).fetchone()[0]  # type: ignore[index]
            seq = int(con.execute("SELECT coalesce(max(seq), 0) + 1 FROM pf_orders").fetchone()[0])  # type: ignore[index]
            con.execute(
                f"INSERT INTO pf_orders (seq, {_ORDER_COLS}) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, 'delisting', ?,"
                " NULL, 'pending', NULL, FALSE)",
                [seq, order_id, day, symbol, side, qty, price, currency, fx_rate, qty * price * fx_rate, reason],
            )
            fill = Fill(order_id=order_id, symbol=symbol, side=side, quantity=qty, price=price, commission=0.0,
                        slippage=0.0, fill_date=day, currency=currency, fx_rate=fx_rate)
            self.apply_fill(fill, mark_base=price * fx_rate, note=reason, allow_short=False)
        return fill

    def mark_settled(self, session: date) -> None:
        """Move the settlement watermark to ``session`` (never backwards); part of the settling transaction."""
        rows = self._rows("SELECT value FROM pf_meta WHERE key = 'settled_through'")
        if rows and session <= date.fromisoformat(rows[0][0]):  # the stored mark only: never the fallback
            return
        with self.transaction() as con:
            con.execute("INSERT OR REPLACE INTO pf_meta VALUES ('settled_through', ?)", [session.isoformat()])

    def record_equity(self, day: date, snapshot: PortfolioSnapshot) -> None:
        """Store the day's equity (replacing a re-run's) and each position's mark, in one transaction."""
        mv = sum(p.market_value for p in snapshot.positions)
        marks = [(p.symbol, p.market_value / p.quantity) for p in snapshot.positions  # value / signed qty > 0
                 if p.quantity != 0 and math.isfinite(p.market_value)]
        with self.transaction() as con:
            con.execute("INSERT OR REPLACE INTO pf_equity VALUES (?, ?, ?, ?)",
                        [day, snapshot.equity, snapshot.cash, mv])
            if marks:  # one statement for every position (a DuckDB statement costs ~0.5 ms, a replay marks daily)
                rows = ", ".join("(?, ?)" for _ in marks)
                con.execute(f"UPDATE pf_positions SET mark_base = m.mark, mark_date = ? FROM (VALUES {rows}) "
                            "AS m(symbol, mark) WHERE pf_positions.symbol = m.symbol "
                            "AND (pf_positions.mark_date IS NULL OR pf_positions.mark_date <= ?)",
                            [day, *(x for pair in marks for x in pair), day])

    def record_guard(self, run_date: date, result: GuardResult) -> None:
        """Append every rejection and clamp of a guard run to the guard log, in one transaction."""
        with self.transaction() as con:
            seq = int(con.execute("SELECT coalesce(max(seq), 0) FROM pf_guard_log").fetchone()[0])  # type: ignore[index]
            for r in result.rejections:
                seq += 1
                con.execute("INSERT INTO pf_guard_log VALUES (?, ?, 'rejection', ?, NULL, ?, ?, ?, NULL, NULL)",
                            [seq, run_date, r.symbol, r.code, r.detail, r.raw])
            for c in result.clamps:
                seq += 1
                con.execute("INSERT INTO pf_guard_log VALUES (?, ?, 'clamp', NULL, ?, ?, ?, NULL, ?, ?)",
                            [seq, run_date, c.order_id, c.code, c.detail, c.from_quantity, c.to_quantity])

    # ------------------------------------------------------------ used by the broker inside a transaction

    def pending_before(self, session: date) -> list[OrderRecord]:
        """Pending orders decided before ``session``: by decision date, sells first, then in submit order."""
        names = [c.strip() for c in _ORDER_COLS.split(",")]
        rows = self._rows(f"SELECT {_ORDER_COLS} FROM pf_orders WHERE status = 'pending' AND run_date < ? "
                          "ORDER BY run_date, side = 'buy', seq", [session])
        return [OrderRecord(**dict(zip(names, r, strict=True))) for r in rows]

    def apply_fill(self, fill: Fill, mark_base: float, note: str | None, *, allow_short: bool = False) -> None:
        """Book one fill: cash, signed position (average entry), realised P&L, fees, the order's status.

        ``allow_short`` (the order's ``opens_short``) lets a sell go beyond the holding; without it that raises.
        """
        if not self._in_tx:
            raise LedgerError("apply_fill must run inside Ledger.transaction()")
        con = self._con
        gross = fill.quantity * fill.price * fill.fx_rate
        # cash and the position in one statement (no position: NULLs)
        cash, *lot = con.execute("SELECT a.cash, p.quantity, p.avg_price, p.avg_cost_base FROM pf_account a "
                                 "LEFT JOIN pf_positions p ON p.symbol = ? WHERE a.id = 1", [fill.symbol]).fetchone()  # type: ignore[misc]
        held = lot[0] is not None
        qty, avg_price, avg_cost = (float(lot[0]), float(lot[1]), float(lot[2])) if held else (0.0, 0.0, 0.0)
        cash = float(cash)
        if fill.side == "sell" and fill.quantity > qty + _DUST and not allow_short:
            raise LedgerError(f"sell of {fill.quantity} {fill.symbol} exceeds the {qty} held")
        direction = 1.0 if fill.side == "buy" else -1.0
        cash_after = cash - direction * gross - fill.commission
        (new_qty, avg_price, avg_cost), realised = _book_lot(qty, avg_price, avg_cost, direction, fill)
        if cash_after < -1e-6:
            raise LedgerError(f"fill {fill.order_id} would leave cash at {cash_after:.2f}")
        if held:
            con.execute("UPDATE pf_positions SET quantity = ?, avg_price = ?, avg_cost_base = ?, mark_base = ?, "
                        "mark_date = ? WHERE symbol = ?",
                        [new_qty, avg_price, avg_cost, mark_base, fill.fill_date, fill.symbol])
        else:
            con.execute("INSERT INTO pf_positions VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [fill.symbol, new_qty, avg_price, avg_cost, fill.currency, mark_base, fill.fill_date])
        con.execute("UPDATE pf_account SET cash = ?, realised_pnl = realised_pnl + ?, fees = fees + ? WHERE id = 1",
                    [max(cash_after, 0.0), realised, fill.commission])
        con.execute("INSERT INTO pf_fills SELECT ?, coalesce(max(seq), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM pf_fills",
                    [fill.order_id, fill.symbol, fill.side, fill.quantity, fill.price, fill.commission,
                     fill.slippage, fill.fill_date, fill.currency, fill.fx_rate])
        con.execute("UPDATE pf_orders SET status = 'filled', filled_quantity = ?, status_reason = ? "
                    "WHERE order_id = ?", [fill.quantity, note, fill.order_id])


def _book_lot(qty: float, avg_price: float, avg_cost: float, direction: float,
              fill: Fill) -> tuple[tuple[float, float, float], float]:
    """(new signed quantity, average entry price, average entry cost in base per unit), realised P&L.

    Trading WITH the position (or from flat) averages the entry; trading AGAINST it closes up to its size at
    the entry cost (P&L = side of the old lot × closed × (price × fx − entry cost)) and opens whatever is left
    on the other side at the fill price: crossing zero in one fill is exact.
    """
    gross = fill.quantity * fill.price * fill.fx_rate
    if qty == 0.0 or (qty > 0) == (direction > 0):
        size = abs(qty) + fill.quantity
        new_avg = (abs(qty) * avg_price + fill.quantity * fill.price) / size
        new_cost = (abs(qty) * avg_cost + gross) / size
        return (qty + direction * fill.quantity, new_avg, new_cost), 0.0
    held = abs(qty)
    # Within dust of the holding: the whole fill closes it (no dust short or long left on the other side).
    closed = fill.quantity if fill.quantity <= held + _DUST else held
    old_side = 1.0 if qty > 0 else -1.0
    realised = old_side * (closed * fill.price * fill.fx_rate - closed * avg_cost)
    rest = fill.quantity - closed
    if rest > _DUST:
        return (direction * rest, fill.price, fill.price * fill.fx_rate), realised
    left = held - closed
    if left <= _DUST:
        return (0.0, 0.0, 0.0), realised
    return (old_side * left, avg_price, avg_cost), realised


def _quote_unit(market: MarketSnapshot | None, symbol: str) -> float | None:
    if market is None:
        return None
    q = market.quotes.get(symbol)
    if q is None:
        return None
    unit = q.price * q.fx_rate
    return unit if math.isfinite(unit) and unit > 0 else None
