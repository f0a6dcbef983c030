"""The ``tradeagent`` console script (Typer). Each command group lives in its own ``cli_*`` module."""

from __future__ import annotations

import typer

from agent import cli_daily, cli_data, cli_portfolio

app = typer.Typer(
    name="tradeagent",
    help="An LLM trading agent you run daily: typed tools, a hard-coded risk guard, a paper broker.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.add_typer(cli_data.app, name="data", help="Fetch and inspect market data (point-in-time).")
cli_portfolio.register(app)
cli_daily.register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
