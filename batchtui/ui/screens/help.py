"""`?` / F1: the keys that work on the screen below, with what they do.

Built from that screen's live bindings, so keys remapped in config.toml show as remapped, and
actions that do not apply to the selected batch are left out (as in the footer).
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


def keys_table(screen: Screen) -> Table:
    table = Table(show_edge=False, header_style="bold", expand=True)
    table.add_column("Key", no_wrap=True)
    table.add_column("Does")
    rows: list[tuple[bool, str, str, bool]] = []
    for active in screen.active_bindings.values():
        binding = active.binding
        if not binding.description:
            continue
        ours = (binding.id or "").startswith("batchtui.")
        does = binding.tooltip or binding.description
        rows.append((not ours, screen.app.get_key_display(binding), does, active.enabled))
    # Ours first (what batchtui does), then the widgets' own navigation keys; stable otherwise.
    rows.sort(key=lambda row: row[0])
    for _, key, does, enabled in rows:
        note = "" if enabled else "  (not available now)"
        table.add_row(Text(key, style="bold" if enabled else "dim"), Text(does + note, style="" if enabled else "dim"))
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close", id="batchtui.help.close")]

    def __init__(self, below: Screen) -> None:
        super().__init__()
        self.below = below

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog"):
            yield Static(Text("Keys", style="bold"), id="help-title")
            yield Static(keys_table(self.below), id="help-keys")
            yield Static(Text("Every action is also in the command palette (ctrl+p), which offers only what "
                              "applies to the selected batch. Remap keys in config.toml under [ui.keymap], "
                              "by binding id (e.g. fetch = \"F\").", style="dim"), id="help-footer")
