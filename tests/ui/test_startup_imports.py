"""What the dashboard loads before its first frame: only what that frame needs. The HTTP stack,
the keyring, JSON output and the helpers of downloads and console links load later, when
first used; each was milliseconds of every start-up."""

from __future__ import annotations

import os
import subprocess
import sys

LATER = {"httpx", "keyring", "msgspec", "humanize", "webbrowser", "statistics", "batchtui.cli.render"}

CODE = """
import asyncio, sys
from textual import events
from batchtui.core.engine import Engine
from batchtui.ui.app import make_app

loaded = []

def hook(message):
    if isinstance(message, events.Ready) and not loaded:
        loaded.append(set(sys.modules))

async def main():
    engine = Engine.open()
    app = make_app(engine, poll=False)
    async with app.run_test(headless=True, size=(120, 40), message_hook=hook) as pilot:
        await pilot.pause()
    await engine.aclose()
    engine.close_ledger()

asyncio.run(main())
print(sorted(set(sys.argv[1:]) & loaded[0]))
print(len([name for name in loaded[0] if name.startswith("batchtui.ui.")]))
"""


def test_the_first_frame_loads_none_of_what_comes_later(tmp_path):
    env = {**os.environ, "BATCHTUI_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", CODE, *sorted(LATER)], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    early, ui_modules = result.stdout.strip().splitlines()[-2:]
    assert early == "[]"
    assert int(ui_modules) > 5  # the dashboard really was made and painted
