"""The offline router's handlers: one function per intent, each returning markdown and citing its records.

Every handler reads through ``Ctx.home`` (read-only) and puts recorded text through ``esc``; numbers are
formatted here. See ``agent.chat.offline`` for the routing and the rules (never guess, cite the records).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from agent.chat.dates import Period
from agent.chat.reader import Book, Home, Unavailable
from agent.chat.text import code, esc, money, num, pct, signed

_MAX_LINES = 25


@dataclass
class Ctx:
    """What a handler gets: the question, the home, one read of the book (None: busy), the period and symbol."""

    question: str
    low: str
    home: Home
    book: Book | None
    anchor: date | None
    period: Period | None
    symbol: str | None
    sources: list[str] = field(default_factory=list)

    def cite(self, *sources: str) -> None:
        self.sources.extend(s for s in sources if s not in self.sources)


def _side_asked(low: str) -> str | None:
    if re.search(r"\bbu(y|ys|ying)\b|\bbought\b|\bpurchas", low):
        return "buy"
    if re.search(r"\bsel(l|ls|ling)\b|\bsold\b", low):
        return "sell"
    return None


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= _MAX_LINES:
        return lines
    return [*lines[:_MAX_LINES], f"- … and {len(lines) - _MAX_LINES} more"]


# ------------------------------------------------------------------ why / explain


def explain(ctx: Ctx) -> str:
    side = _side_asked(ctx.low)
    period = ctx.period
    if period is None or not period.single_day:
        day = _decision_day(ctx, side, period)
        if day is None:
            what = f"{side} of {esc(ctx.symbol)}" if side and ctx.symbol else esc(ctx.symbol or "decision")
            where = f" {esc(period.phrase)}" if period else ""
            return f"I don't know: I find no {what}{where} in the book. Name a day (YYYY-MM-DD) to see its decision."
    else:
        day = period.start
    try:
        acc = ctx.home.day(day, ctx.symbol)
    except Unavailable as exc:
        return f"I don't know: {esc(exc)}."
    ctx.cite(acc["source"])
    if side and ctx.symbol:
        filled_here = [f for f in acc["fills"] if f.get("side") == side and not _decided_on(acc, f.get("order_id"))]
        decided_here = [o for o in acc["approved"] if o.get("side") == side]
        if filled_here and not decided_here:
            order = filled_here[0]
            decided = _order_day(ctx, str(order.get("order_id")))
            if decided is not None and decided != day:
                lead = (f"The {side} of {esc(ctx.symbol)} that filled at the open of {day} "
                        f"(order {code(order.get('order_id'))}) was decided at the close of {decided}:\n\n")
                try:
                    earlier = ctx.home.day(decided, ctx.symbol)
                except Unavailable as exc:
                    return lead + f"I don't know why: {esc(exc)}."
                ctx.cite(earlier["source"])
                return lead + _day_account(ctx, earlier, side)
    return _day_account(ctx, acc, side)


def _decided_on(acc: dict[str, Any], order_id: object) -> bool:
    return any(o.get("order_id") == order_id for o in acc["approved"])


def _order_day(ctx: Ctx, order_id: str) -> date | None:
    """The decision day of an order: the ledger's, else the date in its deterministic id (YYYYMMDD-…)."""
    if ctx.book is not None:
        for o in ctx.book.orders:
            if o["order_id"] == order_id:
                ctx.cite(f"ledger pf_orders {order_id}")
                return o["run_date"]
    match = re.match(r"^(\d{4})(\d{2})(\d{2})-", order_id)
    return date(int(match[1]), int(match[2]), int(match[3])) if match else None


def _decision_day(ctx: Ctx, side: str | None, period: Period | None) -> date | None:
    """The latest day in ``period`` with an order on the symbol (of ``side``), or the last results day."""
    if ctx.symbol is None:
        days = [d for d in ctx.home.real_days() if period is None or d in period]
        return days[-1] if days else None
    orders = ctx.book.orders if ctx.book is not None else []
    hits = [o["run_date"] for o in orders if o["symbol"] == ctx.symbol and (side is None or o["side"] == side)
            and (period is None or o["run_date"] in period)]
    return max(hits, default=None)


