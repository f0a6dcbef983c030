"""A loopback HTTP server for the news tests: routes to bytes, slow drips, huge bodies and redirect chains.

``feed_server`` yields ``(base_url, routes, hits)``: a test sets ``routes[path] = Route(...)`` and reads
``hits`` (paths requested, in order). Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

NEWS_DATA = Path(__file__).resolve().parents[2] / "data" / "news"


@dataclass(frozen=True)
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    location: str | None = None  # a redirect target
    drip_seconds: float = 0.0  # pause between 1 KB chunks
    declared_length: int | None = None  # Content-Length to announce (None: the body's)
    chunked_repeat: int = 0  # send the body this many times without a Content-Length
    gzip: bool = False


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, Route]
    hits: list[str]

    def log_message(self, *args: object) -> None:
        return

    def do_GET(self) -> None:
        self.hits.append(self.path)
        route = self.routes.get(self.path)
        if route is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = gzip.compress(route.body) if route.gzip else route.body
        self.send_response(route.status)
        if route.location:
            self.send_header("Location", route.location)
        self.send_header("Content-Type", route.content_type)
        if route.gzip:
            self.send_header("Content-Encoding", "gzip")
        try:
            if route.chunked_repeat:
                self.send_header("Connection", "close")
                self.end_headers()
                for _ in range(route.chunked_repeat):
                    self.wfile.write(body)
                return
            self.send_header("Content-Length", str(route.declared_length if route.declared_length is not None else len(body)))
            self.end_headers()
            if route.drip_seconds:
                for i in range(0, len(body), 1024):
                    self.wfile.write(body[i : i + 1024])
                    self.wfile.flush()
                    time.sleep(route.drip_seconds)
            else:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client hung up at its cap: what the test wants
            return


@pytest.fixture
def feed_server() -> Iterator[tuple[str, dict[str, Route], list[str]]]:
    routes: dict[str, Route] = {}
    hits: list[str] = []
    handler = type("Handler", (_Handler,), {"routes": routes, "hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", routes, hits
    finally:
        server.shutdown()
        server.server_close()


def rss(*items: str, title: str = "Test feed") -> bytes:
    """An RSS 2.0 document around ``items`` (each an ``<item>…</item>`` string)."""
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
            + "".join(items) + "</channel></rss>").encode("utf-8")


def item(title: str, link: str, date: str = "Thu, 28 Feb 2013 14:00:00 GMT", summary: str = "") -> str:
    return (f"<item><title>{title}</title><link>{link}</link><pubDate>{date}</pubDate>"
            f"<description>{summary}</description></item>")
