"""Settings, built only at the edges (CLI, scheduler, chat, eval runner) and injected everywhere else.

Contract (shared/DESIGN.md):
- env prefix ``TRADEAGENT_``; a ``.env`` file in the working directory is read too (secrets belong there);
- the OpenAI client's own variables ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` are read unprefixed;
- every piece of state lives under ``TRADEAGENT_HOME`` (default ``./data``).

Secrets are ``SecretStr``: their repr is masked, so a logged or dumped Settings never shows them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.errors import AgentError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TRADEAGENT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    home: Path = Path("./data")

    # LLM
    llm_model: str = "gpt-4o-mini"
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "TRADEAGENT_OPENAI_BASE_URL")
    )
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "TRADEAGENT_OPENAI_API_KEY")
    )
    llm_timeout_seconds: float = 60.0
    llm_max_retries: int = 2
    llm_token_budget: int = 200_000  # prompt + completion tokens per daily run, all nodes together
    llm_run_deadline_seconds: float = 300.0  # wall clock for all LLM calls of one daily run, retries included
    llm_json_mode: bool = False  # plain-JSON answers for models without tool support (many Ollama models)

    # Paper broker
    starting_cash: float | None = None  # None: the universe's default (10,000 in its base currency)
    commission_bps: float = 10.0
    slippage_bps: float = 5.0

    # Discord
    discord_webhook_url: SecretStr | None = None
    discord_api_base: str = "https://discord.com/api"

    @property
    def db_path(self) -> Path:
        return self.home / "tradeagent.duckdb"

    @property
    def chroma_dir(self) -> Path:
        return self.home / "chroma"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def daily_results_dir(self) -> Path:
        return self.home / "results" / "daily"

    @property
    def llm_cache_dir(self) -> Path:
        return self.home / "llm_cache"

    @property
    def risk_state_path(self) -> Path:
        return self.home / "risk_state.json"

    @property
    def risk_config_path(self) -> Path:
        """Optional TOML of tighter risk limits (``[limits]`` table); it can only tighten the coded ceilings."""
        return self.home / "risk.toml"

    def ensure_home(self) -> Path:
        """Create ``home`` when missing; a home that cannot be a folder is an ``AgentError`` (one CLI line)."""
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise AgentError(f"TRADEAGENT_HOME {self.home} exists and is not a folder") from None
        except OSError as exc:
            raise AgentError(f"cannot create TRADEAGENT_HOME {self.home}: {exc.strerror or exc}") from None
        return self.home