def _day_account(ctx: Ctx, acc: dict[str, Any], side: str | None) -> str:
    day, sym = acc["date"], ctx.symbol
    head = f"**{esc(sym) + ' on ' if sym else ''}{esc(day)}** (llm {esc(acc['llm'])}, status {esc(acc['status'])})"
    lines = [head]
    if acc.get("dry_run"):
        lines.append(f"- this is a dry run's file: no real run on {esc(day)}")
    if acc.get("hold"):
        hold = acc["hold"]
        what = "the day was a **hold-all**" if hold.get("fallback") else "no orders that day"  # a failure, or a choice
        lines.append(f"- {what}: {esc(hold.get('reason'))} ({esc(hold.get('detail'))})")
    if acc.get("recovered"):
        lines.append(f"- recovered from the ledger, node outputs lost: {esc(acc['recovered'])}")
    approved = acc["approved"]
    if sym and side and approved and all(o.get("side") != side for o in approved):
        lines.append(f"- I did **not** {side} {esc(sym)} on {esc(day)}.")
    for o in approved:
        state = "placed" if o.get("placed") else "not placed"
        lines.append(f"- decision: **{esc(o.get('side'))} {num(o.get('quantity'))} {esc(o.get('symbol'))}** "
                     f"(order {code(o.get('order_id'))}, {state}) because {esc(o.get('reason'))}")
        lines.extend(_fate(ctx, str(o.get("order_id"))))
    for c in acc["clamps"]:
        lines.append(f"- the guard clamped {esc(c.get('symbol') or c.get('order_id'))} from "
                     f"{num(c.get('from_quantity'))} to {num(c.get('to_quantity'))}: {code(c.get('code'))} "
                     f"({esc(c.get('detail'))})")
    for r in acc["rejected"]:
        if side and _rejected_side(r) not in (None, side):
            continue  # a rejected buy does not explain a sell
        what = f"{_rejected_side(r)} of " if _rejected_side(r) else ""
        lines.append(f"- the guard rejected a {what}{esc(r.get('symbol') or '?')}: {code(r.get('code'))} "
                     f"({esc(r.get('detail'))})")
    delisted = {str(d.get("symbol")): d for d in acc.get("delisted", [])}
    for f in acc["fills"]:
        gone = delisted.get(str(f.get("symbol"))) if str(f.get("order_id", "")).endswith("-delisting") else None
        if gone is not None:
            lines.append(f"- **forced close (delisting cash-out)**: {esc(f.get('side'))} {num(f.get('quantity'))} "
                         f"{esc(f.get('symbol'))} at {num(f.get('price'), ',.4f')} (order {code(f.get('order_id'))}), "
                         f"not a decision of the agents: {esc(gone.get('reason'))}")
            continue
        lines.append(f"- filled at this day's open: {esc(f.get('side'))} {num(f.get('quantity'))} {esc(f.get('symbol'))} "
                     f"at {num(f.get('price'), ',.4f')} (order {code(f.get('order_id'))})")
    if sym and not (approved or acc["rejected"] or acc["fills"] or acc["proposed"]):
        lines.append(f"- I did not trade {esc(sym)} on {esc(day)}.")
    lines.append("\nWhat each node said:")
    for node in acc["nodes"]:
        lines.extend(_node_lines(node))
    return "\n".join(lines)


def _rejected_side(rejection: dict[str, Any]) -> str | None:
    """The side of a rejected order: its ``side``, else the one in its recorded raw proposal."""
    if rejection.get("side") in ("buy", "sell"):
        return str(rejection["side"])
    match = re.search(r"""['"]side['"]\s*:\s*['"](buy|sell)['"]""", str(rejection.get("raw") or ""))
    return match.group(1) if match else None


def _fate(ctx: Ctx, order_id: str) -> list[str]:
    if ctx.book is None:
        return []
    fill = next((f for f in ctx.book.fills if f["order_id"] == order_id), None)
    order = next((o for o in ctx.book.orders if o["order_id"] == order_id), None)
    if fill is not None:
        ctx.cite(f"ledger pf_fills {order_id}")
        return [f"  - it filled on {fill['fill_date']} at {num(fill['price'], ',.4f')} "
                f"(commission {money(fill['commission'])})"]
    if order is not None:
        ctx.cite(f"ledger pf_orders {order_id}")
        why = f": {esc(order['status_reason'])}" if order.get("status_reason") else ""
        return [f"  - order status: {esc(order['status'])}{why}"]
    return []


