"""``GuardedTransport``: the httpx transport under the OpenAI client; it bounds each HTTP exchange as a whole.

Contract:
- ``with transport.guard(seconds, max_bytes) as call:`` covers one HTTP attempt made from the current thread.
  The WHOLE exchange (connect, request, response headers and body) ends within ``seconds`` of wall clock, and
  at most ``max_bytes`` of response body are read from the wire. When a bound is hit, the connection's socket
  is shut down, so the read blocked on it returns at once and the attempt fails; ``call.cut`` then says which
  bound: ``"timeout"`` or ``"too_large"``. The caller turns that into its own error.
- Outside a guard (or in another thread than the guard's) the transport is a plain pass-through.

Deliberate decisions:
- httpx's timeouts bound each read, not the exchange: a server that sends one byte every 2 s never trips a
  5 s read timeout and can hold a run open for ever. A watchdog timer per attempt shuts the socket down with
  ``shutdown(SHUT_RDWR)``, which wakes a thread blocked in ``recv`` (a plain ``close`` from another thread
  does not reliably do that), and the attempt ends with an error instead of a thread left reading.
- The socket is found through httpcore's ``trace`` extension (the streams returned by ``connect_tcp`` and
  ``start_tls``) and the response's ``network_stream``. Keep-alive is off in the client that uses this
  transport, so every attempt opens its own connection and its watchdog always knows the socket; the cost,
  one TCP/TLS handshake per call, is small next to the seconds an LLM takes to answer.
- The body is also counted, and the clock checked, chunk by chunk: the size cap holds before any JSON parsing,
  and the time bound still holds (one read late at most) where no socket is exposed (respx, a custom transport).
- A ``Content-Length`` above the cap is refused before a byte of the body is read.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import httpx

CutReason = Literal["timeout", "too_large"]
Trace = Callable[[str, dict[str, Any]], None]


class ResponseCut(Exception):
    """Raised inside the transport when a guard's bound is hit; ``Call.cut`` carries the reason."""


class Call:
    """One guarded HTTP attempt: its end on the monotonic clock, its byte cap, its sockets, and why it was cut."""

    def __init__(self, seconds: float, max_bytes: int) -> None:
        self.end = time.monotonic() + seconds
        self.max_bytes = max_bytes
        self.received = 0
        self.cut: CutReason | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def watch(self, stream: Any) -> None:
        """Remember the socket under ``stream`` (an httpcore network stream); shut it at once if already cut."""
        sock = _socket_of(stream)
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            already_cut = self.cut is not None
        if already_cut:
            _shutdown(sock)

    def stop(self, reason: CutReason) -> None:
        """Cut the attempt: record the first reason and shut down every socket it opened."""
        with self._lock:
            if self.cut is None:
                self.cut = reason
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)

    def count(self, received: int) -> None:
        """Account for ``received`` body bytes; stop the attempt past the byte cap or past its end."""
        self.received += received
        if self.received > self.max_bytes:
            self.stop("too_large")
        elif time.monotonic() >= self.end:
            self.stop("timeout")
        if self.cut is not None:
            raise ResponseCut(self.cut)


class GuardedTransport(httpx.BaseTransport):
    """Wraps ``inner`` (an ``httpx.HTTPTransport``); see the module docstring."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner
        self._local = threading.local()

    @contextmanager
    def guard(self, seconds: float, max_bytes: int) -> Iterator[Call]:
        call = Call(seconds, max_bytes)
        watchdog = threading.Timer(seconds, call.stop, args=("timeout",))
        watchdog.daemon = True
        self._local.call = call
        watchdog.start()
        try:
            yield call
        finally:
            watchdog.cancel()
            self._local.call = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        call: Call | None = getattr(self._local, "call", None)
        if call is None:
            return self._inner.handle_request(request)
        request.extensions = {**request.extensions, "trace": _tracer(call, request.extensions.get("trace"))}
        response = self._inner.handle_request(request)
        call.watch(response.extensions.get("network_stream"))
        stream = response.stream
        assert isinstance(stream, httpx.SyncByteStream)  # a sync transport returns a sync stream
        declared = _content_length(response.headers)
        if declared is not None and declared > call.max_bytes:
            call.stop("too_large")
            stream.close()
            raise ResponseCut("too_large")
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_CountedStream(stream, call),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()


class _CountedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, call: Call) -> None:
        self._inner = inner
        self._call = call

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._call.count(len(chunk))
            yield chunk

    def close(self) -> None:
        self._inner.close()


def _tracer(call: Call, downstream: Trace | None) -> Trace:
    def trace(event: str, info: dict[str, Any]) -> None:
        if event.endswith(("connect_tcp.complete", "start_tls.complete")):
            call.watch(info.get("return_value"))
        if downstream is not None:
            downstream(event, info)

    return trace


def _socket_of(stream: Any) -> socket.socket | None:
    get_extra_info = getattr(stream, "get_extra_info", None)
    if get_extra_info is None:
        return None
    sock = get_extra_info("socket")
    return sock if isinstance(sock, socket.socket) else None


def _shutdown(sock: socket.socket) -> None:
    # the base method on purpose: SSLSocket.shutdown also drops its SSL object under a thread still reading it;
    # OSError: already closed, or a TCP socket whose fd went to the TLS socket we also watch
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _content_length(headers: httpx.Headers) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None
