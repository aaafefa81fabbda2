"""Retrying a batch's failures as a follow-up batch of exactly their original requests.

What is resent: server errors, expired, cancelled and unknown outcomes, and requests that
never produced a result line at all (a Gemini batch that expired has none); request errors
and blocked items only when asked, since unchanged they fail again. The originals come from
`--input FILE`, the ledger (batches submitted through batchtui) or the provider (OpenAI's
input file), matched by custom id. Without them we refuse rather than guess.

A retry is never sent twice by accident: within a process a counter sees a second press, and
across processes (two `batchtui retry` runs in the same second) a claim in the ledger, taken
before the create and let go once the child is linked, or when the provider refused it. A
claim whose create may have made a batch (its answer lost) is kept: only --force gets past.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

from batchtui.core.accounts import Account
from batchtui.core.batch_input import ValidatedInput
from batchtui.core.errors import BatchtuiError
from batchtui.core.fetch import analyse_results
from batchtui.core.models import Batch, Cost, Outcome
from batchtui.core.providers.base import PARENT_KEY, BatchInput, NotSupported
from batchtui.core.ledger import IntentStatus, RetryClaimed
from batchtui.core.submit import Submitted, new_token, submit_validated

NOT_RUN = "not_run"  # an id with no result line: counted with the not-run outcomes


class RetryRefused(BatchtuiError):
    """Retry cannot (or should not) go ahead; the message says why and what to do."""


@dataclass(frozen=True)
class RetryPlan:
    parent: Batch
    account: Account
    custom_ids: list[str]
    lines: list[bytes]
    source: str  # where the originals came from
    by_outcome: dict[str, int]
    estimated_cost: Cost | None = None

    def as_json(self, batch_id: str | None) -> dict:
        return {"parent": self.parent.id, "custom_ids": self.custom_ids, "batch_id": batch_id}


async def plan_retry(engine, account: Account, batch: Batch, *, include_request_errors: bool = False,
                     input_path: Path | None = None) -> RetryPlan:
    if not batch.is_terminal:
        raise RetryRefused(f"batch {batch.id} is still {batch.status.value}; retry once it has ended")
    originals, source = await _originals(engine, account, batch, input_path)
    summary = await analyse_results(engine, account, batch, keep_succeeded_ids=True)
    wanted = {o for o in Outcome if o.retry_by_default}
    if include_request_errors:
        wanted |= {Outcome.REQUEST_ERROR, Outcome.BLOCKED}
    chosen: set[str] = set()
    by_outcome: dict[str, int] = {}
    seen: set[str] = set(summary.succeeded_ids or [])
    for outcome, ids in summary.ids_by_outcome.items():
        seen.update(ids)
        if outcome in wanted:
            chosen.update(ids)
            by_outcome[outcome.value] = len(ids)
    never_ran = [cid for cid in originals if cid not in seen]
    if never_ran:
        chosen.update(never_ran)
        by_outcome[NOT_RUN] = len(never_ran)
    if not chosen:
        hint = "" if include_request_errors else " (request errors are left out unless --include-request-errors)"
        raise RetryRefused(f"batch {batch.id} has nothing to retry{hint}")
    missing = sorted(chosen - originals.keys())
    if missing:
        raise RetryRefused(
            f"{len(missing):,} of the {len(chosen):,} items to retry are not in the originals from {source} "
            f"(first: {missing[0]!r}); pass the original JSONL with --input FILE")
    ids = [cid for cid in originals if cid in chosen]  # the original file's order
    lines = [originals[cid] for cid in ids]
    estimate = _estimate(engine, batch, summary, len(ids))
    return RetryPlan(batch, account, ids, lines, source, by_outcome, estimate)


async def run_retry(engine, plan: RetryPlan, *, force: bool = False, despite_running_child: bool = False) -> Submitted:
    """Send `plan` as a follow-up batch, once.

    `force` (the CLI's --force) goes past every guard. `despite_running_child` goes past one:
    an earlier retry of the same batch still running (the dashboard asked, and the user
    confirmed); the claim still keeps a second process from sending at the same moment."""
    account, parent = plan.account, plan.parent
    key = (account.name, parent.id)
    # The ledger learns of a child only once its create has been answered; until then, a
    # second press in this process (two dashboard workers, say) sees the first one here.
    if not force and engine.retries_in_flight[key]:
        raise RetryRefused(
            f"a retry of batch {parent.id} is being sent right now; two batches over the same requests "
            f"would double-spend. Wait for it, or pass --force")
    # No await between the check above and this line: no other task can slip in between.
    engine.retries_in_flight[key] += 1
    try:
        if force:
            return await _send_retry(engine, plan, new_token())
        return await _claimed_retry(engine, plan, despite_running_child)
    finally:
        engine.retries_in_flight[key] -= 1
        if engine.retries_in_flight[key] <= 0:
            del engine.retries_in_flight[key]


async def _claimed_retry(engine, plan: RetryPlan, despite_running_child: bool) -> Submitted:
    """Send the retry under a claim in the ledger, which another process (a second `batchtui
    retry` in the same second) cannot take as well."""
    account, parent, ledger = plan.account, plan.parent, engine.ledger
    token = new_token()
    try:
        await asyncio.to_thread(ledger.claim_retry, account.name, parent.id, token)
    except RetryClaimed as held:
        raise RetryRefused(_held_message(engine, account, held.claim)) from None
    try:
        # Looked at under the claim: a retry that ended its send before we claimed has its link.
        running = [link.child_id for link in ledger.children(account.name, parent.id)
                   if not _known_terminal(engine, account, link.child_id)]
        if running and not despite_running_child:
            raise RetryRefused(
                f"batch {parent.id} already has a retry running ({running[0]}); two batches over the same "
                f"requests would double-spend. Wait for it, or pass --force")
        submitted = await _send_retry(engine, plan, token)
    except BaseException:
        # Synchronous, so a cancelled task still lets go. The claim is kept when a batch may
        # exist (the create's answer was lost, or it was made but not linked): a second retry
        # then has to be deliberate (--force) instead of double-spending.
        intent = ledger.create_intent(token)
        if intent is None or intent.status is IntentStatus.FAILED:
            ledger.release_retry_claim(account.name, parent.id, token)
        raise
    await asyncio.to_thread(ledger.release_retry_claim, account.name, parent.id, token)
    return submitted


def _held_message(engine, account: Account, claim) -> str:
    intent = engine.ledger.create_intent(claim.token)
    if intent is not None and intent.batch_id is not None:
        state = f"it created {intent.batch_id} but did not finish recording it; check that batch"
    else:
        state = (f"it is being sent right now, or its answer was lost (check "
                 f"`batchtui ls --account {account.name}`)")
    return (f"batch {claim.parent_id} is already being retried by another batchtui: retry {claim.token}, "
            f"process {claim.pid}, since {claim.claimed_at:%Y-%m-%d %H:%M:%S} UTC; {state}. Two batches over "
            f"the same requests would double-spend. Wait for it, or pass --force")


async def _send_retry(engine, plan: RetryPlan, token: str) -> Submitted:
    account, parent = plan.account, plan.parent
    objects = [json.loads(line) for line in plan.lines]
    label = parent.name or parent.id
    batch_input = BatchInput(lines=objects, raw_lines=plan.lines, filename=f"retry-{_tail(parent.id)}.jsonl",
                             metadata={PARENT_KEY: parent.id}, model=parent.model,
                             display_name=f"retry of {label}"[:120])
    validated = ValidatedInput(batch_input=batch_input, custom_ids=plan.custom_ids, sha256="",
                               path=Path(f"retry-of-{_tail(parent.id)}.jsonl"))
    submitted = await submit_validated(engine, account, validated, token=token)
    await asyncio.to_thread(engine.ledger.record_retry, account.name, parent.id, submitted.batch.id, plan.custom_ids)
    return submitted


async def _originals(engine, account: Account, batch: Batch, input_path: Path | None) -> tuple[dict[str, bytes], str]:
    client = engine.client(account)
    if input_path is not None:
        return _read_originals(client, Path(input_path)), str(input_path)
    stored = await asyncio.to_thread(engine.ledger.submission_lines, account.name, batch.id)
    if stored:
        return stored, "the ledger (submitted with batchtui)"
    try:
        lines = _index_lines(client, [line async for line in client.read_requests(batch)])
    except NotSupported:
        lines = {}
    if lines:
        return lines, f"the provider's input file {batch.input_ref}"
    raise RetryRefused(
        f"the original requests of {batch.id} cannot be found: {account.provider.value} does not return them "
        f"and batchtui did not submit this batch. Pass the original JSONL with --input FILE")


def _read_originals(client, path: Path) -> dict[str, bytes]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RetryRefused(f"cannot read {path}: {exc.strerror or exc}") from None
    return _index_lines(client, data.split(b"\n"))


def _index_lines(client, raw_lines) -> dict[str, bytes]:
    originals: dict[str, bytes] = {}
    for raw in raw_lines:
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict):
            cid = client.request_custom_id(obj)
            if isinstance(cid, str) and cid not in originals:
                originals[cid] = raw
    return originals


def _known_terminal(engine, account: Account, batch_id: str) -> bool:
    batch = engine.ledger.get_batch(account.name, batch_id)
    return batch is not None and batch.is_terminal


def _estimate(engine, batch: Batch, summary, n: int) -> Cost | None:
    """The retry's likely cost: the parent's average per succeeded request, times n."""
    done = summary.breakdown.outcomes.get(Outcome.SUCCEEDED, 0)
    if not done or not summary.usage_by_model:
        return None
    cost = engine.prices.cost(batch.provider, summary.usage_by_model)
    if cost.usd is None or cost.standard_usd is None:
        return cost
    share = n / done
    return Cost(usd=round(cost.usd * share, 6), standard_usd=round(cost.standard_usd * share, 6), estimated=True)


def _tail(batch_id: str) -> str:
    return batch_id.rsplit("/", 1)[-1][-12:]
