"""Screenshots of ``tradeagent chat`` for the README, taken by a headless Chromium driven over CDP.

Usage::

    .venv/bin/python scripts/screenshots_chat.py [--home DIR] [--out docs] [--chromium /usr/bin/chromium]

Without ``--home`` it builds a small book in a temporary home first (offline ``tradeagent daily`` on the
``demo`` universe, 2012-03-01 … 2012-03-07, and an ``eval`` of 2011-01 … 2012-02 for the Evals tab), so the
pictures are reproducible with no network (about three minutes). It launches the
real app on a free loopback port, asks the chat three questions, opens every tab, and writes
``OUT/chat-<tab>.png``. It prints the browser's console errors and exits 1 if there were any.

``Browser`` and ``walk_tabs`` are also what ``tests/agent/chat/test_browser.py`` uses: one driver for the
test and the pictures. Chromium runs with a fresh ``--user-data-dir`` and its background networking off.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                  "--window-size=1280,1000", "--remote-debugging-port=0"]
BOOK_DAYS = ("2012-03-01", "2012-03-02", "2012-03-05", "2012-03-06", "2012-03-07")
QUESTIONS = ("what is my P&L this month?", "which orders did the guard reject last week?",
             "why did you buy GOOG on 2012-03-01?")


class Browser:
    """One headless Chromium page over the DevTools protocol: navigate, evaluate, screenshot, console errors."""

    def __init__(self, chromium: str = "/usr/bin/chromium") -> None:
        self._profile = tempfile.mkdtemp(prefix="chat-chromium-")
        self._proc = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = self._devtools_port()
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        page = next(t for t in targets if t.get("type") == "page")
        self._ws = connect(page["webSocketDebuggerUrl"], max_size=64 * 2**20, open_timeout=10).__enter__()
        self._id = 0
        self.errors: list[str] = []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def _devtools_port(self) -> int:
        marker = Path(self._profile) / "DevToolsActivePort"
        for _ in range(300):
            if marker.is_file() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            if self._proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self._proc.returncode}")
            time.sleep(0.1)
        raise RuntimeError("chromium did not open its DevTools port in 30 s")

    def _note(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.errors.append(str(details.get("exception", {}).get("description") or details.get("text")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv(timeout=60))
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._note(message)

    def pump(self, seconds: float) -> None:
        """Collect console events for ``seconds`` (they arrive between calls)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                self._note(json.loads(self._ws.recv(timeout=left)))
            except TimeoutError:
                return

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"js failed: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = self.js(expression)
            if value:
                return value
            self.pump(0.2)
        raise TimeoutError(f"still false after {timeout} s: {expression}")

    def click(self, expression: str) -> bool:
        """A real mouse click (press and release) at the centre of the element ``expression`` evaluates to."""
        box = self.js(f"(() => {{ const e = {expression}; if (!e) return null; e.scrollIntoView({{block: 'center'}});"
                      " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        if not box:
            return False
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)
        return True

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self._ws.close()
        finally:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            shutil.rmtree(self._profile, ignore_errors=True)


def _click_tab(name: str) -> str:
    return ("(() => { const b = [...document.querySelectorAll('button[role=tab]')]"
            f".find(x => x.textContent.trim() === {json.dumps(name)}); if (b) b.click(); return !!b; }})()")


_STATUS_FILLED = ("(() => { const p = [...document.querySelectorAll('[role=tabpanel]')].find(x => x.offsetParent !== null);"
                  " const s = p && p.querySelector('[id^=status-]'); return !!s && s.innerText.trim().length > 0; })()")


def _panel_text() -> str:
    return "(() => { const p = [...document.querySelectorAll('[role=tabpanel]')].find(x => x.offsetParent !== null);" \
           " return p ? p.innerText : ''; })()"


