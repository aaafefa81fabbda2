"""What the OpenAI simulator receives: multipart uploads, and batch input files checked the
way OpenAI's validation step checks them (PROVIDERS.md §A.2, §A.4, §A.7). Also writes the
realistic input files of seeded demo batches."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

MAX_REQUESTS = 50_000
MAX_REPORTED_ERRORS = 50  # a 50,000-line file full of mistakes must not give a 50,000-item answer

# Messages in the observed style of OpenAI's validation errors (stdapi-ai/stdapi.ai#240).
_MESSAGES = {
    "empty_file": "The batch input file is empty. Upload a file with at least one request.",
    "invalid_json_line": "This line is not parseable as valid JSON.",
    "duplicate_custom_id": ("The custom_id for this request is a duplicate of another request. "
                            "The custom_id parameter must be unique for each request in a batch."),
    "url_mismatch": "The url for this request does not match the endpoint of the batch ({endpoint}).",
    "model_mismatch": ("Each input file can only include requests to a single model; this line asks for "
                       "{model!r} but the file started with {first!r}."),
    "too_many_tasks": "The batch input file has {n:,} requests; a batch can hold at most {limit:,}.",
    "missing_required_parameter": "Missing required parameter: '{param}'.",
    "invalid_value": "Invalid value for '{param}': {detail}",
}


def validation_error(code: str, line: int | None, param: str | None = None, **fmt: Any) -> dict[str, Any]:
    return {"code": code, "message": _MESSAGES[code].format(param=param, **fmt), "param": param, "line": line}


def token_limit_error(model: str, organization: str = "org-sim0000000000000000000000") -> dict[str, Any]:
    """The batch failure of an organization over its enqueued-token budget (§A.4, observed)."""
    return {"code": "token_limit_exceeded", "param": None, "line": None,
            "message": (f"Enqueued token limit reached for {model} in organization {organization}. "
                        "Limit: 2,000,000 enqueued tokens. Please try again once some in_progress batches "
                        "have been completed.")}


@dataclass
class CheckedInput:
    lines: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (custom_id, line)
    model: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)


def check_input(data: bytes, endpoint: str) -> CheckedInput:
    """Every line of a batch input file, or the errors that make the batch fail validation."""
    out = CheckedInput()
    seen: set[str] = set()
    number = 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        problem = _check_line(raw, number, endpoint, seen, out)
        if problem is not None and len(out.errors) < MAX_REPORTED_ERRORS:
            out.errors.append(problem)
    if not out.lines and not out.errors:
        out.errors.append(validation_error("empty_file", None))
    elif len(out.lines) > MAX_REQUESTS:
        out.errors.append(validation_error("too_many_tasks", None, n=len(out.lines), limit=MAX_REQUESTS))
    return out


def _check_line(raw: bytes, number: int, endpoint: str, seen: set[str], out: CheckedInput) -> dict | None:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return validation_error("invalid_json_line", number)
    if not isinstance(obj, dict):
        return validation_error("invalid_json_line", number)
    custom_id = obj.get("custom_id")
    for param in ("custom_id", "method", "url", "body"):
        if param not in obj:
            return validation_error("missing_required_parameter", number, param)
    if not isinstance(custom_id, str):
        return validation_error("invalid_value", number, "custom_id", detail="expected a string.")
    if obj["method"] != "POST":
        return validation_error("invalid_value", number, "method", detail="only POST is supported.")
    if obj["url"] != endpoint:
        return validation_error("url_mismatch", number, endpoint=endpoint)
    body = obj["body"]
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return validation_error("missing_required_parameter", number, "body.model")
    if body.get("stream") is True:
        return validation_error("invalid_value", number, "body.stream", detail="streaming is not supported in a batch.")
    if custom_id in seen:
        return validation_error("duplicate_custom_id", number)
    if out.model is None:
        out.model = body["model"]
    elif body["model"] != out.model:
        return validation_error("model_mismatch", number, model=body["model"], first=out.model)
    seen.add(custom_id)
    out.lines.append((custom_id, obj))
    return None


# -- multipart/form-data ------------------------------------------------------------------

_DISPOSITION_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)="((?:[^"\\]|\\.)*)"|;\s*([A-Za-z0-9_*-]+)=([^;\s]+)')


@dataclass(frozen=True)
class FormPart:
    data: bytes
    filename: str | None = None


def parse_multipart(body: bytes, content_type: str) -> dict[str, FormPart]:
    """A small, byte-exact multipart/form-data reader: the uploaded file must come out with
    exactly the bytes that were sent (the download tests compare sha256)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match or not content_type.lower().startswith("multipart/form-data"):
        raise ValueError("expected multipart/form-data with a boundary")
    delimiter = b"--" + match.group(1).encode("latin-1")
    parts: dict[str, FormPart] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        if data.endswith(b"\r\n"):
            data = data[:-2]
        params: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                for quoted_key, quoted, bare_key, bare in _DISPOSITION_PARAM.findall(line):
                    key = (quoted_key or bare_key).lower()
                    params[key] = (quoted.replace('\\"', '"') if quoted_key else bare)
        if "name" in params:
            parts[params["name"]] = FormPart(data=data, filename=params.get("filename"))
    return parts


# -- the input files of seeded batches ------------------------------------------------------

_QUESTIONS = (
    "Summarize the attached support ticket in two sentences.",
    "Classify the sentiment of this product review as positive, neutral or negative.",
    "Extract the invoice number, the total and the due date as JSON.",
    "Translate the paragraph into French, keeping the product names in English.",
    "Write a one-line title for this meeting transcript.",
    "Which of these three answers is the most helpful? Reply with A, B or C.",
    "List the named entities (people, organizations, places) in the text.",
    "Rewrite this error message so a non-technical user understands it.",
)
_DOCUMENTS = (
    "Order #4471 arrived with a cracked screen; the customer asks for a replacement before Friday.",
    "The quarterly report shows revenue up 12% while support costs fell for the third quarter in a row.",
    "Meeting notes: agreed to move the launch to May, Priya owns the rollout checklist.",
    "The battery lasts two days, but the charger stopped working after a week.",
    "Invoice INV-2026-0193, total EUR 1,240.00, payable within 30 days of 3 March.",
)


def sample_request(custom_id: str, model: str, endpoint: str, rng: random.Random) -> dict[str, Any]:
    question, document = rng.choice(_QUESTIONS), rng.choice(_DOCUMENTS)
    if endpoint == "/v1/embeddings":
        body: dict[str, Any] = {"model": model, "input": document}
    elif endpoint == "/v1/responses":
        body = {"model": model, "input": f"{question}\n\n{document}", "max_output_tokens": rng.choice((256, 512, 1024))}
    else:
        body = {"model": model, "messages": [{"role": "system", "content": question},
                                             {"role": "user", "content": document}],
                "max_completion_tokens": rng.choice((256, 512, 1024))}
    return {"custom_id": custom_id, "method": "POST", "url": endpoint, "body": body}


def sample_file(n: int, model: str, endpoint: str, prefix: str, rng: random.Random) -> bytes:
    lines = (sample_request(f"{prefix}-{i:05d}", model, endpoint, rng) for i in range(n))
    return b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines)
