"""Shared plumbing for every CLI module: settings at the edge, one-line errors, --json output.

Deliberate decisions:
- A known failure (bad input, missing data, no network) prints ``error: <what is wrong>`` on stderr and exits 2.
  An unexpected exception does the same with its type name, never a traceback (set TRADEAGENT_DEBUG=1 to see one).
- ``--json`` output goes to stdout alone, so it can be piped into ``jq``; human output uses rich.
- ``--plot FILE`` writes only into an existing folder (``plot_path``), checked before any work is done.
- Piped or redirected human output is ``PIPE_WIDTH`` (200) columns wide instead of rich's 80, so tables are
  not cut for ``grep``/``less`` (``COLUMNS`` still wins when set); a terminal gets its own width.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, TextIO, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from agent.settings import Settings
from agent.settings import load_settings as _settings_from_env
from portfolio.storage import reraise_interrupt

# markup=False: symbols, reasons, LLM and server text are printed as they are; a "[/b]" in any of them is
# text, not a rich tag (styles are given with style= or rich.text.Text, never inline).
PIPE_WIDTH = 200


def console_width(stream: TextIO, environ: Mapping[str, str] = os.environ) -> int | None:
    """``None`` (rich measures the terminal, or reads ``COLUMNS``) for a terminal; ``PIPE_WIDTH`` otherwise."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        tty = False
    return None if tty or environ.get("COLUMNS", "").isdigit() else PIPE_WIDTH


console = Console(markup=False, width=console_width(sys.stdout))
err_console = Console(stderr=True, markup=False, width=console_width(sys.stderr))

F = TypeVar("F", bound=Callable[..., Any])
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
EARLIEST_DATE, LATEST_DATE = date(1900, 1, 1), date(2199, 12, 31)


class UserError(Exception):
    """A problem the user can fix (bad flag, bad date). Printed as one line."""


def _error_line(message: str) -> Text:
    return Text.assemble(("error:", "red"), " ", message)


def load_settings() -> Settings:
    """The edges' settings; a bad variable is one line naming it (``agent.settings.SettingsError``)."""
    return _settings_from_env()


def parse_date(value: str | None, flag: str = "--date") -> date | None:
    if value is None:
        return None
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise UserError(f"{flag} {value!r} is not a date; use YYYY-MM-DD") from None
    if not EARLIEST_DATE <= parsed <= LATEST_DATE:  # 9999-12-31 + one session would overflow deep inside
        raise UserError(f"{flag} {value} is out of range ({EARLIEST_DATE} to {LATEST_DATE})")
    return parsed


def plot_path(path: Path) -> Path:
    """``path`` when a chart can be written there: its folder must exist (no folder is ever created, so a
    typo cannot scatter directories from the filesystem root); else a one-line ``UserError``."""
    folder = path.expanduser().parent
    if not folder.is_dir():
        raise UserError(f"cannot write the chart to {path}: folder {folder} does not exist")
    return path.expanduser()


REAL_RESULTS = re.compile(r"^\d{4}-\d{2}-\d{2}\.json$")  # a real run's file: not *.dry-run.json, not *.corrupt


def newest_results(results_dir: Path) -> Iterator[dict[str, Any]]:
    """The real runs' results files (``results/daily/D.json``), parsed, newest first; an unreadable one is skipped."""
    for path in sorted((p for p in results_dir.glob("*.json") if REAL_RESULTS.match(p.name)), reverse=True):
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(results, dict):
            yield results


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (date, datetime)):
        return obj.isoformat()
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, indent=2, sort_keys=False)


def print_json(obj: Any) -> None:
    sys.stdout.write(dumps(obj) + "\n")
    sys.stdout.flush()


def _known_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [UserError]
    # Each layer has one base error; imported lazily so the CLI loads even while a layer is absent.
    for module, name in (
        ("tools.errors", "DataError"),
        ("portfolio.errors", "PortfolioError"),
        ("agent.errors", "AgentError"),
    ):
        try:
            mod = __import__(module, fromlist=[name])
            errors.append(getattr(mod, name))
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def _one_line(exc: BaseException, limit: int = 400) -> str:
    """Library errors (DuckDB's binder errors, say) span lines; the CLI's contract is one line."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cli_errors(fn: F) -> F:
    """Turn any exception into a one-line message and exit code 2 (typer.Exit passes through)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except _known_errors() as exc:
            # soft_wrap: one line even when stderr is not a terminal (rich would wrap at 80 columns)
            err_console.print(_error_line(_one_line(exc)), highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            try:
                reraise_interrupt(exc)  # a Ctrl-C DuckDB caught inside a query and re-labelled
            except KeyboardInterrupt:
                err_console.print("interrupted")
                raise typer.Exit(130) from None
            if os.environ.get("TRADEAGENT_DEBUG"):
                raise
            err_console.print(
                _error_line(f"unexpected {type(exc).__name__}: {_one_line(exc)} (TRADEAGENT_DEBUG=1 shows the traceback)"),
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]
