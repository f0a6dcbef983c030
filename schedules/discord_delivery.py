"""Deliver the alert outbox to a Discord webhook (discord.py's ``SyncWebhook``), one embed per alert.

Contract:
- ``deliver(settings)`` sends every pending alert of ``TRADEAGENT_HOME/tradeagent.duckdb`` in the order it was
  enqueued and marks each delivered right after Discord accepted it. It never raises for a delivery problem:
  the ``DeliveryReport`` says what went out, what is still pending and why. Undelivered alerts stay in the
  outbox for the next pass.
- A total time ``budget_seconds`` bounds the whole pass in wall-clock time, retries, waits and each HTTP
  exchange included (however slowly a server answers), so a Discord outage or a stalled proxy can never hold
  up a trading run or the scheduler.
- The DuckDB file is never held while Discord is being talked to: the pass reads the pending alerts and
  closes the file, then opens it for a moment after each answer to record it. Another process (the next
  ``tradeagent daily``) can open the file at any point of a pass.
- Nothing is sent twice: one pass at a time per home (an exclusive ``flock`` on ``TRADEAGENT_HOME/deliver.lock``;
  a second pass says so and sends nothing), an alert is sent only while its row is undelivered, and an alert
  Discord accepted is written to ``TRADEAGENT_HOME/deliver.journal`` before the outbox is updated: when the file
  is busy at that moment (another process holds it), the pass stops, and the next pass records the journal's
  ids as delivered before it reads what is pending.

Deliberate decisions:
- Retries are ours, not discord.py's: the ``requests`` session handed to ``SyncWebhook`` retries 429 (waiting
  at least Discord's ``retry_after``, else the ``Retry-After`` header), 5xx and connection errors with
  exponential backoff and jitter, inside the budget; when the budget cannot cover the next wait it gives up
  and the pass stops (the alerts stay pending). discord.py never sees a 429, a 5xx or a rate-limit header, so
  its own unbounded sleeps never run. 401/403/404 (webhook deleted or wrong) stop the pass too; another 4xx is
  this alert's problem: it is counted as a failed attempt and the pass goes on.
- Each HTTP exchange has a wall-clock deadline, the end of the budget: ``requests``' timeout is per socket read,
  so a server dripping one byte a second never trips it; a watchdog timer shuts the exchange's socket down at
  the deadline instead (headers and body alike), and that attempt counts as failed (the alert stays pending).
- At most ``MAX_ANSWER_BYTES`` of an answer are read (Discord's are a few hundred bytes; a proxy's 300 MB
  answer is cut, never buffered), uncompressed (``Accept-Encoding: identity``), no redirects followed. A 2xx
  is Discord accepting the alert, whatever its body: it counts as delivered even when the body is cut or not
  JSON. A non-JSON error body is passed on as text.
- ``TRADEAGENT_DISCORD_API_BASE`` replaces discord.py's ``https://discord.com/api`` in every request URL (a
  proxy, or a loopback server in tests); the webhook URL itself must be a Discord webhook URL.
- The webhook URL is a secret: its token and id are replaced by ``***`` in every error kept, printed or
  logged, and a filter redacts them from discord.py's and urllib3's own log records while a pass runs. The
  lock and the journal hold a PID and alert ids only.
- Text from the market or an LLM cannot ping anyone or break the embed: control characters are dropped,
  mentions and markdown escaped, every part cut to Discord's limits (and the total under 6,000 characters),
  and ``allowed_mentions`` is none.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import discord
import duckdb
import requests
import urllib3
from discord.http import Route
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from agent.settings import Settings
from portfolio import outbox
from portfolio.storage import StorageError, connect

BUDGET_SECONDS = 30.0  # a whole pass, retries included
REQUEST_TIMEOUT = 10.0  # one socket operation; the exchange as a whole ends with the budget
MAX_TRIES = 5  # per alert, inside the budget
BACKOFF_BASE = 0.5  # seconds; doubled per try, capped at BACKOFF_CAP, then jittered
BACKOFF_CAP = 8.0
MAX_ANSWER_BYTES = 64 * 1024  # of one answer's body; Discord's are a few hundred bytes
LOCK_NAME, JOURNAL_NAME = "deliver.lock", "deliver.journal"
_COLOURS = {"info": 0x2E86DE, "warning": 0xF39C12, "critical": 0xC0392B}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_LOGGERS = ("discord.webhook.sync", "urllib3.connectionpool")
_TRANSPORT_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError)


@dataclass
class DeliveryReport:
    delivered: list[str] = field(default_factory=list)
    pending: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # alert id -> redacted error of this pass
    stopped: str | None = None  # why the pass stopped early (redacted), or why nothing was tried
    configured: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "pending": self.pending, "failed": self.failed,
                "stopped": self.stopped, "webhook_configured": self.configured}  # fmt: skip

    def line(self) -> str:
        if not self.configured:
            return f"alerts: {self.pending} pending in the outbox (TRADEAGENT_DISCORD_WEBHOOK_URL is not set)"
        text = f"alerts: {len(self.delivered)} delivered to Discord, {self.pending} pending"
        return text + (f" ({self.stopped})" if self.stopped else "")


class _GaveUp(Exception):  # not an OSError: discord.py's request loop must not catch and retry it
    def __init__(self, reason: str, *, fatal: bool = True) -> None:
        super().__init__(reason)
        self.fatal = fatal


class Redactor:
    """Removes a webhook URL, its token and its id from any text."""

    def __init__(self, url: str) -> None:
        m = re.search(r"/webhooks/([0-9]+)/([A-Za-z0-9._-]+)", url)
        self._secrets = sorted({s for s in (url, *(m.groups() if m else ())) if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class _RedactingFilter(logging.Filter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redact(record.getMessage())
        record.args = None
        return True


@contextlib.contextmanager
def _redacted_logs(redact: Redactor) -> Iterator[None]:
    flt = _RedactingFilter(redact)
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    for logger in loggers:
        logger.addFilter(flt)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(flt)


# --------------------------------------------------------------------------- a wall-clock deadline per exchange

_ACTIVE = threading.local()  # the watchdog of the exchange this thread is in, if any


class _Watchdog:
    """Shuts down the socket of this thread's HTTP exchange ``seconds`` from now, whatever it is waiting for.

    ``requests``' timeout bounds each socket read, not the exchange: a server sending one byte a second keeps a
    read going for ever. Shutting the socket down makes the blocked read return at once (an error).
    """

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        _ACTIVE.watchdog = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _ACTIVE.watchdog = None

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            fired = self.fired
        if fired:
            _shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        # the plain socket's shutdown, also for a TLS socket (whose own shutdown would unwrap it under the reader)
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _WatchedHTTPConnection(HTTPConnection):
    def getresponse(self) -> Any:
        watchdog = getattr(_ACTIVE, "watchdog", None)
        if watchdog is not None:
            watchdog.watch(self.sock)  # connected and request sent: from here on the answer is awaited
        return super().getresponse()


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> Any:
        watchdog = getattr(_ACTIVE, "watchdog", None)
        if watchdog is not None:
            watchdog.watch(self.sock)
        return super().getresponse()


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def _read_capped(response: requests.Response) -> None:
    """Read at most ``MAX_ANSWER_BYTES`` of the body into the response; what is left is never read."""
    chunks, size = [], 0
    while size <= MAX_ANSWER_BYTES:
        chunk = response.raw.read(MAX_ANSWER_BYTES + 1 - size, decode_content=False)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = b"".join(chunks)
    if size > MAX_ANSWER_BYTES:
        response.raw.close()  # the connection goes, with whatever the server still wanted to send
        data = data[:MAX_ANSWER_BYTES]
    response._content, response._content_consumed = data, True


def _for_discord_py(response: requests.Response) -> requests.Response:
    """The answer as discord.py may see it: no body for a 2xx, text for an error that is not JSON, no
    rate-limit headers (discord.py would sleep for as long as they say; our retries honour 429s)."""
    for name in [h for h in response.headers if h.lower().startswith("x-ratelimit")]:
        del response.headers[name]
    if 200 <= response.status_code < 300:
        response._content = b""  # accepted: its body (cut, not JSON, anything) changes nothing
    elif response.headers.get("Content-Type") == "application/json":
        try:
            json.loads(response.content)
        except (ValueError, RecursionError):  # cut, not JSON, or nested deeper than the parser goes
            response.headers["Content-Type"] = "text/plain"
    return response


class _Session(requests.Session):
    """The session discord.py sends through: our API base, deadlines, capped answers, bounded retries."""

    def __init__(self, api_base: str, deadline: float, *, clock: Callable[[], float], sleep: Callable[[float], None],
                 jitter: Callable[[], float]) -> None:
        super().__init__()
        self._base, self._deadline = api_base.rstrip("/"), deadline
        self._clock, self._sleep, self._jitter = clock, sleep, jitter
        self.statuses: list[int] = []  # every HTTP status seen (tests, diagnostics)
        self.headers["Accept-Encoding"] = "identity"  # a capped read of a compressed body would be meaningless
        for prefix in ("http://", "https://"):
            self.mount(prefix, _WatchedAdapter())

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        method, url = method.decode() if isinstance(method, bytes) else method, str(url)
        kwargs.pop("timeout", None)  # ours: never longer than what is left of the budget
        kwargs.update(stream=True, allow_redirects=False)
        default = Route.BASE.rsplit("/v", 1)[0]  # https://discord.com/api
        if url.startswith(default):
            url = self._base + url[len(default):]
        last, attempt = "no time left in the pass's budget", 0
        for attempt in range(MAX_TRIES):
            left = self._deadline - self._clock()
            if left <= 0:
                break
            kwargs["timeout"] = min(REQUEST_TIMEOUT, left)
            with _Watchdog(left) as watchdog:
                try:
                    response = super().request(method, url, *args, **kwargs)
                    try:
                        _read_capped(response)
                    finally:
                        response.close()
                except _TRANSPORT_ERRORS as exc:
                    if watchdog.fired:
                        last = "no complete answer within the pass's time budget (a stalled or slow server)"
                        break
                    wait, last = self._backoff(attempt), f"connection failed ({type(exc).__name__})"
                    response = None
            if response is not None:
                self.statuses.append(response.status_code)
                if response.status_code == 429:
                    wait, last = max(_retry_after(response), self._backoff(attempt)), "rate limited (429)"
                elif response.status_code >= 500:
                    wait, last = self._backoff(attempt), f"Discord error {response.status_code}"
                else:
                    return _for_discord_py(response)  # 2xx, or a 4xx that discord.py turns into its own exception
            if attempt == MAX_TRIES - 1 or self._clock() + wait > self._deadline:
                break
            self._sleep(wait)
        raise _GaveUp(f"{last}; gave up after {attempt + 1} tr{'y' if attempt == 0 else 'ies'} (retries stay within the pass's time budget)")

    def _backoff(self, attempt: int) -> float:
        base = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
        return base * (0.5 + self._jitter() / 2)  # "equal jitter": never less than half the backoff


def _retry_after(response: requests.Response) -> float:
    try:
        value = float(response.json().get("retry_after"))
    except Exception:  # not JSON, no field: fall back to the header
        try:
            value = float(response.headers.get("Retry-After", "1"))
        except ValueError:
            value = 1.0
    return max(0.0, min(value, 3600.0))


def clean(text: str, limit: int) -> str:
    """Market or LLM text made inert for an embed: no control characters, mentions or markdown; within ``limit``."""
    text = _CONTROL.sub("", text.replace("\r", ""))
    text = discord.utils.escape_markdown(discord.utils.escape_mentions(text), as_needed=False)
    if len(text) > limit:
        text = text[: limit - 1].rstrip("\\") + "…"
    return text or "-"


def embed_for(alert: outbox.Alert) -> discord.Embed:
    """One alert as one embed, within Discord's limits (title 256, description 4096, 25 fields, 6,000 total)."""
    embed = discord.Embed(title=clean(alert.title, 250), description=clean(alert.body, 2000),
                          colour=_COLOURS.get(alert.severity, _COLOURS["info"]),
                          timestamp=alert.created_at.replace(tzinfo=UTC))  # fmt: skip
    used = len(embed.title or "") + len(embed.description or "") + 100
    for name, value in alert.fields[: outbox.MAX_FIELDS]:
        n, v = clean(name, 100), clean(value, 300)
        if used + len(n) + len(v) > 5800:
            break
        used += len(n) + len(v)
        embed.add_field(name=n, value=v, inline=len(v) < 40)
    embed.set_footer(text=f"tradeagent · {alert.kind} · alert {alert.alert_id}")
    return embed


