"""The dashboard app: owns what is known (batches, account health) and the poll loops.

It paints the ledger's last known state first, then, once the first frame is on screen, starts
one long-lived poll worker per account. Poll results arrive as `BatchesUpdated` messages; the
handler updates the state and publishes `batches_changed` / `statuses_changed`, and the screens
repaint what changed. `make_app` is the one factory used by the CLI, the demo, the tests, the
snapshots and the screenshot script.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from time import perf_counter

from textual.app import App
from textual.binding import Binding
from textual.signal import Signal
from textual.worker import WorkerState

from batchtui.core.accounts import Account
from batchtui.core.config import add_account as settings_with_account
from batchtui.core.config import remove_account as settings_without_account
from batchtui.core.engine import Engine
from batchtui.core.errors import BatchtuiError
from batchtui.core.models import Batch, Status
from batchtui.core.notices import Notice, notices_for
from batchtui.core.paths import Paths
from batchtui.core.polling import AccountStatus, Health, Poller, PollUpdate
from batchtui.core.text import printable
from batchtui.ui.messages import BatchesUpdated, BatchKey
from batchtui.ui.operations import BatchOperations
from batchtui.ui.theming import choose_theme, install_themes, start_in_theme, status_color, status_variable_defaults

MAX_SEPARATE_NOTICES = 3  # more at once collapse into one toast
FIRST_SCREEN = 300  # batches painted before the rest of the ledger is read: a tall screen's worth


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Loading thousands of batches allocates only what is kept: the cyclic collector would
    walk the growing heap again and again for nothing (it took twice as long as the loading)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def local_now() -> datetime:
    """The real clock, in the local time zone (so "today" in the totals is the user's today)."""
    return datetime.now().astimezone()


def keymap_from_settings(keymap: Mapping[str, str]) -> dict[str, str]:
    """`[ui.keymap]` entries by binding id. Ours may be named without the `batchtui.` prefix
    (`fetch = "F"`), which spares users TOML's quoting of dotted keys; the name as written is
    kept too, so Textual's own binding ids can be remapped. Unknown ids match nothing."""
    mapped: dict[str, str] = {}
    for name, keys in keymap.items():
        mapped[name] = keys
        if not name.startswith("batchtui."):
            mapped[f"batchtui.{name}"] = keys
    return mapped


class BatchtuiApp(BatchOperations, App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "batchtui"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="batchtui.quit", tooltip="Leave batchtui"),
        Binding("question_mark,f1", "help", "Help", id="batchtui.help", tooltip="List the keys and what they do"),
        Binding("r", "poll_now", "Poll", id="batchtui.refresh", tooltip="Poll every account now"),
        Binding("a", "accounts", "Accounts", id="batchtui.accounts", tooltip="Add, test and remove accounts"),
        Binding("s", "submit", "Submit", id="batchtui.submit", tooltip="Submit a batch JSONL file"),
        Binding("t", "change_theme", "Theme", id="batchtui.theme", tooltip="Pick a theme", show=False),
    ]

    def __init__(self, engine: Engine, *, paths: Paths | None = None, clock: Callable[[], datetime] | None = None,
                 poll: bool = True, demo: bool = False) -> None:
        self._born = perf_counter()
        # Everything imported so far (Textual, pydantic's schemas, the engine) lives as long as
        # the app: out of the collector's reach, the passes before the first frame walk only
        # what start-up makes (one full pass over the imports was ~35 ms of it).
        gc.freeze()
        super().__init__()
        self.engine = engine
        self.paths = paths or engine.paths
        self.clock = clock or local_now
        self.poll_enabled = poll
        self.demo = demo  # theming reads it: the demo never writes the user's config
        if demo:
            self.title = "batchtui DEMO"
            self.sub_title = "simulated accounts, no keys"
        names = self.account_names()
        # The ledger's newest batches, read before the first paint: the first screen (newest
        # first) is all there. With more than that, the rest is read after the first frame:
        # at 10,000 batches reading and placing them all would double the start-up.
        with _collector_paused():
            first = engine.ledger.batches(limit=FIRST_SCREEN)
        self.batches: dict[BatchKey, Batch] = {b.key: b for b in first if b.account in names}
        self.loading = len(first) == FIRST_SCREEN  # the ledger holds more: read on ready
        self.account_statuses: dict[str, AccountStatus] = {n: AccountStatus(n, Health.PENDING) for n in names}
        self.downloads: dict[BatchKey, tuple[str, int]] = {}
        self.poller: Poller | None = None
        self.statuses_changed: Signal[dict[str, AccountStatus]] = Signal(self, "statuses-changed")
        self.batches_changed: Signal[frozenset[BatchKey]] = Signal(self, "batches-changed")
        self.activity_changed: Signal[dict[BatchKey, tuple[str, int]]] = Signal(self, "activity-changed")
        self._colors: tuple[str, dict[str, str]] | None = None
        # The theme is set before the app runs, so the CSS is parsed once (see start_in_theme).
        self._theme_choice = choose_theme(self, self.paths, self.settings)
        start_in_theme(self, self._theme_choice)

    @property
    def settings(self):
        return self.engine.settings

    def account_names(self) -> list[str]:
        return [account.name for account in self.engine.settings.accounts]

    # -- start-up ---------------------------------------------------------------------------

    def get_default_screen(self):
        from batchtui.ui.screens.batches import BatchesScreen

        return BatchesScreen()

    def get_theme_variable_defaults(self) -> dict[str, str]:
        # TCSS may use $status-*; the CSS is parsed before any of our themes is registered.
        return status_variable_defaults()

    def on_mount(self) -> None:
        install_themes(self, self.paths, self.settings, self._theme_choice)
        self.set_keymap(keymap_from_settings(self.settings.ui.keymap))

    def on_ready(self) -> None:
        # Ready comes after the first frame: the ledger's state is on screen before any poll.
        self.log.info(f"started in {(perf_counter() - self._born) * 1000:.0f} ms")
        # What is loaded now lives as long as the app: keep the cyclic collector from walking
        # it again and again (tens of thousands of objects at 10,000 batches, ~0.3 s a pass).
        gc.freeze()
        if self.loading:
            self.run_worker(self._read_ledger, thread=True, group="ledger", exit_on_error=False,
                            description="Read the ledger")
        else:
            self._start_polling()

    def _read_ledger(self) -> None:
        """The whole ledger, in a thread; the UI places it (and starts polling) when it's read.
        Polling waits for it: the poller must know every finished batch, or it would list
        (and price) them all again."""
        batches: list[Batch] = []
        try:
            with _collector_paused():
                batches = self.engine.ledger.batches()
        finally:
            self.call_from_thread(self._ledger_read, batches)

    def _ledger_read(self, batches: list[Batch]) -> None:
        names = set(self.account_names())
        added = set()
        for batch in batches:
            # Whatever was learnt since the first paint (a submission, a cancel) is newer.
            if batch.account in names and batch.key not in self.batches:
                self.batches[batch.key] = batch
                added.add(batch.key)
        self.loading = False
        with self.batch_update():
            self.batches_changed.publish(frozenset(added))
        gc.freeze()
        self._start_polling()

    def _start_polling(self) -> None:
        if self.poll_enabled:
            self.poller = Poller(self.engine, self._post_update, known=self.batches.values())
            for account in self.engine.settings.accounts:
                self._start_poll(account)

    def _start_poll(self, account: Account, *, new_client: bool = False) -> None:
        assert self.poller is not None
        # Exclusive within the account's own group: a restarted loop replaces the old one, and
        # one account's loop never touches another's.
        self.run_worker(self._poll(account, new_client), name=f"poll {account.name}",
                        group=f"poll:{account.name}", exclusive=True, exit_on_error=False,
                        description=f"Poll {account.name}")

    async def _poll(self, account: Account, new_client: bool) -> None:
        assert self.poller is not None
        if new_client:  # an edited account (new key or URL): the old client goes first
            await self.engine.drop_client(account.name)
        await self.poller.run(account)

    def _post_update(self, update: PollUpdate) -> None:
        self.post_message(BatchesUpdated((update,)))

    # -- state changes ------------------------------------------------------------------------

    def on_batches_updated(self, message: BatchesUpdated) -> None:
        names = set(self.account_names())
        changed: set[BatchKey] = set()
        notices: list[Notice] = []
        statuses = False
        for update in message.updates:
            if update.account not in names:
                continue  # removed while its poll was in flight
            if self.account_statuses.get(update.account) != update.status:
                self.account_statuses[update.account] = update.status
                statuses = True
            for batch in update.changed:
                if update.cycle > 1:  # the first poll finds what happened while we were away: no flood
                    notices.extend(notices_for(self.batches.get(batch.key), batch))
                self.batches[batch.key] = batch
                changed.add(batch.key)
        with self.batch_update():
            if statuses:
                self.statuses_changed.publish(dict(self.account_statuses))
            if changed:
                self.batches_changed.publish(frozenset(changed))
        self._announce(notices)

    def apply_batches(self, batches: Iterable[Batch]) -> None:
        """Batches learnt outside the poll (a cancel's answer, a fetch's new cost, a submission)."""
        names = set(self.account_names())
        keys = set()
        for batch in batches:
            if batch.account in names:
                self.batches[batch.key] = batch
                keys.add(batch.key)
        if keys:
            with self.batch_update():
                self.batches_changed.publish(frozenset(keys))

    def _announce(self, notices: list[Notice]) -> None:
        if not notices:
            return
        if self.settings.ui.notify:
            if len(notices) <= MAX_SEPARATE_NOTICES:
                for notice in notices:
                    title = "Batch ended" if notice.kind == "ended" else "More failures"
                    self.notify(printable(notice.message), title=title, severity=notice.severity, markup=False)
            else:
                lines = "\n".join(printable(n.message) for n in notices)
                worst = "error" if any(n.severity == "error" for n in notices) else "warning"
                self.notify(lines, title=f"{len(notices)} batches changed", severity=worst, markup=False)
        if self.settings.ui.bell:
            self.bell()

    def on_worker_state_changed(self, event) -> None:
        """The one place worker errors become visible: a toast, never a crash."""
        if event.state is not WorkerState.ERROR:
            return
        worker, error = event.worker, event.worker.error
        text = printable(str(error) or type(error).__name__, limit=500)
        if worker.group.startswith("poll:"):
            # A bug killed this account's loop (provider errors never do): say so on the strip.
            name = worker.group.removeprefix("poll:")
            self.account_statuses[name] = AccountStatus(name, Health.ERROR, text)
            self.statuses_changed.publish(dict(self.account_statuses))
        if not isinstance(error, BatchtuiError):
            self.log.error(f"worker {worker.name!r} failed: {error!r}")
        self.notify(text, title=printable(worker.description), markup=False, timeout=10,
                    severity="warning" if isinstance(error, BatchtuiError) else "error")

    def status_colors(self) -> dict[str, str]:
        """Rich colours per status from the current theme (cached per theme)."""
        if self._colors is None or self._colors[0] != self.theme:
            self._colors = (self.theme, {s.value: status_color(self, s.value) for s in Status})
        return self._colors[1]

    # -- the interface for the accounts and submit screens -------------------------------------

    def add_account(self, account: Account) -> None:
        """Start watching an account the accounts screen has just saved (config and keyring)."""
        others = [a for a in self.engine.settings.accounts if a.name != account.name]
        replaced = len(others) != len(self.engine.settings.accounts)
        if account not in self.engine.settings.accounts:
            base = settings_without_account(self.engine.settings, account.name) if replaced else self.engine.settings
            self.engine.settings = settings_with_account(base, account)
        self.account_statuses[account.name] = AccountStatus(account.name, Health.PENDING)
        self.statuses_changed.publish(dict(self.account_statuses))
        if self.poller is not None:
            self.poller.forget(account.name)
            self._start_poll(account, new_client=replaced)  # edited: a new key or URL needs a new client
        elif replaced:
            self._drop_client(account.name)

    def remove_account(self, name: str) -> None:
        """Stop watching an account (the accounts screen removed it from config and keyring)."""
        self.workers.cancel_group(self, f"poll:{name}")
        if self.poller is not None:
            self.poller.forget(name)
        if any(a.name == name for a in self.engine.settings.accounts):
            self.engine.settings = settings_without_account(self.engine.settings, name)
        self._drop_client(name)
        gone = frozenset(key for key in self.batches if key[0] == name)
        for key in gone:
            del self.batches[key]
        self.account_statuses.pop(name, None)
        with self.batch_update():
            self.statuses_changed.publish(dict(self.account_statuses))
            if gone:
                self.batches_changed.publish(gone)

    def submitted(self, batch: Batch) -> None:
        """A batch the submit screen (or a retry) created: show it now, poll its account soon."""
        self.apply_batches([batch])
        self.poll_now(batch.account)

    def _drop_client(self, name: str) -> None:
        self.run_worker(self.engine.drop_client(name), group="clients", exit_on_error=False,
                        description=f"Close the connection of {name}")

    # -- actions ----------------------------------------------------------------------------

    def poll_now(self, account: str | None = None) -> None:
        if self.poller is None:
            return
        running = {w.group for w in self.workers if w.state in (WorkerState.PENDING, WorkerState.RUNNING)}
        for acct in self.engine.settings.accounts:
            if f"poll:{acct.name}" not in running and account in (None, acct.name):
                self._start_poll(acct)  # its loop died of a bug: `r` brings it back
        self.poller.wake(account)

    def action_poll_now(self) -> None:
        if self.loading:
            return  # polling starts as soon as the ledger is read
        if self.poller is None:
            self.notify("Polling is off", markup=False)
        self.poll_now()

    def action_help(self) -> None:
        from batchtui.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_accounts(self) -> None:
        from batchtui.ui.screens.accounts import AccountsScreen  # imported when first needed

        if not isinstance(self.screen, AccountsScreen):
            self.push_screen(AccountsScreen())

    def action_submit(self) -> None:
        from batchtui.ui.screens.submit import SubmitScreen

        if not isinstance(self.screen, SubmitScreen):
            self.push_screen(SubmitScreen())


def make_app(engine: Engine, *, paths: Paths | None = None, clock: Callable[[], datetime] | None = None,
             poll: bool = True, demo: bool = False) -> BatchtuiApp:
    """THE factory: the CLI, `batchtui demo`, the tests, snapshots and screenshots all use it.

    `clock` gives every "now" on screen (ages, time left, "today"), so snapshots can fix it;
    `poll=False` paints from the ledger only and starts no poll loops.
    """
    return BatchtuiApp(engine, paths=paths, clock=clock, poll=poll, demo=demo)
