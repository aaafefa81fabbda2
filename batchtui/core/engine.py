"""The engine both fronts drive: settings, ledger, prices and one client per account.

The CLI builds one for a command and closes it; the dashboard keeps one for its lifetime.
Tests and `batchtui demo` hand it the simulator's transport and a key lookup, so the same
code paths run with no network and no keyring.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from batchtui.core import keys
from batchtui.core.accounts import Account
from batchtui.core.config import Settings, load_settings
from batchtui.core.costing import attach_cost
from batchtui.core.errors import BatchtuiError, NotFoundError, ProviderError
from batchtui.core.ledger import Ledger
from batchtui.core.models import Batch
from batchtui.core.paths import Paths
from batchtui.core.pricing import PriceTable
from batchtui.core.providers import make_client

if TYPE_CHECKING:  # httpx and the clients load with the first client, after the first paint
    import httpx

    from batchtui.core.providers.base import ProviderClient
    from batchtui.core.transport import RetryPolicy


# Batches costed and recorded at a time while an account is listed: an OpenAI page, a tenth of
# an Anthropic or Gemini one.
LIST_CHUNK = 100

# Called with each chunk of an account's batches as it is listed (costed, recorded).
OnListed = Callable[[Account, list[Batch]], None]  # called from a worker thread, a chunk at a time


class MissingKeyError(BatchtuiError):
    """An account with no key in the keyring and none in the provider's env var."""


class AmbiguousBatchError(BatchtuiError):
    """A batch id found under several accounts: the user must pick one with --account."""


@dataclass(frozen=True)
class AccountResult:
    """How one account's poll went (the `accounts` list of `ls --json`)."""

    account: Account
    ok: bool
    error: str | None = None
    error_kind: str | None = None  # the error class: AuthError, RateLimitedError, ...
    batches: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"name": self.account.name, "provider": self.account.provider.value, "ok": self.ok,
                "error": self.error}


