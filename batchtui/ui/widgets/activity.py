"""Downloads in progress, one line each with a progress bar. Hidden when nothing runs.

Providers do not say how big a result file is before it arrives, so the bar is indeterminate
and the label counts the bytes received.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar

from batchtui.core.text import printable
from batchtui.ui.messages import BatchKey
from batchtui.ui.widgets.cells import short_id

Downloads = Mapping[BatchKey, tuple[str, int]]  # key -> (file kind, bytes so far)


def download_label(key: BatchKey, kind: str, size: int) -> Text:
    import humanize  # loaded with the first download, not before the first frame

    text = Text("Fetching ")
    text.append(printable(key[0]), style="bold")
    text.append(" " + short_id(printable(key[1])))
    text.append(f"  {kind} {humanize.naturalsize(size, binary=True)}", style="dim")
    return text


class ActivityBar(Vertical):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._rows: dict[BatchKey, tuple[Horizontal, Label]] = {}

    def on_mount(self) -> None:
        self.display = False

    def show(self, downloads: Downloads) -> None:
        for key in [k for k in self._rows if k not in downloads]:
            row, _ = self._rows.pop(key)
            row.remove()
        for key, (kind, size) in downloads.items():
            if key in self._rows:
                self._rows[key][1].update(download_label(key, kind, size))
                continue
            label = Label(download_label(key, kind, size), classes="activity-label")
            row = Horizontal(label, ProgressBar(total=None, show_eta=False, show_percentage=False),
                             classes="activity-row")
            self._rows[key] = (row, label)
            self.mount(row)
        self.display = bool(self._rows)
