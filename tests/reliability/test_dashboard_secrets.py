"""Issue 6, item 7 (the dashboard part): a secrets audit of the whole dashboard flow.

Three accounts (OpenAI, Anthropic, Gemini), each with a fresh known key and its own host, are
added through the accounts screen, the key typed into the form's password field and kept by
a file keyring outside BATCHTUI_HOME. Then the dashboard polls, fetches results (`f`) of each,
retries failed items (`R`), submits a file (`s`), opens a batch's detail and raw JSON, and
saves screenshots, with logging at DEBUG to its log file and every log record of every logger
captured besides. Afterwards no key, nor any ten-character piece of one, is in any file under
BATCHTUI_HOME (config, ledger and its WAL, downloads, logs, screenshots), in any screen the
dashboard showed or in any log record; directories are 0700 and the files holding results
0600; and every request carried exactly its own account's key, to its own account's host.

The simulator runs in-process behind a transport that records, for each request, the host it
was addressed to and every credential it carried.
"""

from __future__ import annotations

import json
import logging
import stat
import uuid
from pathlib import Path

import httpx
import pytest
from textual.widgets import Input, Select

from batchtui.core.config import Settings, load_settings
from batchtui.core.engine import Engine
from batchtui.core.logs import LEVEL_ENV, setup_logging
from batchtui.sim import Simulator
from batchtui.sim import anthropic as sim_anthropic
from batchtui.sim import gemini as sim_gemini
from batchtui.sim import openai as sim_openai
from batchtui.sim.world import Plan
from batchtui.ui.app import make_app
from batchtui.ui.messages import BatchesUpdated, FetchDone, RetryPlanned, RetrySent
from batchtui.ui.screens.account_form import AccountForm
from batchtui.ui.screens.accounts import AccountAdded, AccountsScreen
from batchtui.ui.screens.confirm import ConfirmScreen
from batchtui.ui.screens.detail import DetailScreen
from batchtui.ui.screens.submit import BatchSubmitted, InputChecked, SubmitScreen
from batchtui.ui.widgets.batch_table import BatchTable
from reliability.dashboard_support import Messages, instant_sleep
from reliability.figures import record

START = 1_767_268_800.0  # 2026-01-01 12:00 UTC
SIZE = (160, 45)
AUTH_HEADERS = ("authorization", "x-api-key", "x-goog-api-key")
PIECE = 10  # any this many characters of a key's random part count as a leak


class Audited:
    """One account of the audit: its name, provider, host and a key made for this run."""

    def __init__(self, name: str, provider: str, host: str) -> None:
        self.name, self.provider, self.host = name, provider, host
        self.secret = uuid.uuid4().hex[:24]  # 96 random bits: short to type, never matched by chance
        self.key = f"sk-audit-{self.secret}"
        prefix = {"openai": "/openai/v1", "anthropic": "/anthropic", "gemini": "/gemini"}[provider]
        self.base_url = f"http://{host}{prefix}"

    def pieces(self) -> list[str]:
        return [self.key] + [self.secret[i:i + PIECE] for i in range(len(self.secret) - PIECE + 1)]


ACCOUNTS = [Audited("audit-openai", "openai", "openai.audit.test"),
            Audited("audit-claude", "anthropic", "anthropic.audit.test"),
            Audited("audit-gemini", "gemini", "gemini.audit.test")]


