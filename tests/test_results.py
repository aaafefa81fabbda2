"""The streaming results analyzer, independent of any provider's line format."""

from __future__ import annotations

import json
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from batchtui.core.models import Outcome, ResultItem, Usage
from batchtui.core.results import ResultsAnalyzer, analyze_files, analyze_lines


def toy_parser(obj, line_no):
    """A minimal line format: {"id", "ok": bool, "kind", "msg", "model", "in", "out"}."""
    if obj["ok"]:
        return ResultItem(custom_id=obj["id"], outcome=Outcome.SUCCEEDED, line_no=line_no, model=obj["model"],
                          usage=Usage(input=obj["in"], output=obj["out"]))
    return ResultItem(custom_id=obj["id"], outcome=Outcome(obj["kind"]), line_no=line_no,
                      error_type=obj.get("type"), error_message=obj.get("msg"))


def line(**fields) -> bytes:
    return json.dumps(fields).encode() + b"\n"


def test_breakdown_counts_per_outcome_and_type_with_one_sample_each():
    lines = [
        line(id="a", ok=True, model="m1", **{"in": 10, "out": 5}),
        line(id="b", ok=True, model="m2", **{"in": 7, "out": 1}),
        line(id="c", ok=True, model="m1", **{"in": 3, "out": 2}),
        line(id="d", ok=False, kind="request_error", type="invalid_request_error", msg="first bad"),
        line(id="e", ok=False, kind="request_error", type="invalid_request_error", msg="second bad"),
        line(id="f", ok=False, kind="server_error", type="api_error", msg="boom"),
        line(id="g", ok=False, kind="not_run_expired"),
    ]
    summary = analyze_lines(lines, toy_parser)
    b = summary.breakdown
    assert b.outcomes == {Outcome.SUCCEEDED: 3, Outcome.REQUEST_ERROR: 2, Outcome.SERVER_ERROR: 1, Outcome.NOT_RUN_EXPIRED: 1}
    groups = {(g.outcome, g.error_type): (g.count, g.sample_message) for g in b.groups}
    assert groups[(Outcome.REQUEST_ERROR, "invalid_request_error")] == (2, "first bad")
    assert groups[(Outcome.SERVER_ERROR, "api_error")] == (1, "boom")
    assert groups[(Outcome.NOT_RUN_EXPIRED, None)] == (1, None)
    assert b.groups[0].count == 2  # biggest group first
    assert summary.usage_by_model == {"m1": Usage(input=13, output=7), "m2": Usage(input=7, output=1)}
    assert summary.ids_by_outcome == {Outcome.REQUEST_ERROR: ["d", "e"], Outcome.SERVER_ERROR: ["f"], Outcome.NOT_RUN_EXPIRED: ["g"]}
    assert summary.succeeded_ids is None
    assert b.failed == 4


def test_unparseable_and_truncated_lines_are_counted_with_line_numbers():
    lines = [
        line(id="a", ok=True, model="m", **{"in": 1, "out": 1}),
        b"this is not json\n",
        b'{"id": "x", "ok": tr',  # truncated mid-line
        b"\n",
        b"[1, 2, 3]\n",  # JSON, but not a result object
        b'{"no_id_field": 1}\n',  # an object the parser cannot read
    ]
    summary = analyze_lines(lines, toy_parser)
    assert summary.breakdown.unparseable == 4
    assert summary.breakdown.unparseable_lines == (2, 3, 5, 6)
    assert summary.breakdown.outcomes == {Outcome.SUCCEEDED: 1}


def test_chunks_split_anywhere_give_the_same_summary():
    data = b"".join(line(id=str(i), ok=i % 3 != 0, kind="server_error", model="m", msg=f"e{i}", **{"in": i, "out": 1})
                    for i in range(200))
    whole = analyze_lines(data.splitlines(keepends=True), toy_parser)
    for size in (1, 7, 64, 1000):
        analyzer = ResultsAnalyzer(toy_parser)
        for start in range(0, len(data), size):
            analyzer.feed_chunk(data[start:start + size])
        assert analyzer.summary() == whole


def test_last_line_without_newline_is_read():
    analyzer = ResultsAnalyzer(toy_parser)
    analyzer.feed_chunk(line(id="a", ok=True, model="m", **{"in": 1, "out": 1}).rstrip(b"\n"))
    assert analyzer.summary().breakdown.outcomes == {Outcome.SUCCEEDED: 1}


def test_keep_succeeded_ids_for_retry_sets():
    lines = [line(id="a", ok=True, model="m", **{"in": 1, "out": 1}), line(id="b", ok=False, kind="unknown")]
    assert analyze_lines(lines, toy_parser, keep_succeeded_ids=True).succeeded_ids == ["a"]


def test_huge_messages_keep_only_a_bounded_sample():
    lines = [line(id="a", ok=False, kind="request_error", type="t", msg="y" * 1_000_000)]
    sample = analyze_lines(lines, toy_parser).breakdown.groups[0].sample_message
    assert sample is not None and 0 < len(sample) <= 1_000


def test_hostile_text_is_kept_verbatim_as_data():
    hostile = "[bold red]x[/] \x1b[31mred\x1b[0m [link=https://evil.example]click[/link]"
    lines = [line(id=hostile, ok=False, kind="request_error", type=hostile, msg=hostile)]
    summary = analyze_lines(lines, toy_parser)
    group = summary.breakdown.groups[0]
    assert group.error_type == hostile and group.sample_message == hostile
    assert summary.ids_by_outcome[Outcome.REQUEST_ERROR] == [hostile]


def test_memory_stays_flat_with_file_size(tmp_path):
    def peak_for(n: int) -> int:
        path = tmp_path / f"r{n}.jsonl"
        with open(path, "wb") as f:
            for i in range(n):
                f.write(line(id=f"id-{i}", ok=True, model="m", pad="p" * 400, **{"in": 5, "out": 5}))
        tracemalloc.start()
        analyze_files([path], toy_parser)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    small, large = peak_for(2_000), peak_for(40_000)
    # 20x the lines must not mean 20x the memory: allow noise, not growth.
    assert large < small * 2 + 200_000


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=30))
def test_any_bytes_never_crash_the_analyzer(chunks):
    analyzer = ResultsAnalyzer(toy_parser)
    for chunk in chunks:
        analyzer.feed_chunk(chunk)
    summary = analyzer.summary()
    assert summary.breakdown.unparseable + sum(summary.breakdown.outcomes.values()) <= summary.lines
