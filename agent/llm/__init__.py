"""LLM clients (OpenAI-compatible, offline rules), the record/replay cache and the tool-calling loop.

Public surface: ``base`` (request/response models, ``LLMClient`` protocol, ``TokenBudget``), ``factory.make_client``,
``runner.ask``. Nodes import from those modules; nothing here imports the graph.
"""
