"""Settings, built only at the edges (CLI, scheduler, chat, eval runner) and injected everywhere else.

Contract (shared/DESIGN.md):
- env prefix ``TRADEAGENT_``; a ``.env`` file in the working directory is read too (secrets belong there);
- the OpenAI client's own variables ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` are read unprefixed;
- every piece of state lives under ``TRADEAGENT_HOME`` (default ``./data``).

Deliberate decisions:
- ``TRADEAGENT_HOME`` starting with ``~`` is expanded (a ``.env`` file is not a shell: nothing else would
  expand it, and a folder literally named ``~`` would appear). An empty or blank value means the default
  ``./data``, like an unset one: ``Path("")`` is the current folder, where state would be scattered.
- ``load_settings`` is how the edges build settings: a bad value (``TRADEAGENT_LLM_MAX_RETRIES=two``) is a
  ``SettingsError`` naming the variable and its value, never a pydantic dump. A secret's value is never
  shown, only its name.
- The numbers are range-checked by the settings themselves (pydantic ``Field`` constraints), so a value no run
  could use is refused at the edge, by name, before anything opens the ledger: a token budget, run deadline,
  LLM timeout or starting cash must be positive (and finite), retries non-negative, commission and slippage
  in [0, 10000) bps (the paper broker's own range). Before, a zero budget or deadline failed later as an
  anonymous ``ValueError``, a zero starting cash silently became the default, and out-of-range fees were
  refused by the broker only after the ledger was open.

Secrets are ``SecretStr``: their repr is masked, so a logged or dumped Settings never shows them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.errors import AgentError
from agent.profiles import DEFAULT as PROFILE_DEFAULT
from agent.profiles import LEGACY, PROFILES

DEFAULT_HOME = Path("./data")
_PREFIX = "TRADEAGENT_"


class SettingsError(AgentError):
    """An environment (or ``.env``) variable has a value the settings cannot take."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    home: Path = DEFAULT_HOME

    # LLM
    llm_model: str = "gpt-4o-mini"
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "TRADEAGENT_OPENAI_BASE_URL")
    )
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "TRADEAGENT_OPENAI_API_KEY")
    )
    llm_timeout_seconds: float = Field(default=60.0, gt=0, allow_inf_nan=False)
    llm_max_retries: int = Field(default=2, ge=0)  # 0: one attempt, no retry
    # prompt + completion tokens per daily run, all nodes together
    llm_token_budget: int = Field(default=200_000, gt=0)
    # wall clock for all LLM calls of one daily run, retries included
    llm_run_deadline_seconds: float = Field(default=300.0, gt=0, allow_inf_nan=False)
    llm_json_mode: bool = False  # plain-JSON answers for models without tool support (many Ollama models)

    # Risk profile of the risk node (agent.profiles; offline rules rule 9); "v3": the offline rules v3 sizing.
    profile: str = PROFILE_DEFAULT

    # Paper broker
    # None: the universe's default (10,000 in its base currency)
    starting_cash: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    commission_bps: float = Field(default=10.0, ge=0, lt=10_000, allow_inf_nan=False)  # the broker's own range
    slippage_bps: float = Field(default=5.0, ge=0, lt=10_000, allow_inf_nan=False)

    # Reddit (news): a "script" app's id and secret from https://www.reddit.com/prefs/apps; none: Reddit is skipped
    reddit_client_id: str | None = None
    reddit_client_secret: SecretStr | None = None
    reddit_user_agent: str = "tradeagent-news/1.0 (personal trading agent; read-only)"

    # Vector memory: on by default; an OpenAI-compatible embeddings model instead of the local MiniLM when set
    # (served at OPENAI_BASE_URL with OPENAI_API_KEY). A memory written with one model refuses another.
    memory: bool = True
    embedding_model: str | None = None

    # Discord
    discord_webhook_url: SecretStr | None = None
    discord_api_base: str = "https://discord.com/api"

    @field_validator("profile", mode="before")
    @classmethod
    def _known_profile(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return PROFILE_DEFAULT  # blank means the default, as for TRADEAGENT_HOME
        name = str(value).strip().lower()
        if name not in PROFILES and name != LEGACY:
            raise ValueError(f"not a risk profile; known: {', '.join([*PROFILES, LEGACY])}")
        return name

    @field_validator("home", mode="before")
    @classmethod
    def _home(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return DEFAULT_HOME
        return Path(value).expanduser() if isinstance(value, str | Path) else value

    @property
    def db_path(self) -> Path:
        return self.home / "tradeagent.duckdb"

    @property
    def memory_dir(self) -> Path:
        """The vector memory of past decisions (a Chroma folder)."""
        return self.home / "memory"

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


def load_settings() -> Settings:
    """Settings from the environment and ``.env``; a bad value is a ``SettingsError`` naming its variable."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError("; ".join(_describe(error) for error in exc.errors())) from None


def load_settings_for_kill_switch() -> tuple[Settings, list[str]]:
    """Settings in which a bad variable other than the home falls back to its default, and those variables named.

    For the kill switch (``risk halt|reduce|resume|status``), which must work whatever else is misconfigured (a
    typo in ``TRADEAGENT_PROFILE`` must not stop a person halting the book). A bad home is still a
    ``SettingsError``: without it nobody knows which book to halt.
    """
    try:
        return Settings(), []
    except ValidationError as exc:
        errors = exc.errors()
    problems = [_describe(error) for error in errors]
    bad = {str(error["loc"][0]) for error in errors if error.get("loc")}
    if not bad or "home" in bad or not bad <= set(Settings.model_fields):
        raise SettingsError("; ".join(problems))
    defaults = {name: Settings.model_fields[name].get_default(call_default_factory=True) for name in bad}
    try:
        return Settings(**defaults), problems
    except ValidationError:
        raise SettingsError("; ".join(problems)) from None


def _describe(error: Any) -> str:
    """One pydantic error as ``VARIABLE='value': what is wrong`` (the value left out for a secret)."""
    where = str(error["loc"][0]) if error.get("loc") else "?"
    field = Settings.model_fields.get(where)
    if field is None:  # reported under an alias (OPENAI_API_KEY) or unknown
        return f"{where.upper()}: {error['msg']}"
    alias = field.validation_alias
    name = alias.choices[0] if isinstance(alias, AliasChoices) else f"{_PREFIX}{where}".upper()
    if field.annotation is SecretStr or SecretStr in get_args(field.annotation):
        return f"{name} (value not shown): {error['msg']}"
    shown = repr(error.get("input"))
    return f"{name}={shown[:60]}: {error['msg']}"
