"""A running app and a running daily job do not block each other (DuckDB allows one writer per file).

The app opens the ledger read-only per request and closes it at once; the daily run's own open waits out
those milliseconds (``portfolio.storage.connect`` retries a lock). Here two clients ask questions without
pause while ``tradeagent daily`` runs in another process on the same home.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from gradio_client import Client

from agent.chat.text import plain
from tests.agent.chat.conftest import copy_home, serve

ROOT = Path(__file__).resolve().parents[3]


def test_the_app_answers_while_a_daily_run_trades_and_the_run_succeeds(book_home: Path, tmp_path: Path) -> None:
    home = copy_home(book_home, tmp_path / "home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEAGENT_", "OPENAI_"))}
    env |= {"TRADEAGENT_HOME": str(home), "TRADEAGENT_MEMORY": "0"}
    answers: list[tuple[float, str]] = []
    failures: list[str] = []
    stop = threading.Event()
    with serve(home) as url:

        def keep_asking() -> None:
            client = Client(url, verbose=False)
            while not stop.is_set():
                try:
                    answers.append((time.monotonic(), plain(client.predict("what is my P&L this month?",
                                                                           api_name="/ask"))))
                except Exception as exc:  # a failed request is a failure of the test, recorded
                    failures.append(f"{type(exc).__name__}: {exc}")

        askers = [threading.Thread(target=keep_asking) for _ in range(2)]
        for t in askers:
            t.start()
        while not answers and not failures:
            time.sleep(0.05)
        started = time.monotonic()
        run = subprocess.run([sys.executable, "-m", "agent", "daily", "--universe", "demo", "--date", "2012-03-08"],
                             env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        ended = time.monotonic()
        stop.set()
        for t in askers:
            t.join(timeout=60)
        after = plain(Client(url, verbose=False).predict("what is my P&L this month?", api_name="/ask"))
    assert run.returncode == 0, run.stderr
    assert "locked" not in run.stderr + run.stdout
    assert failures == []
    during = [text for when, text in answers if started <= when <= ended]
    assert len(during) >= 5  # the app kept answering while the run traded
    for text in during:  # each answer is the book before or after the run, or says it is being updated
        assert "P&L this month" in text or "being updated" in text, text
    assert "at the close of 2012-03-08" in after  # the run's new day, read live
