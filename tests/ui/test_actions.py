"""The action keys against the simulator: fetch, retry, cancel, copy id, open the console;
the command palette and the footer offer only what applies; worker errors become toasts."""

from __future__ import annotations

import json

from batchtui.core.errors import ProviderError
from batchtui.core.fetch import analyse_results
from batchtui.core.models import Outcome, Status
from batchtui.ui.commands import BatchCommands
from batchtui.ui.messages import CancelRequested, FetchDone, FetchProgress, RetryPlanned, RetrySent
from batchtui.ui.screens.batches import BatchesScreen
from batchtui.ui.screens.confirm import ConfirmScreen
from batchtui.ui.widgets.activity import ActivityBar
from batchtui.ui.widgets.batch_table import BatchTable

from .conftest import dashboard, pick, plain, select


async def served(engine, batch, result_file) -> bytes:
    client = engine.client(engine.settings.account(batch.account))
    return b"".join([chunk async for chunk in client.download(batch, result_file)])


async def test_fetch_writes_the_results_and_a_second_press_says_already_fetched(known, notes):
    engine, sim = known
    async with dashboard(engine, sim) as (app, pilot, rec):
        key = pick(app, lambda b: b.account == "acme-prod" and b.status is Status.COMPLETED and len(b.result_files) == 2)
        batch = app.batches[key]
        await select(app, pilot, key)
        await pilot.press("f")
        await rec.until(lambda: len(rec.of(FetchDone)) == 1)

        result = rec.of(FetchDone)[0].result
        downloads = engine.settings.downloads_path(engine.paths)
        assert {f.kind for f in result.files} == {"results", "errors"}
        for fetched, result_file in zip(result.files, batch.result_files):
            assert fetched.path.is_relative_to(downloads)
            assert fetched.path.read_bytes() == await served(engine, batch, result_file)
        assert rec.of(FetchProgress) and rec.of(FetchProgress)[-1].size > 0
        assert not app.screen.query_one(ActivityBar).display  # the progress bar is gone again
        message, title, _, markup = notes[-1]
        assert str(result.files[0].path.parent) in message and markup is False

        await pilot.press("f")
        await rec.until(lambda: len(rec.of(FetchDone)) == 2)
        assert rec.of(FetchDone)[1].result.no_op
        assert notes[-1][0].startswith("Already fetched") and str(result.files[0].path.parent) in notes[-1][0]


async def confirm_retry(app, pilot, rec, press: str):
    """On a finished batch with failures, `press` (R or E): the plan, and its confirmation on screen."""
    key = pick(app, lambda b: b.account == "acme-prod" and b.status is Status.COMPLETED and b.counts.failed)
    await select(app, pilot, key)
    await pilot.press(press)
    await rec.until(lambda: rec.of(RetryPlanned))
    await pilot.pause()
    assert isinstance(app.screen, ConfirmScreen)
    return app.batches[key], rec.of(RetryPlanned)[0].plan


async def send_retry(pilot, rec):
    """Confirm the retry on screen: the child batch it created."""
    await pilot.press("y")
    await rec.until(lambda: rec.of(RetrySent))
    await pilot.pause()
    return rec.of(RetrySent)[0].submitted.batch


async def test_retry_creates_a_child_batch_of_exactly_the_failed_items(known):
    engine, sim = known
    async with dashboard(engine, sim) as (app, pilot, rec):
        parent, plan = await confirm_retry(app, pilot, rec, "R")
        account = engine.settings.account(parent.account)
        assert f"Resend {len(plan.custom_ids):,} requests" in plain(app.screen.query_one("#confirm-body").content)
        child = await send_retry(pilot, rec)

        # What the simulator holds for the child, against the parent's own results.
        client = engine.client(account)
        lines = [line async for line in client.read_requests(await client.get_batch(child.id))]  # one per line
        sent = [json.loads(line)["custom_id"] for line in lines]
        summary = await analyse_results(engine, account, parent, keep_succeeded_ids=True, record=False)
        failed = {cid for outcome, ids in summary.ids_by_outcome.items() if outcome.retry_by_default for cid in ids}
        assert failed and sorted(sent) == sorted(failed)
        assert len(sent) == len(set(sent))
        assert not failed & set(summary.succeeded_ids or [])
        assert [link.child_id for link in engine.ledger.children(parent.account, parent.id)] == [child.id]
        assert (parent.account, child.id) in app.screen.query_one(BatchTable).shown


