"""``tradeagent news fetch|show``: fill the news table from a universe's feeds and subreddits; read it point-in-time.

- ``fetch [--universe U] [--json]`` reads every RSS/Atom feed of the universe's ``[news]`` table and, when
  ``TRADEAGENT_REDDIT_CLIENT_ID`` and ``TRADEAGENT_REDDIT_CLIENT_SECRET`` are set, every subreddit (without them
  Reddit is skipped with one notice). One line per source as it finishes (stderr), then a table of outcomes;
  ``--json`` prints ``{"universe", "sources": [{source, status, items, new, matched, reason, seconds}],
  "reddit", "stored"}``. Exit 0 when the run completed (skipped sources included, each with its reason).
- ``show SYMBOL [--universe U] [--as-of D] [--limit N] [--json]`` prints what the sentiment node would read for
  SYMBOL on D (default: today, UTC): the reading (score, bullish/neutral/bearish counts, item ids) over the
  window before D's decision time, and the newest items available by then. SYMBOL must be one of U's (default
  ``demo``), spelled as U spells it; else one line naming U's symbols (and "did you mean GOOG?"), exit 2. ``--json`` prints ``{"symbol",
  "as_of", "decision_time", "window_hours", "reading", "items": [...]}``.

News text is shown through ``printable`` as plain text: it is untrusted, never markup.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from agent.cli_common import (
    UserError,
    cli_errors,
    console,
    err_console,
    load_settings,
    parse_date,
    print_json,
)
from agent.cli_explain import printable
from agent.news_inputs import WINDOW_HOURS, decision_time, read_news
from agent.settings import Settings
from tools.news.ingest import fetch_news
from tools.news.models import NewsItem, SourceOutcome
from tools.news.reddit import RedditCredentials, make_reddit
from tools.news.store import LoadedNews, NewsStore, news_table_exists
from tools.universe import load_universe

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
UniverseOpt = Annotated[str, typer.Option("--universe", "-u", help="built-in name or path to a universe TOML")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def reddit_client(settings: Settings) -> tuple[Any, str]:
    """A read-only praw client and "on", or None and the one-line reason Reddit is skipped."""
    if not settings.reddit_client_id or settings.reddit_client_secret is None:
        return None, "skipped: TRADEAGENT_REDDIT_CLIENT_ID and TRADEAGENT_REDDIT_CLIENT_SECRET are not set"
    creds = RedditCredentials(client_id=settings.reddit_client_id, client_secret=settings.reddit_client_secret,
                              user_agent=settings.reddit_user_agent)
    return make_reddit(creds), "on"


def _progress_line(outcome: SourceOutcome) -> None:
    if outcome.status == "ok":
        line = f"{outcome.source}: {outcome.items} items, {outcome.new} new, {outcome.matched} about the universe"
        err_console.print(Text(printable(line)), highlight=False)
    else:
        err_console.print(Text.assemble((f"{printable(outcome.source)}: skipped", "yellow"),
                                        f" ({printable(outcome.reason)})"), highlight=False)


@app.command()
@cli_errors
def fetch(universe: UniverseOpt = "demo", json_out: JsonOpt = False) -> None:
    """Fetch a universe's feeds (and subreddits) into the news table, one outcome per source."""
    uni = load_universe(universe)
    settings = load_settings()
    if not uni.news.feeds and not uni.news.subreddits:
        raise UserError(f"universe {uni.name!r} has no [news] feeds or subreddits; add them to its TOML")
    reddit, reddit_status = reddit_client(settings) if uni.news.subreddits else (None, "no subreddits configured")
    if reddit is None and uni.news.subreddits and not json_out:
        err_console.print(Text(f"reddit: {reddit_status}", style="yellow"), highlight=False)
    settings.ensure_home()
    if not json_out:
        subs = len(uni.news.subreddits) if reddit is not None else 0
        err_console.print(f"fetching {len(uni.news.feeds)} feed(s) and {subs} subreddit(s) for {uni.name}", highlight=False)
    with NewsStore(settings.db_path) as store:
        outcomes = fetch_news(uni, store, now=_now, reddit=reddit, on_source=None if json_out else _progress_line)
        stored = store.count()
    if json_out:
        print_json({"universe": uni.name, "sources": [o.model_dump(mode="json") for o in outcomes],
                    "reddit": reddit_status, "stored": stored})
        return
    table = Table(title=f"news · {uni.name}")
    for col in ("source", "status", "items", "new", "matched", "reason"):
        table.add_column(col, justify="right" if col in ("items", "new", "matched") else "left")
    for o in outcomes:
        table.add_row(printable(o.source, 70), o.status, str(o.items), str(o.new), str(o.matched),
                      printable(o.reason or "", 90))
    console.print(table)
    console.print(f"{stored} items stored in {settings.db_path}")


def _check_symbol(symbol: str, universe: str) -> None:
    """An unknown symbol is a one-line error naming the known ones (no guessing: ``goog`` is not ``GOOG``)."""
    known = sorted(load_universe(universe).symbols)
    if symbol in known:
        return
    close = [k for k in known if k.casefold() == symbol.casefold()]
    hint = f"; did you mean {close[0]}?" if close else ""
    raise UserError(f"{symbol!r} is not in universe {universe!r}{hint} (known: {', '.join(known)}; "
                    "another universe: --universe U)")


def _item_json(item: NewsItem) -> dict[str, Any]:
    return {**item.model_dump(mode="json"), "available_at": item.available_at.isoformat() if item.available_at else None,
            "label": item.label}


@app.command()
@cli_errors
def show(
    symbol: Annotated[str, typer.Argument(help="instrument symbol, e.g. GOOG, MC.PA, BTC/EUR")],
    universe: Annotated[str, typer.Option("--universe", "-u", help="the universe SYMBOL belongs to")] = "demo",
    as_of: Annotated[str | None, typer.Option("--as-of", help="the day whose decision reads the news (YYYY-MM-DD)")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="items to list")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """What the sentiment node reads about SYMBOL on --as-of: its score, counts, item ids and the items."""
    day: date = parse_date(as_of, "--as-of") or _now().date()
    _check_symbol(symbol, universe)
    settings = load_settings()
    cutoff = decision_time(day)
    if not news_table_exists(settings.db_path):
        raise UserError(f"no news stored yet in {settings.db_path}; run `tradeagent news fetch --universe U`")
    with NewsStore(settings.db_path) as store:
        items = store.about(symbol, until=cutoff, limit=max(limit, 200))
    reading = read_news(LoadedNews.of(items), [symbol], day).symbols.get(symbol)
    if json_out:
        print_json({"symbol": symbol, "as_of": day, "decision_time": cutoff, "window_hours": WINDOW_HOURS,
                    "reading": reading, "items": [_item_json(i) for i in items[:limit]]})
        return
    if reading is None:
        console.print(f"{symbol} on {day}: no item in the {WINDOW_HOURS:g} h before {cutoff} UTC: sentiment abstains")
    else:
        console.print(f"{symbol} on {day}: score {reading['score']:+.3f} over {reading['n_items']} items "
                      f"({reading['bullish']} bullish, {reading['neutral']} neutral, {reading['bearish']} bearish)")
    table = Table(title=f"news about {symbol} available by {cutoff} UTC (newest first)")
    for col in ("available", "score", "source", "title", "id"):
        table.add_column(col, justify="right" if col == "score" else "left")
    for i in items[:limit]:
        table.add_row(str(i.available_at or "undated"), f"{i.score:+.2f}", printable(i.source, 30),
                      printable(i.title, 90), i.id[:12])
    console.print(table)