def _node_lines(node: dict[str, Any]) -> list[str]:
    name = esc(node["node"])
    if node["status"] != "ok":
        why = " · ".join(esc(x) for x in (node.get("abstain_reason"), node.get("abstain_detail")) if x)
        return [f"- {name}: {esc(node['status'])} ({why or 'no reason recorded'})"]
    out = [f"- {name}: {esc(node['comment'])}" if node.get("comment") else f"- {name}:"]
    for s in node["signals"]:
        out.append(f"  - {esc(s.get('symbol'))} score {num(s.get('score'), '+.2f')}, confidence "
                   f"{num(s.get('confidence'), '.2f')}: {esc(s.get('rationale', ''))}")
    for t in node["targets"]:
        out.append(f"  - {esc(t.get('symbol'))} target weight {pct(t.get('target_weight'))}: {esc(t.get('rationale', ''))}")
    if len(out) == 1 and not node.get("comment"):
        out[0] += " nothing on this symbol"
    return out


# ------------------------------------------------------------------ the guard


def guard(ctx: Ctx) -> str:
    want = "clamp" if re.search(r"\bclamp", ctx.low) and not re.search(r"\breject", ctx.low) else \
        "rejection" if re.search(r"\breject|\brefused\b|\bblocked\b", ctx.low) else None
    period = ctx.period
    if ctx.book is not None:
        rows = ctx.book.guard_log
        ctx.cite("ledger pf_guard_log")
    else:  # busy: the results files carry the same log
        rows = []
        for d in ctx.home.real_days():
            if period is None or d in period:
                acc = ctx.home.day(d)
                ctx.cite(acc["source"])
                rows += [{"run_date": d, "kind": "rejection", **r} for r in acc["rejected"]]
                rows += [{"run_date": d, "kind": "clamp", **c} for c in acc["clamps"]]
    by_order = {o["order_id"]: o["symbol"] for o in ctx.book.orders} if ctx.book is not None else {}
    rows = [{**r, "symbol": _guard_symbol(r, by_order)} for r in rows]
    rows = [r for r in rows if (period is None or r["run_date"] in period) and (want is None or r["kind"] == want)
            and (ctx.symbol is None or r.get("symbol") == ctx.symbol)]
    what = {"clamp": "clamps", "rejection": "rejections", None: "rejections and clamps"}[want]
    span = esc(period.phrase) if period else "in the whole book"
    sym = f" for {esc(ctx.symbol)}" if ctx.symbol else ""
    if not rows:
        return f"The guard recorded no {what}{sym} {span}."
    lines = [f"The guard's {what}{sym} {span}:"]
    for r in rows:
        who = esc(r.get("symbol") or r.get("order_id") or "?")
        if r["kind"] == "clamp":
            lines.append(f"- {r['run_date']} · clamped {who} from {num(r.get('from_quantity'))} to "
                         f"{num(r.get('to_quantity'))}: {code(r.get('code'))} ({esc(r.get('detail'))})")
        else:
            lines.append(f"- {r['run_date']} · rejected {who}: {code(r.get('code'))} ({esc(r.get('detail'))})")
    days = sorted({r["run_date"] for r in rows})
    ctx.cite(*(f"results/daily/{d}.json" for d in days[:5]))
    return "\n".join(_capped(lines))


def _guard_symbol(row: dict[str, Any], by_order: dict[str, str]) -> str | None:
    """A guard row's symbol: recorded, else its order's (a clamp records only the order id)."""
    if row.get("symbol"):
        return str(row["symbol"])
    order_id = str(row.get("order_id") or "")
    if order_id in by_order:
        return by_order[order_id]
    match = re.match(r"^\d{8}-(.+)-(?:buy|sell)-", order_id)
    return match.group(1) if match else None


# ------------------------------------------------------------------ P&L


