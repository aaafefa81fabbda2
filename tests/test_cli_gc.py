"""The CLI runs a command with the cyclic garbage collector off (`ls`) or rarely passing
(the others), and hands the process back as it found it: tests and embedders call `main`
in-process."""

from __future__ import annotations

import gc

import pytest

from batchtui.cli import main as cli_main
from batchtui.core.engine import Engine
from batchtui.core.errors import NotFoundError


@pytest.mark.parametrize("command", [["ls", "--json"], ["show", "batch_x", "--json"]])
def test_a_command_leaves_the_collector_as_it_found_it(tmp_path, monkeypatch, command):
    monkeypatch.setenv("BATCHTUI_HOME", str(tmp_path))
    seen: list[tuple[bool, int]] = []

    async def fake_list_accounts(self, accounts, *, listed=None):
        seen.append((gc.isenabled(), gc.get_threshold()[0]))
        return [], []

    async def fake_locate(self, batch_id, account_name=None):
        seen.append((gc.isenabled(), gc.get_threshold()[0]))
        raise NotFoundError("no such batch")

    monkeypatch.setattr(Engine, "list_accounts", fake_list_accounts)
    monkeypatch.setattr(Engine, "locate", fake_locate)
    before = gc.get_threshold()
    gc.set_threshold(700, *before[1:])
    try:
        cli_main.main(command)
        assert gc.isenabled() and gc.get_threshold() == (700, *before[1:])
    finally:
        gc.set_threshold(*before)
    assert seen == ([(False, 700)] if command[0] == "ls" else [(True, 20_000)])
