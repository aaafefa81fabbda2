"""The Gemini API batch mode (`generativelanguage.googleapis.com`, PROVIDERS.md §C).

Batches are long-running `Operation`s named `batches/...`. Input goes inline in the create
call up to 20 MB, else as a JSONL file through the resumable Files upload. Output is a
generated `files/batch-...` file or inline responses inside the Operation. The wire rules
live in `gemini_wire`; this module only speaks HTTP through the shared transport.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, ClassVar

import httpx

from batchtui.core.accounts import DEFAULT_BASE_URLS, Account
from batchtui.core.errors import InputError, NotFoundError, ProtocolError
from batchtui.core.models import Batch, Provider, ResultFile
from batchtui.core.providers import gemini_wire as wire
from batchtui.core.providers.base import (
    TOKEN_KEY,
    BatchInput,
    FileRequest,
    Limits,
    NotSupported,
    ProviderClient,
    list_batches_paged,
)

API = "/v1beta"  # the batch API is documented under v1beta; google-genai 3.x also reaches /v1
INLINE_MAX_BYTES = 20 * 1024 * 1024  # whole create request, per the batch docs
UPLOAD_MIME = "application/jsonl"

_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_MODEL = re.compile(r"^(?:tunedModels/)?[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_DOWNLOAD_CHUNK = 1 << 16


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


class GeminiClient(ProviderClient):
    provider: ClassVar[Provider] = Provider.GEMINI
    # 2 GB is the documented input-file cap. Google documents no per-batch request count (the
    # enqueued-token quota bites first); 1,000,000 is our own ceiling so a batch's local copy
    # of its requests and its retry set stay a size a laptop handles.
    limits: ClassVar[Limits] = Limits(max_requests=1_000_000, max_bytes=2 * 1024**3)
    # Per list call; tests lower it to walk several pages. Google's list calls coerce a page
    # size above their own maximum down to it (AIP-158), so asking for 1,000 is safe.
    page_size: int = 1000

    @classmethod
    def default_base_url(cls, account: Account) -> str:
        return DEFAULT_BASE_URLS[Provider.GEMINI]

    def auth_headers(self, key: str) -> dict[str, str]:
        # The header, never `?key=`: URLs end up in logs and tracebacks.
        return {"x-goog-api-key": key}

    # -- reading ---------------------------------------------------------------------------

    def _batch_path(self, batch_id: str) -> str:
        name = wire.batch_id_of(batch_id.strip())
        if not _ID.match(name.removeprefix("batches/")):
            # Checked so a pasted id can never steer the keyed request to another path.
            raise NotFoundError(f"not a Gemini batch id: {batch_id!r}", account=self.account.name)
        return f"{API}/{name}"

    def _batch(self, op: dict[str, Any]) -> Batch:
        return wire.batch_from_operation(op, self.account.name)

    async def list_batches(self, *, stop_at: Callable[[str], bool] | None = None,
                           first_page: int | None = None) -> AsyncIterator[Batch]:
        # Listed newest first (the order stop_at relies on); a missing nextPageToken is the end.
        seen: set[str] = set()
        first_size = self.page_size if first_page is None else min(max(first_page, 1), self.page_size)

        def fetch(token: str | None) -> Awaitable[dict[str, Any]]:
            if token is None:
                return self.http.get_json(f"{API}/batches", params={"pageSize": first_size})
            return self.http.get_json(f"{API}/batches", params={"pageSize": self.page_size, "pageToken": token})

        def next_cursor(body: dict[str, Any]) -> str | None:
            token = body.get("nextPageToken") or None
            if token is None:
                return None
            if token in seen:
                raise ProtocolError("the batch list repeats a page token", account=self.account.name)
            seen.add(token)
            return token

        def items(body: dict[str, Any]) -> list[Any]:
            return body.get("operations") or []

        async with aclosing(list_batches_paged(fetch, next_cursor, items, self._batch, stop_at)) as batches:
            async for batch in batches:
                yield batch

    async def get_batch(self, batch_id: str) -> Batch:
        return self._batch(await self.http.get_json(self._batch_path(batch_id)))

    async def cancel_batch(self, batch_id: str) -> Batch:
        # The answer is an empty object: the batch itself comes from a fresh GET.
        await self.http.request("POST", self._batch_path(batch_id) + ":cancel")
        return await self.get_batch(batch_id)

    # -- creating --------------------------------------------------------------------------

    def _model_for(self, batch_input: BatchInput) -> str:
        model = batch_input.model or self.account.default_model
        if not model:
            named = {str((line.get("request") or {}).get("model") or "").removeprefix("models/")
                     for line in batch_input.lines}
            if len(named) == 1 and "" not in named:
                model = named.pop()
            elif len(named - {""}) > 1:
                raise InputError(f"the lines name several models ({', '.join(sorted(named - {''}))}); "
                                 "a Gemini batch runs one model: split the file or pass the model")
            else:
                raise InputError("no model for this Gemini batch: pass one, or set the account's default_model")
        model = model.removeprefix("models/")
        if not _MODEL.match(model):
            raise InputError(f"not a Gemini model name: {model!r}")
        return model

    @staticmethod
    def create_token(batch_input: BatchInput) -> str:
        """Our dedupe token: the caller's, else one fixed by the input's bytes."""
        given = batch_input.metadata.get(TOKEN_KEY)
        if given and wire.TOKEN_TAG.fullmatch(f"[bt:{given}]"):
            return given
        return hashlib.sha256(batch_input.jsonl).hexdigest()[:16]

    def _display_name(self, batch_input: BatchInput) -> str:
        name = batch_input.display_name or batch_input.filename.rsplit(".", 1)[0] or "batch"
        return f"{name} [bt:{self.create_token(batch_input)}]"

    async def create_batch(self, batch_input: BatchInput) -> Batch:
        model = self._model_for(batch_input)
        batch: dict[str, Any] = {"displayName": self._display_name(batch_input)}
        body = None
        if len(batch_input.jsonl) <= INLINE_MAX_BYTES:
            requests = [{"request": line["request"], "metadata": {"key": line["key"]}} for line in batch_input.lines]
            body = _dumps({"batch": {**batch, "inputConfig": {"requests": {"requests": requests}}}})
            if len(body) > INLINE_MAX_BYTES:
                body = None  # the inline envelope tipped it over: go through a file after all
        if body is None:
            file_name = await self._upload(batch_input, batch["displayName"])
            body = _dumps({"batch": {**batch, "inputConfig": {"fileName": file_name}}})
        # Never re-sent blindly: a second create makes a second batch (find_created recovers).
        response = await self.http.request(
            "POST", f"{API}/models/{model}:batchGenerateContent", content=body,
            headers={"content-type": "application/json"}, idempotent=False)
        return self._batch(self.http.json_of(response))

    async def _upload(self, batch_input: BatchInput, display_name: str) -> str:
        """The resumable Files upload (start, then one `upload, finalize`); the file's name."""
        data = batch_input.jsonl
        start = await self.http.request(
            "POST", f"/upload{API}/files", content=_dumps({"file": {"displayName": display_name}}),
            headers={
                "content-type": "application/json",
                "x-goog-upload-protocol": "resumable",
                "x-goog-upload-command": "start",
                "x-goog-upload-header-content-length": str(len(data)),
                "x-goog-upload-header-content-type": UPLOAD_MIME,
            })
        session = start.headers.get("x-goog-upload-url")
        if not session:
            raise ProtocolError("the upload start gave no x-goog-upload-url", account=self.account.name)
        self._check_same_origin(session)
        # Safe to resend: the worst a repeated chunk makes is a spare file, never a batch.
        done = await self.http.request(
            "POST", session, content=data,
            headers={"x-goog-upload-command": "upload, finalize", "x-goog-upload-offset": "0"})
        if done.headers.get("x-goog-upload-status") != "final":
            raise ProtocolError("the upload did not finalize", account=self.account.name)
        file = self.http.json_of(done).get("file")
        if not isinstance(file, dict) or not isinstance(file.get("name"), str):
            raise ProtocolError("the upload answer names no file", account=self.account.name)
        return file["name"]

    def _check_same_origin(self, url: str) -> None:
        # The key travels in every request's headers: an upload session elsewhere must not get it.
        base, target = httpx.URL(self.http.base_url), httpx.URL(url)
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            raise ProtocolError(f"the upload session points at another host ({target.host}); not followed",
                                account=self.account.name)

    async def find_created(self, batch_input: BatchInput, *, since: float) -> Batch | None:
        token = self.create_token(batch_input)
        # Newest first: once past `since` (less a margin for clock skew) nothing older can match.
        horizon = since - 600
        async for batch in self.list_batches():
            if batch.created_at.timestamp() < horizon:
                return None
            if batch.metadata.get(TOKEN_KEY) == token:
                return batch
        return None

    # -- results ---------------------------------------------------------------------------

    async def download(self, batch: Batch, result_file: ResultFile) -> AsyncIterator[bytes]:
        if result_file.ref == wire.INLINE_REF:
            chunks = self._inline_results(batch)
        else:
            chunks = super().download(batch, result_file)
        async with aclosing(chunks):
            async for chunk in chunks:
                yield chunk

    def result_request(self, batch: Batch, result_file: ResultFile) -> FileRequest | None:
        if result_file.ref == wire.INLINE_REF:
            return None  # the responses are inside the batch object: nothing to download
        name = result_file.ref.removeprefix("files/")
        if not _ID.match(name):
            raise NotFoundError(f"not a Gemini file name: {result_file.ref!r}", account=self.account.name)
        return FileRequest(f"/download{API}/files/{name}:download", params={"alt": "media"})

    async def _inline_results(self, batch: Batch) -> AsyncIterator[bytes]:
        """Inline responses as JSONL in the file-mode shape `{"key", "response"|"error"}`.

        No file exists for inline output, so these bytes are ours, re-serialised from the
        Operation (compact JSON, one line per response, in request order); the content is
        the provider's, the byte layout is not.
        """
        responses = wire.inlined_responses(batch.raw)
        if responses is None:  # a listed batch: the list leaves inline responses out
            responses = wire.inlined_responses(await self.http.get_json(self._batch_path(batch.id)))
        if responses is None:
            raise NotFoundError(f"{batch.id} has no inline responses", account=self.account.name)
        buffer = bytearray()
        for item in responses:
            item = item if isinstance(item, dict) else {}
            metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
            line: dict[str, Any] = {"key": metadata.get("key")}
            for field in ("response", "error"):
                if field in item:
                    line[field] = item[field]
            buffer += _dumps(line) + b"\n"
            if len(buffer) >= _DOWNLOAD_CHUNK:
                yield bytes(buffer)
                buffer.clear()
        if buffer:
            yield bytes(buffer)

    async def read_requests(self, batch: Batch) -> AsyncIterator[bytes]:
        raise NotSupported("Gemini does not return a batch's requests: uploaded files can't be downloaded "
                           "and inline requests are not echoed back")
        yield b""  # pragma: no cover  (makes this an async generator)

    # The parser object itself (not a wrapper), so the analyzer finds its fast path.
    parse_result_line = staticmethod(wire.parse_result_line)

    @staticmethod
    def request_custom_id(line: dict[str, Any]) -> str | None:
        key = line.get("key")
        return key if isinstance(key, str) else None

    def validate_line(self, obj: Any) -> str | None:
        if not isinstance(obj, dict):
            return "a line must be a JSON object {\"key\": ..., \"request\": {...}}"
        key = obj.get("key")
        if not isinstance(key, str) or not key:
            return "\"key\" must be a non-empty string"
        request = obj.get("request")
        if not isinstance(request, dict):
            return "\"request\" must be an object (a GenerateContentRequest)"
        if not isinstance(request.get("contents"), list):
            return "\"request.contents\" must be a list"
        return None

    def console_url(self, batch: Batch) -> str | None:
        # Google has no web page for a batch: watching them is what batchtui is for.
        return None
