"""TextLine: told its text after every poll, it repaints only on a change, and asks the screen
for a layout pass only when its height could change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rich.text import Text
from textual.app import App, ComposeResult

from batchtui.core.polling import AccountStatus, Health
from batchtui.ui.widgets.health import HealthStrip
from batchtui.ui.widgets.text_line import TextLine

CSS = """
#fixed { height: 1; }
#auto { height: auto; }
#health { height: auto; }
"""


class Lines(App):
    CSS = CSS

    def compose(self) -> ComposeResult:
        yield TextLine(id="fixed")
        yield TextLine(id="auto")
        yield HealthStrip(id="health")


def _counting_refreshes(widget) -> list[bool]:
    """Every refresh the widget asks for, as its `layout` flag."""
    calls: list[bool] = []
    original = widget.refresh

    def refresh(*regions, layout: bool = False, **kw):
        calls.append(layout)
        return original(*regions, layout=layout, **kw)

    widget.refresh = refresh
    return calls


async def test_a_fixed_height_line_repaints_new_text_without_a_layout_pass():
    app = Lines()
    async with app.run_test(size=(60, 10)) as pilot:
        line = app.query_one("#fixed", TextLine)
        line.show(Text("first"))
        await pilot.pause()
        calls = _counting_refreshes(line)
        line.show(Text("second, longer"))
        await pilot.pause()
        assert calls == [False]
        assert line.render_line(0).text.startswith("second, longer")
        line.show(Text("second, longer"))  # the same again: nothing at all
        assert calls == [False]


async def test_an_auto_height_line_grows_and_shrinks_with_its_lines():
    app = Lines()
    async with app.run_test(size=(60, 10)) as pilot:
        line = app.query_one("#auto", TextLine)
        line.show(Text("one"))
        await pilot.pause()
        assert line.size.height == 1
        calls = _counting_refreshes(line)
        line.show(Text("two"))  # same height: no layout
        assert calls == [False]
        line.show(Text("one\ntwo\nthree"))
        assert calls == [False, True]
        await pilot.pause()
        assert line.size.height == 3
        calls.clear()
        line.show(Text("x" * 200))  # one line, but it wraps at 60 columns: measured
        assert calls == [True]
        await pilot.pause()
        assert line.size.height > 1


async def test_the_health_strip_ignores_what_it_does_not_show():
    app = Lines()
    colors: dict[str, str] = {}
    at = datetime(2026, 12, 1, tzinfo=UTC)
    async with app.run_test(size=(60, 10)) as pilot:
        strip = app.query_one(HealthStrip)
        strip.show_health(["a"], {"a": AccountStatus("a", Health.OK, None, at)}, colors)
        await pilot.pause()
        calls = _counting_refreshes(strip)
        # Each good poll brings a new last-good time, which the strip does not show.
        for seconds in range(1, 4):
            strip.show_health(["a"], {"a": AccountStatus("a", Health.OK, None, at + timedelta(seconds=seconds))},
                              colors)
        assert calls == []
        strip.show_health(["a"], {"a": AccountStatus("a", Health.AUTH_ERROR, "a: key refused", at)}, colors)
        await pilot.pause()
        assert calls  # a change it shows is painted
        assert "auth error" in strip.content.plain and "key refused" in strip.content.plain
