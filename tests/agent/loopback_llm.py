"""A misbehaving OpenAI-compatible server on loopback, for end-to-end runs of the real HTTP path.

Each scenario is a function (request body -> (status, body)). The server counts the requests it saw.
A body may be a ``Drip``: written piece by piece, slowly or huge, and the request's record then says how many
bytes reached the socket (``written``) and whether the client hung up (``hung_up``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Drip:
    """A 200 answer written ``chunk`` bytes at a time, ``interval`` seconds apart, for at most ``give_up`` seconds."""

    body: bytes
    interval: float = 0.0
    chunk: int = 1
    drip_headers: bool = False  # drip the status line and headers too, not only the body
    content_length: bool = True
    give_up: float = 60.0


Scenario = Callable[[dict[str, Any]], tuple[int, "dict[str, Any] | str | Drip"]]


def completion(message: dict[str, Any], finish_reason: str = "stop", model: str = "misbehaving-1") -> dict[str, Any]:
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": 1_763_700_000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 900, "completion_tokens": 60, "total_tokens": 960},
    }


def always_500(body: dict[str, Any]) -> tuple[int, dict[str, Any] | str]:
    return 500, {"error": {"message": "internal error", "type": "server_error"}}


def garbage_text(body: dict[str, Any]) -> tuple[int, dict[str, Any] | str]:
    return 200, completion({"content": "Sure! Buy everything!!! {not json"})


def not_json_at_all(body: dict[str, Any]) -> tuple[int, dict[str, Any] | str]:
    return 200, "<html>bad gateway</html>"


def hostile_tool_arguments(body: dict[str, Any]) -> tuple[int, dict[str, Any] | str]:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_bars", "arguments": '{"symbol": 12, "lookback": "all of them; DROP TABLE orders"}'}}
    return 200, completion({"content": None, "tool_calls": [call]}, finish_reason="tool_calls")


def unknown_tool(body: dict[str, Any]) -> tuple[int, dict[str, Any] | str]:
    call = {"id": "call_1", "type": "function", "function": {"name": "place_order", "arguments": '{"symbol": "SP500", "quantity": 1e9}'}}
    return 200, completion({"content": None, "tool_calls": [call]}, finish_reason="tool_calls")


def reckless_but_valid(body: dict[str, Any]) -> tuple[int, dict[str, Any] | str]:
    """Valid answers that ask for far too much: every signal maximal, every target weight 100%."""
    prompt = "\n".join(str(m.get("content") or "") for m in body.get("messages", []) if m.get("role") == "user")
    symbols = [s for s in ("SP500", "NASDAQ", "GOOG") if s in prompt]
    if '"targets"' in prompt:  # only the risk node's output schema has this key
        answer = {"targets": [{"symbol": s, "target_weight": 1.0, "rationale": "all in"} for s in [*symbols, "NOPE"]]}
    else:
        answer = {"signals": [{"symbol": s, "score": 1.0, "confidence": 1.0, "rationale": "to the moon"} for s in symbols]}
    return 200, completion({"content": json.dumps(answer)})


class _Handler(BaseHTTPRequestHandler):
    scenario: Scenario
    seen: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        self.seen.append({"path": self.path, "body": body, "auth": self.headers.get("authorization", "")})
        status, payload = self.scenario(body)
        if isinstance(payload, Drip):
            self._drip(payload, self.seen[-1])
            return
        raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _drip(self, drip: Drip, record: dict[str, Any]) -> None:
        length = f"content-length: {len(drip.body)}\r\n" if drip.content_length else ""
        head = f"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n{length}\r\n".encode()
        record.update(written=0, hung_up=False)
        if not drip.drip_headers:
            self.wfile.write(head)
        data = drip.body if not drip.drip_headers else head + drip.body
        stop = time.monotonic() + drip.give_up
        try:
            for start in range(0, len(data), drip.chunk):
                if time.monotonic() > stop:
                    return
                self.wfile.write(data[start : start + drip.chunk])
                self.wfile.flush()
                record["written"] += len(data[start : start + drip.chunk])
                time.sleep(drip.interval)
        except OSError:  # broken pipe, connection reset: the client hung up
            record["hung_up"] = True
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        return


@contextmanager
def serve(scenario: Scenario) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    handler = type("Handler", (_Handler,), {"scenario": staticmethod(scenario), "seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()
