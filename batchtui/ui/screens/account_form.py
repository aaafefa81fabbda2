"""The "add account" form: name, provider, base URL, preset, and the API key.

The key is typed into a password Input and leaves this screen as a `SecretStr` (whose repr
is masked, so a crash report's locals cannot print it); the Input is emptied before the form
closes, so no widget keeps it. Storing it is the accounts screen's job (a thread worker).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr, ValidationError
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from batchtui.core.accounts import DEFAULT_BASE_URLS, Account
from batchtui.core.models import Provider

# The openai-compatible presets (provider module constants, read lazily: they import httpx).
def _presets() -> list[str]:
    from batchtui.core.providers.openai_dialects import PRESETS

    return sorted(name for name in PRESETS if name != "openai")


@dataclass(frozen=True)
class NewAccount:
    """What the form returns: a validated account and its key (masked in every repr)."""

    account: Account
    key: SecretStr


class AccountForm(ModalScreen[NewAccount | None]):
    DEFAULT_CSS = """
    AccountForm { align: center middle; }
    AccountForm > VerticalScroll {
        width: 72; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    AccountForm Label { margin-top: 1; color: $text-muted; }
    AccountForm #form-title { text-style: bold; margin: 0; color: $text; }
    AccountForm #form-error { color: $error; margin-top: 1; height: auto; }
    AccountForm #form-buttons { height: auto; margin-top: 1; align-horizontal: right; }
    AccountForm #form-buttons Button { margin-left: 2; }
    AccountForm .-hidden { display: none; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="batchtui.form_cancel", tooltip="Close the form; nothing is saved"),
    ]

    def compose(self) -> ComposeResult:
        providers = [(p.value, p.value) for p in Provider]
        with VerticalScroll():
            yield Static("Add an account", id="form-title")
            yield Label("Name (letters, digits, . _ -)")
            yield Input(placeholder="e.g. work-openai", id="form-name")
            yield Label("Provider")
            yield Select(providers, value=Provider.OPENAI.value, allow_blank=False, id="form-provider")
            yield Label("Preset (OpenAI-compatible servers)", id="form-preset-label")
            yield Select([(name, name) for name in _presets()], prompt="none (give a base URL)",
                         id="form-preset")
            yield Label("Base URL (optional)", id="form-url-label")
            yield Input(id="form-url")
            yield Label("API key (stored in the OS keyring only)")
            yield Input(password=True, placeholder="paste the key", id="form-key")
            yield Static("", id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button("Cancel", id="form-cancel")
                yield Button("Add account", variant="primary", id="form-add")

    def on_mount(self) -> None:
        self._provider_changed()
        self.query_one("#form-name", Input).focus()

    # -- provider-dependent fields -------------------------------------------------------------

    @on(Select.Changed, "#form-provider")
    @on(Select.Changed, "#form-preset")
    def _provider_changed(self) -> None:
        provider = Provider(self.query_one("#form-provider", Select).value)
        compatible = provider is Provider.OPENAI_COMPATIBLE
        for widget_id in ("#form-preset", "#form-preset-label"):
            self.query_one(widget_id).set_class(not compatible, "-hidden")
        url = self.query_one("#form-url", Input)
        # The default is shown, not filled in: an account that leaves it unset follows the
        # provider if its URL ever changes.
        if compatible:
            preset = self._preset()
            url.placeholder = f"default for {preset}" if preset else "required without a preset"
        else:
            url.placeholder = f"default: {DEFAULT_BASE_URLS[provider]}"

    def _preset(self) -> str | None:
        value = self.query_one("#form-preset", Select).value
        return value if isinstance(value, str) else None

    # -- submitting ----------------------------------------------------------------------------

    @on(Button.Pressed, "#form-add")
    @on(Input.Submitted)
    def _submit(self) -> None:
        error = self.query_one("#form-error", Static)
        try:
            account = self._account()
        except ValueError as exc:
            error.update(Text(_first_error(exc)))
            return
        taken = {a.name for a in getattr(self.app, "settings").accounts}
        if account.name in taken:
            error.update(Text(f"An account named {account.name!r} already exists."))
            return
        key_input = self.query_one("#form-key", Input)
        key = SecretStr(key_input.value.strip())
        if not key.get_secret_value():
            error.update(Text("Paste the account's API key: it goes to the OS keyring, never to config.toml."))
            key_input.focus()
            return
        key_input.value = ""  # from here on only the SecretStr holds it
        self.dismiss(NewAccount(account, key))

    def _account(self) -> Account:
        provider = Provider(self.query_one("#form-provider", Select).value)
        url = self.query_one("#form-url", Input).value.strip() or None
        preset = self._preset() if provider is Provider.OPENAI_COMPATIBLE else None
        name = self.query_one("#form-name", Input).value.strip()
        return Account(name=name, provider=provider, base_url=url, preset=preset)

    @on(Button.Pressed, "#form-cancel")
    def action_cancel(self) -> None:
        self.query_one("#form-key", Input).value = ""
        self.dismiss(None)


def _first_error(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        return f"{field}: {message}" if field else message
    return str(exc)
