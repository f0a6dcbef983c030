"""Configured secrets never leave the LLM layer inside an answer.

Contract:
- ``configured_secrets(settings)`` is the value of every ``SecretStr`` in ``Settings`` (the OpenAI key, the
  Discord webhook URL, and any secret added later, found by type, not by name).
- ``redact_response(response, secrets)`` returns ``response`` with every occurrence of each secret replaced by
  ``***`` in every text field (content, tool calls' ids, names and arguments, model, finish reason).
- It is applied where answers enter the system and where they are written to disk: ``OpenAIClient`` returns
  only redacted responses, and ``CachedClient`` redacts what it stores and what it replays. So node outputs,
  tool traces, order reasons, results files and cache entries never hold a key a server echoed back.

Deliberate decisions:
- Exact values only, not "anything shaped like a key": answers are data (symbols, rationales, JSON), and a
  shape-based rule would rewrite a ticker such as ``SK-HYNIX.KS``. Error messages, which are ours, also get
  the shape-based ``agent.errors.redact``.
- Values shorter than ``MIN_SECRET_CHARS`` are not redacted: they are placeholders (local servers accept any
  key, e.g. ``ollama``), and replacing every ``x`` or ``ollama`` in an answer would corrupt it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import SecretStr

from agent.llm.base import LLMResponse
from agent.settings import Settings

MIN_SECRET_CHARS = 8  # shorter values are placeholders, not secrets worth corrupting answers for
MASK = "***"


def configured_secrets(settings: Settings) -> tuple[str, ...]:
    """Every ``SecretStr`` value in ``settings`` long enough to be a secret."""
    values = {
        value.get_secret_value().strip()
        for name in type(settings).model_fields
        if isinstance(value := getattr(settings, name), SecretStr)
    }
    return tuple(sorted(v for v in values if len(v) >= MIN_SECRET_CHARS))


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret masked, longest first (a secret containing another is masked whole).

    A secret written with JSON escapes (``sk-\\u002d…``, ``https:\\/\\/…``) is masked too: parsing the answer
    would otherwise turn it back into the key, in results files and memory (found by an attacker).
    """
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= MIN_SECRET_CHARS:
            text = text.replace(secret, MASK)
            if "\\" in text:
                text = _escaped(secret).sub(MASK, text)
    return text


def _escaped(secret: str) -> re.Pattern[str]:
    """``secret`` with any of its characters written as itself or as a JSON escape (\\uXXXX, any case; \\/)."""
    parts = []
    for ch in secret:
        hexes = "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in f"{ord(ch):04x}")
        alternatives = [re.escape(ch), r"\\u" + hexes] + ([r"\\/"] if ch == "/" else [])
        parts.append("(?:" + "|".join(alternatives) + ")")
    return re.compile("".join(parts))


def redact_response(response: LLMResponse, secrets: Iterable[str]) -> LLMResponse:
    """``response`` with every secret masked in every text field."""
    keys = tuple(secrets)
    if not keys:
        return response
    calls = [
        c.model_copy(
            update={
                "id": redact_text(c.id, keys),
                "name": redact_text(c.name, keys),
                "arguments": redact_text(c.arguments, keys),
            }
        )
        for c in response.tool_calls
    ]
    return response.model_copy(
        update={
            "content": None if response.content is None else redact_text(response.content, keys),
            "tool_calls": calls,
            "model": redact_text(response.model, keys),
            "finish_reason": redact_text(response.finish_reason, keys),
        }
    )
