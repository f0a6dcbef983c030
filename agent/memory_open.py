"""Opening the user's memory (``TRADEAGENT_HOME/memory``) at the edges: the daily run and ``tradeagent memory``.

Contract:
- ``embedder_for(settings)``: the local all-MiniLM-L6-v2 (cached, once per process), or, when
  ``TRADEAGENT_EMBEDDING_MODEL`` is set, that model at ``OPENAI_BASE_URL`` with ``OPENAI_API_KEY`` (a model
  without a base URL is refused: the memory never sends text to a server the user did not name).
- ``open_user_memory(settings)`` for the daily run: ``(store, None)``, or ``(None, reason)`` when the memory
  is switched off (``TRADEAGENT_MEMORY=0``) or cannot be opened. The daily run goes on either way and reports
  the reason in ``results["memory"]``: the memory is optional, the ledger is not.
"""

from __future__ import annotations

from agent.settings import Settings
from memory.embeddings import CachedEmbedder, Embedder, OpenAIEmbedder, local_embedder
from memory.errors import MemoryStoreError
from memory.store import ChromaMemoryStore


def embedder_for(settings: Settings) -> Embedder:
    if settings.embedding_model is None:
        return local_embedder()
    if not settings.openai_base_url:
        raise MemoryStoreError("TRADEAGENT_EMBEDDING_MODEL is set but OPENAI_BASE_URL is not: name the embeddings "
                               "server, or unset TRADEAGENT_EMBEDDING_MODEL to embed locally")
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key is not None else None
    return CachedEmbedder(OpenAIEmbedder(settings.openai_base_url, settings.embedding_model, key,
                                         timeout=settings.llm_timeout_seconds,
                                         max_retries=settings.llm_max_retries))


def open_user_memory(settings: Settings) -> tuple[ChromaMemoryStore | None, str | None]:
    if not settings.memory:
        return None, "memory is switched off (TRADEAGENT_MEMORY)"
    try:
        return ChromaMemoryStore.persistent(settings.memory_dir, embedder_for(settings)), None
    except MemoryStoreError as exc:
        return None, str(exc)
