"""What the dashboard's reliability tests share: waiting on dispatched messages, capturing
toasts, reading what would be written to the terminal, and measuring memory.

No helper here waits on a wall clock: `Messages.until` wakes when a message hook sees the
condition come true, with a timeout only as a safety net for a hung test.
"""

from __future__ import annotations

import asyncio
import io
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console

SAFETY_NET = 60.0  # seconds; a hung test fails instead of hanging, nothing waits this long on purpose


class Messages:
    """A `run_test(message_hook=...)` that keeps every dispatched message and wakes waiters.

    The hook runs just before the message's handler. A synchronous handler runs to its end before
    the waiting test resumes, so when `until()` returns the message has been handled.
    """

    def __init__(self, on_message: Callable[[object], None] | None = None, *, keep: bool = True) -> None:
        self.seen: list = []
        self.keep = keep  # False: a long run keeps nothing (the hook sees every event of every widget)
        self.on_message = on_message
        self._waiting: list[tuple[Callable[[], bool], asyncio.Event]] = []

    def __call__(self, message) -> None:
        if self.keep:
            self.seen.append(message)
        if self.on_message is not None:
            self.on_message(message)
        for condition, event in list(self._waiting):
            if condition():
                event.set()

    def of(self, kind: type) -> list:
        return [m for m in self.seen if isinstance(m, kind)]

    async def until(self, condition: Callable[[], bool], timeout: float = SAFETY_NET) -> None:
        if condition():
            return
        event = asyncio.Event()
        entry = (condition, event)
        self._waiting.append(entry)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        finally:
            self._waiting.remove(entry)


@dataclass(frozen=True)
class Toast:
    message: str
    title: str
    severity: str
    markup: bool


def capture_toasts(monkeypatch) -> list[Toast]:
    """Every `notify` call of the dashboard, in order (the toast is still shown)."""
    from batchtui.ui.app import BatchtuiApp

    shown: list[Toast] = []
    original = BatchtuiApp.notify

    def notify(self, message, *, title="", severity="information", timeout=None, markup=True):
        shown.append(Toast(str(message), str(title), str(severity), bool(markup)))
        return original(self, message, title=title, severity=severity, timeout=timeout, markup=markup)

    monkeypatch.setattr(BatchtuiApp, "notify", notify)
    return shown


async def instant_sleep(_seconds: float) -> None:
    """The transport's retry back-off, without the wait (time here is the simulator's)."""


# --- what reaches the terminal ------------------------------------------------------------------


def terminal_frame(app) -> tuple[str, list]:
    """A full repaint of the current screen as a real driver would write it, and its segments.

    In headless mode Textual writes nothing, so this renders the same compositor update
    `App._display` hands the driver (export_screenshot reads the same private compositor;
    there is no public way to get at the bytes).
    """
    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", legacy_windows=False, safe_box=False)
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    segments = [segment for line in update.strips for strip in line for segment in strip]
    return update.render_segments(console), segments


def unsafe(text: str) -> list[str]:
    """Characters that could act on a terminal: C0/C1 controls (bar the newline), DEL, format
    characters (bidi overrides and isolates, zero-width marks) and lone surrogates."""
    return sorted({c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Cs")})


# --- memory -------------------------------------------------------------------------------------


def rss_mib() -> float:
    """This process's resident set size (Linux)."""
    with open(f"/proc/{os.getpid()}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")
