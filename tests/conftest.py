"""Suite-wide test settings.

The scenario tests (the demo tour, the chat's book, recorded LLM answers, the alert outbox…) were written
against books built by the offline rules' v3 sizing, and their recorded cache keys hold v3's risk context.
They keep it: ``TRADEAGENT_PROFILE=v3`` for every test unless a test sets it again. The default profile
(``balanced``) and every profile are tested on their own (tests/agent/test_profiles.py).
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _rules_v3_unless_a_test_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEAGENT_PROFILE", "v3")
