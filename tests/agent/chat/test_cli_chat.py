"""``tradeagent chat``: safe defaults (loopback unless --auth, one-line refusals) and a fresh home's empty state."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gradio_client import Client
from typer.testing import CliRunner

from agent.cli import app
from agent.cli_chat import is_loopback, parse_auth
from agent.cli_common import UserError
from tests.agent.chat.conftest import free_port
from tests.fakes import ctrl_c_as_in_a_terminal


def chat(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["chat", *args], env={"TRADEAGENT_CHAT_AUTH": None, **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.org"])
def test_a_host_off_loopback_without_a_login_is_refused_in_one_line(host: str) -> None:
    code, _, err = chat("--host", host)
    assert code == 2 and "refusing to serve on" in one_error_line(err) and "--auth USER:PASS" in err


@pytest.mark.parametrize("value", ["nopass", ":pw", "user:", "  :  "])
def test_a_malformed_login_is_refused_without_echoing_it(value: str) -> None:
    code, _, err = chat("--host", "0.0.0.0", "--auth", value)
    assert code == 2 and "must be USER:PASS" in one_error_line(err)
    code, _, err = chat("--host", "0.0.0.0", env={"TRADEAGENT_CHAT_AUTH": "ann:" if value == "nopass" else value})
    assert code == 2 and "TRADEAGENT_CHAT_AUTH must be USER:PASS" in one_error_line(err)


def test_the_password_never_appears_in_an_error() -> None:
    code, _, err = chat("--host", "0.0.0.0", "--auth", "ann:hunter2-secret", "--port", "70000")
    assert code == 2 and "hunter2" not in err and "out of range" in one_error_line(err)


def test_a_port_in_use_is_one_line() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        code, _, err = chat("--port", str(held.getsockname()[1]))
    assert code == 2 and "cannot listen on 127.0.0.1" in one_error_line(err)


def test_loopback_names_and_login_parsing() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.org", ""))
    assert parse_auth("ann:pa:ss", "--auth") == ("ann", "pa:ss") and parse_auth(None, "--auth") is None
    with pytest.raises(UserError):
        parse_auth("ann", "--auth")


def test_chat_on_a_fresh_home_starts_and_shows_a_helpful_empty_state(tmp_path: Path) -> None:
    home, port = tmp_path / "fresh", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEAGENT_", "OPENAI_"))}
    env["TRADEAGENT_HOME"] = str(home)
    proc = subprocess.Popen([sys.executable, "-m", "agent", "chat", "--port", str(port)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrl_c_as_in_a_terminal)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"tradeagent chat on http://127.0.0.1:{port}/" in first and "offline mode" in first, first
        deadline = time.monotonic() + 60
        while True:  # the line is printed just before the server listens
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.3)
        answer = client.predict("what is my P&L this month?", api_name="/ask")
        assert "There is no paper book in this home yet" in answer and "tradeagent demo" in answer
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130) and "Traceback" not in err
    assert not (home / "tradeagent.duckdb").exists()  # the chat created no book
