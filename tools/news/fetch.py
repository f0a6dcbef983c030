"""The bytes of a feed, under limits: http(s) with httpx, or a local file. feedparser never fetches anything.

Contract:
- ``fetch_bytes(location, limits)`` returns ``Fetched(data, content_type, url)`` or raises ``FetchError`` with a
  one-line reason. ``location`` is an ``http://`` or ``https://`` URL, a ``file://`` URL or a local path; any
  other scheme is refused.
- Limits (``FetchLimits``): connect/read timeout, a total deadline per source (a server dripping one byte a
  second cannot hold the run), ``max_bytes`` of DECODED body (checked against Content-Length first, then while
  streaming, so a gzip bomb stops at the cap too), at most ``max_redirects`` redirects, http(s) only.

Deliberate decisions:
- feedparser can fetch URLs itself, with its own unbounded defaults: it is only ever handed bytes.
- Non-2xx statuses are errors with the status line; the body is not read.
- Where a location is stored or shown, ``display_location`` drops an http(s) URL's credentials and query.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

USER_AGENT = "tradeagent-news/1.0 (+https://github.com/; a personal trading agent's feed reader)"


class FetchError(Exception):
    """A source could not be read within its limits; the message is one line."""


@dataclass(frozen=True)
class FetchLimits:
    timeout_seconds: float = 10.0
    total_seconds: float = 30.0
    max_bytes: int = 5_000_000
    max_redirects: int = 3


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str | None
    url: str  # after redirects


def _local(location: str) -> Path | None:
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme in ("http", "https"):
        return None
    if parsed.scheme and len(parsed.scheme) > 1:  # "C:" is a Windows drive, not a scheme
        raise FetchError(f"unsupported scheme {parsed.scheme!r} (http, https, file or a local path)")
    return Path(location).expanduser()


def display_location(location: str) -> str:
    """``location`` safe to store and show: an http(s) URL loses its user, password and query (private feeds
    carry tokens there); a path is kept as written."""
    parsed = urlparse(location)
    if parsed.scheme not in ("http", "https"):
        return location
    host = parsed.hostname or ""
    port = f":{parsed.port}" if parsed.port else ""
    hidden = "?…" if parsed.query else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path}{hidden}"


def is_local(location: str) -> bool:
    """True for a local path or ``file://`` URL (False for http(s) and for schemes ``fetch_bytes`` refuses)."""
    try:
        return _local(location) is not None
    except FetchError:
        return False


def _read_file(path: Path, limits: FetchLimits) -> Fetched:
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise FetchError(f"file is {size:,} bytes, over the {limits.max_bytes:,}-byte cap")
        with path.open("rb") as fh:
            data = fh.read(limits.max_bytes + 1)
    except FileNotFoundError:
        raise FetchError(f"file {path} not found") from None
    except IsADirectoryError:
        raise FetchError(f"{path} is a folder, not a feed file") from None
    except OSError as exc:
        raise FetchError(f"file {path} cannot be read ({exc.strerror or exc})") from None
    if len(data) > limits.max_bytes:  # it grew between stat and read
        raise FetchError(f"file is over the {limits.max_bytes:,}-byte cap")
    return Fetched(data=data, content_type=None, url=str(path))


def fetch_bytes(location: str, limits: FetchLimits | None = None, *, client: httpx.Client | None = None) -> Fetched:
    """The body at ``location`` within ``limits`` (see the module doc); ``FetchError`` otherwise."""
    limits = limits or FetchLimits()
    path = _local(location)
    if path is not None:
        return _read_file(path, limits)
    own = client is None
    http = client or httpx.Client(
        timeout=httpx.Timeout(limits.timeout_seconds), follow_redirects=True, max_redirects=limits.max_redirects,
        headers={"User-Agent": USER_AGENT, "Accept": "application/rss+xml, application/atom+xml, application/xml, text/xml;q=0.9, */*;q=0.5"},
    )  # fmt: skip
    started = time.monotonic()
    try:
        with http.stream("GET", location) as response:
            if response.url.scheme not in ("http", "https"):
                raise FetchError(f"redirected to a non-http URL ({response.url.scheme})")
            if not 200 <= response.status_code < 300:
                raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}".strip())
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limits.max_bytes:
                raise FetchError(f"body is {int(declared):,} bytes, over the {limits.max_bytes:,}-byte cap")
            chunks, total = [], 0
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > limits.max_bytes:
                    raise FetchError(f"body is over the {limits.max_bytes:,}-byte cap")
                if time.monotonic() - started > limits.total_seconds:
                    raise FetchError(f"took over {limits.total_seconds:g} s")
                chunks.append(chunk)
            return Fetched(data=b"".join(chunks), content_type=response.headers.get("content-type"),
                           url=str(response.url))
    except httpx.TooManyRedirects:
        raise FetchError(f"more than {limits.max_redirects} redirects") from None
    except httpx.TimeoutException:
        raise FetchError(f"timed out after {limits.timeout_seconds:g} s") from None
    except httpx.InvalidURL as exc:
        raise FetchError(f"invalid URL ({exc})") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"{type(exc).__name__}: {' '.join(str(exc).split()) or 'connection failed'}") from None
    finally:
        if own:
            http.close()
