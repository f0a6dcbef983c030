"""The memory package's one error type (``memory/`` imports nothing of ours, so it has its own)."""

from __future__ import annotations


class MemoryStoreError(Exception):
    """The memory cannot be opened, read or written; the message is one line and says what to do."""
