"""Which responder answers the chat: the offline router or an LLM with read-only tools (``make_responder``).

Contract:
- ``make_responder(settings, llm)`` returns ``(responder, mode_line)``. ``llm=None`` picks ``openai`` when
  ``OPENAI_API_KEY`` is set, else ``offline``, like the daily run (``agent.llm.factory.make_client``).
- With ``openai`` each question gets a fresh client with its own token budget and deadline from the settings
  (``TRADEAGENT_LLM_TOKEN_BUDGET``, ``TRADEAGENT_LLM_RUN_DEADLINE_SECONDS``): a long chat cannot spend a
  daily run's budget, and one slow question cannot hold the next.

Deliberate decisions:
- The key is checked when the command starts (``make_client`` raises its one-line error), not on the first
  question.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from agent.chat import offline
from agent.chat.llm_chat import llm_reply
from agent.chat.reader import Home
from agent.llm.base import Deadline, TokenBudget
from agent.llm.factory import make_client
from agent.settings import Settings


def make_responder(settings: Settings, llm: Literal["offline", "openai"] | None) -> tuple[Callable[[str], str], str]:
    """The chat's responder and a line saying which mode answers (see the module doc)."""
    home = Home(settings)
    probe = make_client(settings, llm)
    if probe.provider == "offline-rules":
        return (lambda question: offline.answer(question, home).text), "offline mode (rule-based, no LLM)"

    def reply(question: str) -> str:
        client = make_client(settings, "openai", budget=TokenBudget(settings.llm_token_budget),
                             deadline=Deadline(settings.llm_run_deadline_seconds))
        return llm_reply(client, home, question)

    return reply, f"LLM {probe.model} with read-only tools"
