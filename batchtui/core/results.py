"""Streaming analysis of result files: outcomes, error breakdown, usage per model.

Memory stays flat whatever the file size: each line is decoded, classified by the provider's
parser and dropped; only counters, one sample message per error group and the ids of
items that did not succeed (the retry set, ~1% of a file) are kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from batchtui.core.models import ErrorBreakdown, ErrorGroup, Outcome, ResultItem, Usage

LineParser = Callable[[Any, int], ResultItem]

MAX_SAMPLE = 1_000  # characters of a sample message we keep (a provider may send 1 MB)
MAX_UNPARSEABLE_LINES = 20  # line numbers we remember for the message


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
        self._line_no = 0
        self._tail = b""
        self._outcomes: dict[Outcome, int] = {}
        self._groups: dict[tuple[Outcome, str | None], list[Any]] = {}  # [count, sample]
        self._usage: dict[str, Usage] = {}
        self._ids: dict[Outcome, list[str]] = {}
        self._succeeded: list[str] | None = [] if keep_succeeded_ids else None
        self._unparseable = 0
        self._unparseable_lines: list[int] = []

    def feed_chunk(self, chunk: bytes) -> None:
        """Raw bytes in any split (a download's chunks); lines are cut here."""
        data = self._tail + chunk
        lines = data.split(b"\n")
        self._tail = lines.pop()
        for line in lines:
            self.feed_line(line)

    def feed_line(self, raw: bytes | str) -> None:
        self._line_no += 1
        if not raw.strip():
            return
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            obj = None
        if not isinstance(obj, dict):
            self._bad_line()
            return
        try:
            item = self._parse(obj, self._line_no)
        except (KeyError, TypeError, ValueError, AttributeError):
            # Valid JSON but not a result line we can read: count it, never crash.
            self._bad_line()
            return
        self.add(item)

    def add(self, item: ResultItem) -> None:
        outcome = item.outcome
        self._outcomes[outcome] = self._outcomes.get(outcome, 0) + 1
        if item.usage is not None and not item.usage.is_zero:
            model = item.model or "unknown"
            prev = self._usage.get(model)
            self._usage[model] = item.usage if prev is None else prev + item.usage
        if outcome is Outcome.SUCCEEDED:
            if self._succeeded is not None and item.custom_id is not None:
                self._succeeded.append(item.custom_id)
            return
        if item.custom_id is not None:
            self._ids.setdefault(outcome, []).append(item.custom_id)
        group = self._groups.get((outcome, item.error_type))
        if group is None:
            sample = item.error_message[:MAX_SAMPLE] if item.error_message else None
            self._groups[(outcome, item.error_type)] = [1, sample]
        else:
            group[0] += 1
            if group[1] is None and item.error_message:
                group[1] = item.error_message[:MAX_SAMPLE]

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
            prev = self._usage.get(model)
            self._usage[model] = usage if prev is None else prev + usage
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

    def summary(self) -> ResultsSummary:
        if self._tail:
            # A file whose last line has no newline (or was cut short by a truncated download).
            tail, self._tail = self._tail, b""
            self.feed_line(tail)
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
            usage_by_model=dict(self._usage),
            ids_by_outcome={o: list(ids) for o, ids in self._ids.items()},
            succeeded_ids=None if self._succeeded is None else list(self._succeeded),
        )


def analyze_lines(lines: Iterable[bytes | str], parse_line: LineParser, **kw: Any) -> ResultsSummary:
    analyzer = ResultsAnalyzer(parse_line, **kw)
    for line in lines:
        analyzer.feed_line(line)
    return analyzer.summary()


def analyze_files(paths: Iterable[Path], parse_line: LineParser, **kw: Any) -> ResultsSummary:
    """One summary over several files (OpenAI's output and error files)."""
    analyzer = ResultsAnalyzer(parse_line, **kw)
    for path in paths:
        with open(path, "rb") as handle:
            for line in handle:
                analyzer.feed_line(line)
    return analyzer.summary()