def ask_in_page(browser: Browser, question: str) -> str:
    """Type ``question`` into the chat box, press Ask, and return the last answer's text once it arrives."""
    count = "document.querySelectorAll('#chatbot .message-row, #chatbot [data-testid=bot]').length"
    browser.wait_for("!!document.querySelector('#question textarea') && !!document.querySelector('#ask')")
    before = browser.js(count) or 0
    browser.js("(() => { const t = document.querySelector('#question textarea');"
               f" t.value = {json.dumps(question)}; t.dispatchEvent(new Event('input', {{bubbles: true}})); }})()")
    browser.js("document.querySelector('#ask').click()")
    browser.wait_for(f"{count} >= {before + 2}")
    browser.pump(0.5)
    return str(browser.js("(() => { const m = document.querySelectorAll('#chatbot [data-testid=bot]');"
                          " return m.length ? m[m.length - 1].innerText : ''; })()"))


def pick_day(browser: Browser, day: str) -> str:
    """Choose ``day`` in the Last day tab's picker (real clicks) and return the panel's text once it shows it."""
    if not browser.click("document.querySelector('#day-pick input')"):
        raise RuntimeError("no day picker")
    browser.wait_for("document.querySelectorAll('[role=option]').length > 0")
    option = f"[...document.querySelectorAll('[role=option]')].find(x => x.textContent.trim().endsWith({json.dumps(day)}))"
    if not browser.click(option):
        raise RuntimeError(f"no day {day} in the picker")
    browser.wait_for(f"{_panel_text()}.includes('results/daily/{day}.json')")
    return str(browser.js(_panel_text()))


def walk_tabs(browser: Browser, url: str, tabs: tuple[str, ...], out: Path | None = None,
              questions: tuple[str, ...] = ()) -> dict[str, str]:
    """Open the app, ask ``questions`` in the chat, open every tab (wait for its content), screenshot each."""
    browser.goto(url)
    browser.wait_for("document.querySelectorAll('button[role=tab]').length > 0")
    texts: dict[str, str] = {}
    for question in questions:
        texts[f"answer: {question}"] = ask_in_page(browser, question)
    for tab in tabs:
        if not browser.js(_click_tab(tab)):
            raise RuntimeError(f"no tab named {tab!r}")
        if tab != "Chat":  # a dashboard tab's status line (#status-…) is filled by its select event
            browser.wait_for(_STATUS_FILLED)
        browser.pump(1.0)  # plotly draws, tables render; console errors arrive
        texts[tab] = str(browser.js(_panel_text()))
        if out is not None:
            browser.screenshot(out / f"chat-{tab.lower().replace(' ', '-')}.png")
    return texts


# ------------------------------------------------------------------ the script


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_book(home: Path) -> None:
    env = {**os.environ, "TRADEAGENT_HOME": str(home)}
    env.pop("OPENAI_API_KEY", None)
    for day in BOOK_DAYS:
        subprocess.run([sys.executable, "-m", "agent", "daily", "--universe", "demo", "--date", day],
                       env=env, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    subprocess.run([sys.executable, "-m", "agent", "eval", "--universe", "demo", "--start", "2011-01-01", "--end",
                    "2012-02-29", "--policy", "agent,buyhold", "--out", str(home / "evals" / "demo-2011")],
                   env=env, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)


@contextmanager
def serving(home: Path) -> Iterator[str]:
    sys.path.insert(0, str(ROOT))
    from agent.chat.app import build_app, launch
    from agent.chat.offline import answer
    from agent.chat.reader import Home
    from agent.settings import Settings

    reader = Home(Settings(home=home))
    app = build_app(reader, lambda q: answer(q, reader).text, "offline mode (rule-based, no LLM)")
    port = free_port()
    launch(app, "127.0.0.1", port, None, [home / "evals"], block=False)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, help="an existing TRADEAGENT_HOME (default: build a demo book)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    from agent.chat.app import TABS

    with tempfile.TemporaryDirectory(prefix="chat-shots-") as tmp:
        home = args.home or Path(tmp) / "home"
        if args.home is None:
            build_book(home)
        args.out.mkdir(parents=True, exist_ok=True)
        with serving(home) as url:
            browser = Browser(args.chromium)
            try:
                walk_tabs(browser, url, TABS, args.out, QUESTIONS)
            finally:
                browser.close()
    for error in browser.errors:
        print(f"console error: {error}", file=sys.stderr)
    print(f"{len(TABS)} screenshots in {args.out}; {len(browser.errors)} console error(s)")
    return 1 if browser.errors else 0


if __name__ == "__main__":
    sys.exit(main())
