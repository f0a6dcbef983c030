"""``tradeagent chat``: a read-only Gradio chat and dashboard over ``TRADEAGENT_HOME``.

Modules: ``reader`` (everything read, nothing written), ``dates`` (date phrases), ``offline`` and
``offline_intents`` (the intent router used without an LLM), ``llm_chat`` (read-only tools for an LLM),
``serve`` (which of the two answers), ``text`` (escaping), ``views`` (the dashboard tabs), ``app`` (Gradio).
"""
