"""The analyzer's fast path (msgspec decoding only the fields a classifier reads, tuples
instead of pydantic items) must count every line exactly as the original path does
(`json.loads` and the provider's full parser). These tests run both over realistic lines of
every provider, mutated at random: values of the wrong type, missing and extra keys, bytes
that are not UTF-8, JSON only the standard library accepts."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchtui.core.providers.anthropic_results import parse_result as anthropic_parser
from batchtui.core.providers.gemini_wire import parse_result_line as gemini_parser
from batchtui.core.providers.openai_lines import parse_result_line as openai_parser
from batchtui.core.results import ResultLineParser, ResultsAnalyzer, analyze_files, analyze_lines
from batchtui.sim import Simulator
from batchtui.sim.bulk import seed_huge

PARSERS = {"openai": openai_parser, "anthropic": anthropic_parser, "gemini": gemini_parser}


def slow(parser: ResultLineParser):
    """The same parser as a plain function: the analyzer then takes its original path."""
    return lambda obj, line_no: parser(obj, line_no)


def _sample_lines() -> dict[str, list[dict[str, Any]]]:
    # A few hundred simulator lines per provider: successes, refusals and every error kind.
    sim = Simulator(scenario=None)
    for provider in PARSERS:
        ws = sim.world.add_workspace(provider, provider, f"key-{provider}")
        seed_huge(sim.world, ws, requests=400, reply_bytes=(10, 60), error_rate=0.3)
    samples: dict[str, list[dict[str, Any]]] = {p: [] for p in PARSERS}
    for path in sorted(sim.world.spool_dir().iterdir()):
        provider = ("openai" if path.name.startswith("file-") else
                    "anthropic" if path.name.startswith("msgbatch") else "gemini")
        samples[provider] += [json.loads(line) for line in path.read_bytes().splitlines()]
    return samples


# Lines the simulator rarely or never writes, one per branch of each classifier.
_USAGE_CHAT = {"prompt_tokens": 90, "completion_tokens": 12, "prompt_tokens_details": {"cached_tokens": 64,
               "cache_write_tokens": 3}, "completion_tokens_details": {"reasoning_tokens": 5}}
_USAGE_RESPONSES = {"input_tokens": 70, "output_tokens": 9, "input_tokens_details": {"cached_tokens": 8},
                    "output_tokens_details": {"reasoning_tokens": 2}}
BRANCHES: dict[str, list[dict[str, Any]]] = {
    "openai": [
        {"custom_id": "r1", "response": {"status_code": 200, "body": {"model": "gpt-x", "usage": _USAGE_CHAT,
         "choices": [{"message": {"content": None, "refusal": "I can't"}, "finish_reason": "stop"}]}}},
        {"custom_id": "r2", "response": {"status_code": 200, "body": {"model": "gpt-x", "usage": _USAGE_CHAT,
         "choices": [{"message": {"content": "partial"}, "finish_reason": "content_filter"}]}}},
        {"custom_id": "r3", "response": {"status_code": 200, "body": {"model": "gpt-x", "usage": _USAGE_RESPONSES,
         "output": [{"type": "reasoning", "summary": []}, {"type": "message", "content": [
             {"type": "refusal", "refusal": "no"}, {"type": "output_text", "text": "x"}]}]}}},
        {"custom_id": "r4", "response": {"status_code": 200, "body": {"model": "gpt-x", "usage": _USAGE_RESPONSES,
         "incomplete_details": {"reason": "content_filter"}, "output": []}}},
        {"custom_id": "r5", "response": {"status_code": 200, "body": {"model": "emb", "usage": {"prompt_tokens": 4},
         "data": [{"embedding": [0.1, 0.2]}]}}},
        {"custom_id": "r6", "response": None, "error": {"code": "batch_expired", "message": "late"}},
        {"custom_id": "r7", "response": None, "error": {"code": "batch_canceled", "message": None}},
        {"custom_id": "r8", "response": None, "error": "a plain string"},
        {"custom_id": "r9", "response": {"status_code": 0, "request_id": "", "body": {}}, "error": None},
        {"custom_id": "r10", "response": {"status_code": 429, "body": {"error": {"type": "rate", "code": ""}}}},
        {"custom_id": "r11", "response": {"status_code": 302, "body": {}}},
    ],
    "anthropic": [
        {"custom_id": "a1", "result": {"type": "succeeded", "message": {"model": "claude-x", "stop_reason": "refusal",
         "stop_details": {"type": "refusal", "category": "cyber", "explanation": None}, "content": [],
         "usage": {"input_tokens": 5, "output_tokens": 2, "cache_creation": {"ephemeral_1h_input_tokens": 7,
                   "ephemeral_5m_input_tokens": 3}, "output_tokens_details": {"thinking_tokens": 1}}}}},
        {"custom_id": "a2", "result": {"type": "succeeded", "message": {"model": "claude-x", "stop_reason": "refusal",
         "stop_details": {"explanation": "declined"}, "usage": {"input_tokens": 1,
                                                                 "cache_creation_input_tokens": 4}}}},
        {"custom_id": "a3", "result": {"type": "canceled"}},
        {"custom_id": "a4", "result": {"type": "expired"}},
        {"custom_id": "a5", "result": {"type": "paused"}},
        {"custom_id": "a6", "result": {"type": "errored", "error": {"type": "error", "error": {
            "type": "brand_new_error", "message": "?"}}}},
        {"custom_id": "a7", "result": {"type": "succeeded", "message": {"usage": {"cache_creation": {
            "ephemeral_1h_input_tokens": 9}}}}},
        {"custom_id": "a8", "result": {"type": "succeeded", "message": {"model": "claude-x", "usage": {
            "input_tokens": 2, "output_tokens": 5, "cache_read_input_tokens": 11, "cache_creation": {
                "ephemeral_1h_input_tokens": 7, "ephemeral_5m_input_tokens": 3},
            "output_tokens_details": {"thinking_tokens": 4}}}}},
    ],
    "gemini": [
        {"key": "g1", "response": {"promptFeedback": {"blockReason": "SAFETY", "blockReasonMessage": "blocked"},
                                   "usageMetadata": {"promptTokenCount": "12", "toolUsePromptTokenCount": 3},
                                   "modelVersion": "gemini-x"}},
        {"key": "g2", "response": {"candidates": [{"finishReason": "RECITATION", "finishMessage": "quoted"},
                                                  {"finishReason": "SAFETY"}],
                                   "usageMetadata": {"promptTokenCount": 5, "thoughtsTokenCount": 2,
                                                     "cachedContentTokenCount": 1, "candidatesTokenCount": 4}}},
        {"key": "g3", "response": {"candidates": [{"finishReason": "SAFETY"}, {"finishReason": "STOP"}]}},
        {"metadata": {"key": "g4"}, "response": {"candidates": [{"finishReason": "STOP"}]}},
        {"key": "g5", "error": {"code": "8", "message": "quota"}},
        {"key": "g6", "error": {"status": "DEADLINE_EXCEEDED"}},
        {"key": "g7", "error": {"code": 503, "status": "", "message": "busy"}},
        {"key": "g8"},
        {"key": "g9", "response": {"promptFeedback": {"blockReason": "BLOCK_REASON_UNSPECIFIED"}}},
        {"key": "g10", "response": {"candidates": [{"finishReason": "STOP"}], "modelVersion": "gemini-x",
                                    "usageMetadata": {"promptTokenCount": 8, "toolUsePromptTokenCount": 5,
                                                      "cachedContentTokenCount": 2, "thoughtsTokenCount": 3}}},
    ],
}
SAMPLES = _sample_lines()
for _provider, _lines in BRANCHES.items():
    SAMPLES[_provider] += _lines * 20  # as likely to be drawn as the simulator's lines
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)
# Names the classifiers look for, so mutations hit them and not only random keys.
KEYS = ("custom_id", "key", "metadata", "result", "type", "message", "usage", "error", "response", "body",
        "status_code", "choices", "finish_reason", "refusal", "output", "content", "incomplete_details", "reason",
        "model", "modelVersion", "usageMetadata", "candidates", "finishReason", "finishMessage", "promptFeedback",
        "blockReason", "stop_reason", "stop_details", "explanation", "category", "code", "status",
        "input_tokens", "output_tokens", "prompt_tokens", "completion_tokens", "cache_creation",
        "cache_read_input_tokens", "cache_creation_input_tokens", "ephemeral_1h_input_tokens",
        "output_tokens_details", "thinking_tokens", "prompt_tokens_details", "cached_tokens",
        "promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "cachedContentTokenCount")


def _containers(obj: Any, path: tuple = ()) -> list[tuple]:
    found = [path]
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        if isinstance(value, (dict, list)):
            found += _containers(value, (*path, key))
    return found


def _at(obj: Any, path: tuple) -> Any:
    for key in path:
        obj = obj[key]
    return obj


@st.composite
def mutated_line(draw, provider: str) -> bytes:
    obj = copy.deepcopy(draw(st.sampled_from(SAMPLES[provider])))
    for _ in range(draw(st.integers(0, 3))):
        target = _at(obj, draw(st.sampled_from(_containers(obj))))
        if isinstance(target, dict):
            key = draw(st.sampled_from(sorted(target) + list(KEYS)))
            if draw(st.booleans()) and key in target:
                del target[key]
            else:
                target[key] = draw(JSON_VALUES | st.sampled_from(["refusal", "content_filter", "SAFETY", "succeeded",
                                                                  "errored", "canceled", 200, 429, 503, "7"]))
        elif target:
            target[draw(st.integers(0, len(target) - 1))] = draw(JSON_VALUES)
    raw = json.dumps(obj, ensure_ascii=draw(st.booleans())).encode()
    damage = draw(st.sampled_from(["none"] * 6 + ["bad_utf8", "nan", "bom", "surrogate", "cut", "crlf"]))
    if damage == "bad_utf8":
        raw = raw.replace(b'"', b'"\xff', 1) if draw(st.booleans()) else raw[:-1] + b', "x": "\xc0\x80"}'
    elif damage == "nan":
        raw = raw[:-1] + b', "extra": NaN}'
    elif damage == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif damage == "surrogate":
        raw = raw[:-1] + b', "extra": "\\ud800", "x": "\xed\xa0\x80"}'
    elif damage == "cut":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif damage == "crlf":
        raw += b"\r"
    return raw


@pytest.mark.parametrize("provider", sorted(PARSERS))
def test_unmutated_lines_agree(provider):
    lines = [json.dumps(obj).encode() for obj in SAMPLES[provider]]
    parser = PARSERS[provider]
    fast = analyze_lines(lines, parser, keep_succeeded_ids=True)
    assert fast == analyze_lines(lines, slow(parser), keep_succeeded_ids=True)
    assert fast.breakdown.unparseable == 0 and len(fast.breakdown.outcomes) >= 4


@pytest.mark.parametrize("provider", sorted(PARSERS))
def test_mutated_lines_agree(provider):
    parser = PARSERS[provider]

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(mutated_line(provider), min_size=1, max_size=8), st.integers(1, 64))
    def check(lines, chunk_size):
        data = b"\n".join(lines) + b"\n"
        fast = ResultsAnalyzer(parser, keep_succeeded_ids=True)
        for start in range(0, len(data), chunk_size):
            fast.feed_chunk(data[start:start + chunk_size])
        original = ResultsAnalyzer(slow(parser), keep_succeeded_ids=True)
        original.feed_chunk(data)
        assert fast.summary() == original.summary()

    check()


def test_str_lines_take_the_same_paths():
    lines = [json.dumps(obj, ensure_ascii=False) for obj in SAMPLES["anthropic"][:50]]
    lines += ['{"custom_id": "\ud800", "result": {"type": "expired"}}', "  ", "NaN", '{"result": NaN}']
    assert analyze_lines(lines, anthropic_parser) == analyze_lines(lines, slow(anthropic_parser))


def test_files_are_read_as_they_were_line_by_line(tmp_path):
    # The first file ends without a newline and in the middle of a character: that last line
    # is unparseable on its own and must not join the next file's first line.
    good = [json.dumps(obj).encode() for obj in BRANCHES["anthropic"]]
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(b"\n".join(good) + b"\n" + good[0][:-3] + "é".encode()[:1])
    second.write_bytes("\u00a9".encode()[1:] + b"\n" + b"\n".join(good) + b"\n\n")
    fast = analyze_files([first, second], anthropic_parser)
    assert fast == analyze_files([first, second], slow(anthropic_parser))
    assert fast.breakdown.unparseable == 2 and fast.lines == 2 * len(good) + 3
