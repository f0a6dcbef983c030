"""The ``tradeagent`` console script (Typer). Each command group lives in its own ``cli_*`` module.

``app`` is the Typer application (tests drive it with ``CliRunner``); the installed script runs
``agent.__main__:main``, which wraps it so that Ctrl-C anywhere, start-up imports included, is one line.
``tradeagent --version`` prints the installed package's version.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import Annotated

import typer

from agent import (
    cli_chat,
    cli_daily,
    cli_data,
    cli_explain,
    cli_memory,
    cli_models,
    cli_news,
    cli_orders,
    cli_portfolio,
)

app = typer.Typer(
    name="tradeagent",
    help="An LLM trading agent you run daily: typed tools, a hard-coded risk guard, a paper broker.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def package_version() -> str:
    """The installed distribution's version (``unknown`` when run from a tree that was never installed)."""
    try:
        return version("tradeagent")
    except PackageNotFoundError:
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"tradeagent {package_version()}")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    # Only options of the program itself live here; the help text is the app's.
    return None


app.add_typer(cli_data.app, name="data", help="Fetch and inspect market data (point-in-time).")
cli_portfolio.register(app)
cli_explain.register(app)
cli_chat.register(app)
cli_models.register(app)
cli_memory.register(app)
app.add_typer(cli_orders.app, name="orders", help="Pending paper orders: list them, cancel them by hand.")
app.add_typer(cli_news.app, name="news", help="News from RSS/Atom feeds and Reddit: fetch it, read it point-in-time.")


def _register_plugins(target: typer.Typer) -> None:
    """Commands of the layers above ``agent`` (``tradeagent eval`` from ``evals``, the scheduler's from ``schedules``).

    They register through the ``tradeagent.commands`` entry point group (pyproject.toml) so that ``agent``
    never imports a layer above it; each entry point is a ``register(app)`` function.
    """
    for entry in sorted(entry_points(group="tradeagent.commands"), key=lambda e: e.name):
        entry.load()(target)


_register_plugins(app)
cli_daily.register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