def deliver(
    settings: Settings,
    *,
    budget_seconds: float = BUDGET_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
) -> DeliveryReport:
    """One delivery pass over the outbox; never raises for a delivery problem (see the module docstring)."""
    deadline = clock() + budget_seconds
    db_path: Path = settings.db_path
    secret = settings.discord_webhook_url.get_secret_value() if settings.discord_webhook_url else ""
    redact = Redactor(secret)
    if not db_path.exists():
        return DeliveryReport(configured=bool(secret), stopped=None if secret else "no webhook")
    report = DeliveryReport(configured=bool(secret))
    try:
        if not secret:
            report.pending, report.stopped = len(_pending(db_path)), "no webhook"
            return report
        if not settings.discord_api_base.startswith(("http://", "https://")):
            report.pending = len(_pending(db_path))
            report.stopped = "TRADEAGENT_DISCORD_API_BASE must start with http:// or https://"
            return report
        session = _Session(settings.discord_api_base, deadline, clock=clock, sleep=sleep, jitter=jitter)
        try:
            webhook = discord.SyncWebhook.from_url(secret, session=session)
        except ValueError:
            report.pending = len(_pending(db_path))
            report.stopped = "TRADEAGENT_DISCORD_WEBHOOK_URL is not a Discord webhook URL (value not shown)"
            return report
        with _one_pass(settings.home) as holder:
            if holder is not None:
                report.pending = len(_pending(db_path))
                report.stopped = f"another delivery pass (PID {holder}) is running on this home; nothing sent"
                return report
            pending = _pending(db_path, journal=settings.home / JOURNAL_NAME)  # closed again before any request
            if pending:
                with _redacted_logs(redact), session:
                    _send_all(settings, webhook, pending, report, redact)
        report.pending = len(_pending(db_path))
    except (StorageError, duckdb.Error) as exc:
        report.stopped = report.stopped or redact(f"outbox unavailable: {' '.join(str(exc).split())}")
    return report


