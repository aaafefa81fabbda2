"""What the batches table shows: a text filter and two quick filters (status; account or
provider). Plain data, so the screen stays small and the rules are easy to test."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property

from batchtui.core.models import Batch, Status

ACTIVE = "active"  # every status that is not terminal
STATUS_CYCLE: tuple[str | None, ...] = (None, ACTIVE, *(status.value for status in Status))

Scope = tuple[str, str] | None  # ("provider", "openai") or ("account", "acme-prod")


@dataclass(frozen=True)
class BatchFilter:
    text: str = ""
    status: str | None = None
    scope: Scope = None

    @property
    def active(self) -> bool:
        return bool(self.text or self.status or self.scope)

    def matches(self, batch: Batch) -> bool:
        if self.status == ACTIVE and batch.is_terminal:
            return False
        if self.status not in (None, ACTIVE) and batch.status.value != self.status:
            return False
        if self.scope is not None:
            kind, value = self.scope
            if (batch.provider.value if kind == "provider" else batch.account) != value:
                return False
        return not self.text or self._needle in haystack(batch)

    @cached_property
    def _needle(self) -> str:
        return self.text.casefold()

    def narrows(self, wider: BatchFilter) -> bool:
        """Whether every batch this filter lets through, `wider` lets through too (one more
        character typed): then only the rows `wider` shows need looking at again."""
        return self.status == wider.status and self.scope == wider.scope and wider._needle in self._needle

    def next_status(self) -> BatchFilter:
        index = STATUS_CYCLE.index(self.status)
        return replace(self, status=STATUS_CYCLE[(index + 1) % len(STATUS_CYCLE)])

    def next_scope(self, scopes: list[Scope]) -> BatchFilter:
        cycle = [None, *scopes]
        index = cycle.index(self.scope) if self.scope in cycle else 0
        return replace(self, scope=cycle[(index + 1) % len(cycle)])

    def describe(self) -> str:
        scope = f"{self.scope[0]} {self.scope[1]}" if self.scope else "all accounts"
        status = {None: "every status", ACTIVE: "active only"}.get(self.status, self.status)
        text = f' · text "{self.text}"' if self.text else ""
        return f"{scope} · {status}{text}"


# By batch key: one entry per batch, the latest object seen (an older one is let go).
_HAYSTACKS: dict[tuple[str, str], tuple[Batch, str]] = {}
_HAYSTACKS_MAX = 100_000


def haystack(batch: Batch) -> str:
    """What `/` searches: account, provider, id, model, status (both spellings) and name.

    Each key typed filters every batch again: a batch's text is built once (batches are
    immutable, a changed batch is a new object)."""
    cached = _HAYSTACKS.get(batch.key)
    if cached is not None and cached[0] is batch:
        return cached[1]
    parts = [batch.account, batch.provider.value, batch.id, batch.model or "", batch.status.value,
             batch.status.value.replace("_", " "), batch.provider_status, batch.name or ""]
    text = "\n".join(parts).casefold()
    if len(_HAYSTACKS) >= _HAYSTACKS_MAX:
        _HAYSTACKS.clear()  # removed accounts' batches pile up here over a long session
    _HAYSTACKS[batch.key] = (batch, text)
    return text


def scopes_for(accounts: Iterable[tuple[str, str]]) -> list[Scope]:
    """Quick-filter stops: each provider in use (when more than one account shares it), then
    each account. `accounts` holds (name, provider) pairs in config order."""
    accounts = list(accounts)
    providers: list[str] = []
    for _, provider in accounts:
        if provider not in providers:
            providers.append(provider)
    stops: list[Scope] = [("provider", p) for p in providers if sum(1 for _, q in accounts if q == p) > 1]
    stops += [("account", name) for name, _ in accounts]
    return stops
