"""The account health strip: one badge per account (ok, rate limited, auth error, unreachable,
no key), then the last error of each unhealthy account, as plain text."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich.text import Text

from batchtui.core.polling import AccountStatus, Health
from batchtui.core.text import printable
from batchtui.ui.widgets.text_line import TextLine

LABELS = {
    Health.PENDING: "…",
    Health.OK: "ok",
    Health.RATE_LIMITED: "rate limited",
    Health.AUTH_ERROR: "auth error",
    Health.UNREACHABLE: "unreachable",
    Health.NO_KEY: "no key",
    Health.ERROR: "error",
}
# Which status colour (theme variable) each health borrows.
COLOR_OF = {
    Health.PENDING: "validating",
    Health.OK: "completed",
    Health.RATE_LIMITED: "cancelling",
    Health.AUTH_ERROR: "failed",
    Health.UNREACHABLE: "expired",
    Health.NO_KEY: "cancelled",
    Health.ERROR: "failed",
}
ERROR_LIMIT = 160  # a provider may send a page of HTML as its error


def health_text(names: Iterable[str], statuses: Mapping[str, AccountStatus], colors: Mapping[str, str]) -> Text:
    names = list(names)
    text = Text()
    if not names:
        return Text("No accounts yet: press a to add one.", style="dim")
    problems: list[AccountStatus] = []
    for index, name in enumerate(names):
        status = statuses.get(name)
        health = status.health if status else Health.PENDING
        if index:
            text.append("   ")
        text.append("● ", style=colors.get(COLOR_OF[health], ""))
        text.append(printable(name))
        text.append(f" {LABELS[health]}", style="dim" if health is Health.OK else "bold")
        if health is Health.RATE_LIMITED and status and status.next_poll_in:
            text.append(f" (retry in {status.next_poll_in:.0f}s)", style="dim")
        if status is not None and status.last_error and health not in (Health.OK, Health.PENDING):
            problems.append(status)
    for status in problems:
        # Engine errors already start with "<account>: "; say the name once.
        error = (status.last_error or "").removeprefix(f"{status.account}: ")
        text.append("\n")
        text.append(printable(status.account), style="bold")
        text.append(": ")
        text.append(printable(error, limit=ERROR_LIMIT))
    return text


class HealthStrip(TextLine):
    """Told the statuses after every poll; most polls change only times it does not show."""

    def show_health(self, names: Iterable[str], statuses: Mapping[str, AccountStatus],
                    colors: Mapping[str, str]) -> None:
        self.show(health_text(names, statuses, colors))