def _pending(db_path: Path, journal: Path | None = None) -> list[outbox.Alert]:
    """The pending alerts, read with the file open only for this; first, the journal's ids are recorded."""
    con = connect(db_path)
    try:
        if journal is not None and journal.exists():
            for aid in journal.read_text(encoding="ascii", errors="replace").split():
                outbox.mark_delivered(con, aid)
            journal.unlink()  # recorded: the outbox says it now
        return outbox.alerts(con, pending_only=True)
    finally:
        con.close()


@contextlib.contextmanager
def _one_pass(home: Path) -> Iterator[str | None]:
    """Hold ``home/deliver.lock`` for the pass (yields None), or yield the PID of the pass that holds it."""
    fd = os.open(home / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            return
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield None
    finally:
        os.close(fd)  # closing releases the lock


def _send_all(settings: Settings, webhook: discord.SyncWebhook, pending: list[outbox.Alert], report: DeliveryReport,
              redact: Callable[[str], str]) -> None:
    for alert in pending:
        try:
            webhook.send(embed=embed_for(alert), username="tradeagent",
                         allowed_mentions=discord.AllowedMentions.none(), wait=False)
        except _GaveUp as exc:
            _failed(settings, alert, report, redact(str(exc)))
            report.stopped = report.failed[alert.alert_id]
            return
        except (discord.Forbidden, discord.NotFound) as exc:
            _failed(settings, alert, report, redact(f"webhook refused ({exc.status}): check TRADEAGENT_DISCORD_WEBHOOK_URL"))
            report.stopped = report.failed[alert.alert_id]
            return
        except discord.HTTPException as exc:
            _failed(settings, alert, report, redact(f"Discord refused this alert ({exc.status}): {exc.text[:200]}"))
            if exc.status == 401:
                report.stopped = report.failed[alert.alert_id]
                return
            continue
        except Exception as exc:  # anything else (a bug, a broken proxy): stop, keep the rest pending
            _failed(settings, alert, report, redact(f"{type(exc).__name__}: {exc}"))
            report.stopped = report.failed[alert.alert_id]
            return
        if not _record(settings, alert.alert_id, report):
            return


def _record(settings: Settings, aid: str, report: DeliveryReport) -> bool:
    """Mark a sent alert delivered: journal first (it survives a busy file), then the outbox; False stops the pass."""
    journal = settings.home / JOURNAL_NAME
    with journal.open("a", encoding="ascii") as f:
        f.write(aid + "\n")
        f.flush()
        os.fsync(f.fileno())
    try:
        con = connect(settings.db_path)
        try:
            marked = outbox.mark_delivered(con, aid)
        finally:
            con.close()
    except (StorageError, duckdb.Error) as exc:
        report.stopped = (f"alert {aid} was sent but the outbox is busy ({exc}); it is recorded on the next pass, "
                          "never sent again")  # fmt: skip
        return False
    journal.unlink(missing_ok=True)
    if marked:
        report.delivered.append(aid)
    return True


def _failed(settings: Settings, alert: outbox.Alert, report: DeliveryReport, error: str) -> None:
    report.failed[alert.alert_id] = error
    with contextlib.suppress(Exception):
        con = connect(settings.db_path)
        try:
            outbox.mark_failed(con, alert.alert_id, error)
        finally:
            con.close()