async def test_retry_all_also_resends_request_errors(known):
    engine, sim = known
    async with dashboard(engine, sim) as (app, pilot, rec):
        parent, _ = await confirm_retry(app, pilot, rec, "E")
        account = engine.settings.account(parent.account)
        child = await send_retry(pilot, rec)
        client = engine.client(account)
        sent = [json.loads(line)["custom_id"] async for line in client.read_requests(await client.get_batch(child.id))]
        summary = await analyse_results(engine, account, parent, record=False)
        everything = {cid for ids in summary.ids_by_outcome.values() for cid in ids}
        request_errors = set(summary.ids_by_outcome.get(Outcome.REQUEST_ERROR, []))
        assert request_errors and request_errors <= set(sent)
        assert sorted(sent) == sorted(everything)


async def test_retry_that_cannot_go_ahead_says_why(known, notes):
    engine, sim = known
    async with dashboard(engine, sim) as (app, pilot, rec):
        # Anthropic cannot give back a batch's requests, and batchtui did not submit this one.
        key = pick(app, lambda b: b.account == "claude-team" and b.status is Status.COMPLETED and b.counts.failed)
        await select(app, pilot, key)
        await pilot.press("R")
        await rec.until(lambda: any("cannot be found" in n[0] for n in notes))
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, BatchesScreen)
        message, title, severity, markup = notes[-1]
        assert "cannot be found" in message and severity == "warning" and markup is False
        assert not rec.of(RetryPlanned)


async def test_cancel_asks_first_then_changes_the_status(known):
    engine, sim = known
    async with dashboard(engine, sim) as (app, pilot, rec):
        key = pick(app, lambda b: b.account == "acme-prod" and b.status is Status.IN_PROGRESS)
        await select(app, pilot, key)

        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")  # no: nothing is sent
        assert isinstance(app.screen, BatchesScreen) and not [w for w in app.workers if w.group == "cancel"]

        await pilot.press("c", "y")
        await rec.until(lambda: rec.of(CancelRequested))
        await pilot.pause()
        assert app.batches[key].status is Status.CANCELLING
        status_cell = app.screen.query_one(BatchTable).cell(key, "status")
        assert status_cell.plain == "cancelling"
        client = engine.client(engine.settings.account(key[0]))
        assert (await client.get_batch(key[1])).status in (Status.CANCELLING, Status.CANCELLED)


async def test_copy_id(known, notes):
    engine, sim = known
    async with dashboard(engine, sim) as (app, pilot, _):
        key = pick(app, lambda b: b.account == "gemini-lab")
        await select(app, pilot, key)
        await pilot.press("y")
        assert app.clipboard == key[1]
        assert key[1] in notes[-1][0]


async def test_open_console_says_when_there_is_none_and_opens_the_url_when_there_is(known, notes, monkeypatch):
    engine, sim = known
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    async with dashboard(engine, sim) as (app, pilot, rec):
        key = pick(app, lambda b: b.account == "acme-prod")

        async def press_o() -> None:
            shown = len(notes)
            await select(app, pilot, key)
            await pilot.press("o")
            await rec.until(lambda: len(notes) > shown)

        await press_o()  # a simulator is not OpenAI's console
        assert "no console page" in notes[-1][0] and not opened

        client = engine.client(engine.settings.account("acme-prod"))
        monkeypatch.setattr(type(client), "console_url", lambda self, batch: f"https://console.example/{batch.id}")
        await press_o()
        assert opened == [f"https://console.example/{key[1]}"]


