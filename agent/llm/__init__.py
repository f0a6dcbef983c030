"""LLM clients (OpenAI-compatible, offline rules), the record/replay cache and the tool-calling loop.

Public surface: ``base`` (request/response models, ``LLMClient`` protocol, ``TokenBudget``, ``Deadline``),
``factory.make_client``, ``runner.ask``. Internals the OpenAI client relies on: ``transport`` (each HTTP
attempt bounded in wall clock and bytes) and ``redaction`` (configured secrets masked in every answer). Nodes
import from those modules; nothing here imports the graph.
"""
