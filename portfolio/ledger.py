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
- The books live in memory; the DuckDB file is their durable copy. Opening a ledger reads every ``pf_*`` table
  once; every read answers from memory; a change is made in memory at once and written to the file just
  before its transaction's COMMIT, one statement per changed table. A rollback (an error, ``scratch``) or a
  failed write restores the books in memory as they were at BEGIN. A ledger at ``:memory:`` (a replay's
  private book, a dry run without a book) keeps its books in memory only: the same code books every change,
  and no later reader exists. Hence one open ``Ledger`` must be the only writer of its file while it is open:
  DuckDB lets one process write a file, and within a process the daily run, the CLI and the scheduler's
  one-at-a-time jobs each open their own and close it when done.
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

import bisect
import contextlib
import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal, NamedTuple

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


class _Lot(NamedTuple):
    """One row of ``pf_positions`` (a closed position keeps its row, with quantity 0)."""

    quantity: float
    avg_price: float
    avg_cost_base: float
    currency: str
    mark_base: float | None
    mark_date: date | None


class _GuardRow(NamedTuple):
    seq: int
    run_date: date
    kind: str
    symbol: str | None
    order_id: str | None
    code: str
    detail: str
    raw: str | None
    from_quantity: float | None
    to_quantity: float | None


_LOG_COLUMNS = ("run_date", "kind", "symbol", "order_id", "code", "detail", "raw", "from_quantity", "to_quantity")
_FILL_KEYS = ("order_id", "symbol", "side", "quantity", "price", "commission", "slippage", "fill_date", "currency",
              "fx_rate")
_ORDER_NAMES = [c.strip() for c in _ORDER_COLS.split(",")]


@dataclass
class _Books:
    """Everything the ledger holds, in memory: what every read answers from, and what a commit writes."""

    base_currency: str
    starting_cash: float
    cash: float
    realised: float
    fees: float
    positions: dict[str, _Lot]
    orders: dict[str, tuple[int, OrderRecord]]  # id → (seq, order), in seq order
    fills: list[tuple[int, Fill]]  # (seq, fill), in seq order
    equity: dict[date, tuple[float, float, float]]  # day → (equity, cash, market value)
    guard: list[_GuardRow]
    meta: dict[str, str]



@dataclass
class _Changes:
    """What a transaction changed: written to DuckDB at COMMIT, one statement per table, and undone on ROLLBACK.

    The books' small parts (account, positions, meta) are copied at BEGIN; the growing ones are not: fills and
    the guard log only grow (a rollback cuts them back), and the orders and equity rows a transaction touches
    keep their value from before it (``None``: a row it added), so BEGIN costs the same on a long book.
    """

    fills_from: int
    guard_from: int
    before: tuple[float, float, float, dict[str, _Lot], dict[str, str]]  # cash, realised, fees, positions, meta
    account: bool = False
    positions: set[str] = dataclasses.field(default_factory=set)
    orders: dict[str, tuple[int, OrderRecord] | None] = dataclasses.field(default_factory=dict)
    equity: dict[date, tuple[float, float, float] | None] = dataclasses.field(default_factory=dict)
    meta: set[str] = dataclasses.field(default_factory=set)


