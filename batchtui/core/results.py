"""Streaming analysis of result files: outcomes, error breakdown, usage per model.

Memory stays flat whatever the file size: each line is decoded, classified by the provider's
parser and dropped; only counters, one sample message per error group and the ids of
items that did not succeed (the retry set, ~1% of a file) are kept.

The hot path (a 200 MB file is ~100,000 lines) reads the common line (a plain success) with
msgspec into a small typed Struct of just the fields its outcome and usage need, skipping the
answer text, and classifies it into a plain tuple rather than a pydantic `ResultItem`. Every
other line (an error, a refusal, a field of an unexpected type, bytes that are not UTF-8,
JSON only the standard library accepts) goes the original way, `json.loads` and the full
parser, so each line gets the same outcome either way; tests/test_results_fast.py holds the
two paths to that (see `ResultLineParser`).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field

from batchtui.core.models import ErrorBreakdown, ErrorGroup, Outcome, ResultItem, Usage

LineParser = Callable[[Any, int], ResultItem]

MAX_SAMPLE = 1_000  # characters of a sample message we keep (a provider may send 1 MB)
MAX_UNPARSEABLE_LINES = 20  # line numbers we remember for the message

# Usage as a plain tuple, in the order of Usage's fields.
UsageCounts = tuple[int, int, int, int, int, int]
_SUCCEEDED = Outcome.SUCCEEDED


def usage_counts(usage: Usage) -> UsageCounts:
    return (usage.input, usage.cached_input, usage.cache_write, usage.cache_write_1h, usage.output, usage.reasoning)


def usage_from_counts(counts: UsageCounts) -> Usage:
    return Usage(input=counts[0], cached_input=counts[1], cache_write=counts[2], cache_write_1h=counts[3],
                 output=counts[4], reasoning=counts[5])


# One line classified: a `ResultItem`'s fields but its line number, as a plain tuple, in this
# order: (custom_id, outcome, http_status, error_type, error_message, model, usage counts).
# Building a frozen pydantic model (and a Usage) per line was most of the analysis time, and
# even a NamedTuple's constructor costs a Python call per line.
Classified = tuple[str | None, Outcome, int | None, str | None, str | None, str | None, UsageCounts | None]


def classified_item(classified: Classified, line_no: int) -> ResultItem:
    custom_id, outcome, http_status, error_type, error_message, model, usage = classified
    return ResultItem(custom_id=custom_id, outcome=outcome, line_no=line_no, http_status=http_status,
                      error_type=error_type, error_message=error_message, model=model,
                      usage=None if usage is None else usage_from_counts(usage))


class ResultLineParser:
    """A provider's result-line parser: called as `parser(obj, line_no)` it gives the
    public `ResultItem`. The analyzer uses its parts:

    - `classify(obj)` classifies any decoded line (the original, complete rules);
    - for the common line (a plain success: ~99% of a healthy file), `decode` reads a line
      with msgspec into `common`, a Struct of only the fields that line's outcome and usage
      need, typed so msgspec checks them in C, and `classify_common(struct)` classifies it,
      or returns None when the line is not the plain case after all (a refusal, say).

    A line `common` does not fit, or that `classify_common` declines, takes the original
    path (`json.loads` and `classify`); tests/test_results_fast.py holds the two to the
    same answers.
    """

    def __init__(self, classify: Callable[[Any], Classified], common: type,
                 classify_common: Callable[[Any], Classified | None]) -> None:
        self.classify = classify
        self.common = common
        self.classify_common = classify_common
        self.decode = msgspec.json.Decoder(common).decode

    def __call__(self, obj: Any, line_no: int) -> ResultItem:
        return classified_item(self.classify(obj), line_no)


class ResultsSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    lines: int = 0
    breakdown: ErrorBreakdown = Field(default_factory=ErrorBreakdown)
    usage_by_model: dict[str, Usage] = Field(default_factory=dict)
    # custom_id lists per outcome, for every outcome but success.
    ids_by_outcome: dict[Outcome, list[str]] = Field(default_factory=dict)
    succeeded_ids: list[str] | None = None  # only when asked for (retry needs it)

    @property
    def usage(self) -> Usage:
        total = Usage()
        for usage in self.usage_by_model.values():
            total = total + usage
        return total


class ResultsAnalyzer:
    """Feed it lines (or raw chunks while downloading); ask for the summary at the end."""

    def __init__(self, parse_line: LineParser, *, keep_succeeded_ids: bool = False) -> None:
        self._parse = parse_line
        self._fast = parse_line if isinstance(parse_line, ResultLineParser) else None
        self._line_no = 0
        self._tail = b""
        self._tail_suspect = False  # the tail holds bytes of a chunk that was not valid UTF-8
        self._utf8 = codecs.getincrementaldecoder("utf-8")("surrogatepass")
        self._outcomes: dict[Outcome, int] = {}
        self._groups: dict[tuple[Outcome, str | None], list[Any]] = {}  # [count, sample]
        self._usage: dict[str, list[int]] = {}  # model -> UsageCounts summed, as a list
        self._ids: dict[Outcome, list[str]] = {}
        self._succeeded: list[str] | None = [] if keep_succeeded_ids else None
        self._unparseable = 0
        self._unparseable_lines: list[int] = []

    def feed_chunk(self, chunk: bytes) -> None:
        """Raw bytes in any split (a download's chunks); lines are cut here."""
        lines = chunk.split(b"\n")
        tail_suspect = self._tail_suspect
        if self._tail:
            lines[0] = self._tail + lines[0]  # one line copied, not the whole chunk
        self._tail = lines.pop()
        if self._fast is None:
            for line in lines:
                self.feed_line(line)
            return
        # json.loads refuses a line that is not UTF-8; msgspec checks only the strings it
        # keeps. The stream is checked here a chunk at a time, and only the lines of a
        # chunk that fails are checked one by one.
        valid = self._utf8_valid(chunk)
        self._tail_suspect = not valid or (tail_suspect and not lines)
        if lines:
            self._feed_fast(lines, check_all=not valid, check_first=tail_suspect)

    def _utf8_valid(self, chunk: bytes) -> bool:
        # A line ends at b"\n", which is never inside a UTF-8 sequence, so the stream is valid
        # exactly when every line is.
        try:
            self._utf8.decode(chunk)
        except UnicodeDecodeError:
            self._utf8.reset()  # the next chunk may then start mid-character: checked per line
            return False
        return True

    def feed_line(self, raw: bytes | str) -> None:
        if self._fast is not None:
            self._feed_fast((raw,), check_all=isinstance(raw, bytes), check_first=False)
            return
        self._line_no += 1
        self._read_slowly(raw)

    def _feed_fast(self, lines: Iterable[bytes | str], *, check_all: bool, check_first: bool) -> None:
        # The analyzer's inner loop: keep it free of anything a line does not need.
        parser = self._fast
        assert parser is not None
        decode, classify_common, add = parser.decode, parser.classify_common, self._add
        check = check_all or check_first
        for raw in lines:
            self._line_no += 1
            if check:
                check = check_all
                if not raw.isascii():
                    try:
                        raw.decode("utf-8", "surrogatepass")
                    except UnicodeDecodeError:
                        self._bad_line()
                        continue
            try:
                classified = classify_common(decode(raw))
            except (msgspec.MsgspecError, UnicodeError, RecursionError):
                # Blank, not the common shape, JSON that only the standard library reads
                # (NaN, a BOM, surrogate escapes) or nested too deep.
                classified = None
            if classified is None:
                self._read_slowly(raw)  # the original path decides
            else:
                add(classified)

    def _read_slowly(self, raw: bytes | str) -> None:
        """One line (already counted) the original way: json.loads and the full parser."""
        if not raw.strip():
            return
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):  # nested too deep is bad input too
            obj = None
        if not isinstance(obj, dict):
            self._bad_line()
            return
        try:
            if self._fast is not None:
                classified = self._fast.classify(obj)
            else:
                item = self._parse(obj, self._line_no)
        except (KeyError, TypeError, ValueError, AttributeError):
            # Valid JSON but not a result line we can read: count it, never crash.
            self._bad_line()
            return
        if self._fast is not None:
            self._add(classified)
        else:
            self.add(item)

    def add(self, item: ResultItem) -> None:
        self._add((item.custom_id, item.outcome, item.http_status, item.error_type, item.error_message,
                   item.model, None if item.usage is None else usage_counts(item.usage)))

    def _add(self, item: Classified) -> None:
        custom_id, outcome, _, error_type, error_message, model, usage = item
        self._outcomes[outcome] = self._outcomes.get(outcome, 0) + 1
        # Usage.is_zero: every count but cache_write_1h (a part of cache_write) is zero.
        if usage is not None and (usage[0] or usage[1] or usage[2] or usage[4] or usage[5]):
            key = model or "unknown"
            total = self._usage.get(key)
            if total is None:
                self._usage[key] = list(usage)
            else:
                total[0] += usage[0]
                total[1] += usage[1]
                total[2] += usage[2]
                total[3] += usage[3]
                total[4] += usage[4]
                total[5] += usage[5]
        if outcome is _SUCCEEDED:
            if self._succeeded is not None and custom_id is not None:
                self._succeeded.append(custom_id)
            return
        if custom_id is not None:
            self._ids.setdefault(outcome, []).append(custom_id)
        group = self._groups.get((outcome, error_type))
        if group is None:
            sample = error_message[:MAX_SAMPLE] if error_message else None
            self._groups[(outcome, error_type)] = [1, sample]
        else:
            group[0] += 1
            if group[1] is None and error_message:
                group[1] = error_message[:MAX_SAMPLE]

    def merge(self, other: ResultsAnalyzer) -> None:
        """Fold in another analyzer's counts (one per file of a batch, or per download attempt)."""
        other_summary = other.summary()
        for outcome, n in other_summary.breakdown.outcomes.items():
            self._outcomes[outcome] = self._outcomes.get(outcome, 0) + n
        for group in other_summary.breakdown.groups:
            mine = self._groups.get((group.outcome, group.error_type))
            if mine is None:
                self._groups[(group.outcome, group.error_type)] = [group.count, group.sample_message]
            else:
                mine[0] += group.count
                mine[1] = mine[1] or group.sample_message
        for model, usage in other_summary.usage_by_model.items():
            counts = usage_counts(usage)
            prev = self._usage.get(model)
            self._usage[model] = list(counts) if prev is None else [a + b for a, b in zip(prev, counts)]
        for outcome, ids in other_summary.ids_by_outcome.items():
            self._ids.setdefault(outcome, []).extend(ids)
        if self._succeeded is not None and other_summary.succeeded_ids:
            self._succeeded.extend(other_summary.succeeded_ids)
        self._unparseable += other_summary.breakdown.unparseable
        room = MAX_UNPARSEABLE_LINES - len(self._unparseable_lines)
        self._unparseable_lines.extend(other_summary.breakdown.unparseable_lines[:max(room, 0)])
        self._line_no += other_summary.lines

    def _bad_line(self) -> None:
        self._unparseable += 1
        if len(self._unparseable_lines) < MAX_UNPARSEABLE_LINES:
            self._unparseable_lines.append(self._line_no)

    def end_of_file(self) -> None:
        """A file's last line may lack its newline (or a truncated download cut it short):
        read it as a line now, so the next file's first line does not join it."""
        if self._tail:
            tail, self._tail = self._tail, b""
            self.feed_line(tail)
        self._tail_suspect = False
        self._utf8.reset()  # a character cut off at the end of one file must not run into the next

    def summary(self) -> ResultsSummary:
        self.end_of_file()
        groups = sorted(
            (ErrorGroup(outcome=o, error_type=t, count=c, sample_message=s) for (o, t), (c, s) in self._groups.items()),
            key=lambda g: (-g.count, g.outcome.value, g.error_type or ""),
        )
        return ResultsSummary(
            lines=self._line_no,
            breakdown=ErrorBreakdown(
                outcomes=dict(self._outcomes),
                groups=tuple(groups),
                unparseable=self._unparseable,
                unparseable_lines=tuple(self._unparseable_lines),
            ),
            usage_by_model={model: usage_from_counts(tuple(total)) for model, total in self._usage.items()},
            ids_by_outcome={o: list(ids) for o, ids in self._ids.items()},
            succeeded_ids=None if self._succeeded is None else list(self._succeeded),
        )


def analyze_lines(lines: Iterable[bytes | str], parse_line: LineParser, **kw: Any) -> ResultsSummary:
    analyzer = ResultsAnalyzer(parse_line, **kw)
    for line in lines:
        analyzer.feed_line(line)
    return analyzer.summary()


READ_CHUNK = 1 << 20  # big reads: the analyzer's per-chunk work is then negligible


def feed_file(analyzer: ResultsAnalyzer, path: Path) -> None:
    with open(path, "rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            analyzer.feed_chunk(chunk)
    analyzer.end_of_file()


def analyze_files(paths: Iterable[Path], parse_line: LineParser, **kw: Any) -> ResultsSummary:
    """One summary over several files (OpenAI's output and error files)."""
    analyzer = ResultsAnalyzer(parse_line, **kw)
    for path in paths:
        feed_file(analyzer, path)
    return analyzer.summary()
