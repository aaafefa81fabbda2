"""The submit screen: validation lists problems by line and sends nothing; a valid file is sent
only after a confirmation, creates exactly one batch and reaches the app."""

from __future__ import annotations

import json

import pytest
from textual.notifications import Notify
from textual.widgets import Button, DataTable, Input, Select

from batchtui.demo import demo_engine
from batchtui.ui.screens.confirm import ConfirmScreen
from batchtui.ui.screens.submit import BatchSubmitted, InputChecked, SubmitScreen
from batchtui.screenshots import fixed_clock
from batchtui.ui.app import make_app

START = 1_767_268_800.0  # 2026-01-01T12:00:00Z


def dashboard(engine):
    return make_app(engine, clock=fixed_clock, poll=False, demo=True)


@pytest.fixture
async def demo(tmp_path):
    engine, sim = demo_engine(tmp_path / "home", manual_clock=True, start=START, seed=0)
    engine.sim = sim
    yield engine
    await engine.aclose()
    engine.close_ledger()


def request(custom_id: str, model: str = "gpt-5.4-mini") -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": "hi"}]}}


def write_jsonl(path, lines: list) -> str:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return str(path)


def sim_batches(engine, provider: str, account: str) -> set[str]:
    return set(engine.sim.world.workspace(provider, account).batches)


async def open_submit(pilot) -> SubmitScreen:
    await pilot.press("s")  # the app's binding
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, SubmitScreen)
    return screen


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def validate(pilot, screen: SubmitScreen, path: str) -> None:
    screen.query_one("#submit-path", Input).value = path
    await pilot.press("f5")
    await settle(pilot)


def problem_rows(screen: SubmitScreen) -> list[tuple[str, str]]:
    table = screen.query_one("#submit-problems", DataTable)
    return [tuple(cell.plain for cell in table.get_row(key)) for key in table.rows]


async def test_a_malformed_file_lists_each_bad_line_and_sends_nothing(demo, tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [
        request("ok-1"),
        "{not json",
        {**request("no-body"), "body": "text"},
        request("ok-1"),  # duplicate custom id
        request("ok-2"),
        {**request("streamed"), "method": "GET"},
    ])
    before = sim_batches(demo, "openai", "acme-prod")
    app = dashboard(demo)
    known = set(app.batches)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_submit(pilot)
        assert screen.query_one("#submit-account", Select).value == "acme-prod"
        await validate(pilot, screen, path)
        listed = problem_rows(screen)
        assert [line for line, _ in listed] == ["2", "3", "4", "6"]
        assert all(problem for _, problem in listed)
        assert "4 problems" in screen.query_one("#submit-summary").render().plain
        assert screen.query_one("#submit-send", Button).disabled
        await pilot.press("ctrl+s")  # the binding does nothing without a valid file
        await pilot.pause()
        assert app.screen is screen
    assert sim_batches(demo, "openai", "acme-prod") == before
    assert set(app.batches) == known


async def test_a_valid_file_is_sent_after_confirming_and_reaches_the_app(demo, tmp_path):
    path = write_jsonl(tmp_path / "good.jsonl", [request(f"req-{i}") for i in range(3)])
    before = sim_batches(demo, "openai", "acme-prod")
    messages: list = []
    app = dashboard(demo)
    known = set(app.batches)
    async with app.run_test(size=(160, 45), message_hook=messages.append) as pilot:
        screen = await open_submit(pilot)
        await validate(pilot, screen, path)
        checked = [m for m in messages if isinstance(m, InputChecked)]
        assert len(checked) == 1 and checked[0].validated is not None
        assert "3 requests" in screen.query_one("#submit-summary").render().plain
        assert problem_rows(screen) == []
        assert sim_batches(demo, "openai", "acme-prod") == before  # validating sent nothing

        await pilot.click("#submit-send")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "spends money" in app.screen.query_one("#confirm-body").render().plain
        await pilot.press("y")
        await settle(pilot)
        assert not isinstance(app.screen, SubmitScreen)  # back to where `s` was pressed

    created = sim_batches(demo, "openai", "acme-prod") - before
    assert len(created) == 1
    [batch_id] = created
    assert set(app.batches) - known == {("acme-prod", batch_id)}  # app.submitted showed it
    assert [m.submitted.batch.id for m in messages if isinstance(m, BatchSubmitted)] == [batch_id]
    toasts = [m.notification for m in messages if isinstance(m, Notify)]
    assert any(batch_id in t.message and t.markup is False for t in toasts)


async def test_back_in_the_confirmation_sends_nothing(demo, tmp_path):
    path = write_jsonl(tmp_path / "good.jsonl", [request("only")])
    before = sim_batches(demo, "openai", "acme-prod")
    app = dashboard(demo)
    known = set(app.batches)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_submit(pilot)
        await validate(pilot, screen, path)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen
    assert sim_batches(demo, "openai", "acme-prod") == before
    assert set(app.batches) == known


async def test_editing_after_validation_requires_validating_again(demo, tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", [request("a")])
    app = dashboard(demo)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_submit(pilot)
        await validate(pilot, screen, good)
        assert not screen.query_one("#submit-send", Button).disabled
        screen.query_one("#submit-path", Input).value = good + ".other"
        await pilot.pause()
        assert screen.query_one("#submit-send", Button).disabled


async def test_an_unreadable_path_is_reported_not_raised(demo, tmp_path):
    app = dashboard(demo)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_submit(pilot)
        await validate(pilot, screen, str(tmp_path / "missing.jsonl"))
        assert "Cannot validate" in screen.query_one("#submit-summary").render().plain
        assert app.is_running


async def test_the_model_field_is_offered_for_gemini_only(demo):
    app = dashboard(demo)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_submit(pilot)
        model = screen.query_one("#submit-model", Input)
        assert not model.display
        screen.query_one("#submit-account", Select).value = "gemini-lab"
        await pilot.pause()
        assert model.display
