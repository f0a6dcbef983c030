"""tradeagent's agent layer: settings, LLM clients, the LangGraph day, the CLI. Imports tools, portfolio, memory, prompts."""