@dataclass
class Engine:
    settings: Settings
    paths: Paths
    ledger: Ledger
    prices: PriceTable
    transport: httpx.AsyncBaseTransport | None = None
    key_lookup: Callable[[Account], str | None] = keys.get_key
    policy: RetryPolicy | None = None
    sleep: Callable[[float], Any] | None = None
    _clients: dict[str, ProviderClient] = field(default_factory=dict, repr=False)
    # (account, parent id) of retries being sent right now: see retry.run_retry.
    retries_in_flight: Counter[tuple[str, str]] = field(default_factory=Counter, repr=False)

    @classmethod
    def open(cls, paths: Paths | None = None, *, settings: Settings | None = None, **kw: Any) -> Engine:
        paths = paths or Paths.resolve()
        settings = settings if settings is not None else load_settings(paths)
        prices = PriceTable.load(
            settings.prices, openai_cached_batch_discount=settings.pricing.openai_cached_batch_discount)
        return cls(settings=settings, paths=paths, ledger=Ledger.open(paths.ledger_file), prices=prices, **kw)

    async def aclose(self) -> None:
        # All at once: one by one, twelve clients took 70-170 ms at the end of `ls`.
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(client.aclose() for client in clients))

    def close_ledger(self) -> None:
        self.ledger.close()

    # -- accounts and clients ---------------------------------------------------------------

    def accounts(self, names: Iterable[str] | None = None) -> list[Account]:
        if not names:
            return list(self.settings.accounts)
        return [self.settings.account(name) for name in names]

    def client(self, account: Account) -> ProviderClient:
        client = self._clients.get(account.name)
        if client is None:
            key = self.key_lookup(account)
            if not key:
                raise MissingKeyError(
                    f"{account.name}: no API key (none in the keyring; set one with "
                    f"`batchtui accounts add {account.name} --provider {account.provider.value} --key-stdin`)"
                )
            kw: dict[str, Any] = {"transport": self.transport, "policy": self.policy}
            if self.sleep is not None:
                kw["sleep"] = self.sleep
            client = make_client(account, key, **kw)
            self._clients[account.name] = client
        return client

    async def drop_client(self, account_name: str) -> None:
        """Forget a client (its key changed, or the account was removed)."""
        client = self._clients.pop(account_name, None)
        if client is not None:
            await client.aclose()

    # -- reading batches ----------------------------------------------------------------------

    def costed(self, batch: Batch) -> Batch:
        return attach_cost(batch, self.prices, self.ledger.analysis(batch.account, batch.id))

    def costed_many(self, batches: Iterable[Batch]) -> list[Batch]:
        """`costed` for many batches, reading their analyses a few queries at a time."""
        batches = list(batches)
        by_account: dict[str, list[str]] = {}
        for batch in batches:
            by_account.setdefault(batch.account, []).append(batch.id)
        analyses = {(account, batch_id): analysis for account, ids in by_account.items()
                    for batch_id, analysis in self.ledger.analyses(account, ids).items()}
        return [attach_cost(b, self.prices, analyses.get(b.key)) for b in batches]

    async def list_account(self, account: Account, *, listed: OnListed | None = None) -> list[Batch]:
        """Every batch of one account, costed and recorded in the ledger.

        Batches are costed, recorded (and handed to `listed`, with the account) a chunk at a
        time as the pages arrive, not all at the end: the work of one page overlaps the wait
        for the next, so little is left to do once the last page is in. A listing that fails
        part-way has recorded the chunks it read (they are true) and returns nothing.
        """
        client = self.client(account)
        batches: list[Batch] = []
        chunk: list[Batch] = []
        async for batch in client.list_batches():
            chunk.append(batch)
            if len(chunk) >= LIST_CHUNK:
                batches += await self._listed_chunk(account, chunk, listed)
                chunk = []
        if chunk:
            batches += await self._listed_chunk(account, chunk, listed)
        return batches

    async def _listed_chunk(self, account: Account, chunk: list[Batch], listed: OnListed | None) -> list[Batch]:
        # In a worker thread, as the page was parsed: the event loop stays free to read the
        # pages of other accounts (and OpenAI's next one) meanwhile.
        return await asyncio.to_thread(self._record_chunk, account, chunk, listed)

    def _record_chunk(self, account: Account, chunk: list[Batch], listed: OnListed | None) -> list[Batch]:
        costed = self.costed_many(chunk)
        self.ledger.upsert_batches(costed)
        if listed is not None:
            listed(account, costed)
        return costed

    async def list_accounts(self, accounts: Iterable[Account], *,
                            listed: OnListed | None = None) -> tuple[list[Batch], list[AccountResult]]:
        """Every batch of every account, newest first, polled concurrently; one failing account
        never stops the others. `listed(account, batches)` sees each chunk as it is ready (of
        an account that later fails too)."""
        accounts = list(accounts)
        outcomes = await asyncio.gather(*(self.list_account(a, listed=listed) for a in accounts),
                                        return_exceptions=True)
        batches: list[Batch] = []
        results: list[AccountResult] = []
        for account, outcome in zip(accounts, outcomes):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, (BatchtuiError, OSError)):
                    raise outcome
                results.append(AccountResult(account, ok=False, error=str(outcome),
                                             error_kind=type(outcome).__name__))
            else:
                batches.extend(outcome)
                results.append(AccountResult(account, ok=True, batches=len(outcome)))
        batches.sort(key=lambda b: b.created_at, reverse=True)
        return batches, results

    async def refresh(self, account: Account, batch_id: str) -> Batch:
        batch = self.costed(await self.client(account).get_batch(batch_id))
        await asyncio.to_thread(self.ledger.upsert_batches, [batch])
        return batch

    async def locate(self, batch_id: str, account_name: str | None = None) -> tuple[Account, Batch]:
        """Find a batch by id: under the named account, else where the ledger saw it, else by
        asking each account of a plausible provider."""
        if account_name:
            account = self.settings.account(account_name)
            return account, await self.refresh(account, batch_id)
        seen = {b.account for b in self.ledger.find_batch(batch_id)}
        known = [a for a in self.settings.accounts if a.name in seen]
        if len(known) > 1:
            names = ", ".join(sorted(a.name for a in known))
            raise AmbiguousBatchError(f"batch {batch_id} is known under several accounts ({names}); pick one with --account")
        candidates = known or [a for a in self.settings.accounts if _could_own(a, batch_id)]
        errors: list[str] = []
        for account in candidates:
            try:
                return account, await self.refresh(account, batch_id)
            except NotFoundError:
                continue
            except (ProviderError, MissingKeyError) as exc:
                errors.append(str(exc))
        detail = f" ({'; '.join(errors)})" if errors else ""
        raise NotFoundError(f"no account has a batch {batch_id!r}{detail}")


def _could_own(account: Account, batch_id: str) -> bool:
    """Batch ids say their provider; skip accounts that cannot hold this one."""
    if batch_id.startswith("msgbatch_"):
        return account.provider.value == "anthropic"
    if batch_id.startswith("batches/"):
        return account.provider.value == "gemini"
    if batch_id.startswith("batch_"):
        return account.provider.value in ("openai", "openai-compatible")
    return True
