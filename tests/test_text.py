"""Provider text reaches a terminal only through `printable`: nothing in it can act."""

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from batchtui.core.text import printable


def test_escapes_and_markup_show_as_characters():
    hostile = "[bold red]x[/] \x1b[31mred\x1b[0m \x1b]8;;https://evil.example\x07link\x1b]8;;\x07 \u202egnp.exe"
    shown = printable(hostile)
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert "[bold red]x[/]" in shown  # markup is left as text (the UI never parses it)
    assert "\\x1b[31mred" in shown and "\\u202e" in shown


def test_newlines_and_tabs_cannot_break_a_table_row():
    assert printable("a\nb\tc\rd") == "a\\x0ab\\x09c\\x0dd"


def test_limit_cuts_long_text():
    assert len(printable("x" * 100_000, limit=100)) == 101


@given(st.text())
def test_no_control_or_format_character_survives(text):
    shown = printable(text)
    for char in shown:
        category = unicodedata.category(char)
        assert category not in ("Cc", "Cf", "Cs"), repr(char)
