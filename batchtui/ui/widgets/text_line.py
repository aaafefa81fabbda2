"""A Static that is told its text again and again, and repaints only when the text differs.

The batches screen re-tells its hint and filter lines after every poll; most polls change
neither, and each Static update costs the screen a layout pass."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class TextLine(Static):
    _shown: Text | None = None

    def show(self, text: Text) -> None:
        if text != self._shown:
            self._shown = text
            self.update(text)
