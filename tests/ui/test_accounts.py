"""The accounts screen: add (key to the keyring only), test, remove (with confirm), health."""

from __future__ import annotations

import json

import httpx
import keyring
import pytest
from keyring.backends import fail
from textual.widgets import DataTable, Input

from batchtui.core import keys
from batchtui.core.accounts import Account
from batchtui.core.config import Settings, load_settings, save_settings
from batchtui.core.polling import AccountStatus, Health
from batchtui.demo import demo_engine
from batchtui.sim.bulk import seed_many
from batchtui.sim.scenario import DEMO_ACCOUNTS
from batchtui.ui.screens.account_form import AccountForm
from batchtui.ui.screens.accounts import (
    DEMO_NOTE,
    AccountActionFailed,
    AccountAdded,
    AccountRemoved,
    AccountsScreen,
    AccountTested,
)
from batchtui.ui.screens.confirm import ConfirmScreen
from batchtui.screenshots import fixed_clock
from batchtui.ui.app import make_app

START = 1_767_268_800.0  # 2026-01-01T12:00:00Z
SIM_KEY = next(a.key for a in DEMO_ACCOUNTS if a.name == "acme-prod")  # opens acme-prod's workspace


def dashboard(engine, *, demo: bool = False):
    return make_app(engine, clock=fixed_clock, poll=False, demo=demo)


@pytest.fixture
async def engine(home, file_keyring):
    """The simulator's engine reading keys from the (test) keyring, with no accounts yet."""
    engine, sim = demo_engine(home.config_dir, manual_clock=True, start=START, seed=0)
    engine.settings = Settings()
    engine.key_lookup = keys.get_key
    engine.sim = sim
    yield engine
    await engine.aclose()
    engine.close_ledger()


@pytest.fixture
async def demo(home):
    engine, sim = demo_engine(home.config_dir / "demo", manual_clock=True, start=START, seed=0)
    yield engine
    await engine.aclose()
    engine.close_ledger()


def recorder():
    seen: list = []
    return seen, seen.append


async def open_accounts(pilot) -> AccountsScreen:
    await pilot.press("a")  # the app's binding
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, AccountsScreen)
    return screen


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def type_into(pilot, selector: str, text: str) -> None:
    await pilot.click(selector)
    await pilot.press(*text)


def rows(screen: AccountsScreen) -> dict[str, list[str]]:
    table = screen.query_one(DataTable)
    return {key.value: [cell.plain for cell in table.get_row(key)] for key in table.rows}


def keyring_entries(path) -> dict:
    return json.loads(path.read_text()).get("batchtui", {}) if path.exists() else {}


async def add_through_form(pilot, name: str, base_url: str, key: str) -> Input:
    """Fill in and submit the form; returns its key Input, to check what it kept."""
    await pilot.press("a")
    await pilot.pause()
    assert isinstance(pilot.app.screen, AccountForm)
    key_input = pilot.app.screen.query_one("#form-key", Input)
    assert key_input.password
    await type_into(pilot, "#form-name", name)
    await type_into(pilot, "#form-url", base_url)
    await type_into(pilot, "#form-key", key)
    await pilot.click("#form-add")
    await settle(pilot)
    return key_input


# --- add, test, remove -------------------------------------------------------------------------