async def test_footer_and_palette_offer_only_what_applies(known):
    engine, sim = known
    async with dashboard(engine, sim) as (app, pilot, _):
        running = pick(app, lambda b: b.status is Status.IN_PROGRESS and b.counts.live)
        finished = pick(app, lambda b: b.status is Status.COMPLETED and b.counts.failed and b.result_files)

        async def offered(key) -> tuple[set[str], list[str]]:
            await select(app, pilot, key)
            keys = {k for k, a in app.screen.active_bindings.items() if a.enabled}
            titles = [hit.text async for hit in BatchCommands(app.screen).discover()]
            return keys, titles

        keys, titles = await offered(running)
        assert "c" in keys and "f" not in keys and "R" not in keys and "E" not in keys
        assert titles == ["Cancel batch", "Copy batch id", "Open in the provider's console"]

        keys, titles = await offered(finished)
        assert {"f", "R", "E"} <= keys and "c" not in keys
        assert titles == ["Fetch results", "Retry failed items", "Retry failed items, request errors too",
                          "Copy batch id", "Open in the provider's console"]
        searched = [hit.text async for hit in BatchCommands(app.screen).search("fetch")]
        assert searched == ["Fetch results"]

        # Through the palette itself: choose a command by typing.
        await pilot.press("ctrl+p", *"Copy batch id")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert app.clipboard == finished[1]


async def test_a_failing_worker_is_a_toast_not_a_crash(known, notes, monkeypatch):
    engine, sim = known

    async def broken(*args, **kwargs):
        raise ProviderError("results server said [bold red]no[/]", account="acme-prod", status_code=503)

    monkeypatch.setattr("batchtui.core.fetch.fetch_results", broken)
    async with dashboard(engine, sim) as (app, pilot, rec):
        key = pick(app, lambda b: bool(b.result_files))
        await select(app, pilot, key)
        await pilot.press("f")
        await rec.until(lambda: rec.of(FetchDone) and any("[bold red]no[/]" in n[0] for n in notes))
        await pilot.pause()
        assert app.is_running
        message, title, severity, markup = notes[-1]
        assert "[bold red]no[/]" in message and severity == "warning" and markup is False
        assert title.startswith("Fetch results of")
        assert rec.of(FetchDone)[0].result is None
        assert not app.screen.query_one(ActivityBar).display


def test_retry_applies_only_to_ended_batches_with_something_to_resend():
    from datetime import UTC, datetime

    from batchtui.core.models import Batch, Provider, RequestCounts
    from batchtui.ui.batch_actions import applies

    def batch(status: Status, **counts) -> Batch:
        return Batch(account="a", provider=Provider.OPENAI, id="b", status=status, provider_status=status.value,
                     created_at=datetime(2025, 1, 1, tzinfo=UTC), counts=RequestCounts(total=10, **counts))

    assert applies("retry", batch(Status.COMPLETED, succeeded=9, failed=1))
    assert not applies("retry", batch(Status.COMPLETED, succeeded=10, failed=0))
    assert applies("retry", batch(Status.EXPIRED, succeeded=3))
    assert not applies("retry", batch(Status.IN_PROGRESS, failed=3))
    assert applies("cancel_batch", batch(Status.IN_PROGRESS)) and not applies("cancel_batch", batch(Status.CANCELLING))
    assert not applies("fetch", batch(Status.COMPLETED, succeeded=10))  # no result files listed


async def test_retry_confirmed_twice_sends_one_child(known, notes):
    """R pressed twice opens two dialogs; confirming both must not make two batches."""
    engine, sim = known
    async with dashboard(engine, sim) as (app, pilot, rec):
        key = pick(app, lambda b: b.account == "acme-prod" and b.status is Status.COMPLETED and b.counts.failed)
        await select(app, pilot, key)
        await pilot.press("R")
        await rec.until(lambda: len(rec.of(RetryPlanned)) == 1)
        await pilot.pause()
        app.pop_screen()  # replace the first dialog by two for the same plan, as two presses of R make
        first = rec.of(RetryPlanned)[0]
        app.on_retry_planned(first)
        app.on_retry_planned(first)
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert len(engine.ledger.children(key[0], key[1])) == 1
        # The second confirmation is refused with a reason: by the dashboard while the first is
        # still sending, by the engine once the first child exists.
        assert any("already being sent" in n[0] or "already has a retry running" in n[0] for n in notes)
