"""The HTML report opens in a real headless browser, offline, and plotly draws every chart.

Needs Chromium (Debian's ``chromium`` package). Where it is not installed the test is skipped and says so; the
report's content is also checked without a browser in tests/evals/test_report.py.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from agent.settings import Settings
from evals.run import EvalConfig, run_eval

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
# No network at all: the page must draw from the inlined plotly.js alone.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--proxy-server=127.0.0.1:9", "--virtual-time-budget=8000", "--dump-dom"]


@pytest.mark.skipif(BROWSER is None, reason="no Chromium on this machine (apt install chromium)")
def test_the_report_draws_its_charts_in_a_headless_browser_without_network(tmp_path: Path) -> None:
    cfg = EvalConfig(universe="demo", start=date(2012, 1, 2), end=date(2012, 3, 30), out=tmp_path / "out",
                     policies=("agent", "buyhold", "equalweight", "holdall"))
    files = run_eval(Settings(home=tmp_path / "home"), cfg)
    assert BROWSER is not None
    dom = subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", files.html_path.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    # plotly replaces each figure's div with SVG: equity+drawdown, exposure, weights
    assert dom.count('class="main-svg"') >= 3
    for div in ("equity-drawdown", "exposure", "weights"):
        assert f'id="{div}"' in dom
    for policy in cfg.policies:
        assert policy in dom
