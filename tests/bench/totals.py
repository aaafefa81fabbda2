"""The baselines of the analysis benchmark: the same totals (outcome counts, token usage per
model, hence cost) computed the plain way, so our analyzer has something honest to beat.

`stdlib_totals` is what a careful script would do with `json.loads` and dict lookups;
`anthropic_sdk_totals` iterates the official SDK's `messages.batches.results()`. Both only
need to cover what the simulator writes (successes, refusals or safety blocks, request and
server errors); the benchmark checks their totals equal ours, so a shortcut would show.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import anthropic  # imported here, not in the timed call

Totals = tuple[dict[str, int], dict[str, tuple[int, ...]]]  # (outcome -> n, model -> usage counts)

_ANTHROPIC_REQUEST_ERRORS = {"invalid_request_error", "authentication_error", "permission_error", "not_found_error",
                             "billing_error", "request_too_large"}
_GEMINI_BLOCKS = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY", "OTHER"}


class _Sums:
    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.usage: dict[str, list[int]] = {}

    def add(self, outcome: str, model: str | None, usage: tuple[int, ...] | None) -> None:
        self.outcomes[outcome] += 1
        if usage is not None and any(usage[i] for i in (0, 1, 2, 4, 5)):
            total = self.usage.setdefault(model or "unknown", [0] * 6)
            for i, n in enumerate(usage):
                total[i] += n

    def totals(self) -> Totals:
        return dict(self.outcomes), {m: tuple(u) for m, u in self.usage.items()}


def stdlib_totals(paths: list[Path], provider: str) -> Totals:
    sums = _Sums()
    read = {"openai": _openai, "anthropic": _anthropic, "gemini": _gemini}[provider]
    for path in paths:
        with open(path, "rb") as handle:
            for line in handle:
                if line.strip():
                    read(json.loads(line), sums)
    return sums.totals()


def _openai(obj: dict[str, Any], sums: _Sums) -> None:
    if obj.get("error"):
        code = obj["error"].get("code")
        sums.add({"batch_expired": "not_run_expired"}.get(code, "not_run_cancelled"), None, None)
        return
    response = obj["response"]
    status, body = response["status_code"], response["body"]
    u = body.get("usage")
    usage = None
    if u:
        details, out = u.get("prompt_tokens_details") or {}, u.get("completion_tokens_details") or {}
        usage = (u["prompt_tokens"], details.get("cached_tokens", 0), details.get("cache_write_tokens", 0), 0,
                 u["completion_tokens"], out.get("reasoning_tokens", 0))
    if 200 <= status < 300:
        refused = any(c["message"].get("refusal") or c.get("finish_reason") == "content_filter"
                      for c in body.get("choices", []))
        sums.add("blocked" if refused else "succeeded", body.get("model"), usage)
    else:
        sums.add("request_error" if status < 500 else "server_error", body.get("model"), usage)


def _anthropic_usage(u: dict[str, Any]) -> tuple[int, ...]:
    written = u.get("cache_creation_input_tokens") or 0
    read = u.get("cache_read_input_tokens") or 0
    one_hour = (u.get("cache_creation") or {}).get("ephemeral_1h_input_tokens", 0)
    thinking = (u.get("output_tokens_details") or {}).get("thinking_tokens", 0)
    return (u["input_tokens"] + written + read, read, written, one_hour, u["output_tokens"], thinking)


def _anthropic(obj: dict[str, Any], sums: _Sums) -> None:
    result = obj["result"]
    if result["type"] == "succeeded":
        message = result["message"]
        outcome = "blocked" if message.get("stop_reason") == "refusal" else "succeeded"
        sums.add(outcome, message["model"], _anthropic_usage(message["usage"]))
    elif result["type"] == "errored":
        kind = result["error"]["error"]["type"]
        sums.add("request_error" if kind in _ANTHROPIC_REQUEST_ERRORS else "server_error", None, None)
    else:
        sums.add("not_run_cancelled" if result["type"] == "canceled" else "not_run_expired", None, None)


def _gemini(obj: dict[str, Any], sums: _Sums) -> None:
    if "error" in obj:
        code = obj["error"]["code"]
        sums.add("server_error" if code >= 500 or code == 429 else "request_error", None, None)
        return
    response = obj["response"]
    u = response.get("usageMetadata") or {}
    thoughts = u.get("thoughtsTokenCount", 0)
    usage = (u.get("promptTokenCount", 0) + u.get("toolUsePromptTokenCount", 0), u.get("cachedContentTokenCount", 0),
             0, 0, u.get("candidatesTokenCount", 0) + thoughts, thoughts)
    candidates = response.get("candidates") or []
    blocked = (response.get("promptFeedback") or {}).get("blockReason") or (
        candidates and all(c.get("finishReason") in _GEMINI_BLOCKS for c in candidates))
    sums.add("blocked" if blocked else "succeeded", response.get("modelVersion"), usage)


def anthropic_sdk_totals(base_url: str, key: str, batch_id: str) -> Totals:
    """The same totals through the official SDK (typed objects for every line)."""
    sums = _Sums()
    with anthropic.Anthropic(api_key=key, base_url=base_url, max_retries=0) as client:
        for item in client.messages.batches.results(batch_id):
            result = item.result
            if result.type == "succeeded":
                message = result.message
                outcome = "blocked" if message.stop_reason == "refusal" else "succeeded"
                u = message.usage
                written, read = u.cache_creation_input_tokens or 0, u.cache_read_input_tokens or 0
                one_hour = u.cache_creation.ephemeral_1h_input_tokens if u.cache_creation else 0
                usage = (u.input_tokens + written + read, read, written, one_hour, u.output_tokens, 0)
                sums.add(outcome, message.model, usage)
            elif result.type == "errored":
                kind = result.error.error.type
                sums.add("request_error" if kind in _ANTHROPIC_REQUEST_ERRORS else "server_error", None, None)
            else:
                sums.add("not_run_cancelled" if result.type == "canceled" else "not_run_expired", None, None)
    return sums.totals()


def our_totals(summary) -> Totals:
    """A ResultsSummary in the same shape."""
    usage = {model: (u.input, u.cached_input, u.cache_write, u.cache_write_1h, u.output, u.reasoning)
             for model, u in summary.usage_by_model.items()}
    return {o.value: n for o, n in summary.breakdown.outcomes.items()}, usage
