"""Creating a batch: validated first, recorded before it is sent, never sent twice.

A create intent (with a token that rides in the batch's metadata or display name) is written
to the ledger before the request goes out. If the answer is lost, we look for the batch the
token names instead of sending again: re-sending is how duplicate batches happen.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from batchtui.core.accounts import Account
from batchtui.core.batch_input import ValidatedInput, read_batch_file
from batchtui.core.errors import AmbiguousCreate, BatchtuiError, CreateOutcomeUnknown
from batchtui.core.models import Batch
from batchtui.core.providers.base import TOKEN_KEY, BatchInput


@dataclass(frozen=True)
class Submitted:
    batch: Batch
    requests: int
    recovered: bool = False  # the create's answer was lost; the batch was found by its token


def validate_file(engine, account: Account, path: Path, *, model: str | None = None) -> ValidatedInput:
    """Everything `submit` checks before the network: raises InputError naming each line."""
    return read_batch_file(path, engine.client(account), model=model or account.default_model)


async def submit_file(engine, account: Account, path: Path, *, model: str | None = None) -> Submitted:
    validated = validate_file(engine, account, path, model=model)
    return await submit_validated(engine, account, validated)


def new_token() -> str:
    """A create intent's token: rides in the batch's metadata (or display name)."""
    return uuid.uuid4().hex[:16]


async def submit_validated(engine, account: Account, validated: ValidatedInput, *,
                           token: str | None = None) -> Submitted:
    """`token` is the create intent's, when the caller needs it known beforehand (a retry
    names its claim by it); by default a new one."""
    client = engine.client(account)
    token = token or new_token()
    batch_input: BatchInput = dataclasses.replace(
        validated.batch_input, metadata={**validated.batch_input.metadata, TOKEN_KEY: token})
    await asyncio.to_thread(
        engine.ledger.record_create_intent, token, account.name, account.provider, len(validated.custom_ids),
        input_path=str(validated.path), input_sha256=validated.sha256)
    since = time.time() - 300  # allow for clock skew between us and the provider
    recovered = False
    try:
        batch = await client.create_batch(batch_input)
    except CreateOutcomeUnknown as lost:
        # The answer was lost, not the request: look for the batch instead of re-sending.
        try:
            found = await client.find_created(batch_input, since=since)
            why = "no batch made by this submission was found"
        except AmbiguousCreate as many:
            found, why = None, many.message
        if found is None:
            raise CreateOutcomeUnknown(
                f"{lost.message}; {why}, and nothing was re-sent. "
                f"Check `batchtui ls --account {account.name}` before submitting again.",
                account=account.name) from None
        batch, recovered = found, True
    except BatchtuiError:
        # The provider said no (validation, auth, quota): nothing was made.
        await asyncio.to_thread(engine.ledger.fail_create_intent, token)
        raise
    await asyncio.to_thread(engine.ledger.confirm_create_intent, token, batch.id)
    # Every submission keeps its request lines: Anthropic and Gemini cannot give them back,
    # and OpenAI's copy expires with the input file (30 days).
    await asyncio.to_thread(
        engine.ledger.record_submission, account.name, batch.id, str(validated.path), validated.sha256,
        zip(validated.custom_ids, validated.batch_input.raw_lines))
    batch = engine.costed(batch)
    await asyncio.to_thread(engine.ledger.upsert_batches, [batch])
    return Submitted(batch, len(validated.custom_ids), recovered)
