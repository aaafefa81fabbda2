"""An account: one provider key's view (an OpenAI project, an Anthropic workspace, a Google
project). Its key is never a field here: it lives in the OS keyring (see keys.py)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from batchtui.core.models import Provider

ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

DEFAULT_BASE_URLS: dict[Provider, str] = {
    Provider.OPENAI: "https://api.openai.com/v1",
    Provider.ANTHROPIC: "https://api.anthropic.com",
    Provider.GEMINI: "https://generativelanguage.googleapis.com",
}

# The env var each provider's own SDK reads, our fallback when the keyring has no key.
KEY_ENV_VARS: dict[Provider, tuple[str, ...]] = {
    Provider.OPENAI: ("OPENAI_API_KEY",),
    Provider.OPENAI_COMPATIBLE: (),
    Provider.ANTHROPIC: ("ANTHROPIC_API_KEY",),
    Provider.GEMINI: ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
}


class Account(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    provider: Provider
    base_url: str | None = None  # None: the provider's default (or the preset's)
    preset: str | None = None  # openai-compatible dialect: "groq", "together", ...
    organization: str | None = None  # OpenAI-Organization
    project: str | None = None  # OpenAI-Project
    default_model: str | None = None  # Gemini submit: the model is in the URL, not the lines
    poll_active_seconds: float = Field(default=15.0, gt=0)
    poll_idle_seconds: float = Field(default=300.0, gt=0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ACCOUNT_NAME.match(value):
            raise ValueError("account names are 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        # Caught here, at config load, rather than as a confusing transport error at the first poll.
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("base_url must start with https:// (or http:// for a local server)")
        return value

    @model_validator(mode="after")
    def _has_endpoint(self) -> Account:
        # The other providers have a default base URL; an OpenAI-compatible server has none.
        if self.provider is Provider.OPENAI_COMPATIBLE and self.base_url is None and self.preset is None:
            raise ValueError("an openai-compatible account needs a base_url (or a preset)")
        return self

    @property
    def key_env_vars(self) -> tuple[str, ...]:
        """The env vars that may hold this account's key when the keyring has none, in order."""
        return KEY_ENV_VARS[self.provider]
