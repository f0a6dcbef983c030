"""The DuckDB file every layer shares (``TRADEAGENT_HOME/tradeagent.duckdb``): one way to open it.

Contract:
- ``connect(path, read_only=False)`` opens the file with ``DUCKDB_CONFIG`` or raises ``StorageError`` whose
  message says, in one line and in the user's terms, why it could not (locked by another process, not a
  DuckDB file, anything else with DuckDB's own words).

Deliberate decisions:
- One config for every connection: within one process DuckDB refuses a second connection to a file with
  different settings, so the market cache (``tools.cache``), the ledger and any later store must all open
  it here. It lives in ``portfolio`` because ``portfolio`` imports nothing of ours and ``tools`` may import
  ``portfolio.models`` and this module (tests/test_layers.py).
- Extensions are never installed or loaded on demand: a foreign file (a SQLite database) is refused instead
  of fetching ``sqlite_scanner`` from the network at run time.
- A file LOCKED by another process is retried for up to ``wait_seconds`` (``LOCK_WAIT_SECONDS`` by default)
  before giving up: the chat (``tradeagent chat``) opens the file read-only for a few milliseconds per
  request, and a daily run or a CLI command that starts during one of those must wait for it, not fail.
  Any other failure is raised at once.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import duckdb

DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


class StorageError(Exception):
    """The DuckDB file cannot be opened; the message is one line naming the file and the reason."""


# Long enough to outlast another process's short read (the chat holds the file for milliseconds per request),
# short enough that a file held for minutes (a daily run waiting on its LLM) is reported without a long hang.
LOCK_WAIT_SECONDS = 2.0


def connect(path: Path | str, *, read_only: bool = False,
            wait_seconds: float = LOCK_WAIT_SECONDS) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + max(0.0, wait_seconds)
    pause = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=DUCKDB_CONFIG)
        except duckdb.Error as exc:
            left = deadline - time.monotonic()
            if not _is_lock(exc) or left <= 0:
                raise StorageError(_open_failure(path, exc)) from None
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.2)


def _is_lock(exc: duckdb.Error) -> bool:
    return "Could not set lock" in str(exc)


def _open_failure(path: object, exc: duckdb.Error) -> str:
    text = " ".join(str(exc).split())
    if "Could not set lock" in text:  # not just "lock": the message also carries the path
        pid = re.search(r"\(PID (\d+)\)", text)
        held = f" (PID {pid.group(1)})" if pid else ""
        return f"{path} is locked by another process{held}; wait for it to finish or stop it"
    if "not a valid DuckDB database" in text or "Extension" in text:
        # "Extension ... not found" is DuckDB sniffing a SQLite (or other) file with autoloading off.
        return f"{path} is not a tradeagent DuckDB file"
    return f"{path} cannot be opened ({text})"


def reraise_interrupt(exc: BaseException) -> None:
    """Raise ``KeyboardInterrupt`` when ``exc`` is a Ctrl-C that a library caught and re-labelled; else nothing.

    DuckDB turns a SIGINT that arrives during a query into ``RuntimeError("Query interrupted")`` (or its
    ``InterruptException``). A broad ``except Exception`` would then record a failure (a hold-all day, a HALTED
    state, an abstention) and carry on as if nobody had pressed Ctrl-C, so every such ``except`` calls this first
    (found by an attacker: about one Ctrl-C in 30 came out as "unexpected RuntimeError").
    """
    if (isinstance(exc, RuntimeError) and str(exc) == "Query interrupted") or type(exc).__name__ == "InterruptException":
        raise KeyboardInterrupt from exc
