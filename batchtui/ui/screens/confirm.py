"""A yes/no question before anything that spends money or destroys (retry, cancel).

The body is a `Text` built by the caller, so provider text inside it is never parsed as markup.
Dismisses with True (confirmed) or False; Escape and `n` say no.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("escape,n", "answer(False)", "No", id="batchtui.confirm.no"),
        Binding("y", "answer(True)", "Yes", id="batchtui.confirm.yes"),
    ]

    def __init__(self, title: str, body: Text, *, confirm: str = "Yes") -> None:
        super().__init__()
        self.question = title
        self.body = body
        self.confirm_label = confirm

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Label(Text(self.question, style="bold"), id="confirm-title")
            yield Static(self.body, id="confirm-body")
            with Horizontal(id="confirm-buttons"):
                yield Button(Text(self.confirm_label), variant="warning", id="confirm-yes")
                yield Button(Text("Back"), id="confirm-no")

    def on_mount(self) -> None:
        # Focus "Back": Enter on an unread dialog must not spend money.
        self.query_one("#confirm-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
