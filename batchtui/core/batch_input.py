"""Reading and validating a batch input file before anything is sent.

Every problem is named with its line number; on any problem the whole file is refused, so a
malformed JSONL never turns into a half-sent batch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from batchtui.core.errors import InputError
from batchtui.core.models import Provider
from batchtui.core.providers.base import BatchInput, ProviderClient

MAX_LISTED = 50  # problems listed in full; the rest are counted


@dataclass(frozen=True)
class ValidatedInput:
    batch_input: BatchInput
    custom_ids: list[str]
    sha256: str
    path: Path


def read_batch_file(
    path: Path,
    client: ProviderClient,
    *,
    metadata: dict[str, str] | None = None,
    model: str | None = None,
) -> ValidatedInput:
    """Parse and check `path` as `client`'s provider's batch JSONL; raise InputError listing problems."""
    path = Path(path)
    limits = client.limits
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if size > limits.max_bytes:
        raise InputError(
            f"{path} is {size:,} bytes; {client.provider.value} takes at most {limits.max_bytes:,} bytes per batch",
            [(0, "file too large")],
        )
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    pattern = re.compile(limits.custom_id_pattern) if limits.custom_id_pattern else None

    problems: list[tuple[int, str]] = []
    lines: list[dict] = []
    raw_lines: list[bytes] = []
    line_numbers: list[int] = []
    first_seen: dict[str, int] = {}
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append((line_no, f"not valid JSON ({_short(exc)})"))
            continue
        except RecursionError:  # json gives up past ~1,000 levels of nesting
            problems.append((line_no, "not valid JSON (nested too deeply)"))
            continue
        if not isinstance(obj, dict):
            problems.append((line_no, f"expected a JSON object, got {type(obj).__name__}"))
            continue
        problem = client.validate_line(obj)
        if problem:
            problems.append((line_no, problem))
            continue
        custom_id = client.request_custom_id(obj)
        if not isinstance(custom_id, str) or not custom_id:
            problems.append((line_no, "missing custom id"))
            continue
        if pattern is not None and not pattern.fullmatch(custom_id):
            problems.append((line_no, f"custom id {custom_id!r} does not match {limits.custom_id_pattern}"))
            continue
        if custom_id in first_seen:
            problems.append((line_no, f"duplicate custom id {custom_id!r} (first on line {first_seen[custom_id]})"))
            continue
        first_seen[custom_id] = line_no
        lines.append(obj)
        raw_lines.append(raw.rstrip(b"\r"))
        line_numbers.append(line_no)

    if not lines and not problems:
        problems.append((0, "the file holds no requests"))
    if len(lines) > limits.max_requests:
        problems.append((0, f"{len(lines):,} requests; {client.provider.value} takes at most {limits.max_requests:,}"))
    problems.extend(_cross_line_problems(client.provider, lines, line_numbers))
    if problems:
        problems.sort()
        raise InputError(_summary(path, problems), problems)
    return ValidatedInput(
        batch_input=BatchInput(lines=lines, raw_lines=raw_lines, filename=path.name,
                               metadata=dict(metadata or {}), model=model),
        custom_ids=list(first_seen),
        sha256=digest,
        path=path,
    )


def _cross_line_problems(provider: Provider, lines: list[dict], numbers: list[int]) -> list[tuple[int, str]]:
    """OpenAI-shaped batches take one endpoint and one model per file (url_mismatch, model_mismatch)."""
    if provider not in (Provider.OPENAI, Provider.OPENAI_COMPATIBLE) or not lines:
        return []
    problems = []
    url, model = lines[0].get("url"), (lines[0].get("body") or {}).get("model")
    for line, number in zip(lines[1:], numbers[1:]):
        if line.get("url") != url:
            problems.append((number, f"url {line.get('url')!r} differs from the first line's {url!r}"))
        elif (line.get("body") or {}).get("model") != model:
            problems.append((number, f"model {(line.get('body') or {}).get('model')!r} differs from the first line's {model!r}"))
    return problems


def _summary(path: Path, problems: list[tuple[int, str]]) -> str:
    listed = [f"  line {n}: {what}" if n else f"  {what}" for n, what in problems[:MAX_LISTED]]
    more = len(problems) - MAX_LISTED
    if more > 0:
        listed.append(f"  ... and {more:,} more")
    return f"{path}: {len(problems):,} problem(s); nothing was sent\n" + "\n".join(listed)


def _short(exc: Exception) -> str:
    text = str(exc)
    return text[:80]