async def test_add_puts_the_key_in_the_keyring_only_then_test_and_remove(engine, home, file_keyring):
    messages, hook = recorder()
    app = dashboard(engine)
    url = engine.sim.base_url("openai")
    async with app.run_test(size=(160, 45), message_hook=hook) as pilot:
        screen = await open_accounts(pilot)
        key_input = await add_through_form(pilot, "sim-prod", url, SIM_KEY)
        assert key_input.value == ""  # the form let go of the key when it closed

        assert [m.account.name for m in messages if isinstance(m, AccountAdded)] == ["sim-prod"]
        saved = load_settings(home)
        assert [(a.name, a.provider.value, a.base_url) for a in saved.accounts] == [("sim-prod", "openai", url)]
        assert keyring_entries(file_keyring) == {"sim-prod": SIM_KEY}
        assert [a.name for a in app.settings.accounts] == ["sim-prod"]  # app.add_account was called
        assert "sim-prod" in rows(screen)
        # The key is in no file we write and on no screen we draw.
        for path in home.config_dir.rglob("*"):
            if path.is_file():
                assert SIM_KEY.encode() not in path.read_bytes(), path
        assert SIM_KEY not in app.export_screenshot()

        await pilot.press("c")
        await settle(pilot)
        tested = [m for m in messages if isinstance(m, AccountTested)]
        assert [(m.name, m.ok) for m in tested] == [("sim-prod", True)]
        assert "ok" in screen.query_one("#accounts-test").render().plain

        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.click("#confirm-yes")
        await settle(pilot)
        assert [m.name for m in messages if isinstance(m, AccountRemoved)] == ["sim-prod"]
        assert load_settings(home).accounts == []
        assert keyring_entries(file_keyring) == {}
        assert app.settings.accounts == []
        assert rows(screen) == {}
        assert SIM_KEY not in app.export_screenshot()


async def test_remove_asks_first_and_back_keeps_everything(engine, home, file_keyring):
    account = Account(name="keep-me", provider="anthropic")
    save_settings(home, Settings(accounts=[account]))
    keys.store_key("keep-me", "sk-ant-keep")
    engine.settings = load_settings(home)
    app = dashboard(engine)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_accounts(pilot)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen
        assert "keep-me" in rows(screen)
    assert [a.name for a in load_settings(home).accounts] == ["keep-me"]
    assert keyring_entries(file_keyring) == {"keep-me": "sk-ant-keep"}


async def test_the_form_refuses_a_bad_name_and_keeps_nothing(engine, home, file_keyring):
    app = dashboard(engine)
    async with app.run_test(size=(160, 45)) as pilot:
        await open_accounts(pilot)
        await pilot.press("a")
        await pilot.pause()
        await type_into(pilot, "#form-name", "bad name!")
        await type_into(pilot, "#form-key", "sk-typed")
        await pilot.click("#form-add")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, AccountForm)  # still open, saying why
        assert "name" in form.query_one("#form-error").render().plain
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, AccountsScreen)
    assert not home.config_file.exists()
    assert keyring_entries(file_keyring) == {}


async def test_a_duplicate_name_is_refused_by_the_form(engine, home, file_keyring):
    save_settings(home, Settings(accounts=[Account(name="taken", provider="openai")]))
    engine.settings = load_settings(home)
    app = dashboard(engine)
    async with app.run_test(size=(160, 45)) as pilot:
        await open_accounts(pilot)
        await pilot.press("a")
        await pilot.pause()
        await type_into(pilot, "#form-name", "taken")
        await type_into(pilot, "#form-key", "sk-other")
        await pilot.click("#form-add")
        await settle(pilot)
        assert "already exists" in app.screen.query_one("#form-error").render().plain
    assert keyring_entries(file_keyring) == {}


async def test_no_usable_keyring_is_a_clear_message_and_nothing_is_saved(engine, home, file_keyring):
    keyring.set_keyring(fail.Keyring())  # the file_keyring fixture restores the previous one
    messages, hook = recorder()
    app = dashboard(engine)
    async with app.run_test(size=(160, 45), message_hook=hook) as pilot:
        screen = await open_accounts(pilot)
        note = screen.query_one("#accounts-note").render().plain
        assert "No usable keyring" in note and "gnome-keyring" in note  # names the fix
        await add_through_form(pilot, "sim-prod", engine.sim.base_url("openai"), SIM_KEY)
        failed = [m for m in messages if isinstance(m, AccountActionFailed)]
        assert [(m.action, m.name) for m in failed] == [("add", "sim-prod")]
        assert SIM_KEY not in failed[0].error
        assert app.is_running
    assert not home.config_file.exists()
    assert app.settings.accounts == []


