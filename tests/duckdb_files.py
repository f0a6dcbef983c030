"""Hostile DuckDB files for the storage tests of several layers: a SQLite file, a file held by another process."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


def sqlite_file(path: Path, table: str = "t") -> Path:
    """A real SQLite database at ``path`` (DuckDB would try to download its sqlite extension to read it)."""
    con = sqlite3.connect(path)
    con.execute(f"CREATE TABLE {table} (x INTEGER)")
    con.commit()
    con.close()
    return path


@contextlib.contextmanager
def held_open_elsewhere(path: Path) -> Iterator[int]:
    """Another Python process holds ``path`` open read-write for the block; yields its PID."""
    code = f"import duckdb, sys; con = duckdb.connect({str(path)!r}); print('ready', flush=True); sys.stdin.read()"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc.pid
    finally:
        proc.communicate(timeout=30)
