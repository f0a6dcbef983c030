"""``make_client``: the one place that turns settings and CLI flags into an ``LLMClient``.

Contract:
- ``llm=None``: ``openai`` when ``OPENAI_API_KEY`` is set, else ``offline``.
- ``llm="openai"`` without a key: ``AgentError("OPENAI_API_KEY is not set; use --llm offline")``, except
  in ``replay`` mode, which never reaches a server and so needs no key.
- ``cache_mode`` ``record``/``replay`` wraps the OpenAI client in ``CachedClient`` under
  ``settings.llm_cache_dir``; ``off`` returns the client itself.
- ``budget`` (shared by all nodes of one run) is charged by the OpenAI client and by replayed hits.
- Every ``SecretStr`` of the settings (``redaction.configured_secrets``) is handed to the OpenAI client and
  the cache, which mask it in every answer they return or store.

Deliberate decisions:
- The offline rule policy is never cached: it is deterministic already, and caching it would only write files.
- Replay without a key builds a stand-in inner client that only carries provider and model (both are part
  of the cache key) and refuses to be called.
"""

from __future__ import annotations

from typing import Literal

from agent.errors import AgentError
from agent.llm.base import Deadline, LLMClient, LLMRequest, LLMResponse, TokenBudget
from agent.llm.cache import CachedClient, CacheMiss, CacheMode
from agent.llm.offline import OfflineRulesClient
from agent.llm.openai_client import PROVIDER as OPENAI_PROVIDER
from agent.llm.openai_client import OpenAIClient
from agent.llm.redaction import configured_secrets
from agent.settings import Settings

NO_KEY_MESSAGE = "OPENAI_API_KEY is not set; use --llm offline"


class _ReplayOnly:
    """Provider and model for replay keys; calling it is a cache miss by definition."""

    provider = OPENAI_PROVIDER

    def __init__(self, model: str) -> None:
        self.model = model

    def complete(self, request: LLMRequest) -> LLMResponse:
        raise CacheMiss(f"replay only: no recorded answer for node {request.node!r}")


def make_client(
    settings: Settings,
    llm: Literal["offline", "openai"] | None,
    cache_mode: CacheMode = "off",
    budget: TokenBudget | None = None,
    deadline: Deadline | None = None,
) -> LLMClient:
    """The LLM client for this run (see the module docstring for the rules)."""
    if cache_mode not in ("record", "replay", "off"):
        raise AgentError(f"unknown --llm-cache mode {cache_mode!r}; use record, replay or off")
    key = settings.openai_api_key
    has_key = key is not None and bool(key.get_secret_value().strip())
    if llm is None:
        llm = "openai" if has_key else "offline"
    if llm == "offline":
        return OfflineRulesClient()
    if llm != "openai":
        raise AgentError(f"unknown --llm {llm!r}; use offline or openai")
    secrets = configured_secrets(settings)
    inner: LLMClient
    if has_key:
        assert key is not None
        inner = OpenAIClient(
            base_url=settings.openai_base_url,
            api_key=key,
            model=settings.llm_model,
            timeout=settings.llm_timeout_seconds,
            max_retries=settings.llm_max_retries,
            budget=budget,
            deadline=deadline,
            json_mode=settings.llm_json_mode,
            secrets=secrets,
        )
    elif cache_mode == "replay":
        inner = _ReplayOnly(settings.llm_model)
    else:
        raise AgentError(NO_KEY_MESSAGE)
    if cache_mode == "off":
        return inner
    return CachedClient(
        inner,
        settings.llm_cache_dir,
        cache_mode,
        budget=budget if cache_mode == "replay" else None,
        wire="json" if settings.llm_json_mode else "tools",  # a recording replays only in the mode that made it
        secrets=secrets,
    )