# --- the demo ----------------------------------------------------------------------------------


async def test_demo_test_shows_ok_and_the_refused_keys_auth_error(demo):
    messages, hook = recorder()
    app = dashboard(demo, demo=True)
    async with app.run_test(size=(160, 45), message_hook=hook) as pilot:
        screen = await open_accounts(pilot)
        table = screen.query_one(DataTable)
        await pilot.press("c")  # the first row: acme-prod
        await settle(pilot)
        table.move_cursor(row=table.get_row_index("old-intern-key"))
        await pilot.press("c")
        await settle(pilot)
        tested = {m.name: m for m in messages if isinstance(m, AccountTested)}
        assert tested["acme-prod"].ok is True
        refused = tested["old-intern-key"]
        assert refused.ok is False and "401" in refused.error
        line = screen.query_one("#accounts-test").render().plain
        assert "failed" in line and "401" in line


class _Recording(httpx.AsyncBaseTransport):
    """The simulator's transport, keeping every request the engine sends."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


async def test_testing_a_key_asks_for_one_batch_however_many_the_account_has(home):
    engine, sim = demo_engine(home.config_dir / "big", manual_clock=True, start=START, seed=0)
    recording = _Recording(engine.transport)
    engine.transport = recording  # before any client is made
    tested = {"acme-prod": "openai", "claude-team": "anthropic", "gemini-lab": "gemini"}
    for name, provider in tested.items():
        seed_many(sim.world, sim.world.workspace(provider, name), batches=2_500)  # many pages' worth
    messages, hook = recorder()
    app = dashboard(engine, demo=True)
    try:
        async with app.run_test(size=(160, 45), message_hook=hook) as pilot:
            screen = await open_accounts(pilot)
            table = screen.query_one(DataTable)
            for name, provider in tested.items():
                ws = sim.world.workspace(provider, name)
                ws.requests.clear()
                recording.requests.clear()
                table.move_cursor(row=table.get_row_index(name))
                await pilot.press("c")
                await settle(pilot)
                assert sum(ws.requests.values()) == 1, (name, ws.requests)
                [request] = recording.requests
                asked = request.url.params.get("limit") or request.url.params.get("pageSize")
                assert asked == "1", (name, str(request.url))  # one batch back, not a full page
            assert {m.name: m.ok for m in messages if isinstance(m, AccountTested)} == dict.fromkeys(tested, True)
    finally:
        await engine.aclose()
        engine.close_ledger()


async def test_demo_disables_add_and_remove_and_says_why(demo, home):
    app = dashboard(demo, demo=True)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_accounts(pilot)
        assert screen.query_one("#accounts-note").render().plain == DEMO_NOTE
        await pilot.press("a")
        await pilot.press("d")
        await settle(pilot)
        assert app.screen is screen  # neither the form nor the confirm opened
        assert len(rows(screen)) == len(DEMO_ACCOUNTS)
    assert not (home.config_dir / "demo" / "config.toml").exists()


async def test_health_and_last_error_follow_statuses_changed_literally(demo):
    app = dashboard(demo, demo=True)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_accounts(pilot)
        assert rows(screen)["gemini-lab"][3] == "not polled yet"
        hostile = "[bold red]boom[/] \x1b[31m"
        app.account_statuses.update({
            "gemini-lab": AccountStatus("gemini-lab", Health.OK),
            "claude-team": AccountStatus("claude-team", Health.AUTH_ERROR, hostile),
        })
        app.statuses_changed.publish(dict(app.account_statuses))
        await pilot.pause()
        shown = rows(screen)
        assert shown["gemini-lab"][3] == "ok"
        assert shown["claude-team"][3] == "auth error"
        # Provider text is data: markup shows as characters, the escape as \x1b.
        assert shown["claude-team"][5] == "[bold red]boom[/] \\x1b[31m"
