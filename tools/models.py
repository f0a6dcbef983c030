"""Pydantic models of the data layer: instruments, universes, validation verdicts.

All are frozen with ``extra="forbid"`` so a typo in a universe TOML (``curency = "EUR"``) is an error,
not a silently ignored key.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Instrument(_Frozen):
    symbol: str = Field(min_length=1)
    source: str = Field(min_length=1, description="sample | csv:PATH | yfinance | ccxt:EXCHANGE | synthetic")
    currency: str = "USD"
    shortable: StrictBool = False  # long-only unless a universe says true (a TOML boolean, not "yes"): the safe default
    name: str | None = None
    # Trading calendar for the forming-bar and staleness checks; None: chosen from source and symbol
    # (tools.calendars.calendar_for). "24/5", "24/7" or an exchange_calendars name such as "XPAR".
    calendar: str | None = None
    # Other names news may use for it ("LVMH", "bitcoin"); matched on word boundaries (tools.news.matching).
    aliases: list[str] = Field(default_factory=list)

    @field_validator("aliases")
    @classmethod
    def _real_aliases(cls, value: list[str]) -> list[str]:
        if any(not a.strip() for a in value):
            raise ValueError("an alias must not be blank")
        return [a.strip() for a in value]

    @field_validator("symbol")
    @classmethod
    def _real_symbol(cls, value: str) -> str:
        # A blank symbol or " SPY" would become its own cache key and ledger position; refuse rather than strip.
        if not value.strip():
            raise ValueError("symbol must not be blank")
        if value != value.strip():
            raise ValueError(f"symbol {value!r} has leading or trailing spaces")
        return value

    @field_validator("calendar")
    @classmethod
    def _known_calendar(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from tools.calendars import check_calendar_name  # lazy: tools.calendars imports this module

        return check_calendar_name(value)

    @field_validator("currency")
    @classmethod
    def _upper_currency(cls, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise ValueError(f"currency {value!r} is not a 3-letter ISO code")
        return value.upper()


class NewsConfig(_Frozen):
    feeds: list[str] = Field(default_factory=list)  # http(s) URLs, file:// URLs or local paths of RSS/Atom feeds
    subreddits: list[str] = Field(default_factory=list)  # names without "r/"

    @field_validator("feeds")
    @classmethod
    def _real_feeds(cls, value: list[str]) -> list[str]:
        if any(not f.strip() for f in value):
            raise ValueError("a feed must not be blank")
        return [f.strip() for f in value]

    @field_validator("subreddits")
    @classmethod
    def _subreddit_names(cls, value: list[str]) -> list[str]:
        names = [v.strip().removeprefix("r/") for v in value]
        for name in names:  # Reddit's own rule; anything else would be a path injected into the API URL
            if not re.fullmatch(r"[A-Za-z0-9_]{2,21}", name):
                raise ValueError(f"subreddit {name!r} is not a subreddit name (2-21 letters, digits or _)")
        return names


class Universe(_Frozen):
    name: str = Field(min_length=1)
    base_currency: str = "USD"
    instruments: list[Instrument] = Field(min_length=1)
    news: NewsConfig = Field(default_factory=NewsConfig)

    @field_validator("base_currency")
    @classmethod
    def _upper_base(cls, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise ValueError(f"base_currency {value!r} is not a 3-letter ISO code")
        return value.upper()

    @model_validator(mode="after")
    def _unique_symbols(self) -> Universe:
        seen: set[str] = set()
        for inst in self.instruments:
            if inst.symbol in seen:
                raise ValueError(f"symbol {inst.symbol!r} appears twice")
            seen.add(inst.symbol)
        return self

    @property
    def symbols(self) -> list[str]:
        return [inst.symbol for inst in self.instruments]

    def instrument(self, symbol: str) -> Instrument | None:
        return next((inst for inst in self.instruments if inst.symbol == symbol), None)


class ValidationResult(_Frozen):
    symbol: str
    tradeable: bool
    reasons: list[str] = Field(default_factory=list)