def pnl(ctx: Ctx) -> str:
    book = ctx.book
    assert book is not None
    ccy, curve = book.base_currency, book.curve
    if ctx.symbol is not None:
        return (f"I can only answer P&L for the whole book, not for {esc(ctx.symbol)} alone (the ledger marks the "
                f"book's equity, not each symbol's). Ask \"what trades did I make in {esc(ctx.symbol)}?\" for its "
                "orders and fills, or \"what do I hold?\" for its position now.")
    if not curve:
        return "I don't know: the book has no equity marks yet (the first daily run writes one)."
    period = ctx.period or Period(curve[0][0], curve[-1][0], f"since the start ({curve[0][0]} to {curve[-1][0]})")
    inside = [(d, v) for d, v in curve if d in period]
    if not inside:
        return (f"I don't know: the book has no equity mark {esc(period.phrase)}; its marks run from "
                f"{curve[0][0]} to {curve[-1][0]}.")
    before = [(d, v) for d, v in curve if d < period.start]
    start_value = before[-1][1] if before else float(book.summary["starting_cash"])
    start_what = f"the close of {before[-1][0]}" if before else f"the starting cash (the book's first mark is {curve[0][0]})"
    end_day, end_value = inside[-1]
    change = end_value - start_value
    fills = [f for f in book.fills if f["fill_date"] in period]
    fees = sum(float(f["commission"]) for f in fills)
    peak, worst = start_value, 0.0
    for _, v in inside:
        peak = max(peak, v)
        worst = min(worst, v / peak - 1.0) if peak > 0 else worst
    ctx.cite(f"ledger pf_equity ({inside[0][0]} to {end_day})", "ledger pf_fills")
    lines = [f"**P&L {esc(period.phrase)}: {signed(change, ccy)} ({pct(change / start_value if start_value else None, True)})**",
             f"- from {money(start_value, ccy)} ({start_what}) to {money(end_value, ccy)} at the close of {end_day}",
             f"- {len(fills)} fill(s) in the period, commission {money(fees, ccy)}; deepest drawdown in the period "
             f"{pct(worst)}"]
    if ctx.anchor is not None and ctx.anchor in period:
        s = book.summary
        lines.append(f"- the book now: realised {signed(s['realised_pnl'], ccy)}, unrealised "
                     f"{signed(s['unrealised_pnl'], ccy)}, fees {money(s['fees'], ccy)} since the start")
    return "\n".join(lines)


# ------------------------------------------------------------------ risk, evals, memory, alerts


def risk(ctx: Ctx) -> str:
    info = ctx.home.risk(book_exists=ctx.book is None or ctx.book.exists)
    settings = ctx.home.settings
    ctx.cite(*(ctx.home.relative(p) for p in (settings.risk_state_path, settings.risk_config_path) if p.exists()))
    if not settings.risk_state_path.exists():
        ctx.cite("the defaults (no risk_state.json yet: the kill switch was never used)")
    state = info["state"]
    since = f" since {esc(state['since'])}" if state.get("since") else ""
    lines = [f"Risk mode **{esc(state['mode'])}**{since} (set by {esc(state['changed_by'])}): {esc(state['reason'])}"]
    if info["config_error"]:
        lines.append(f"- risk.toml is broken, so the daily run refuses to trade: {esc(info['config_error'])}")
    for key in ("max_position_weight", "max_gross_exposure", "max_open_positions", "max_orders_per_day",
                "daily_loss_limit", "max_drawdown"):
        if key in info["limits"]:
            lines.append(f"- {code(key)} {num(info['limits'][key])}")
    lines.extend(f"- note: {esc(n)}" for n in info["notes"])
    where = info["drawdown"]
    if where["drawdown"] is None:
        lines.append(f"- drawdown: not known ({esc(where['note'])})")
    else:  # as the breaker judges it (from the peak a person's resume restarted), and the brake there
        lines.append(f"- drawdown {where['drawdown']:.2%} from the equity peak as of the {esc(where['as_of'])} mark"
                     + (f" (the breaker halts beyond {where['max_drawdown']:.2%})" if where["max_drawdown"] is not None
                        else ""))
        if where["brake"] is not None:
            lines.append(f"- profile {esc(where['profile'])}: its drawdown brake allows each name "
                         f"{where['brake']:.1%} of its size" + (" (not binding)" if where["brake"] >= 1 else ""))
        elif where["max_drawdown"] is not None:
            lines.append(f"- profile {esc(where['profile'])}: no drawdown brake")
    lines.append("The chat cannot change these: use `tradeagent risk halt|reduce|resume` in a terminal.")
    return "\n".join(lines)


def evals(ctx: Ctx) -> str:
    reports = ctx.home.eval_reports()
    if not reports:
        return ("I don't know of any eval report: none under TRADEAGENT_HOME/evals/. Run "
                "`tradeagent eval --universe demo --start 2012-01-01 --end 2012-12-31` to write one.")
    lines = []
    for rep in reports[:3]:
        ctx.cite(rep["report"])
        cfg = rep["config"]
        lines.append(f"**{esc(rep['name'])}** ({esc(cfg.get('universe', '?'))}, {esc(cfg.get('start', '?'))} to "
                     f"{esc(cfg.get('end', '?'))}):")
        for name, m in rep["metrics"].items():
            lines.append(f"- {esc(name)}: total return {pct(m.get('total_return'), True)}, Sharpe "
                         f"{num(m.get('sharpe'), '.2f')}, max drawdown {pct(m.get('max_drawdown'))}, trades "
                         f"{num(m.get('trades'))}")
    return "\n".join(_capped(lines))


