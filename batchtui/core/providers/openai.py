"""OpenAI's Batch + Files APIs, and every OpenAI-compatible server (PROVIDERS.md §A, §E).

What differs between OpenAI, Groq, Together and an unknown clone lives in the dialect
table of `openai_dialects`; this module only sends requests through the shared Transport.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from batchtui.core.accounts import Account
from batchtui.core.errors import InputError, ProtocolError
from batchtui.core.models import Batch, Provider, ResultFile
from batchtui.core.providers import openai_lines
from batchtui.core.providers.base import (
    TOKEN_KEY,
    BatchInput,
    FileRequest,
    Limits,
    NotSupported,
    ProviderClient,
    data_items,
    list_batches_paged,
)
from batchtui.core.providers.openai_dialects import OPENAI, Dialect, ListStyle, dialect_for, to_batch

PAGE_SIZE = 100  # the largest page /batches gives
COMPLETION_WINDOW = "24h"
MAX_METADATA_PAIRS = 16
# After a lost create answer, how far before `since` a batch may claim to have been made
# and still be ours: the provider's clock and ours disagree, and it stamps whole seconds.
CLOCK_SLACK_SECONDS = 120.0
DOWNLOAD_HEADERS = {"Accept": "application/binary"}  # what the official SDK asks file content with


def creation_token(batch_input: BatchInput) -> str:
    """The token tagging a batch in its metadata so a lost create can be found again.

    Derived from the content rather than random, so a fresh process (after a crash) finds
    the batch too. Two identical submissions share it; `since` tells them apart.
    """
    given = batch_input.metadata.get(TOKEN_KEY)
    if given:
        return given
    digest = hashlib.sha256(batch_input.jsonl)
    digest.update(json.dumps(sorted(batch_input.metadata.items())).encode())
    return "bt_" + digest.hexdigest()[:24]


def _path_id(value: str) -> str:
    # Ids come from providers and users; never let one reshape the request path.
    return quote(value, safe="")


def _file_content(file_id: str) -> FileRequest:
    return FileRequest(f"/files/{_path_id(file_id)}/content", headers=DOWNLOAD_HEADERS)


def _jsonl_name(filename: str) -> str:
    # OpenAI refuses a batch upload whose name does not end in .jsonl (§A.2).
    base = posixpath.basename(filename.replace("\\", "/")) or "batch.jsonl"
    return base if base.lower().endswith(".jsonl") else base.rsplit(".", 1)[0] + ".jsonl"


class OpenAIClient(ProviderClient):
    provider: ClassVar[Provider] = Provider.OPENAI
    # OpenAI's own limits; a dialect with other limits sets them on the instance.
    limits: ClassVar[Limits] = OPENAI.limits

    def __init__(self, account: Account, key: str, **kw: Any) -> None:
        self.dialect: Dialect = dialect_for(account)
        super().__init__(account, key, **kw)
        if self.dialect.limits != OPENAI.limits:
            self.limits = self.dialect.limits  # type: ignore[misc]
        self._uploads: dict[str, str] = {}  # creation token -> input file id, for find_created

    # -- wiring ---------------------------------------------------------------------------

    @classmethod
    def default_base_url(cls, account: Account) -> str:
        base = dialect_for(account).base_url
        if base is None:  # unreachable: Account insists on a base_url or a preset
            raise ValueError(f"account {account.name} needs a base_url")
        return base

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def extra_headers(self) -> dict[str, str]:
        headers = {}
        if self.account.organization:
            headers["OpenAI-Organization"] = self.account.organization
        if self.account.project:
            headers["OpenAI-Project"] = self.account.project
        return headers

    def _batch(self, obj: Any) -> Batch:
        return to_batch(obj, account=self.account)

    # -- reading batches ------------------------------------------------------------------

    async def list_batches(self, *, stop_at: Callable[[str], bool] | None = None,
                           first_page: int | None = None) -> AsyncIterator[Batch]:
        style = self.dialect.list_style
        if style is not ListStyle.CURSOR:
            # One answer holds everything; sort it so "newest first" holds whatever the order.
            batches = sorted(map(self._batch, await self._list_once(style)), key=lambda b: b.created_at, reverse=True)
            for batch in batches:
                if stop_at is not None and stop_at(batch.id):
                    return
                yield batch
            return
        cursors: set[str] = set()

        def fetch(after: str | None) -> Awaitable[dict[str, Any]]:
            if after is None:
                return self.http.get_json("/batches", params={"limit": _page_size(first_page, PAGE_SIZE)})
            return self.http.get_json("/batches", params={"limit": PAGE_SIZE, "after": after})

        def next_cursor(page: dict[str, Any]) -> str | None:
            data = page.get("data")
            # A missing has_more (some clones) means "ask again" while pages keep coming.
            if not isinstance(data, list) or page.get("has_more") is False or not data:
                return None
            last = page.get("last_id") if isinstance(page.get("last_id"), str) else self._batch(data[-1]).id
            if last in cursors:  # a server ignoring `after` would loop forever
                return None
            cursors.add(last)
            return last

        items = data_items(self.account.name)
        async with aclosing(list_batches_paged(fetch, next_cursor, items, self._batch, stop_at)) as batches:
            async for batch in batches:
                yield batch

    async def _list_once(self, style: ListStyle) -> list[Any]:
        response = await self.http.request("GET", "/batches")
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ProtocolError("the batch list is not JSON", account=self.account.name) from None
        body = self.http.checked(body, response)
        data = body if style is ListStyle.ARRAY and isinstance(body, list) else (
            body.get("data") if isinstance(body, dict) else None)
        if not isinstance(data, list):
            raise ProtocolError("a batch list without a data array", account=self.account.name)
        return data

    async def get_batch(self, batch_id: str) -> Batch:
        return self._batch(await self.http.get_json(f"/batches/{_path_id(batch_id)}"))

    async def cancel_batch(self, batch_id: str) -> Batch:
        # Safe to resend: cancelling twice leaves the batch cancelling either way.
        response = await self.http.request("POST", f"/batches/{_path_id(batch_id)}/cancel")
        return self._batch(self.http.json_of(response))

    # -- creating -------------------------------------------------------------------------

    def _endpoint_of(self, batch_input: BatchInput) -> tuple[str, str | None]:
        urls = {line.get("url") for line in batch_input.lines}
        if len(urls) != 1:
            shown = ", ".join(sorted(map(str, urls))) or "none"
            raise InputError(f"every line of a batch must use the same url (found: {shown})")
        endpoint = urls.pop()
        if endpoint not in self.dialect.endpoints:
            raise InputError(f"{endpoint!r} is not a batch endpoint of {self.dialect.name}")
        models = {str(_body(line).get("model")) for line in batch_input.lines}
        return endpoint, models.pop() if len(models) == 1 else None

    async def _upload(self, batch_input: BatchInput) -> str:
        # Sent with retries: a duplicate *file* costs only storage, unlike a duplicate batch.
        files = {"file": (_jsonl_name(batch_input.filename), batch_input.jsonl, "application/jsonl")}
        response = await self.http.request("POST", "/files", data={"purpose": self.dialect.upload_purpose},
                                           files=files)
        file_id = self.http.json_of(response).get("id")
        if not isinstance(file_id, str) or not file_id:
            raise ProtocolError("the file upload answer has no id", account=self.account.name)
        return file_id

    async def create_batch(self, batch_input: BatchInput) -> Batch:
        if not batch_input.lines:
            raise InputError("a batch needs at least one request")
        endpoint, model = self._endpoint_of(batch_input)
        token = creation_token(batch_input)
        metadata = {**batch_input.metadata, TOKEN_KEY: token}
        if self.dialect.sends_metadata and len(metadata) > MAX_METADATA_PAIRS:
            raise InputError(f"at most {MAX_METADATA_PAIRS - 1} metadata pairs (batchtui adds one)")
        file_id = await self._upload(batch_input)
        self._uploads[token] = file_id
        body: dict[str, Any] = {"input_file_id": file_id, "endpoint": endpoint, "completion_window": COMPLETION_WINDOW}
        if self.dialect.sends_metadata:
            body["metadata"] = metadata
        if self.dialect.model_param and model:
            body[self.dialect.model_param] = model
        response = await self.http.request("POST", "/batches", json=body, idempotent=False)
        answer = self.http.json_of(response)
        if self.dialect.create_envelope is not None:
            answer = answer.get(self.dialect.create_envelope)
        return self._batch(answer)

    async def find_created(self, batch_input: BatchInput, *, since: float) -> Batch | None:
        """The batch a lost create made: tagged with our token in its metadata, or (for a
        dialect without metadata) made from the file this client uploaded for it."""
        token = creation_token(batch_input)
        file_id = self._uploads.get(token)
        async for batch in self.list_batches():
            if batch.created_at.timestamp() < since - CLOCK_SLACK_SECONDS:
                return None  # newest first: everything after this is older still
            if batch.metadata.get(TOKEN_KEY) == token or (file_id is not None and batch.input_ref == file_id):
                return batch
        return None

    # -- files ----------------------------------------------------------------------------

    def result_request(self, batch: Batch, result_file: ResultFile) -> FileRequest:
        return _file_content(result_file.ref)

    async def read_requests(self, batch: Batch) -> AsyncIterator[bytes]:
        """The original lines of the input file, each without its line ending (§A.12)."""
        if not batch.input_ref:
            raise NotSupported(f"batch {batch.id} names no input file")
        tail = b""
        async for chunk in self.stream_file(_file_content(batch.input_ref)):
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            for line in lines:
                line = line.rstrip(b"\r")
                if line.strip():
                    yield line
        if tail.strip():
            yield tail.rstrip(b"\r")

    # -- lines ----------------------------------------------------------------------------

    # The parser object itself (not a wrapper), so the analyzer finds its fast path.
    parse_result_line = staticmethod(openai_lines.parse_result_line)

    @staticmethod
    def request_custom_id(line: dict[str, Any]) -> str | None:
        custom_id = line.get("custom_id") if isinstance(line, dict) else None
        return custom_id if isinstance(custom_id, str) else None

    def validate_line(self, obj: Any) -> str | None:
        return openai_lines.validate_line(obj, self.dialect.endpoints)

    def console_url(self, batch: Batch) -> str | None:
        template, host = self.dialect.console_url, self.dialect.console_host
        if template is None or httpx.URL(self.http.base_url).host != host:
            return None  # a proxy or a clone: the console is not theirs
        return template.format(id=quote(batch.id, safe=""))


def _page_size(asked: int | None, largest: int) -> int:
    return largest if asked is None else min(max(asked, 1), largest)


def _body(line: dict[str, Any]) -> dict[str, Any]:
    body = line.get("body")
    return body if isinstance(body, dict) else {}
