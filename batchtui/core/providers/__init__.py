"""The provider clients, by provider. Imported lazily: the CLI only loads what it uses."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from batchtui.core.models import Provider

if TYPE_CHECKING:
    from batchtui.core.accounts import Account
    from batchtui.core.providers.base import ProviderClient

_CLASSES = {
    Provider.OPENAI: ("batchtui.core.providers.openai", "OpenAIClient"),
    Provider.OPENAI_COMPATIBLE: ("batchtui.core.providers.openai", "OpenAIClient"),
    Provider.ANTHROPIC: ("batchtui.core.providers.anthropic", "AnthropicClient"),
    Provider.GEMINI: ("batchtui.core.providers.gemini", "GeminiClient"),
}


def client_class(provider: Provider | str) -> type[ProviderClient]:
    module, name = _CLASSES[Provider(provider)]
    return getattr(import_module(module), name)


def make_client(account: Account, key: str, **kw: Any) -> ProviderClient:
    """A client for `account` speaking with `key` (kw: transport, policy, sleep, on_error)."""
    return client_class(account.provider)(account, key, **kw)
