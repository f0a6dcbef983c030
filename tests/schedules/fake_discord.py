"""A loopback HTTP server standing in for Discord's webhook API (``TRADEAGENT_DISCORD_API_BASE`` points at it).

``script`` is a list of answers served in order, one per request: ``(status, body, headers)``; when it runs out
every request gets ``default`` (204, the answer to ``?wait=false``). Every request is recorded with its path,
query and JSON body.
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

Answer = tuple[int, "dict[str, Any] | None", "dict[str, str]"]
WEBHOOK_ID = "123456789012345678"
TOKEN = "tOkEn-" + "s3cr3t" * 11  # 72 characters, the shape discord.py's URL parser requires
WEBHOOK_URL = f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{TOKEN}"


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

    def answer(self) -> Answer:
        return self.script.pop(0) if self.script else self.default

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return [r.body["embeds"][0] for r in self.requests if r.body.get("embeds")]


def _handler(fake: FakeDiscord) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length) if length else b"{}"
            parts = urlsplit(self.path)
            fake.requests.append(Recorded("POST", parts.path, parse_qs(parts.query), json.loads(raw or b"{}")))
            time.sleep(fake.delay)
            status, body, headers = fake.answer()
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

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
        server.shutdown()
        server.server_close()
