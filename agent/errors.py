"""Typed errors of the agent layer.

Contract:
- ``AgentError`` is a failure the CLI prints as one line (``error: <message>``), never a traceback.
- ``LLMError`` carries a machine-readable ``cause`` slug (``LLMCause``) that nodes record as their abstain
  reason and tests assert on; the message is for people.

Deliberate decisions:
- Messages are squeezed onto one line and cut at 300 characters, so a server's long error body can never
  flood a log or an alert.
- Messages never contain the API key or request bodies: the code that raises builds its own short text and
  passes anything echoed by a server through ``redact`` first.
- ``bad_request`` is one slug beyond the original list: a 400/404/422 from a server (unsupported parameter,
  unknown model, context too long) is neither a server error nor the model's fault, and is never retried.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

LLMCause = Literal[
    "timeout",
    "rate_limited",
    "server_error",
    "connection",
    "auth",
    "bad_request",
    "budget_exhausted",
    "refusal",
    "truncated",
    "malformed",
    "unknown_tool",
    "bad_arguments",
    "cache_miss",
    "too_many_rounds",
    "schema_mismatch",
]
LLM_CAUSES: frozenset[str] = frozenset(get_args(LLMCause))

_MAX_MESSAGE = 300
# Anything shaped like a secret ("sk-…" possibly masked with *, "api_key=…", "Bearer …"): servers echo keys.
_SECRET_SHAPE = re.compile(
    r"\b(?:sk|key)[-_][A-Za-z0-9*._\-]{6,}"
    r"|\bapi[_-]?key[\"']?\s*[:=]\s*[\"']?[^\s\"',;]+"
    r"|\bBearer\s+[^\s\"',;]+",
    re.IGNORECASE,
)


def redact(text: str, *secrets: str) -> str:
    """``text`` with every given secret and anything shaped like an API key replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _SECRET_SHAPE.sub("***", text)


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_MESSAGE else flat[: _MAX_MESSAGE - 1] + "…"


class AgentError(Exception):
    """A failure of the agent layer that the CLI prints as a single line."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


class LLMError(AgentError):
    """An LLM call or answer that cannot be used; ``cause`` says why (one of ``LLM_CAUSES``)."""

    cause: LLMCause

    def __init__(self, cause: LLMCause, message: str = "") -> None:
        if cause not in LLM_CAUSES:
            raise ValueError(f"unknown LLMError cause {cause!r}")
        self.cause = cause
        super().__init__(f"LLM {cause}: {message}" if message else f"LLM {cause}")