def leaks_in(data: bytes | str) -> list[str]:
    """Which accounts' keys (whole, or any PIECE characters of the random part) are in `data`."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return [a.name for a in ACCOUNTS if any(piece.encode() in data for piece in a.pieces())]


class CredentialLog(httpx.AsyncBaseTransport):
    """Passes every request on, noting the host it was addressed to and the credentials it
    carried (auth headers and a `key` query parameter)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: list[tuple[str, tuple[str, ...]]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        credentials = tuple(request.headers[h] for h in AUTH_HEADERS if h in request.headers)
        if "key" in request.url.params:
            credentials += (request.url.params["key"],)
        self.seen.append((request.url.host, credentials))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Capture(logging.Handler):
    """Every log record of every logger, formatted with its traceback if it has one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


def seeded_simulator() -> Simulator:
    """Each audited key opens a workspace holding finished batches, some with failures."""
    sim = Simulator(seed=3, manual_clock=True, start=START)
    world = sim.world
    made = START - 3 * 3600
    for account in ACCOUNTS:
        ws = world.resolve(account.provider, account.key)
        plan = Plan(duration=1200, error_rate=0.25)
        if account.provider == "openai":
            sim_openai.seed_batch(world, ws, n_requests=30, model="gpt-5.4-mini", created_at=made, plan=plan)
        elif account.provider == "anthropic":
            sim_anthropic.seed_batch(world, ws, n_requests=30, model="claude-haiku-4-5", created_at=made, plan=plan)
        else:
            sim_gemini.seed_batch(world, ws, n_requests=30, model="gemini-2.5-flash", created_at=made, plan=plan,
                                  inline=False)
    return sim


@pytest.fixture
def captured_logs(home, monkeypatch):
    """Logging as the dashboard sets it up at DEBUG (its private file), plus a capture of
    every record from the root logger; both removed afterwards."""
    monkeypatch.setenv(LEVEL_ENV, "DEBUG")
    levels = {name: logging.getLogger(name).level for name in ("batchtui", "httpx")}
    handler = setup_logging(home)
    capture = Capture()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(capture)
    yield capture
    root.removeHandler(capture)
    root.setLevel(level)
    for name, was in levels.items():
        logging.getLogger(name).setLevel(was)
        if handler is not None:
            logging.getLogger(name).removeHandler(handler)
    if handler is not None:
        handler.close()


async def settle(pilot) -> None:
    """Until every worker but the poll loops (which never end) is done."""
    await pilot.pause()
    others = [w for w in pilot.app.workers if not w.group.startswith("poll:")]
    if others:  # (an empty list would mean every worker)
        await pilot.app.workers.wait_for_complete(others)
    await pilot.pause()


async def test_no_key_leaks_from_the_dashboard_and_each_goes_only_to_its_host(home, file_keyring, captured_logs,
                                                                              tmp_path):
    sim = seeded_simulator()
    wire = CredentialLog(sim.transport())
    engine = Engine.open(home, settings=Settings(), transport=wire, sleep=instant_sleep)
    screens: list[str] = []  # every SVG export of the screen
    polled: dict[str, int] = {}

    def on_message(message) -> None:
        if isinstance(message, BatchesUpdated):
            for update in message.updates:
                polled[update.account] = polled.get(update.account, 0) + 1

    messages = Messages(on_message)
    app = make_app(engine, clock=sim.clock.datetime)

    def shot() -> None:
        screens.append(app.export_screenshot())

    try:
        async with app.run_test(size=SIZE, message_hook=messages, notifications=True) as pilot:
            await pilot.press("a")
            await settle(pilot)
            assert isinstance(app.screen, AccountsScreen)
            for account in ACCOUNTS:
                await add_account(pilot, messages, account, shot)
                await messages.until(lambda: polled.get(account.name, 0) >= 1)
            shot()
            await pilot.press("escape")
            await settle(pilot)
            assert all(app.account_statuses[a.name].health.value == "ok" for a in ACCOUNTS)
            shot()

            table = app.screen.query_one(BatchTable)
            for account in ACCOUNTS:  # fetch one finished batch of each account
                key = next(k for k, b in sorted(app.batches.items()) if k[0] == account.name and b.result_files)
                table.select(key)
                await pilot.pause()
                await pilot.press("f")
                await messages.until(lambda: len(messages.of(FetchDone)) == ACCOUNTS.index(account) + 1)
            assert all(done.result is not None for done in messages.of(FetchDone))
            shot()

            openai = ACCOUNTS[0]
            parent = next(k for k, b in sorted(app.batches.items()) if k[0] == openai.name and b.counts.failed)
            table.select(parent)
            await pilot.pause()
            await pilot.press("R")
            await messages.until(lambda: bool(messages.of(RetryPlanned)))
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            shot()
            await pilot.press("y")
            await messages.until(lambda: bool(messages.of(RetrySent)))
            await settle(pilot)

            await submit(pilot, messages, tmp_path, ACCOUNTS[1], shot)

            sim.clock.advance(3600)
            app.poll_now()
            before = dict(polled)
            await messages.until(lambda: all(polled[a.name] > before[a.name] for a in ACCOUNTS))
            await app.push_screen(DetailScreen(parent))
            await settle(pilot)
            shot()
            await pilot.press("2")
            await pilot.pause()
            shot()
            app.save_screenshot(filename="detail.svg", path=str(home.data_dir))
            await pilot.press("escape")
            await pilot.pause()
            app.save_screenshot(filename="batches.svg", path=str(home.data_dir))
            assert app.is_running
        written_while_open = scan(home)  # the ledger's WAL is still there
    finally:
        await engine.aclose()
        engine.close_ledger()
    written = scan(home)

    # The key reached the keyring (and only it): the flow really used it.
    stored = json.loads(file_keyring.read_text())["batchtui"]
    assert stored == {a.name: a.key for a in ACCOUNTS}
    assert [a.name for a in load_settings(home).accounts] == [a.name for a in ACCOUNTS]

    # Nowhere else: not in any file, screen or log record.
    for path, data in {**written_while_open, **written}.items():
        assert leaks_in(data) == [], path
    for index, svg in enumerate(screens):
        assert leaks_in(svg) == [], f"screen export {index}"
    log_file = home.logs_dir / "batchtui.log"
    assert log_file in written and b"-> 200" in written[log_file]  # DEBUG logging was on
    assert captured_logs.records
    for line in captured_logs.records:
        assert leaks_in(line) == [], line[:300]

    # Private directories and files.
    modes = {path: stat.S_IMODE(path.stat().st_mode) for path in [home.config_dir, *home.config_dir.rglob("*")]}
    assert {p: oct(m) for p, m in modes.items() if p.is_dir() and m != 0o700} == {}
    downloads = [p for p in written if p.is_relative_to(engine.settings.downloads_path(home))]
    assert downloads
    private = [*downloads, home.ledger_file, home.config_file, log_file]
    assert {p: oct(modes[p]) for p in private if modes[p] != 0o600} == {}

    # Every request carried exactly its own account's key, to its own account's host.
    by_host = {a.host: a for a in ACCOUNTS}
    requests = 0
    for host, credentials in wire.seen:
        account = by_host[host]
        assert credentials and all(c in (account.key, f"Bearer {account.key}") for c in credentials), host
        requests += 1
    assert {host for host, _ in wire.seen} == set(by_host)

    record("secrets_dashboard", keys=len(ACCOUNTS), requests_audited=requests,
           requests_by_host={h: sum(1 for s, _ in wire.seen if s == h) for h in sorted(by_host)},
           files_scanned=len(written), bytes_scanned=sum(len(d) for d in written.values()),
           screens_scanned=len(screens), log_records_scanned=len(captured_logs.records), leaks=0)


async def add_account(pilot, messages, account: Audited, shot) -> None:
    """Through the form: the key typed into its password field."""
    added = len(messages.of(AccountAdded))
    await pilot.press("a")
    await settle(pilot)
    form = pilot.app.screen
    assert isinstance(form, AccountForm)
    key_input = form.query_one("#form-key", Input)
    assert key_input.password
    form.query_one("#form-provider", Select).value = account.provider
    await pilot.pause()
    form.query_one("#form-name", Input).value = account.name
    form.query_one("#form-url", Input).value = account.base_url
    await type_into(pilot, "#form-key", account.key)  # the key as a user gives it: keystrokes
    shot()  # the key is in the field now: the screen shows it masked
    await pilot.click("#form-add")
    await messages.until(lambda: len(messages.of(AccountAdded)) > added)
    await settle(pilot)
    assert key_input.value == ""


async def type_into(pilot, selector: str, text: str) -> None:
    await pilot.click(selector)
    await pilot.press(*text)


async def submit(pilot, messages, tmp_path: Path, account: Audited, shot) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps({"custom_id": f"s-{i}", "params": {
        "model": "claude-haiku-4-5", "max_tokens": 32, "messages": [{"role": "user", "content": f"q {i}"}]}}) + "\n"
        for i in range(5)))
    await pilot.press("s")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, SubmitScreen)
    screen.query_one("#submit-account", Select).value = account.name
    screen.query_one("#submit-path", Input).value = str(path)
    await pilot.pause()
    await pilot.press("f5")
    await messages.until(lambda: bool(messages.of(InputChecked)))
    await settle(pilot)
    assert messages.of(InputChecked)[-1].validated is not None
    await pilot.press("ctrl+s")
    await pilot.pause()
    assert isinstance(pilot.app.screen, ConfirmScreen)
    shot()
    await pilot.press("y")
    await messages.until(lambda: bool(messages.of(BatchSubmitted)))
    await settle(pilot)


def scan(home) -> dict[Path, bytes]:
    """Every file under BATCHTUI_HOME (config and data dirs) and its bytes."""
    roots = {home.config_dir, home.data_dir}
    return {path: path.read_bytes() for root in roots for path in root.rglob("*") if path.is_file()}
