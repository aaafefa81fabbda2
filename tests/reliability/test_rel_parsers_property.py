"""Issue 6, item 5: property tests for the batch-input validator and the result parsers.

The validator (batchtui/core/batch_input.py) gets files mixing good lines with deliberately
bad ones (not JSON, invalid UTF-8, not an object, a missing or invalid custom id, a
duplicate, a missing request) and blank lines: it must refuse exactly the bad lines, by
number, or accept the file with every good line byte for byte, and raise nothing else.

Each provider's result parser gets real result lines mutated at random (fields removed,
replaced by any JSON value): it must classify the line or report it unparseable, never
anything else; the streaming analyzer must count every line once either way.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchtui.core.accounts import Account
from batchtui.core.batch_input import read_batch_file
from batchtui.core.errors import InputError
from batchtui.core.models import Outcome, Provider, ResultItem
from batchtui.core.providers import make_client
from batchtui.core.results import ResultsAnalyzer
from reliability.figures import record

PROVIDERS = ("openai", "anthropic", "gemini")
TRIED = {"validator_files": 0, "validator_lines": 0, "result_lines": 0}
PARSER_ERRORS = (KeyError, TypeError, ValueError, AttributeError)  # what the analyzer counts unparseable


def client_for(provider: str):
    return make_client(Account(name="p", provider=Provider(provider), base_url="http://127.0.0.1:9"), "k")


def good(provider: str, cid: str) -> dict:
    if provider == "openai":
        return {"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": cid}]}}
    if provider == "anthropic":
        return {"custom_id": cid, "params": {"model": "claude-haiku-4-5", "max_tokens": 8,
                                              "messages": [{"role": "user", "content": cid}]}}
    return {"key": cid, "request": {"contents": [{"role": "user", "parts": [{"text": cid}]}]}}


ID_FIELD = {"openai": "custom_id", "anthropic": "custom_id", "gemini": "key"}
REQUEST_FIELD = {"openai": "body", "anthropic": "params", "gemini": "request"}
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                           max_leaves=8)
KINDS = ("good", "good", "good", "blank", "not_json", "bad_utf8", "not_object", "no_id", "bad_id", "duplicate",
         "no_request")


@st.composite
def batch_file(draw, provider: str) -> tuple[bytes, set[int], list[bytes]]:
    """(file bytes, numbers of the lines that must be refused, the good lines' bytes)."""
    lines: list[bytes] = []
    bad: set[int] = set()
    kept: list[bytes] = []
    ids: list[str] = []
    for kind in draw(st.lists(st.sampled_from(KINDS), max_size=25)):
        if kind == "duplicate" and not ids:
            kind = "good"
        number = len(lines) + 1
        if kind == "good":
            cid = f"id-{number}"
            raw = json.dumps(good(provider, cid)).encode()
            ids.append(cid)
            kept.append(raw)
        elif kind == "blank":
            raw = draw(st.sampled_from([b"", b"   ", b"\t", b"\r"]))
        elif kind == "not_json":
            junk = draw(st.text(st.characters(blacklist_characters="\n"), max_size=20))
            raw = ("{oops " + junk).encode("utf-8", "surrogatepass")
        elif kind == "bad_utf8":
            raw = json.dumps(good(provider, f"u-{number}")).encode()[:-2] + b'\xff"}'
        elif kind == "not_object":
            raw = json.dumps(draw(st.one_of(st.lists(JSON_VALUES, max_size=3), st.integers(), st.text()))).encode()
        elif kind == "no_id":
            obj = good(provider, "x")
            del obj[ID_FIELD[provider]]
            raw = json.dumps(obj).encode()
        elif kind == "bad_id":
            # An empty id is refused everywhere; Anthropic also refuses anything off its pattern.
            cid = "" if provider != "anthropic" else draw(st.sampled_from(["", "has space", "x" * 65, "ü", "a/b"]))
            raw = json.dumps(good(provider, cid)).encode()
        elif kind == "duplicate":
            raw = json.dumps(good(provider, draw(st.sampled_from(ids)))).encode()
        else:  # no_request
            obj = good(provider, f"n-{number}")
            obj[REQUEST_FIELD[provider]] = draw(st.one_of(st.none(), st.integers(), st.text(max_size=5)))
            raw = json.dumps(obj).encode()
        if kind not in ("good", "blank"):
            bad.add(number)
        ending = draw(st.sampled_from([b"\n", b"\r\n"]))
        lines.append(raw + ending)
    return b"".join(lines), bad, kept


@pytest.mark.parametrize("provider", PROVIDERS)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_validator_refuses_exactly_the_bad_lines(tmp_path, provider, data):
    content, bad, kept = data.draw(batch_file(provider))
    TRIED["validator_files"] += 1
    TRIED["validator_lines"] += content.count(b"\n")
    path = tmp_path / f"{provider}.jsonl"
    path.write_bytes(content)
    client = client_for(provider)
    try:
        validated = read_batch_file(path, client, model="gemini-2.5-flash")
    except InputError as refused:
        numbers = {n for n, _ in refused.problems}
        if not kept and not bad:
            assert numbers == {0} and "the file holds no requests" in str(refused)
        else:
            assert numbers == bad
        assert f"{path}: {len(refused.problems):,} problem(s); nothing was sent" in str(refused)
        return
    assert not bad and kept
    assert [bytes(raw) for raw in validated.batch_input.raw_lines] == kept  # the user's bytes, as written
    assert len(set(validated.custom_ids)) == len(validated.custom_ids) == len(kept)


# -- result parsers ------------------------------------------------------------------------------------

SAMPLES = {
    "openai": [
        {"id": "r1", "custom_id": "a", "response": {"status_code": 200, "request_id": "q", "body": {
            "model": "gpt-5.4-mini", "choices": [{"message": {"content": "hi", "refusal": None},
                                                  "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0}}}}, "error": None},
        {"id": "r2", "custom_id": "b", "response": {"status_code": 500, "body": {
            "error": {"message": "boom", "type": "server_error", "code": None}}}, "error": None},
        {"id": "r3", "custom_id": "c", "response": None, "error": {"code": "batch_expired", "message": "expired"}},
        {"id": "r4", "custom_id": "d", "response": {"status_code": 200, "body": {"model": "gpt-5.4", "output": [
            {"type": "message", "content": [{"type": "refusal", "refusal": "no"}]}],
            "usage": {"input_tokens": 3, "output_tokens": 1}}}, "error": None},
    ],
    "anthropic": [
        {"custom_id": "a", "result": {"type": "succeeded", "message": {
            "model": "claude-haiku-4-5-20251001", "stop_reason": "end_turn",
            "usage": {"input_tokens": 5, "output_tokens": 2, "cache_read_input_tokens": 0,
                      "cache_creation_input_tokens": 0, "cache_creation": {"ephemeral_1h_input_tokens": 0}}}}},
        {"custom_id": "b", "result": {"type": "errored", "error": {"type": "error", "error": {
            "type": "overloaded_error", "message": "Overloaded"}}}},
        {"custom_id": "c", "result": {"type": "canceled"}},
        {"custom_id": "d", "result": {"type": "succeeded", "message": {
            "model": "claude-opus-4-6", "stop_reason": "refusal", "stop_details": {"category": "cyber"},
            "usage": {"input_tokens": 5, "output_tokens": 0}}}},
    ],
    "gemini": [
        {"key": "a", "response": {"modelVersion": "gemini-2.5-flash", "candidates": [
            {"content": {"parts": [{"text": "hi"}], "role": "model"}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1, "totalTokenCount": 5}}},
        {"key": "b", "error": {"code": 13, "message": "internal", "status": "INTERNAL"}},
        {"key": "c", "response": {"promptFeedback": {"blockReason": "SAFETY"}}},
        {"key": "d", "response": {"candidates": [{"finishReason": "PROHIBITED_CONTENT"}]}},
    ],
}


@st.composite
def mutated(draw, provider: str) -> object:
    """A real result line with a few random edits somewhere in its tree."""
    obj = json.loads(json.dumps(draw(st.sampled_from(SAMPLES[provider]))))
    rng = random.Random(draw(st.integers(0, 2**32)))
    for _ in range(draw(st.integers(0, 4))):
        containers = [obj]
        stack = [obj]
        while stack:  # every dict and list in the tree
            node = stack.pop()
            for child in (node.values() if isinstance(node, dict) else node):
                if isinstance(child, (dict, list)):
                    containers.append(child)
                    stack.append(child)
        target = rng.choice(containers)
        if isinstance(target, dict) and target:
            key = rng.choice(sorted(target))
            if draw(st.booleans()):
                del target[key]
            else:
                target[key] = draw(JSON_VALUES)
        elif isinstance(target, list) and target:
            target[rng.randrange(len(target))] = draw(JSON_VALUES)
    return draw(st.one_of(st.just(obj), st.just(obj), JSON_VALUES))


@pytest.mark.parametrize("provider", PROVIDERS)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_result_parser_classifies_any_line_or_calls_it_unparseable(provider, data):
    parse = client_for(provider).parse_result_line
    objects = data.draw(st.lists(mutated(provider), min_size=1, max_size=6))
    TRIED["result_lines"] += len(objects)
    parsed = 0
    for n, obj in enumerate(objects, start=1):
        try:
            item = parse(obj, n)
        except PARSER_ERRORS:
            continue  # "unparseable": the analyzer counts it so
        assert isinstance(item, ResultItem) and isinstance(item.outcome, Outcome)
        parsed += 1
    # The analyzer, fed the same lines as one file in arbitrary chunks, counts each line once.
    raw = b"".join(json.dumps(o).encode() + b"\n" for o in objects) + data.draw(st.sampled_from([b"", b"{trunc"]))
    analyzer = ResultsAnalyzer(parse)
    cut = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=4)))
    for start, end in zip([0, *cut], [*cut, len(raw)]):
        analyzer.feed_chunk(raw[start:end])
    summary = analyzer.summary()
    counted = sum(summary.breakdown.outcomes.values())
    assert counted == parsed
    assert counted + summary.breakdown.unparseable == len(objects) + (raw.endswith(b"{trunc"))


def test_zz_record_property_figures():
    assert TRIED["validator_files"] and TRIED["result_lines"], "run with the tests above"
    record("property_tests", jsonl_files=TRIED["validator_files"], jsonl_lines=TRIED["validator_lines"],
           result_lines=TRIED["result_lines"], unexpected_exceptions=0)
