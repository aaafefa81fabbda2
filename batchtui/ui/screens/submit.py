"""The submit screen (`s`): pick an account and a JSONL file, validate, then submit.

Validation is local and sends nothing: every problem is listed with its line number. Only a
valid file can be submitted, and only after a dialog that says it spends money. Validating
reads the file and the key (blocking), so it runs in a thread; submitting is async network
work. Each worker posts one message and only the handlers touch widgets.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Select, Static

from batchtui.core.accounts import Account
from batchtui.core.batch_input import ValidatedInput
from batchtui.core.errors import BatchtuiError, InputError
from batchtui.core.models import Provider
from batchtui.core.submit import Submitted, submit_validated, validate_file
from batchtui.core.text import printable
from batchtui.ui.screens.confirm import ConfirmScreen
from batchtui.ui.theming import palette_color

_PROBLEM_WIDTH = 120
_LINE_WIDTH = 7  # line numbers up to a million


# --- messages ----------------------------------------------------------------------------------


@dataclass
class InputChecked(Message, bubble=False):
    """A validation finished: `validated` when the file is good, else the problems."""

    account: Account
    path: Path
    validated: ValidatedInput | None
    problems: list[tuple[int, str]]
    error: str | None = None  # a failure that is not about the file's lines (no key, unreadable)


@dataclass
class BatchSubmitted(Message, bubble=False):
    submitted: Submitted


@dataclass
class SubmitFailed(Message, bubble=False):
    error: str


# --- the screen --------------------------------------------------------------------------------


class SubmitScreen(Screen):
    DEFAULT_CSS = """
    SubmitScreen #submit-title { padding: 0 1; text-style: bold; background: $panel; }
    SubmitScreen #submit-form { height: auto; padding: 1 1 0 1; }
    SubmitScreen #submit-form Label { color: $text-muted; }
    SubmitScreen #submit-row { height: auto; }
    SubmitScreen #submit-account { width: 32; }
    SubmitScreen #submit-path { width: 1fr; }
    SubmitScreen #submit-model { width: 28; }
    SubmitScreen #submit-model.-hidden { display: none; }
    SubmitScreen #submit-buttons { height: auto; padding: 0 1; }
    SubmitScreen #submit-buttons Button { margin-right: 2; }
    SubmitScreen #submit-summary { padding: 1 1 0 1; height: auto; }
    SubmitScreen DataTable { height: 1fr; margin: 0 1; }
    """

    BINDINGS = [
        Binding("f5", "validate", "Validate", id="batchtui.submit_validate", tooltip="Check the file; nothing is sent"),
        Binding("ctrl+s", "submit", "Submit", id="batchtui.submit_send",
                tooltip="Send the validated file as a new batch (asks first: it spends money)"),
        Binding("escape", "close", "Back", id="batchtui.back", tooltip="Back to the batches"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._checked: InputChecked | None = None  # the last good validation, if still current

    def compose(self) -> ComposeResult:
        accounts = [(a.name, a.name) for a in self.app.settings.accounts]
        yield Header()
        yield Static("Submit a batch", id="submit-title")
        with Vertical(id="submit-form"):
            yield Label("Account, JSONL file and (Gemini only) model")
            with Horizontal(id="submit-row"):
                yield Select(accounts, prompt="account", id="submit-account",
                             value=accounts[0][1] if accounts else Select.BLANK)
                yield Input(placeholder="path to a .jsonl file", id="submit-path")
                yield Input(placeholder="model (Gemini)", id="submit-model")
        with Horizontal(id="submit-buttons"):
            yield Button("Validate", variant="primary", id="submit-validate")
            yield Button("Submit…", variant="warning", id="submit-send", disabled=True)
        yield Static(Text("Validating sends nothing. Problems are listed by line number."), id="submit-summary")
        table: DataTable = DataTable(id="submit-problems", cursor_type="row", zebra_stripes=True)
        # Fixed widths: an auto width is measured on idle, after the rows are in, so a screen
        # drawn just then (a snapshot, a slow machine) showed the column cut to its label.
        table.add_column("Line", key="line", width=_LINE_WIDTH)
        table.add_column("Problem", key="problem", width=_PROBLEM_WIDTH)
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self._account_changed()
        self.query_one("#submit-path", Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "submit":
            return True if self._checked is not None else None
        return True

    # -- inputs --------------------------------------------------------------------------------

    def _account(self) -> Account | None:
        value = self.query_one("#submit-account", Select).value
        return next((a for a in self.app.settings.accounts if a.name == value), None)

    @on(Select.Changed, "#submit-account")
    def _account_changed(self) -> None:
        account = self._account()
        model = self.query_one("#submit-model", Input)
        gemini = account is not None and account.provider is Provider.GEMINI
        model.set_class(not gemini, "-hidden")
        if gemini and account.default_model:
            model.placeholder = f"model (default {account.default_model})"
        self._forget_validation()

    @on(Input.Changed)
    def _input_changed(self) -> None:
        self._forget_validation()

    def _forget_validation(self) -> None:
        # A validation is only good for the exact account, file and model it checked.
        self._checked = None
        self.query_one("#submit-send", Button).disabled = True
        self.refresh_bindings()

    # -- validate ------------------------------------------------------------------------------

    @on(Input.Submitted)
    @on(Button.Pressed, "#submit-validate")
    def action_validate(self) -> None:
        account = self._account()
        raw_path = self.query_one("#submit-path", Input).value.strip()
        summary = self.query_one("#submit-summary", Static)
        if account is None or not raw_path:
            summary.update(Text("Pick an account and give the path of a JSONL file."))
            return
        model = self.query_one("#submit-model", Input).value.strip() or None
        path = Path(raw_path).expanduser()
        summary.update(Text(f"Validating {printable(path)}…"))
        self.run_worker(self._validate(account, path, model), group="submit-validate", exclusive=True,
                        description=f"validate {path.name}", exit_on_error=False)

    async def _validate(self, account: Account, path: Path, model: str | None) -> None:
        engine = self.app.engine
        try:
            validated = await asyncio.to_thread(validate_file, engine, account, path, model=model)
        except InputError as exc:
            # No problem lines means the file as a whole failed (unreadable, too large).
            self.post_message(InputChecked(account, path, None, list(exc.problems),
                                           None if exc.problems else str(exc)))
        except (BatchtuiError, OSError) as exc:
            self.post_message(InputChecked(account, path, None, [], str(exc)))
        else:
            self.post_message(InputChecked(account, path, validated, []))

    @on(InputChecked)
    def _checked_input(self, message: InputChecked) -> None:
        table = self.query_one("#submit-problems", DataTable)
        summary = self.query_one("#submit-summary", Static)
        table.clear()
        for line, problem in message.problems:
            table.add_row(Text(str(line) if line else "–", justify="right"),
                          Text(printable(problem, limit=_PROBLEM_WIDTH)))
        error = palette_color(self.app, "error")
        name = printable(message.path.name)
        if message.error:
            summary.update(Text.assemble(("Cannot validate: ", f"bold {error}"), printable(message.error)))
        elif message.problems:
            count = len(message.problems)
            summary.update(Text.assemble(
                (f"{count} problem{'s' if count != 1 else ''}", f"bold {error}"),
                f" in {name}; nothing was sent. Fix the lines below and validate again."))
        else:
            assert message.validated is not None
            requests = len(message.validated.custom_ids)
            summary.update(Text.assemble(
                (f"{name} is valid: ", f"bold {palette_color(self.app, 'success')}"),
                f"{requests:,} request{'s' if requests != 1 else ''} for {printable(message.account.name)}. "
                "Submit sends it (after a confirmation)."))
            self._checked = message
            self.query_one("#submit-send", Button).disabled = False
        self.refresh_bindings()

    # -- submit --------------------------------------------------------------------------------

    @on(Button.Pressed, "#submit-send")
    def action_submit(self) -> None:
        checked = self._checked
        if checked is None or checked.validated is None:
            return
        validated = checked.validated

        def answered(yes: bool | None) -> None:
            if yes and self._checked is checked:
                self.query_one("#submit-send", Button).disabled = True
                self.query_one("#submit-summary", Static).update(Text(f"Submitting to {checked.account.name}…"))
                self.run_worker(self._submit(checked.account, validated), group="submit-send", exclusive=True,
                                description=f"submit {validated.path.name}", exit_on_error=False)

        requests = len(validated.custom_ids)
        body = Text.assemble(
            (f"{requests:,} request{'s' if requests != 1 else ''}", "bold"), " from ", printable(checked.path.name),
            " go to ", (printable(checked.account.name), "bold"), f" ({checked.account.provider.value}).\n",
            "This spends money: the provider bills every request it runs.")
        self.app.push_screen(ConfirmScreen("Submit this batch?", body, confirm="Submit"), answered)

    async def _submit(self, account: Account, validated: ValidatedInput) -> None:
        try:
            submitted = await submit_validated(self.app.engine, account, validated)
        except (BatchtuiError, OSError) as exc:
            self.post_message(SubmitFailed(str(exc)))
        else:
            self.post_message(BatchSubmitted(submitted))

    @on(BatchSubmitted)
    def _submitted(self, message: BatchSubmitted) -> None:
        batch = message.submitted.batch
        self._checked = None
        self.app.submitted(batch)
        self.app.notify(f"Submitted batch {printable(batch.id)} ({message.submitted.requests:,} requests) "
                        f"to {printable(batch.account)}.", title="Batch submitted", markup=False)
        self.dismiss()

    @on(SubmitFailed)
    def _submit_failed(self, message: SubmitFailed) -> None:
        error = printable(message.error)
        self.query_one("#submit-summary", Static).update(
            Text.assemble(("Submit failed: ", f"bold {palette_color(self.app, 'error')}"), error))
        self.notify(error, title="Submit failed", severity="error", timeout=12, markup=False)
        # Validate again before another try: if the answer was lost the batch may exist, and
        # the message says how to check; a ready Submit button would invite a duplicate.
        self._forget_validation()

    def action_close(self) -> None:
        self.dismiss()
