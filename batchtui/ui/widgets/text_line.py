"""A Static that is told its text again and again, and repaints only when the text differs.

The batches screen re-tells its health strip, hint, filter and totals lines after every poll;
most polls change none of them, or only a figure inside one. An update asks the screen for a
layout pass (several milliseconds with the batches table on it) only when the widget's height
could change with the new text."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import Static


class TextLine(Static):
    _shown: Text | None = None

    def show(self, text: Text) -> None:
        if text == self._shown:
            return
        before, self._shown = self._shown, text
        self.update(text, layout=before is None or self._height_may_change(before, text))

    def _height_may_change(self, before: Text, after: Text) -> bool:
        if not self.styles.height or not self.styles.height.is_auto:
            return False  # a fixed height (e.g. 1) whatever the text
        width = self.content_region.width
        # Lines that fit the width stay one row each, so the same line count means the same
        # height. A line that wraps could wrap differently: let the layout measure it.
        return (before.plain.count("\n") != after.plain.count("\n")
                or _widest(before) > width or _widest(after) > width)


def _widest(text: Text) -> int:
    return max(cell_len(line) for line in text.plain.split("\n"))
