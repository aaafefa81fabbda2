"""The accounts screen: every account with its provider, base URL, health and batch count;
add (a form whose key goes straight to the keyring), test (one cheap request) and remove.

Keyring and config calls block (an unlock prompt, a slow disk), so they run in threads; each
worker posts one message and only the handlers below touch widgets. Config is re-read from
disk before every write, so an account added meanwhile by the CLI is never lost.

In the demo the accounts are simulated: adding and removing are disabled (the demo never
touches the user's config or keyring), testing works against the simulator.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from pydantic import SecretStr
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from batchtui.core import keys
from batchtui.core.accounts import Account
from batchtui.core.config import add_account, load_settings, remove_account, save_settings
from batchtui.core.errors import BatchtuiError
from batchtui.core.polling import AccountStatus, Health
from batchtui.core.text import printable
from batchtui.ui.screens.account_form import AccountForm, NewAccount
from batchtui.ui.screens.confirm import ConfirmScreen
from batchtui.ui.theming import palette_color, status_color
from batchtui.ui.widgets.health import COLOR_OF, LABELS

# The health strip's words for each health, spelled out where there is room.
_HEALTH_LABEL = {**LABELS, Health.PENDING: "not polled yet"}
_COLUMNS = (("name", "Account"), ("provider", "Provider"), ("base_url", "Base URL"), ("health", "Health"),
            ("batches", "Batches"), ("error", "Last error"))
_ERROR_WIDTH = 100
DEMO_NOTE = ("Demo: these accounts are simulated. Adding and removing accounts is disabled here; "
             "run `batchtui` to manage your own. Testing works against the simulator.")


# --- messages: posted by workers, painted by handlers --------------------------------------


@dataclass
class KeyringChecked(Message, bubble=False):
    status: keys.KeyringStatus


@dataclass
class AccountAdded(Message, bubble=False):
    account: Account


@dataclass
class AccountTested(Message, bubble=False):
    name: str
    ok: bool
    error: str | None = None


@dataclass
class AccountRemoved(Message, bubble=False):
    name: str
    key_problem: str | None = None  # the config entry went, the key could not be deleted


@dataclass
class AccountActionFailed(Message, bubble=False):
    action: str  # "add", "remove"
    name: str
    error: str


# --- the screen --------------------------------------------------------------------------------


class AccountsScreen(Screen):
    DEFAULT_CSS = """
    AccountsScreen #accounts-title { padding: 0 1; text-style: bold; background: $panel; }
    AccountsScreen DataTable { height: 1fr; }
    AccountsScreen #accounts-note { padding: 0 1; height: auto; color: $text-muted; }
    AccountsScreen #accounts-note.-warning { color: $warning; }
    AccountsScreen #accounts-test { padding: 0 1; height: auto; }
    """

    BINDINGS = [
        Binding("a", "add", "Add", id="batchtui.account_add", tooltip="Add an account; its key goes to the OS keyring"),
        Binding("c", "test", "Test", id="batchtui.account_test",
                tooltip="Check the selected account's key with one cheap request"),
        Binding("delete,d", "remove", "Remove", id="batchtui.account_remove",
                tooltip="Remove the selected account and delete its key (asks first)"),
        Binding("escape", "close", "Back", id="batchtui.back", tooltip="Back to the batches"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Accounts", id="accounts-title")
        table: DataTable = DataTable(id="accounts-table", cursor_type="row", zebra_stripes=True)
        for key, label in _COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static("", id="accounts-test")
        yield Static("", id="accounts-note")
        yield Footer()

    def on_mount(self) -> None:
        self._sync_rows()
        self.app.statuses_changed.subscribe(self, lambda _=None: self._sync_rows())
        # Health colours come from the theme: repaint when it changes.
        self.app.theme_changed_signal.subscribe(self, lambda _=None: self._sync_rows())
        if self._demo:
            self.query_one("#accounts-note", Static).update(DEMO_NOTE)
        else:
            self.run_worker(self._check_keyring(), group="accounts-keyring", exclusive=True,
                            exit_on_error=False, description="check the OS keyring")

    @property
    def _demo(self) -> bool:
        return bool(getattr(self.app, "demo", False))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("add", "remove") and self._demo:
            return None  # shown, greyed out: the note says why
        if action in ("test", "remove") and self._selected() is None:
            return None
        return True

    # -- the table -------------------------------------------------------------------------------

    def _accounts(self) -> list[Account]:
        return list(self.app.settings.accounts)

    def _sync_rows(self) -> None:
        """Add, update and remove rows by account name, so the cursor stays where it was."""
        table = self.query_one("#accounts-table", DataTable)
        accounts = {a.name: a for a in self._accounts()}
        statuses: dict[str, AccountStatus] = self.app.account_statuses
        counts = _batch_counts(self.app)
        for row_key in list(table.rows):
            if row_key.value not in accounts:
                table.remove_row(row_key)
        existing = {row_key.value for row_key in table.rows}
        for name, account in accounts.items():
            status = statuses.get(name)
            cells = {
                "name": Text(printable(name)),
                "provider": Text(account.provider.value + (f" ({account.preset})" if account.preset else "")),
                "base_url": _base_url(account),
                "health": _health(self.app, status),
                "batches": Text(str(counts[name]), justify="right"),
                "error": Text(printable(status.last_error, limit=_ERROR_WIDTH) if status and status.last_error
                              else ""),
            }
            if name in existing:
                for column, value in cells.items():
                    table.update_cell(name, column, value)
            else:
                table.add_row(*(cells[key] for key, _ in _COLUMNS), key=name)
        self.refresh_bindings()

    def _selected(self) -> Account | None:
        table = self.query_one("#accounts-table", DataTable)
        if not table.row_count:
            return None
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return next((a for a in self._accounts() if a.name == row_key.value), None)

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self.refresh_bindings()

    # -- keyring status --------------------------------------------------------------------------

    async def _check_keyring(self) -> None:
        self.post_message(KeyringChecked(await asyncio.to_thread(keys.keyring_status)))

    @on(KeyringChecked)
    def _keyring_checked(self, message: KeyringChecked) -> None:
        note = self.query_one("#accounts-note", Static)
        if message.status.ok:
            note.update(Text(printable(message.status.message)))
        else:
            fix = printable(message.status.message)
            note.update(Text(f"No usable keyring, so accounts cannot be added here. {fix}"))
        note.set_class(not message.status.ok, "-warning")

    # -- add ------------------------------------------------------------------------------------

    def action_add(self) -> None:
        if self._demo:
            self.notify(DEMO_NOTE, markup=False)
            return
        self.app.push_screen(AccountForm(), self._form_closed)

    def _form_closed(self, result: NewAccount | None) -> None:
        if result is None:
            return
        self.run_worker(self._add(result.account, result.key), group="accounts-write",
                        description=f"add account {result.account.name}", exit_on_error=False)

    async def _add(self, account: Account, key: SecretStr) -> None:
        try:
            await asyncio.to_thread(_store_new_account, self.app.engine.paths, account, key)
        except BatchtuiError as exc:
            self.post_message(AccountActionFailed("add", account.name, str(exc)))
        except OSError as exc:
            self.post_message(AccountActionFailed("add", account.name, f"cannot write config.toml: {exc}"))
        else:
            self.post_message(AccountAdded(account))

    @on(AccountAdded)
    def _added(self, message: AccountAdded) -> None:
        self.app.add_account(message.account)
        self._sync_rows()
        self.query_one("#accounts-table", DataTable).move_cursor(
            row=self.query_one("#accounts-table", DataTable).get_row_index(message.account.name))
        self.notify(f"Account {message.account.name} added; its key is in the OS keyring.", markup=False)

    # -- test ------------------------------------------------------------------------------------

    def action_test(self) -> None:
        account = self._selected()
        if account is None:
            return
        self.query_one("#accounts-test", Static).update(Text(f"Testing {account.name}…"))
        self.run_worker(self._test(account), group=f"accounts-test-{account.name}", exclusive=True,
                        description=f"test account {account.name}", exit_on_error=False)

    async def _test(self, account: Account) -> None:
        engine = self.app.engine
        try:
            # Building a client reads the key from the keyring: a blocking call.
            client = await asyncio.to_thread(engine.client, account)
            # One batch is proof enough that the key works: one small request, whatever the
            # account holds (stopping at it keeps the listing from asking for another page).
            async for _ in client.list_batches(stop_at=lambda _id: True, first_page=1):
                break
        except (BatchtuiError, OSError) as exc:
            self.post_message(AccountTested(account.name, False, str(exc)))
        else:
            self.post_message(AccountTested(account.name, True))

    @on(AccountTested)
    def _tested(self, message: AccountTested) -> None:
        line = self.query_one("#accounts-test", Static)
        if message.ok:
            ok = f"bold {palette_color(self.app, 'success')}"
            line.update(Text.assemble(f"Test of {message.name}: ", ("ok", ok)))
            self.notify(f"{message.name}: ok", markup=False)
        else:
            error = printable(message.error)
            failed = f"bold {palette_color(self.app, 'error')}"
            line.update(Text.assemble(f"Test of {message.name}: ", ("failed", failed), f" — {error}"))
            self.notify(f"{message.name}: {error}", title="Test failed", severity="error", markup=False)

    # -- remove ----------------------------------------------------------------------------------

    def action_remove(self) -> None:
        account = self._selected()
        if account is None:
            return
        if self._demo:
            self.notify(DEMO_NOTE, markup=False)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._remove(account.name), group="accounts-write",
                                description=f"remove account {account.name}", exit_on_error=False)

        body = Text(
            "Its entry leaves config.toml and its key is deleted from the OS keyring. Batches already "
            f"recorded stay in the ledger, and nothing is cancelled at {account.provider.value}.")
        self.app.push_screen(ConfirmScreen(f"Remove account {printable(account.name)}?", body, confirm="Remove"),
                             answered)

    async def _remove(self, name: str) -> None:
        try:
            key_problem = await asyncio.to_thread(_forget_account, self.app.engine.paths, name)
        except BatchtuiError as exc:
            self.post_message(AccountActionFailed("remove", name, str(exc)))
        except OSError as exc:
            self.post_message(AccountActionFailed("remove", name, f"cannot write config.toml: {exc}"))
        else:
            self.post_message(AccountRemoved(name, key_problem))

    @on(AccountRemoved)
    def _removed(self, message: AccountRemoved) -> None:
        self.app.remove_account(message.name)
        self._sync_rows()
        if message.key_problem:
            self.notify(f"Account {message.name} removed from config.toml, but its key was not deleted: "
                        f"{message.key_problem}", severity="warning", markup=False)
        else:
            self.notify(f"Account {message.name} removed; its key is deleted.", markup=False)

    @on(AccountActionFailed)
    def _failed(self, message: AccountActionFailed) -> None:
        self.notify(f"Could not {message.action} account {message.name}: {printable(message.error)}",
                    severity="error", timeout=12, markup=False)

    def action_close(self) -> None:
        self.dismiss()


# --- blocking work (runs in threads) -----------------------------------------------------------


def _store_new_account(paths, account: Account, key: SecretStr) -> None:
    """Key first, then config: an account is never saved without its key, and a key whose
    config write failed is deleted again."""
    status = keys.keyring_status()
    if not status.ok:
        raise keys.KeyringUnavailable(status.message)
    settings = add_account(load_settings(paths), account)  # a duplicate name fails before the key is stored
    keys.store_key(account.name, key.get_secret_value())
    try:
        save_settings(paths, settings)
    except BaseException:
        keys.delete_key(account.name)
        raise


def _forget_account(paths, name: str) -> str | None:
    """Config first (the account disappears), then the key; returns why the key stayed, if it did."""
    save_settings(paths, remove_account(load_settings(paths), name))
    try:
        keys.delete_key(name)
    except keys.KeyringUnavailable as exc:
        return str(exc)
    return None


# --- cells -------------------------------------------------------------------------------------


def _base_url(account: Account) -> Text:
    if account.base_url:
        return Text(printable(account.base_url))
    from batchtui.core.providers import client_class

    try:
        default = client_class(account.provider).default_base_url(account)
    except (BatchtuiError, ValueError):
        return Text("?", style="dim")
    return Text.assemble(printable(default), (" (default)", "dim"))


def _health(app, status: AccountStatus | None) -> Text:
    # The same colours as the health strip on the batches screen (borrowed status colours).
    health = status.health if status else Health.PENDING
    return Text(_HEALTH_LABEL[health], style=status_color(app, COLOR_OF[health]))


def _batch_counts(app) -> Counter[str]:
    """Batches per account, from what the app knows (the ledger, then every poll)."""
    return Counter(account for account, _batch_id in app.batches)
