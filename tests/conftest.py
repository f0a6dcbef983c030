"""Suite-wide test settings.

The scenario tests (the demo tour, the chat's book, recorded LLM answers, the alert outbox…) were written
against books built by the offline rules' v3 sizing, and their recorded cache keys hold v3's risk context.
They keep it: ``TRADEAGENT_PROFILE=v3`` for the whole session (session scope, so module-scoped fixtures that
build a book see it too) unless a test sets it again. The default profile (``balanced``) and every profile
are tested on their own (tests/agent/test_profiles.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _rules_v3_unless_a_test_says_otherwise() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRADEAGENT_PROFILE", "v3")
        yield
