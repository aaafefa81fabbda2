"""The typed messages background work posts to the app. Workers never touch widgets: they post
one of these, and a handler on the UI side paints (STYLE.md, "workers post, handlers paint")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from batchtui.core.ledger import Analysis
from batchtui.core.models import Batch
from batchtui.core.polling import PollUpdate

if TYPE_CHECKING:  # what fetching and retrying need loads when first used, after the first paint
    from batchtui.core.fetch import FetchResult
    from batchtui.core.retry import RetryPlan
    from batchtui.core.submit import Submitted

BatchKey = tuple[str, str]  # (account, batch id): the row key everywhere in the UI


class BatchesUpdated(Message):
    """One or more poll cycles' results, oldest first.

    A burst (several accounts answering while the UI is busy) coalesces into one message so the
    table repaints once. Coalescing never loses anything: the superseded message's updates are
    folded into its successor, each keeping its own cycle number (so a start-up cycle stays
    quiet), and the handler applies them in order.
    """

    def __init__(self, updates: tuple[PollUpdate, ...]) -> None:
        super().__init__()
        self.updates = updates

    def can_replace(self, message: Message) -> bool:
        # Textual calls this on the older, queued message with the next one in the queue; True
        # drops the older one, so its updates move into the newer one first.
        if not isinstance(message, BatchesUpdated):
            return False
        message.updates = self.updates + message.updates
        return True


@dataclass
class FetchProgress(Message):
    """Bytes downloaded so far for one result file. Only the latest counts, so a newer progress
    message for the same batch replaces a queued one."""

    key: BatchKey
    kind: str
    size: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, FetchProgress) and message.key == self.key and message.kind == self.kind


@dataclass
class FetchDone(Message):
    """A fetch ended; `result` is None when it failed (the error itself is reported by the app's
    one worker-error handler)."""

    key: BatchKey
    result: FetchResult | None


@dataclass
class RetryPlanned(Message):
    plan: RetryPlan
    children: tuple[str, ...]  # earlier retries of the same batch (the ledger's links)


@dataclass
class RetrySent(Message):
    plan: RetryPlan
    submitted: Submitted


@dataclass
class CancelRequested(Message):
    batch: Batch  # as the provider answered the cancel (usually "cancelling")


@dataclass
class AnalysisReady(Message):
    """A detail screen's results analysis finished (or could not be made: `error`)."""

    key: BatchKey
    batch: Batch | None  # re-costed from the new analysis
    analysis: Analysis | None
    error: str | None = None
