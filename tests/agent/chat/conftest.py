"""A book built by five offline daily runs (demo universe, 2012-03-01 … 2012-03-07), and the real app serving it.

The runs use the ``v3`` risk profile (the offline rules v3 sizing): its book has what the chat's tests ask
about (guard rejections, a sell, pending orders), and it does not move when the default profile is retuned.

The book is built once per session through the real CLI (``tradeagent daily``), in-process. Tests only read
it; a test that changes a home works on its own copy (``copy_home``). ``serve`` launches the real Gradio app
on a free loopback port.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.chat.reader import Home
from agent.cli import app as cli_app
from agent.settings import Settings

BOOK_DAYS = ("2012-03-01", "2012-03-02", "2012-03-05", "2012-03-06", "2012-03-07")


def run_cli(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli_app, list(args), env={"TRADEAGENT_HOME": str(home), "OPENAI_API_KEY": None})
    return result.exit_code, result.stdout, result.stderr


def copy_home(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def book_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("chat_book") / "home"
    for day in BOOK_DAYS:
        code, _, err = run_cli(home, "daily", "--universe", "demo", "--date", day, "--profile", "v3")
        assert code == 0, err
    return home


@pytest.fixture()
def book(book_home: Path) -> Home:
    return Home(Settings(home=book_home))


@contextmanager
def serve(home: Path) -> Iterator[str]:
    """The real app (offline responder) on a free loopback port; yields its URL."""
    from agent.chat.app import build_app, launch
    from agent.chat.offline import answer

    reader = Home(Settings(home=home))
    app = build_app(reader, lambda q: answer(q, reader).text, "offline mode (rule-based, no LLM)")
    launch(app, "127.0.0.1", free_port(), None, [home / "evals"], block=False)
    try:
        yield str(app.local_url)
    finally:
        app.close()


@pytest.fixture(scope="session")
def served_book(book_home: Path) -> Iterator[str]:
    with serve(book_home) as url:
        yield url
