"""Embeddings: the local MiniLM model (offline, loaded once), the cache, and an OpenAI-compatible endpoint on loopback."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from memory import embeddings
from memory.embeddings import CachedEmbedder, MiniLMEmbedder, OpenAIEmbedder, local_embedder
from memory.errors import MemoryStoreError
from tests.memory.helpers import WordsEmbedder


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_minilm_embeds_offline_into_unit_vectors_where_similar_situations_are_close(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # any hub access would fail loudly
    a, b, c = MiniLMEmbedder().embed(["strong uptrend, RSI overbought, volatility low",
                                      "uptrend, RSI overbought, volatility low",
                                      "strong downtrend, RSI oversold, in a deep drawdown"])
    assert len(a) == 384 and all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-4) for v in (a, b, c))
    assert _cos(a, b) > _cos(a, c) + 0.1
    model = embeddings._model
    MiniLMEmbedder().embed(["again"])
    assert embeddings._model is model  # loaded once per process
    assert local_embedder() is local_embedder() and local_embedder().name == "all-MiniLM-L6-v2"


def test_the_cache_embeds_each_distinct_text_once() -> None:
    inner = WordsEmbedder()
    cached = CachedEmbedder(inner, size=3)
    first = cached.embed(["a", "b", "a"])
    assert first[0] == first[2] and inner.calls == 1 and cached.misses == 2 and cached.hits == 1
    assert cached.embed(["b", "a"]) == [first[1], first[0]] and inner.calls == 1
    cached.embed(["c", "d", "e"])  # evicts the oldest
    cached.embed(["a"])
    assert inner.calls == 3


class _Server:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.seen: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                status = server.statuses.pop(0) if server.statuses else 200
                payload = {"data": [{"index": i, "embedding": [float(len(t)), 1.0, 0.0]}
                                    for i, t in reversed(list(enumerate(body["input"])))]}
                raw = json.dumps(payload if status == 200 else {"error": "sk-secret-key is wrong"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server([])
    yield s
    s.httpd.shutdown()


def test_an_openai_compatible_endpoint_gives_unit_vectors_in_input_order(server: _Server) -> None:
    emb = OpenAIEmbedder(server.url, "nomic-embed-text", "sk-secret-key", timeout=5)
    v = emb.embed(["ab", "abcd"])
    assert emb.name == "openai:nomic-embed-text"
    assert v[0] == pytest.approx([2 / math.sqrt(5), 1 / math.sqrt(5), 0.0])
    assert v[1] == pytest.approx([4 / math.sqrt(17), 1 / math.sqrt(17), 0.0])
    assert server.seen[0]["path"] == "/v1/embeddings" and server.seen[0]["auth"] == "Bearer sk-secret-key"
    assert server.seen[0]["body"] == {"model": "nomic-embed-text", "input": ["ab", "abcd"]}


def test_an_endpoint_that_fails_is_one_line_without_the_key(server: _Server) -> None:
    server.statuses[:] = [500, 500, 500]
    with pytest.raises(MemoryStoreError, match="after 3 attempt") as err:
        OpenAIEmbedder(server.url, "m", "sk-secret-key", timeout=5, max_retries=2).embed(["x"])
    server.statuses[:] = [401]
    with pytest.raises(MemoryStoreError, match="HTTP 401") as err2:
        OpenAIEmbedder(server.url, "m", "sk-secret-key", timeout=5).embed(["x"])
    for e in (err, err2):
        assert "sk-secret" not in str(e.value) and "\n" not in str(e.value)
