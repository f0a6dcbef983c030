"""A loopback HTTP server standing in for Discord's webhook API (``TRADEAGENT_DISCORD_API_BASE`` points at it).

``script`` is a list of answers served in order, one per request; when it runs out every request gets
``default`` (204, the answer to ``?wait=false``). An answer is ``(status, body, headers)`` (a dict body is sent
as JSON, bytes as they are), or a hostile one: ``Drip`` (an answer that never finishes: one byte a second) or
``Flood`` (a huge body). Every request is recorded with its path, query and JSON body.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

WEBHOOK_ID = "123456789012345678"
TOKEN = "tOkEn-" + "s3cr3t" * 11  # 72 characters, the shape discord.py's URL parser requires
WEBHOOK_URL = f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{TOKEN}"


@dataclass(frozen=True)
class Drip:
    """200 with ``Content-Length: length``, then one byte every ``every`` seconds (the status line too if
    ``headers_too``): each socket read gets data well within any per-read timeout, and the answer never ends."""

    every: float = 1.0
    length: int = 100_000
    headers_too: bool = False


@dataclass(frozen=True)
class Flood:
    """``status`` with ``Content-Length: claimed`` and then ``send`` bytes as fast as the client reads them."""

    status: int = 200
    claimed: int = 300_000_000
    send: int = 40_000_000


Answer = tuple[int, "dict[str, Any] | bytes | None", "dict[str, str]"] | Drip | Flood


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: dict[str, Any]


@dataclass
class FakeDiscord:
    script: list[Answer] = field(default_factory=list)
    default: Answer = (204, None, {})
    requests: list[Recorded] = field(default_factory=list)
    base: str = ""
    delay: float = 0.0  # seconds each answer waits (a slow Discord)
    sent_bytes: int = 0  # body bytes written by Flood and Drip answers
    stopped: threading.Event = field(default_factory=threading.Event)

    def answer(self) -> Answer:
        return self.script.pop(0) if self.script else self.default

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return [r.body["embeds"][0] for r in self.requests if isinstance(r.body.get("embeds"), list)]


def _handler(fake: FakeDiscord) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length) if length else b"{}"
            parts = urlsplit(self.path)
            fake.requests.append(Recorded("POST", parts.path, parse_qs(parts.query), json.loads(raw or b"{}")))
            time.sleep(fake.delay)
            answer = fake.answer()
            if isinstance(answer, Drip):
                self._drip(answer)
                return
            if isinstance(answer, Flood):
                self._flood(answer)
                return
            status, body, headers = answer
            data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if isinstance(body, dict):
                self.send_header("Content-Type", "application/json")
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _drip(self, drip: Drip) -> None:
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {drip.length}\r\n\r\n".encode()
            if not drip.headers_too:
                self.wfile.write(head)
                head = b""
            data = head + b" " * drip.length
            try:
                for i in range(len(data)):
                    if fake.stopped.wait(drip.every if i else 0):
                        return
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                    fake.sent_bytes += 1
            except OSError:  # the client gave up
                return
            finally:
                self.close_connection = True

        def _flood(self, flood: Flood) -> None:
            self.send_response(flood.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(flood.claimed))
            self.end_headers()
            block = b"[" * 65536
            try:
                while fake.sent_bytes < flood.send and not fake.stopped.is_set():
                    self.wfile.write(block)
                    fake.sent_bytes += len(block)
            except OSError:  # the client stopped reading and closed the connection
                pass
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    return Handler


@contextmanager
def fake_discord(script: list[Answer] | None = None) -> Iterator[FakeDiscord]:
    fake = FakeDiscord(script=list(script or []))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.base = f"http://127.0.0.1:{server.server_address[1]}/api"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.stopped.set()
        server.shutdown()
        server.server_close()
