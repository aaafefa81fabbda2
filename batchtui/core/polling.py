"""Background polling: one long-lived loop per account, never two polls of one account at once.

Each cycle lists the account's batches newest first and stops at the first batch already
known to be terminal (terminal batches never change, so they are never fetched again), then
fetches the known active batches the listing did not reach. The loop then sleeps: briefly
while the account has active batches, long when all are terminal, as long as a 429 asks, and
with growing backoff while the provider is unreachable. `wake()` cuts a sleep short (`r`).

No part of a steady cycle walks the known batches: the active ones and the ended ones still to
be priced from their results are kept apart as batches arrive and change.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from batchtui.core.accounts import Account
from batchtui.core.errors import (
    AuthError,
    BatchtuiError,
    NotFoundError,
    ProviderError,
    RateLimitedError,
    UnreachableError,
)
from batchtui.core.models import Batch


# Room in a poll's first list page for batches made since the last poll; the page also holds
# the known active batches that are newer than the newest terminal one.
NEW_BATCH_ROOM = 10


class Health(StrEnum):
    PENDING = "pending"  # not polled yet
    OK = "ok"
    RATE_LIMITED = "rate_limited"
    AUTH_ERROR = "auth_error"
    UNREACHABLE = "unreachable"
    NO_KEY = "no_key"
    ERROR = "error"


@dataclass(frozen=True)
class AccountStatus:
    account: str
    health: Health
    last_error: str | None = None
    last_ok_at: datetime | None = None
    next_poll_in: float | None = None
    active: int = 0
    batches: int = 0


@dataclass(frozen=True)
class PollUpdate:
    """What one poll cycle of one account found: only the batches that changed."""

    account: str
    changed: tuple[Batch, ...]
    status: AccountStatus
    cycle: int  # 1 for the first poll: the dashboard does not announce what it finds then


@dataclass
class _AccountState:
    cycle: int = 0
    failures: int = 0
    last_ok_at: datetime | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _Known:
    """One account's known batches, indexed so that a cycle's work follows what changed and
    never the number of batches known (an account may hold tens of thousands)."""

    by_id: dict[str, Batch] = field(default_factory=dict)
    # Not terminal yet: fetched if the listing misses them. A dict keeps them in the order first
    # seen, as the known batches are, so a cycle's fetches (and its changes) come in a stable order.
    active: dict[str, None] = field(default_factory=dict)
    # Ended batches whose cost is in their results, waiting to be priced: those that ended
    # while we watched first, then the backlog the ledger knew of.
    unpriced: deque[str] = field(default_factory=deque)
    queued: set[str] = field(default_factory=set)
    tried: set[str] = field(default_factory=set)  # priced, or their results are gone: never queued again
    # Queue candidates not yet checked against the ledger's analyses (checked in bulk, in a thread).
    just_ended: list[str] = field(default_factory=list)
    backlog: list[str] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=dict)  # active id -> "not found" answers in a row

    def remember(self, batch: Batch) -> None:
        self.by_id[batch.id] = batch
        if batch.is_terminal:
            self.active.pop(batch.id, None)
        else:
            self.active[batch.id] = None

    def found(self, batch_id: str, present: bool) -> None:
        """What fetching a known active batch the listing missed gave. A batch the provider no
        longer knows (deleted) is fetched no more after GONE_AFTER answers in a row saying so:
        the ledger keeps its history, and a listing that shows it again brings it back."""
        if present:
            self.missing.pop(batch_id, None)
            return
        misses = self.missing[batch_id] = self.missing.get(batch_id, 0) + 1
        if misses >= GONE_AFTER:
            self.active.pop(batch_id, None)
            del self.missing[batch_id]

    def is_terminal(self, batch_id: str) -> bool:
        batch = self.by_id.get(batch_id)
        return batch is not None and batch.is_terminal

    def offer(self, batch: Batch, into: list[str]) -> None:
        """Queue `batch` for pricing if only its results can price it."""
        if (batch.is_terminal and batch.result_files and batch.usage is None
                and batch.id not in self.tried and batch.id not in self.queued):
            self.queued.add(batch.id)
            into.append(batch.id)


# "Not found" answers in a row before a known active batch is taken as deleted and no longer
# fetched each cycle (one could be a provider's hiccup, right after a create say).
GONE_AFTER = 3


class Poller:
    def __init__(
        self,
        engine,
        on_update: Callable[[PollUpdate], None],
        *,
        known: Iterable[Batch] = (),
        auto_analyse: bool = True,
        max_backoff: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.on_update = on_update
        self.auto_analyse = auto_analyse
        self.max_backoff = max_backoff
        self.clock = clock
        self._known: dict[str, _Known] = {}
        for batch in known:
            book = self._book(batch.account)
            book.remember(batch)
            if auto_analyse:
                book.offer(batch, book.backlog)
        self._state: dict[str, _AccountState] = {}

    def state(self, account: str) -> _AccountState:
        return self._state.setdefault(account, _AccountState())

    def known(self, account: str) -> dict[str, Batch]:
        """The account's known batches by id, as last polled: read it, never change it."""
        return self._book(account).by_id

    def _book(self, account: str) -> _Known:
        return self._known.setdefault(account, _Known())

    def forget(self, account: str) -> None:
        self._known.pop(account, None)
        self._state.pop(account, None)

    def wake(self, account: str | None = None) -> None:
        """Poll now: end the current sleep of one account, or of all."""
        targets = [account] if account else list(self._state)
        for name in targets:
            self.state(name).wake.set()

    # -- one cycle ---------------------------------------------------------------------------

    async def poll_once(self, account: Account) -> PollUpdate:
        state = self.state(account.name)
        async with state.lock:  # never two polls of one account at once
            state.cycle += 1
            book = self._book(account.name)
            known = book.by_id
            client = self.engine.client(account)
            # After the first poll the listing should stop early, at the newest known terminal
            # batch: ask for a first page just big enough (so an idle account's poll is one
            # small answer, not a thousand batches), and full pages only if it was not.
            first_page = len(book.active) + NEW_BATCH_ROOM if known else None
            # With no terminal batch known the listing reads every page (and may prefetch them).
            stop_at = book.is_terminal if len(known) > len(book.active) else None
            listed = [b async for b in client.list_batches(stop_at=stop_at, first_page=first_page)]
            seen = {b.id for b in listed}
            stale = [bid for bid in book.active if bid not in seen]
            fetched = await asyncio.gather(*(self._get(client, bid) for bid in stale))
            for batch_id, batch in zip(stale, fetched):
                book.found(batch_id, batch is not None)
            for batch_id in seen & book.missing.keys():  # listed again: its misses were not in a row
                del book.missing[batch_id]
            fresh = listed + [b for b in fetched if b is not None]
            changed = self.engine.costed_many(b for b in fresh if _differs(known.get(b.id), b))
            for batch in changed:
                book.remember(batch)
                if self.auto_analyse:
                    book.offer(batch, book.just_ended)
            if self.auto_analyse:
                priced = await self._price_next(account, book)
                if priced is not None:
                    book.remember(priced)
                    changed.append(priced)
            if changed:
                await asyncio.to_thread(self.engine.ledger.upsert_batches, changed)
            state.failures = 0
            state.last_ok_at = datetime.now(UTC)
            active = len(book.active)
            status = AccountStatus(account.name, Health.OK, None, state.last_ok_at,
                                   self.interval(account, active), active, len(known))
            return PollUpdate(account.name, tuple(changed), status, state.cycle)

    async def _get(self, client, batch_id: str) -> Batch | None:
        try:
            return await client.get_batch(batch_id)
        except NotFoundError:
            return None  # gone from the provider (deleted): the ledger keeps its history

    async def _price_next(self, account: Account, book: _Known) -> Batch | None:
        """Price one ended batch per cycle from its results (Anthropic and Gemini report usage
        only there). One per cycle keeps a backlog from hogging the account; the newest to
        end go first. The queue is fed as batches become known or end, so a cycle never walks
        the known batches to find one."""
        await self._check_offers(account, book)
        while book.unpriced:
            batch_id = book.unpriced.popleft()
            book.queued.discard(batch_id)
            book.tried.add(batch_id)
            batch = book.by_id[batch_id]
            # Another process (`batchtui fetch`) may have priced it since it was queued.
            if await asyncio.to_thread(self.engine.ledger.analysed_ids, account.name, [batch_id]):
                continue
            try:
                from batchtui.core.fetch import analyse_results  # with the first batch to price

                await analyse_results(self.engine, account, batch)
            except BatchtuiError as exc:
                if _passing(exc):  # the network, not the results: the next cycle tries again
                    book.tried.discard(batch_id)
                    book.queued.add(batch_id)
                    book.unpriced.appendleft(batch_id)
                    return None
                continue  # results unavailable (archived, expired): cost stays unknown
            return self.engine.costed(batch)
        return None

    async def _check_offers(self, account: Account, book: _Known) -> None:
        """Queue the new candidates the ledger holds no analysis of, in one bulk lookup."""
        offered = book.just_ended + book.backlog
        if not offered:
            return
        done = await asyncio.to_thread(self.engine.ledger.analysed_ids, account.name, offered)
        book.tried.update(done)
        book.queued.difference_update(done)
        book.unpriced.extendleft(bid for bid in reversed(book.just_ended) if bid not in done)
        book.unpriced.extend(bid for bid in book.backlog if bid not in done)
        book.just_ended.clear()
        book.backlog.clear()

    def interval(self, account: Account, active: int) -> float:
        return account.poll_active_seconds if active else account.poll_idle_seconds

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, account: Account) -> None:
        """Poll `account` until cancelled; every outcome goes to `on_update`."""
        state = self.state(account.name)
        while True:
            state.wake.clear()
            try:
                update = await self.poll_once(account)
                delay = update.status.next_poll_in or account.poll_active_seconds
            except RateLimitedError as exc:
                delay = exc.retry_after if exc.retry_after is not None else self._backoff(state)
                update = self._failed(account, Health.RATE_LIMITED, exc, delay)
            except AuthError as exc:
                delay = account.poll_idle_seconds
                update = self._failed(account, Health.AUTH_ERROR, exc, delay)
            except UnreachableError as exc:
                delay = self._backoff(state)
                update = self._failed(account, Health.UNREACHABLE, exc, delay)
            except BatchtuiError as exc:
                from batchtui.core.engine import MissingKeyError

                health = Health.NO_KEY if isinstance(exc, MissingKeyError) else Health.ERROR
                delay = account.poll_idle_seconds if health is Health.NO_KEY else self._backoff(state)
                update = self._failed(account, health, exc, delay)
            self.on_update(update)
            try:
                await asyncio.wait_for(state.wake.wait(), timeout=delay)
            except TimeoutError:
                pass

    def _backoff(self, state: _AccountState) -> float:
        state.failures += 1
        return min(5.0 * 2 ** (state.failures - 1), self.max_backoff)

    def _failed(self, account: Account, health: Health, exc: Exception, delay: float) -> PollUpdate:
        state = self.state(account.name)
        book = self._book(account.name)
        active = len(book.active)
        status = AccountStatus(account.name, health, str(exc), state.last_ok_at, delay, active, len(book.by_id))
        return PollUpdate(account.name, (), status, state.cycle)


def _passing(exc: BatchtuiError) -> bool:
    """A fault that may be gone by the next cycle: unreachable, rate limited or a 5xx."""
    return isinstance(exc, (UnreachableError, RateLimitedError)) or (
        isinstance(exc, ProviderError) and (exc.status_code or 0) >= 500)


def _differs(old: Batch | None, new: Batch) -> bool:
    if old is None:
        return True
    # Cost is ours, not the provider's: compare what the provider said.
    return old.model_dump(exclude={"cost"}) != new.model_dump(exclude={"cost"})
