"""Deliver the alert outbox to a Discord webhook (discord.py's ``SyncWebhook``), one embed per alert.

Contract:
- ``deliver(settings)`` sends every pending alert of ``TRADEAGENT_HOME/tradeagent.duckdb`` in the order it was
  enqueued and marks each delivered right after Discord accepted it. It never raises for a delivery problem:
  the ``DeliveryReport`` says what went out, what is still pending and why. Undelivered alerts stay in the
  outbox for the next pass.
- Nothing is sent twice: an alert is sent only while its row is undelivered, by the one process that holds the
  DuckDB file (DuckDB admits one writer process), and marked delivered before the next one is sent.
- A total time ``budget_seconds`` bounds the whole pass, retries and waits included, so a Discord outage can
  never hold up a trading run or the scheduler.

Deliberate decisions:
- Retries are ours, not discord.py's: the ``requests`` session handed to ``SyncWebhook`` retries 429 (waiting
  at least Discord's ``retry_after``, else the ``Retry-After`` header), 5xx and connection errors with
  exponential backoff and jitter, inside the budget; when the budget cannot cover the next wait it gives up
  and the pass stops (the alerts stay pending). discord.py never sees a 429 or a 5xx, so its own unbounded
  sleeps never run. 401/403/404 (webhook deleted or wrong) stop the pass too; another 4xx is this alert's
  problem: it is counted as a failed attempt and the pass goes on.
- ``TRADEAGENT_DISCORD_API_BASE`` replaces discord.py's ``https://discord.com/api`` in every request URL (a
  proxy, or a loopback server in tests); the webhook URL itself must be a Discord webhook URL.
- The webhook URL is a secret: its token and id are replaced by ``***`` in every error kept, printed or
  logged, and a filter redacts them from discord.py's and urllib3's own log records while a pass runs.
- Text from the market or an LLM cannot ping anyone or break the embed: control characters are dropped,
  mentions and markdown escaped, every part cut to Discord's limits (and the total under 6,000 characters),
  and ``allowed_mentions`` is none.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import discord
import requests
from discord.http import Route

from agent.settings import Settings
from portfolio import outbox
from portfolio.storage import StorageError, connect

BUDGET_SECONDS = 30.0  # a whole pass, retries included
REQUEST_TIMEOUT = 10.0  # one HTTP request
MAX_TRIES = 5  # per alert, inside the budget
BACKOFF_BASE = 0.5  # seconds; doubled per try, capped at BACKOFF_CAP, then jittered
BACKOFF_CAP = 8.0
_COLOURS = {"info": 0x2E86DE, "warning": 0xF39C12, "critical": 0xC0392B}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_LOGGERS = ("discord.webhook.sync", "urllib3.connectionpool")


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


class _Session(requests.Session):
    """The session discord.py sends through: our API base, timeouts, and bounded retries with jitter."""

    def __init__(self, api_base: str, deadline: float, *, clock: Callable[[], float], sleep: Callable[[float], None],
                 jitter: Callable[[], float]) -> None:
        super().__init__()
        self._base, self._deadline = api_base.rstrip("/"), deadline
        self._clock, self._sleep, self._jitter = clock, sleep, jitter
        self.statuses: list[int] = []  # every HTTP status seen (tests, diagnostics)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        method, url = method.decode() if isinstance(method, bytes) else method, str(url)
        kwargs.pop("timeout", None)  # ours: never longer than what is left of the budget
        default = Route.BASE.rsplit("/v", 1)[0]  # https://discord.com/api
        if url.startswith(default):
            url = self._base + url[len(default):]
        last, attempt = "no time left in the pass's budget", 0
        for attempt in range(MAX_TRIES):
            left = self._deadline - self._clock()
            if left <= 0:
                break
            try:
                kwargs["timeout"] = min(REQUEST_TIMEOUT, left)
                response = super().request(method, url, *args, **kwargs)
            except requests.RequestException as exc:
                wait, last = self._backoff(attempt), f"connection failed ({type(exc).__name__})"
            else:
                self.statuses.append(response.status_code)
                if response.status_code == 429:
                    wait, last = max(_retry_after(response), self._backoff(attempt)), "rate limited (429)"
                elif response.status_code >= 500:
                    wait, last = self._backoff(attempt), f"Discord error {response.status_code}"
                else:
                    return response  # 2xx, or a 4xx that discord.py turns into its own exception
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
    db_path: Path = settings.db_path
    secret = settings.discord_webhook_url.get_secret_value() if settings.discord_webhook_url else ""
    redact = Redactor(secret)
    if not db_path.exists():
        return DeliveryReport(configured=bool(secret), stopped=None if secret else "no webhook")
    try:
        con = connect(db_path)
    except StorageError as exc:
        return DeliveryReport(configured=bool(secret), stopped=redact(f"outbox unavailable: {exc}"))
    try:
        pending = outbox.alerts(con, pending_only=True)
        if not secret:
            return DeliveryReport(configured=False, pending=len(pending), stopped="no webhook")
        report = DeliveryReport()
        if not pending:
            return report
        if not settings.discord_api_base.startswith(("http://", "https://")):
            report.pending, report.stopped = len(pending), "TRADEAGENT_DISCORD_API_BASE must start with http:// or https://"
            return report
        session = _Session(settings.discord_api_base, clock() + budget_seconds, clock=clock, sleep=sleep, jitter=jitter)
        try:
            webhook = discord.SyncWebhook.from_url(secret, session=session)
        except ValueError:
            report.pending = len(pending)
            report.stopped = "TRADEAGENT_DISCORD_WEBHOOK_URL is not a Discord webhook URL (value not shown)"
            return report
        with _redacted_logs(redact), session:
            _send_all(con, webhook, pending, report, redact)
        report.pending = len(outbox.alerts(con, pending_only=True))
        return report
    finally:
        con.close()


def _send_all(con: Any, webhook: discord.SyncWebhook, pending: list[outbox.Alert], report: DeliveryReport,
              redact: Callable[[str], str]) -> None:
    for alert in pending:
        if outbox.is_delivered(con, alert.alert_id):  # delivered meanwhile (an earlier pass of this process)
            continue
        try:
            webhook.send(embed=embed_for(alert), username="tradeagent",
                         allowed_mentions=discord.AllowedMentions.none(), wait=False)
        except _GaveUp as exc:
            _failed(con, alert, report, redact(str(exc)))
            report.stopped = report.failed[alert.alert_id]
            return
        except (discord.Forbidden, discord.NotFound) as exc:
            _failed(con, alert, report, redact(f"webhook refused ({exc.status}): check TRADEAGENT_DISCORD_WEBHOOK_URL"))
            report.stopped = report.failed[alert.alert_id]
            return
        except discord.HTTPException as exc:
            _failed(con, alert, report, redact(f"Discord refused this alert ({exc.status}): {exc.text[:200]}"))
            if exc.status == 401:
                report.stopped = report.failed[alert.alert_id]
                return
            continue
        except Exception as exc:  # anything else (a bug, a broken proxy): stop, keep the rest pending
            _failed(con, alert, report, redact(f"{type(exc).__name__}: {exc}"))
            report.stopped = report.failed[alert.alert_id]
            return
        if outbox.mark_delivered(con, alert.alert_id):
            report.delivered.append(alert.alert_id)


def _failed(con: Any, alert: outbox.Alert, report: DeliveryReport, error: str) -> None:
    report.failed[alert.alert_id] = error
    with contextlib.suppress(Exception):
        outbox.mark_failed(con, alert.alert_id, error)
