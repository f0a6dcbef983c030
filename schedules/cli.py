"""The scheduler layer's commands, registered through the ``tradeagent.commands`` entry point (pyproject.toml):
``tradeagent serve``, ``tradeagent monitor`` and ``tradeagent alerts``."""

from __future__ import annotations

import typer

from schedules import alerts


def register(app: typer.Typer) -> None:
    alerts.register(app)