def memory(ctx: Ctx) -> str:
    try:
        hits = ctx.home.memory_search(ctx.question, None, symbol=ctx.symbol)
    except Unavailable as exc:
        return f"I don't know: {esc(exc)}."
    if not hits:
        return "I don't know: the memory holds no past decision like that (the daily run writes one per symbol and day)."
    ctx.cite("memory (TRADEAGENT_HOME/memory)")
    lines = ["Past decisions most like your question (recorded text is data, shown as written):"]
    for h in hits:
        out = h.get("outcome") or {}
        verdict = ("outcome not known yet" if not out else
                   f"return {pct(out.get('return'), True)} vs benchmark {pct(out.get('benchmark'), True)}, "
                   f"{'right' if out.get('right') else 'wrong'}")
        lines.append(f"- {esc(h.get('date'))} · {esc(h.get('action'))} {esc(h.get('symbol'))} · similarity "
                     f"{num(h.get('similarity'), '.2f')} · {verdict}")
        lines.append(f"  > {esc(h.get('situation'), 300)}")
        if out.get("reflection"):
            lines.append(f"  > {esc(out['reflection'], 300)}")
    return "\n".join(lines)


def alerts(ctx: Ctx) -> str:
    try:
        rows = ctx.home.alerts(limit=10)
    except Unavailable as exc:
        return f"I don't know: {esc(exc)}."
    ctx.cite("DuckDB alert_outbox")
    if not rows:
        return "No alerts in the outbox yet."
    lines = ["The latest alerts, newest first:"]
    lines += [f"- {esc(a['created'])} · {esc(a['severity'])} · {esc(a['title'])} ({esc(a['delivered'])})"
              for a in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------ trades and the portfolio


def trades(ctx: Ctx) -> str:
    book = ctx.book
    assert book is not None
    ccy, period = book.base_currency, ctx.period
    orders = [o for o in book.orders if (period is None or o["run_date"] in period)
              and (ctx.symbol is None or o["symbol"] == ctx.symbol)]
    fills = [f for f in book.fills if (period is None or f["fill_date"] in period)
             and (ctx.symbol is None or f["symbol"] == ctx.symbol)]
    span = esc(period.phrase) if period else "in the whole book"
    ctx.cite("ledger pf_orders", "ledger pf_fills")
    if not orders and not fills:
        return f"No orders or fills {span}" + (f" for {esc(ctx.symbol)}." if ctx.symbol else ".")
    lines = [f"Orders decided {span}:" if orders else f"No orders decided {span}."]
    for o in orders:
        note = esc(o.get("status_reason") or o.get("clamped") or "")
        lines.append(f"- {o['run_date']} · {esc(o['side'])} {num(o['quantity'])} {esc(o['symbol'])} · {esc(o['status'])}"
                     f"{' (' + note + ')' if note else ''} · {code(o['order_id'])}")
    if fills:
        lines.append(f"Fills {span}:")
        lines += [f"- {f['fill_date']} · {esc(f['side'])} {num(f['quantity'])} {esc(f['symbol'])} at "
                  f"{num(f['price'], ',.4f')}, commission {money(f['commission'], ccy)}" for f in fills]
    return "\n".join(_capped(lines))


def portfolio(ctx: Ctx) -> str:
    book = ctx.book
    assert book is not None
    s, ccy = book.summary, book.base_currency
    ctx.cite("ledger pf_account, pf_positions")
    lines = [f"**Portfolio at the last mark ({esc(s['as_of'] or 'no mark yet')})**: equity {money(s['equity'], ccy)}, "
             f"cash {money(s['cash'], ccy)}, return since start {pct(s['return_since_start'], True)}, max drawdown "
             f"{pct(s['max_drawdown'])}"]
    positions = [p for p in s["positions"] if ctx.symbol is None or p["symbol"] == ctx.symbol]
    if not positions:
        lines.append(f"- no open position{' in ' + esc(ctx.symbol) if ctx.symbol else 's'}")
    lines += [f"- {esc(p['symbol'])}: {num(p['quantity'])} units, value {money(p['market_value'], ccy)}, weight "
              f"{pct(p['weight'])}, average price {num(p['avg_price'], ',.4f')}" for p in positions]
    if s["pending"]:
        lines.append(f"- {len(s['pending'])} pending order(s): they fill at the next session's open")
    return "\n".join(lines)