class Ledger:
    """The paper portfolio's books in a DuckDB file (``Path(':memory:')``: a book that lives in this process)."""

    def __init__(self, db_path: Path, *, base_currency: str, starting_cash: float) -> None:
        if not isinstance(base_currency, str) or not base_currency.strip():
            raise LedgerError("base currency must be a non-empty code such as 'USD'")
        if not math.isfinite(starting_cash) or starting_cash <= 0:
            raise LedgerError(f"starting cash must be positive and finite, got {starting_cash}")
        try:
            con = connect(db_path)
        except StorageError as exc:
            raise LedgerError(f"cannot open the ledger: {exc}") from None
        if str(db_path) == ":memory:":
            # The outbox (a test's) may still run statements here: DuckDB's thread pool costs ~30% of tiny ones.
            con.execute("SET threads = 1")
        try:
            tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
            if "pf_account" in tables:
                _check_schema(con, Path(db_path))
            con.begin()
            try:
                for ddl in _SCHEMA:
                    con.execute(ddl)
                if con.execute("SELECT base_currency FROM pf_account WHERE id = 1").fetchone() is None:
                    con.execute("INSERT INTO pf_account VALUES (1, ?, ?, ?, 0, 0)",
                                [base_currency.strip().upper(), float(starting_cash), float(starting_cash)])
                    con.execute("INSERT OR REPLACE INTO pf_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.rollback()
                raise
            con.commit()
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.close()
            raise
        self._attach(con, Path(db_path))
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
        ledger._attach(con, Path(db_path))
        return ledger

    def _attach(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        """Read the whole book into memory (one query per table): every later read answers from there."""
        self.path, self._con, self._in_tx = path, con, False
        self._persist = str(path) != ":memory:"
        self._changes: _Changes | None = None
        base, start, cash, realised, fees = con.execute(
            "SELECT base_currency, starting_cash, cash, realised_pnl, fees FROM pf_account WHERE id = 1").fetchone()  # type: ignore[misc]
        positions = {r[0]: _Lot(float(r[1]), float(r[2]), float(r[3]), r[4], None if r[5] is None else float(r[5]), r[6])
                     for r in con.execute("SELECT symbol, quantity, avg_price, avg_cost_base, currency, mark_base, "
                                          "mark_date FROM pf_positions ORDER BY symbol").fetchall()}
        orders = {r[1]: (int(r[0]), OrderRecord(**dict(zip(_ORDER_NAMES, r[1:], strict=True))))
                  for r in con.execute(f"SELECT seq, {_ORDER_COLS} FROM pf_orders ORDER BY seq").fetchall()}
        fills = [(int(r[0]), Fill(**dict(zip(_FILL_KEYS, r[1:], strict=True))))
                 for r in con.execute(f"SELECT seq, {', '.join(_FILL_KEYS)} FROM pf_fills ORDER BY seq").fetchall()]
        equity = {d: (float(e), float(c), float(m))
                  for d, e, c, m in con.execute("SELECT day, equity, cash, market_value FROM pf_equity ORDER BY day").fetchall()}
        guard = [_GuardRow(int(r[0]), *r[1:]) for r in con.execute(
            f"SELECT seq, {', '.join(_LOG_COLUMNS)} FROM pf_guard_log ORDER BY seq").fetchall()]
        meta = dict(con.execute("SELECT key, value FROM pf_meta").fetchall())
        self._books = _Books(base_currency=str(base), starting_cash=float(start), cash=float(cash),
                             realised=float(realised), fees=float(fees), positions=positions, orders=orders,
                             fills=fills, equity=equity, guard=guard, meta=meta)
        self._index()

    def _index(self) -> None:
        """Derived views of ``_books`` (pending orders, orders by day, the latest dates): rebuilt after a rollback."""
        b = self._books
        self._pending: dict[str, None] = {i: None for i, (_, o) in b.orders.items() if o.status == "pending"}
        self._by_day: dict[date, list[str]] = {}
        self._last_order: dict[str, date] = {}
        for i, (_, o) in b.orders.items():
            self._note_order(i, o)
        self._max_fill: date | None = max((f.fill_date for _, f in b.fills), default=None)
        self._max_equity: date | None = max(b.equity, default=None)
        # Fills are booked in date order and equity marked day after day: reads of a window then bisect, and
        # the curve needs no sort. A book that broke the order (a test's) is read the slow way.
        self._fill_days = [f.fill_date for _, f in b.fills]
        self._fills_in_order = all(a <= c for a, c in zip(self._fill_days, self._fill_days[1:], strict=False))
        self._equity_in_order = all(a < c for a, c in zip(b.equity, list(b.equity)[1:], strict=False))

    def _note_order(self, order_id: str, order: OrderRecord) -> None:
        self._by_day.setdefault(order.run_date, []).append(order_id)
        last = self._last_order.get(order.symbol)
        if last is None or order.run_date > last:
            self._last_order[order.symbol] = order.run_date

    # ------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Ledger]:
        """Run the block against the book and then undo all of it (a dry run): one transaction, always rolled back.

        Every ``transaction()`` inside joins it, so settlement, equity marks and guard logs written by the
        block are visible to the block and discarded at its end, whatever happens.
        """
        if self._in_tx:
            raise LedgerError("a scratch block cannot start inside a transaction")
        self._begin()
        try:
            yield self
        finally:
            self._rollback()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One BEGIN/COMMIT around the block (ROLLBACK on error); nested use joins the outer transaction.

        The block's changes are made in memory at once and written to DuckDB just before COMMIT, one statement
        per table; on any error (in the block or in that write) the books in memory are restored as well.
        """
        if self._in_tx:
            yield self._con
            return
        self._begin()
        try:
            yield self._con
            self._write()
            self._con.commit()
        except BaseException:
            self._rollback()
            raise
        self._in_tx, self._changes = False, None

    def _begin(self) -> None:
        self._con.begin()
        self._in_tx = True
        b = self._books
        self._changes = _Changes(fills_from=len(b.fills), guard_from=len(b.guard),
                                 before=(b.cash, b.realised, b.fees, dict(b.positions), dict(b.meta)))

    def _rollback(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self._con.rollback()
        ch, b = self._changes, self._books
        if ch is not None:
            b.cash, b.realised, b.fees, b.positions, b.meta = ch.before
            del b.fills[ch.fills_from:], b.guard[ch.guard_from:]
            for key, order in ch.orders.items():  # an added order is the newest: removing it keeps the seq order
                if order is None:
                    b.orders.pop(key, None)
                else:
                    b.orders[key] = order
            for day, row in ch.equity.items():
                if row is None:
                    b.equity.pop(day, None)
                else:
                    b.equity[day] = row
            self._index()
        self._in_tx, self._changes = False, None

    def _changed(self) -> _Changes:
        if self._changes is None:
            raise LedgerError("the ledger changes only inside Ledger.transaction()")
        return self._changes

    def _write(self) -> None:
        """Write the transaction's changes to DuckDB (a file ledger; an in-memory one keeps its books in memory only)."""
        ch, b = self._changes, self._books
        if ch is None or not self._persist:
            return
        con = self._con
        if ch.account:
            con.execute("UPDATE pf_account SET cash = ?, realised_pnl = ?, fees = ? WHERE id = 1",
                        [b.cash, b.realised, b.fees])
        _insert(con, "INSERT OR REPLACE INTO pf_positions VALUES", 7,
                [(s, *b.positions[s]) for s in sorted(ch.positions)])
        _insert(con, f"INSERT OR REPLACE INTO pf_orders (seq, {_ORDER_COLS}) VALUES", 17,
                [(b.orders[i][0], *(getattr(b.orders[i][1], n) for n in _ORDER_NAMES)) for i in ch.orders])
        _insert(con, "INSERT INTO pf_fills VALUES", 11,
                [(f.order_id, seq, *(getattr(f, k) for k in _FILL_KEYS[1:])) for seq, f in b.fills[ch.fills_from:]])
        _insert(con, "INSERT OR REPLACE INTO pf_equity VALUES", 4, [(d, *b.equity[d]) for d in sorted(ch.equity)])
        _insert(con, "INSERT INTO pf_guard_log VALUES", 10, [tuple(r) for r in b.guard[ch.guard_from:]])
        _insert(con, "INSERT OR REPLACE INTO pf_meta VALUES", 2, [(k, b.meta[k]) for k in sorted(ch.meta)])

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self._con.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ reads (from memory)

    @property
    def base_currency(self) -> str:
        return self._books.base_currency

    @property
    def starting_cash(self) -> float:
        return self._books.starting_cash

    def account(self) -> dict[str, float]:
        b = self._books
        return {"cash": b.cash, "realised_pnl": b.realised, "fees": b.fees}

    def _open_lots(self) -> list[tuple[str, _Lot]]:
        return sorted((s, lot) for s, lot in self._books.positions.items() if lot.quantity != 0)

    def positions(self) -> list[Position]:
        return [Position(symbol=s, quantity=lot.quantity, avg_price=lot.avg_price, currency=lot.currency)
                for s, lot in self._open_lots()]

    def position_costs(self) -> dict[str, tuple[float, float, float | None]]:
        """symbol → (signed quantity, average cost in base per unit, last mark in base per unit or None)."""
        return {s: (lot.quantity, lot.avg_cost_base, lot.mark_base) for s, lot in self._open_lots()}

    def orders(self, status: str | None = None) -> list[OrderRecord]:
        if status == "pending":
            return [self._books.orders[i][1] for i in self._pending]
        return [o for _, o in self._books.orders.values() if status is None or o.status == status]

    def fills(self, *, after: date | None = None, until: date | None = None) -> list[Fill]:
        """Fills in booking order; ``after`` < fill date <= ``until`` when given."""
        fills = self._books.fills
        if self._fills_in_order:
            lo = 0 if after is None else bisect.bisect_right(self._fill_days, after)
            hi = len(fills) if until is None else bisect.bisect_right(self._fill_days, until)
            return [f for _, f in fills[lo:hi]]
        return [f for _, f in fills
                if (after is None or f.fill_date > after) and (until is None or f.fill_date <= until)]

    def equity_curve(self) -> list[tuple[date, float]]:
        rows = self._books.equity.items()
        return [(d, v[0]) for d, v in (rows if self._equity_in_order else sorted(rows))]

    def history(self, run_date: date) -> TradingHistory:
        """Orders stored for ``run_date``, each symbol's last order date, the last active day, pending orders."""
        orders = self._books.orders
        today = [orders[i][1] for i in self._by_day.get(run_date, [])]
        last = {s: d for s, d in self._last_order.items() if d <= run_date}
        for s in self._last_order.keys() - last.keys():  # a look back from before the symbol's last order
            earlier = [o.run_date for _, o in orders.values() if o.symbol == s and o.run_date <= run_date]
            if earlier:
                last[s] = max(earlier)
        return TradingHistory(run_date=run_date, order_ids_today=[o.order_id for o in today], last_trade=last,
                              latest_activity=self.last_activity(),
                              decided_strategies=sorted({o.strategy for o in today}),
                              pending=self.orders(status="pending"))

    def last_activity(self) -> date | None:
        """The last day with an order, a fill or an equity mark: where an interrupted run resumes."""
        return _latest(max(self._by_day, default=None), self._max_equity, self._max_fill)

    def last_fill_date(self) -> date | None:
        return self._max_fill

    def settled_through(self) -> date | None:
        """The last session whose opens settlement has processed (every later session is still to settle).

        Stored in ``pf_meta`` by ``mark_settled`` in the settling transaction. A ledger written before the
        watermark existed falls back to its last equity mark or fill: a run marks equity only after it has
        settled every session up to its own date.
        """
        stored = self._books.meta.get("settled_through")
        if stored is not None:
            return date.fromisoformat(stored)
        return _latest(self._max_equity, self._max_fill)

    def guard_log(self, run_date: date | None = None) -> list[dict[str, Any]]:
        return [dict(zip(_LOG_COLUMNS, r[1:], strict=True)) for r in self._books.guard
                if run_date is None or r.run_date == run_date]

    def snapshot(self, market: MarketSnapshot | None = None) -> PortfolioSnapshot:
        """Value the book: at ``market``'s quotes where usable, else at the last stored marks (see module doc)."""
        b = self._books
        values: list[tuple[str, float, float, float]] = []
        unrealised = 0.0
        for symbol, lot in self._open_lots():
            unit = _quote_unit(market, symbol)
            if unit is None:
                unit = lot.mark_base if lot.mark_base is not None else lot.avg_cost_base
            values.append((symbol, lot.quantity, lot.avg_price, lot.quantity * unit))  # negative for a short
            unrealised += lot.quantity * (unit - lot.avg_cost_base)  # a short gains when the price falls
        equity = b.cash + sum(v for *_, v in values)
        positions = [PositionView(symbol=s, quantity=q, avg_price=a, market_value=v,
                                  weight=v / equity if equity > 0 else 0.0) for s, q, a, v in values]
        return PortfolioSnapshot(as_of=market.as_of if market is not None else self._last_mark_date(),
                                 base_currency=b.base_currency, cash=b.cash, equity=equity, positions=positions,
                                 realised_pnl=b.realised, unrealised_pnl=unrealised, fees=b.fees)

    def _last_mark_date(self) -> date:
        marks = (lot.mark_date for lot in self._books.positions.values() if lot.mark_date is not None)
        return _latest(self._max_equity, max(marks, default=None), self._max_fill) or date.min

    # ------------------------------------------------------------ writes (in memory at once, to DuckDB at commit)

    def _put_order(self, order_id: str, order: OrderRecord, seq: int | None = None) -> None:
        b, ch = self._books, self._changed()
        if seq is None:  # a change of a stored order: it keeps its seq
            seq = b.orders[order_id][0]
        else:
            self._note_order(order_id, order)
        ch.orders.setdefault(order_id, b.orders.get(order_id))
        b.orders[order_id] = (seq, order)
        if order.status == "pending":
            self._pending[order_id] = None
        else:
            self._pending.pop(order_id, None)

    def _next_order_seq(self) -> int:
        orders = self._books.orders  # in seq order: the last one holds the largest
        return next(reversed(orders.values()))[0] + 1 if orders else 1

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
        with self.transaction():
            for o in orders:  # submit order is the seq order; a stored id keeps its row (and its seq)
                if o.order_id in self._books.orders:
                    continue
                record = OrderRecord(order_id=o.order_id, run_date=o.run_date, symbol=o.symbol, side=o.side,
                                     quantity=o.quantity, filled_quantity=0.0, reference_price=o.reference_price,
                                     currency=o.currency, fx_rate=o.fx_rate, notional_base=o.notional_base,
                                     strategy=o.strategy, reason=o.reason, clamped=o.clamped, status="pending",
                                     status_reason=None, opens_short=o.opens_short)
                self._put_order(o.order_id, record, seq=self._next_order_seq())
        return [o.order_id for o in orders]

    def cancel(self, order_id: str, reason: str) -> bool:
        """Cancel a pending order; False when it is not pending."""
        if order_id not in self._pending:
            return False
        with self.transaction():
            order = self._books.orders[order_id][1]
            self._put_order(order_id, order.model_copy(update={"status": "cancelled", "status_reason": reason}))
        return True

    def close_delisted(self, symbol: str, day: date, price: float, fx_rate: float, reason: str) -> Fill | None:
        """Close the whole position in ``symbol`` at ``price`` (its last close) because its data ended.

        Not a trade anyone decided: an instrument that stops trading is cashed out at its last price, with no
        commission or slippage, booked on ``day`` (the ledger never goes back in time) as a filled order of
        strategy ``delisting``. Its pending orders are cancelled with ``reason``. None when nothing was held.
        """
        lot = self._books.positions.get(symbol)
        held = lot.quantity if lot is not None else 0.0
        with self.transaction():
            for o in self.pending_before(date.max):
                if o.symbol == symbol:
                    self.cancel(o.order_id, reason)
            if held == 0.0 or lot is None:
                return None
            side: Literal["buy", "sell"] = "sell" if held > 0 else "buy"
            qty = abs(held)
            order_id = f"{day:%Y%m%d}-{symbol}-{side}-delisting"
            record = OrderRecord(order_id=order_id, run_date=day, symbol=symbol, side=side, quantity=qty,
                                 filled_quantity=0.0, reference_price=price, currency=lot.currency, fx_rate=fx_rate,
                                 notional_base=qty * price * fx_rate, strategy="delisting", reason=reason,
                                 clamped=None, status="pending", status_reason=None, opens_short=False)
            self._put_order(order_id, record, seq=self._next_order_seq())
            fill = Fill(order_id=order_id, symbol=symbol, side=side, quantity=qty, price=price, commission=0.0,
                        slippage=0.0, fill_date=day, currency=lot.currency, fx_rate=fx_rate)
            self.apply_fill(fill, mark_base=price * fx_rate, note=reason, allow_short=False)
        return fill

    def mark_settled(self, session: date) -> None:
        """Move the settlement watermark to ``session`` (never backwards); part of the settling transaction."""
        stored = self._books.meta.get("settled_through")
        if stored is not None and session <= date.fromisoformat(stored):  # the stored mark only: never the fallback
            return
        with self.transaction():
            self._books.meta["settled_through"] = session.isoformat()
            self._changed().meta.add("settled_through")

    def record_equity(self, day: date, snapshot: PortfolioSnapshot) -> None:
        """Store the day's equity (replacing a re-run's) and each position's mark, in one transaction."""
        mv = sum(p.market_value for p in snapshot.positions)
        marks = [(p.symbol, p.market_value / p.quantity) for p in snapshot.positions  # value / signed qty > 0
                 if p.quantity != 0 and math.isfinite(p.market_value)]
        with self.transaction():
            b, ch = self._books, self._changed()
            ch.equity.setdefault(day, b.equity.get(day))
            if day not in b.equity and self._max_equity is not None and day < self._max_equity:
                self._equity_in_order = False
            b.equity[day] = (snapshot.equity, snapshot.cash, mv)
            if self._max_equity is None or day > self._max_equity:
                self._max_equity = day
            for symbol, mark in marks:
                lot = b.positions.get(symbol)
                if lot is not None and (lot.mark_date is None or lot.mark_date <= day):
                    b.positions[symbol] = lot._replace(mark_base=mark, mark_date=day)
                    ch.positions.add(symbol)

    def record_guard(self, run_date: date, result: GuardResult) -> None:
        """Append every rejection and clamp of a guard run to the guard log, in one transaction."""
        with self.transaction():
            log = self._books.guard
            self._changed()
            seq = log[-1].seq if log else 0
            for r in result.rejections:
                seq += 1
                log.append(_GuardRow(seq, run_date, "rejection", r.symbol, None, r.code, r.detail, r.raw, None, None))
            for c in result.clamps:
                seq += 1
                log.append(_GuardRow(seq, run_date, "clamp", None, c.order_id, c.code, c.detail, None,
                                     c.from_quantity, c.to_quantity))

    # ------------------------------------------------------------ used by the broker inside a transaction

    def pending_before(self, session: date) -> list[OrderRecord]:
        """Pending orders decided before ``session``: by decision date, sells first, then in submit order."""
        orders = self._books.orders
        waiting = [orders[i] for i in self._pending if orders[i][1].run_date < session]
        waiting.sort(key=lambda so: (so[1].run_date, so[1].side == "buy", so[0]))
        return [o for _, o in waiting]

    def apply_fill(self, fill: Fill, mark_base: float, note: str | None, *, allow_short: bool = False) -> None:
        """Book one fill: cash, signed position (average entry), realised P&L, fees, the order's status.

        ``allow_short`` (the order's ``opens_short``) lets a sell go beyond the holding; without it that raises.
        """
        if not self._in_tx:
            raise LedgerError("apply_fill must run inside Ledger.transaction()")
        b, ch = self._books, self._changed()
        gross = fill.quantity * fill.price * fill.fx_rate
        lot = b.positions.get(fill.symbol)
        qty, avg_price, avg_cost = (lot.quantity, lot.avg_price, lot.avg_cost_base) if lot else (0.0, 0.0, 0.0)
        if fill.side == "sell" and fill.quantity > qty + _DUST and not allow_short:
            raise LedgerError(f"sell of {fill.quantity} {fill.symbol} exceeds the {qty} held")
        direction = 1.0 if fill.side == "buy" else -1.0
        cash_after = b.cash - direction * gross - fill.commission
        if not math.isfinite(cash_after):  # a NaN price or FX rate would poison cash (and equity) for good
            raise LedgerError(f"fill {fill.order_id} would book cash {cash_after} (price {fill.price}, FX "
                              f"{fill.fx_rate}, commission {fill.commission}): not a finite amount")
        (new_qty, avg_price, avg_cost), realised = _book_lot(qty, avg_price, avg_cost, direction, fill)
        if cash_after < -1e-6:
            raise LedgerError(f"fill {fill.order_id} would leave cash at {cash_after:.2f}")
        b.positions[fill.symbol] = _Lot(new_qty, avg_price, avg_cost, lot.currency if lot else fill.currency,
                                        mark_base, fill.fill_date)
        b.cash, b.realised, b.fees = max(cash_after, 0.0), b.realised + realised, b.fees + fill.commission
        b.fills.append(((b.fills[-1][0] if b.fills else 0) + 1, fill))
        if self._fill_days and fill.fill_date < self._fill_days[-1]:
            self._fills_in_order = False
        self._fill_days.append(fill.fill_date)
        if self._max_fill is None or fill.fill_date > self._max_fill:
            self._max_fill = fill.fill_date
        ch.account = True
        ch.positions.add(fill.symbol)
        stored = b.orders.get(fill.order_id)
        if stored is not None:
            self._put_order(fill.order_id, stored[1].model_copy(
                update={"status": "filled", "filled_quantity": fill.quantity, "status_reason": note}))


def _latest(*days: date | None) -> date | None:
    return max((d for d in days if d is not None), default=None)


def _insert(con: duckdb.DuckDBPyConnection, head: str, width: int, rows: Sequence[Sequence[Any]]) -> None:
    """``head`` + one multi-row VALUES list per chunk of ``rows`` (a DuckDB statement costs ~1 ms: one per table)."""
    one = "(" + ", ".join("?" * width) + ")"
    for start in range(0, len(rows), 500):
        chunk = rows[start:start + 500]
        con.execute(f"{head} {', '.join(one for _ in chunk)}", [x for row in chunk for x in row])


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
