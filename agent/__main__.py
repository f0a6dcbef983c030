"""Entry point of the ``tradeagent`` console script and of ``python -m agent``.

Contract: Ctrl-C at any moment, including while the CLI's modules are still being imported (seconds on a
cold start: pandas, LangGraph, DuckDB), prints ``interrupted`` on stderr and exits 130, never a traceback.

Deliberate decision: this module imports only the standard library at module level; the Typer app is
imported inside ``main``, within the ``try``, so an interrupt during those imports is caught here.
Interrupts inside a command are turned into the same line by ``agent.cli_common.cli_errors``.
"""

from __future__ import annotations

import sys

INTERRUPTED = 130  # 128 + SIGINT, what shells report for a Ctrl-C


def main() -> None:
    """Run the ``tradeagent`` CLI; an interrupt anywhere is one line and exit status 130."""
    try:
        from agent.cli import app

        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
        raise SystemExit(INTERRUPTED) from None


if __name__ == "__main__":
    main()
