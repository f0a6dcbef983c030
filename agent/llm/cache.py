"""``CachedClient``: record LLM responses to disk and replay them, so an eval can be re-run bit for bit.

Contract:
- key = sha256 of the canonical JSON (sorted keys, no spaces, UTF-8) of ``provider``, ``model``, the wire
  ``mode`` (``tools``: native tool calling; ``json``: the plain-JSON mode, whose requests differ on the wire),
  ``messages``, ``tools`` (their specs), ``temperature``, ``max_tokens`` and ``response_schema``.
  ``request.context`` and ``request.node`` are not in the key: the rendered messages are what the model saw.
- ``record``: always calls ``inner`` (a fresh recording) and stores its response, one JSON file per key
  under ``cache_dir/<key[:2]>/<key>.json``, written atomically (temp file + ``os.replace``).
- ``replay``: NEVER calls ``inner``; a hit returns the stored response with ``cached=True``; a miss raises
  ``CacheMiss`` (an ``LLMError`` with cause ``cache_miss``). A miss is not an ordinary failure: the node that
  hits it, signal node or not, ends the whole day in hold-all ``fallback:cache_miss`` (``agent.nodes``), so a
  replay never trades on less than the recording saw.
- ``off``: a pass-through.
- Every configured secret (``secrets``, from the factory) is masked in what is stored and in what is
  replayed (``redaction.redact_response``): no cache file holds a key a server echoed, and a recording made
  before redaction existed does not carry one into a results file either.

Deliberate decisions:
- Errors are not recorded: a failed call fails again in record mode, and is a ``cache_miss`` in replay. So a
  day whose recording had a failed call replays as a hold-all, not as the recorded abstention.
- On a replay hit, the optional ``budget`` is checked and charged with the recorded usage, so a replay
  exhausts its budget at the same call the recording did.
- A corrupt cache file is a miss in replay (``cache_miss`` names the file), never a silent empty answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from agent.errors import LLMError
from agent.files import write_json_atomic
from agent.llm.base import LLMClient, LLMRequest, LLMResponse, TokenBudget
from agent.llm.redaction import redact_response

CacheMode = Literal["record", "replay", "off"]
WireMode = Literal["tools", "json"]
_FORMAT = 1


class CacheMiss(LLMError):
    """Replay found no usable recording for a request: the day must hold, not carry on without that answer."""

    def __init__(self, message: str) -> None:
        super().__init__("cache_miss", message)


def cache_key(provider: str, model: str, request: LLMRequest, mode: WireMode = "tools") -> str:
    """The cache key of ``request`` sent to ``provider``/``model`` in wire ``mode`` (hex sha256)."""
    material: dict[str, Any] = {
        "provider": provider,
        "model": model,
        "mode": mode,
        "messages": request.messages,
        "tools": [t.model_dump(mode="json") for t in request.tools],
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "response_schema": request.response_schema,
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class CachedClient:
    """An ``LLMClient`` that records or replays ``inner``'s responses."""

    def __init__(
        self,
        inner: LLMClient,
        cache_dir: Path,
        mode: CacheMode,
        *,
        budget: TokenBudget | None = None,
        wire: WireMode = "tools",
        secrets: Sequence[str] = (),
    ) -> None:
        if mode not in ("record", "replay", "off"):
            raise ValueError(f"unknown cache mode {mode!r}")
        self.inner = inner
        self.cache_dir = Path(cache_dir)
        self.mode: CacheMode = mode
        self.provider = inner.provider
        self.model = inner.model
        self._budget = budget
        self.wire: WireMode = wire
        self._secrets = tuple(secrets)

    def path_for(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def complete(self, request: LLMRequest) -> LLMResponse:
        if self.mode == "off":
            return self.inner.complete(request)
        key = cache_key(self.provider, self.model, request, self.wire)
        if self.mode == "replay":
            return self._replay(key, request)
        response = redact_response(self.inner.complete(request), self._secrets)
        self._store(key, request, response)
        return response

    def _replay(self, key: str, request: LLMRequest) -> LLMResponse:
        path = self.path_for(key)
        if self._budget is not None:
            self._budget.check()
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            response = LLMResponse.model_validate(stored["response"])
        except FileNotFoundError:
            raise CacheMiss(f"no recorded answer for node {request.node!r} (key {key[:12]})") from None
        except (ValueError, KeyError, TypeError, ValidationError):
            raise CacheMiss(f"unreadable cache file {path.name}") from None
        if self._budget is not None:
            self._budget.charge(response.prompt_tokens + response.completion_tokens)
        return redact_response(response, self._secrets).model_copy(update={"cached": True})

    def _store(self, key: str, request: LLMRequest, response: LLMResponse) -> None:
        path = self.path_for(key)
        record = {
            "format": _FORMAT,
            "key": key,
            "node": request.node,
            "response": response.model_copy(update={"cached": False}).model_dump(mode="json"),
        }
        write_json_atomic(path, record, sort_keys=True, indent=1, ensure_ascii=False)
