"""CLI: ``tradeagent chat [--host 127.0.0.1] [--port 7860] [--auth USER:PASS] [--llm offline|openai]``.

Contract:
- Serves the read-only Gradio app (``agent.chat.app``) over ``TRADEAGENT_HOME`` until Ctrl-C.
- Binds 127.0.0.1 by default. Any host that is not loopback (127.0.0.0/8, ::1, localhost) requires a login:
  ``--auth user:pass`` or ``TRADEAGENT_CHAT_AUTH=user:pass``; without one the command refuses to start with
  one line (exit 2). A value that is not ``user:pass`` with both parts non-empty is refused the same way,
  and the password is never printed.
- IPv6 works: ``--host ::1`` and ``--host '[::1]'`` are the same address; the server and the printed URL
  get it bracketed (``http://[::1]:7860/``).
- ``--llm``: ``openai`` when ``OPENAI_API_KEY`` is set, else ``offline`` (the intent router, which says it is
  the offline mode), as for the daily run (``agent.llm.factory.make_client``).

Deliberate decisions:
- Gradio is imported only when the command runs: every other command starts without its import cost.
- ``share`` is always False: no flag turns on Gradio's public tunnel.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Annotated, Literal

import typer

from agent.cli_common import UserError, cli_errors, console, load_settings

AUTH_ENV = "TRADEAGENT_CHAT_AUTH"

HostOpt = Annotated[str, typer.Option("--host", help="address to bind; not loopback requires --auth")]
PortOpt = Annotated[int, typer.Option("--port", help="TCP port (1-65535)")]
AuthOpt = Annotated[str | None, typer.Option("--auth", help=f"USER:PASS login (or {AUTH_ENV}); required off loopback",
                                             show_default=False)]
LlmOpt = Annotated[str | None, typer.Option("--llm", help="offline | openai (default: openai when OPENAI_API_KEY "
                                                         "is set, else offline)")]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def bare_host(host: str) -> str:
    """``host`` without spaces and IPv6 brackets: ``[::1]`` → ``::1``."""
    host = host.strip()
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def url_host(host: str) -> str:
    """``host`` as it goes in a URL (and to Gradio's server): an IPv6 address bracketed."""
    return f"[{host}]" if ":" in host else host


def parse_auth(value: str | None, source: str) -> tuple[str, str] | None:
    """``user:pass`` as a pair; None for no value; ``UserError`` (never echoing the value) otherwise."""
    if value is None or not value.strip():
        return None
    user, sep, password = value.partition(":")
    if not sep or not user.strip() or not password:
        raise UserError(f"{source} must be USER:PASS with a non-empty user and password (value not shown)")
    return user.strip(), password


def check_bind(host: str, port: int, auth: tuple[str, str] | None) -> None:
    """Refuse an address the app must not or cannot serve on, in one line."""
    if not 1 <= port <= 65535:
        raise UserError(f"--port {port} is out of range (1-65535)")
    if not is_loopback(host) and auth is None:
        raise UserError(f"refusing to serve on {host} without a login: add --auth USER:PASS (or set {AUTH_ENV}), "
                        "or keep the default --host 127.0.0.1")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UserError(f"--host {host} is not an address of this machine") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(address)
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port") from None


@cli_errors
def chat_cmd(host: HostOpt = "127.0.0.1", port: PortOpt = 7860, auth: AuthOpt = None, llm: LlmOpt = None) -> None:
    """Serve the read-only chat and dashboard (Gradio) for this home; Ctrl-C stops it."""
    login = parse_auth(auth, "--auth") if auth is not None else parse_auth(os.environ.get(AUTH_ENV), AUTH_ENV)
    if llm not in (None, "offline", "openai"):
        raise UserError(f"unknown --llm {llm!r}; use offline or openai")
    host = bare_host(host)
    check_bind(host, port, login)
    settings = load_settings()
    from agent.chat.serve import make_responder  # gradio and the LLM client only now

    chosen: Literal["offline", "openai"] | None = llm  # type: ignore[assignment]
    responder, mode_line = make_responder(settings, chosen)
    from agent.chat.app import build_app, launch
    from agent.chat.reader import Home

    home = Home(settings)
    app = build_app(home, responder, mode_line)
    shown = url_host(host)
    console.print(f"tradeagent chat on http://{shown}:{port}/ · {mode_line} · read-only · Ctrl-C stops it"
                  + (" · login required" if login else ""))
    launch(app, shown, port, login, [settings.home / "evals"])  # served even if written after the start


def register(app: typer.Typer) -> None:
    """Add ``chat`` to the top-level app."""
    app.command("chat")(chat_cmd)
