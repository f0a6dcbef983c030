"""A headless Chromium opens every tab of the real app without a console error (the driver of
``scripts/screenshots_chat.py``), on a book, on a fresh home, and with hostile text in a results file."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from agent.chat.app import TABS
from tests.agent.chat.conftest import copy_home, serve

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium on this machine")


def _driver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("screenshots_chat", ROOT / "scripts" / "screenshots_chat.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def driver() -> ModuleType:
    return _driver()


@pytest.fixture(scope="module")
def _chromium(driver: ModuleType) -> Iterator[object]:
    b = driver.Browser(CHROMIUM)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture()
def browser(_chromium: object) -> object:
    """One Chromium for the module (it takes seconds to start), its console errors cleared for each test."""
    _chromium.errors.clear()  # type: ignore[attr-defined]
    return _chromium


def test_every_tab_opens_without_a_console_error_and_the_chat_answers(driver: ModuleType, browser: object,
                                                                      book_home: Path) -> None:
    with serve(book_home) as url:
        texts = driver.walk_tabs(browser, url, TABS, None, ("what is my P&L this month?",))
        driver.walk_tabs(browser, url, ("Last day",))
        earlier = driver.pick_day(browser, "2012-03-01")  # the picker shows any day with a results file
    assert browser.errors == []  # type: ignore[attr-defined]
    assert "2012-03-01 · demo" in earlier and "2012-03-07 · demo" not in earlier
    assert "P&L this month" in texts["answer: what is my P&L this month?"]
    assert "Equity" in texts["Equity"] and "GOOG" in texts["Positions"] and "filled" in texts["Trades"]
    assert "2012-03-07" in texts["Last day"] and "max_correlation" in texts["Guard log"]
    assert "alert_outbox" in texts["Alerts"] and "No eval reports" in texts["Evals"]


def test_a_fresh_home_shows_the_empty_state_in_every_tab(driver: ModuleType, browser: object, tmp_path: Path) -> None:
    with serve(tmp_path / "fresh") as url:
        texts = driver.walk_tabs(browser, url, TABS, None, ("what do I hold?",))
    assert browser.errors == []  # type: ignore[attr-defined]
    assert "There is no paper book in this home yet" in texts["answer: what do I hold?"]
    for tab in TABS[1:-1]:
        assert "No paper book yet" in texts[tab], tab


def test_hostile_text_in_a_results_file_is_shown_as_text(driver: ModuleType, browser: object, book_home: Path,
                                                         tmp_path: Path) -> None:
    home = copy_home(book_home, tmp_path / "home")
    path = home / "results" / "daily" / "2012-03-07.json"
    results = json.loads(path.read_text())
    evil = ('<img id="pwned" src=x onerror="document.title=\'pwned\'"> [click](javascript:alert(1)) '
            "https://evil.example/p www.evil.example me@evil.example")
    results["nodes"]["analyst"]["output"]["signals"][0]["rationale"] = evil
    path.write_text(json.dumps(results))
    with serve(home) as url:
        texts = driver.walk_tabs(browser, url, ("Last day",), None, ("what happened on 2012-03-07?",))
        assert browser.js("document.getElementById('pwned') === null && document.title !== 'pwned'")  # type: ignore[attr-defined]
        assert browser.js("[...document.querySelectorAll('a')].every(a => !/javascript|evil/.test(a.href))")  # type: ignore[attr-defined]
    assert '<img id="pwned"' in texts["Last day"]  # the table shows the characters
    assert "[click](javascript:alert(1))" in texts["answer: what happened on 2012-03-07?"]
    assert browser.errors == []  # type: ignore[attr-defined]
