"""Saving over a hand-edited config.toml edits it: the user's comments, blank lines, key order and
spelling survive, and only what the settings changed is changed."""

from __future__ import annotations

import difflib
import io
import os
import re
import stat
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchtui.core.accounts import Account
from batchtui.core.config import (
    Settings,
    UiSettings,
    add_account,
    load_settings,
    parse_settings,
    remove_account,
    save_settings,
)
from batchtui.core.config_edit import edit_settings_text
from batchtui.core.errors import ConfigError

SOURCE = Path("/somewhere/config.toml")

HAND = """\
# batchtui settings, kept by hand
# (this header survives every save)

downloads_dir = "~/batch-results"  # the big disk

[ui]
bell = false                  # the office is quiet
theme = "batchtui-dark"       # the theme picker changes this

[poll]
idle_seconds = 120   # cheaper than the default

[[accounts]]
provider = "openai"   # my key order, not the model's
name = "work"
project = "proj_1"

# the lab account: a shared Anthropic workspace
[[accounts]]
name = "lab"
provider = "anthropic"
poll_active_seconds = 5

# gemini, for the cheap runs
[[accounts]]
name = "g"
provider = "gemini"
default_model = "gemini-2.5-flash"

  # prices I negotiated, spelled my way
[prices."gemini-2.5-flash"]
input = 0.30
output = 2.50   # per million
"""
WORK = """\
[[accounts]]
provider = "openai"   # my key order, not the model's
name = "work"
project = "proj_1"
"""
GEMINI = """\
[[accounts]]
name = "g"
provider = "gemini"
default_model = "gemini-2.5-flash"
"""
PRICES = """\
  # prices I negotiated, spelled my way
[prices."gemini-2.5-flash"]
input = 0.30
output = 2.50   # per million
"""


def changed_lines(before: str, after: str) -> tuple[Counter, Counter]:
    """(lines removed, lines added), blank lines aside; a moved line shows up in both."""
    removed, added = Counter(), Counter()
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line[2:].strip() and line[:2] in ("- ", "+ "):
            (removed if line[0] == "-" else added)[line[2:]] += 1
    return removed, added


def comments(text: str) -> list[str]:
    return [line[line.index("#"):] for line in text.splitlines() if "#" in line]


def full_line_comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


def saved(home, settings: Settings) -> str:
    save_settings(home, settings)
    text = home.config_file.read_text(encoding="utf-8")
    assert parse_settings(text, SOURCE) == settings
    assert load_settings(home) == settings
    return text


def test_add_remove_and_a_theme_change_edit_only_their_own_lines(home):
    home.config_dir.mkdir(parents=True)
    home.config_file.write_text(HAND, encoding="utf-8")

    settings = add_account(load_settings(home), Account(name="new", provider="openai"))
    added = saved(home, settings)
    assert changed_lines(HAND, added) == (Counter(), Counter(['[[accounts]]', 'name = "new"', 'provider = "openai"']))
    assert added.startswith(HAND.split(PRICES)[0])  # everything above the new table, byte for byte
    # The new table goes after the last account, below the comment that belongs to [prices].
    assert added.endswith('[[accounts]]\nname = "new"\nprovider = "openai"\n\n' + PRICES)

    settings = remove_account(settings, "lab")
    removed = saved(home, settings)
    assert changed_lines(added, removed) == (
        Counter(['[[accounts]]', 'name = "lab"', 'provider = "anthropic"', "poll_active_seconds = 5"]),
        Counter(),
    )
    # The comment that followed lab's last key was above the next table, and still is.
    assert "# gemini, for the cheap runs\n" + GEMINI in removed

    settings = settings.model_copy(update={"ui": settings.ui.model_copy(update={"theme": "nord"})})
    themed = saved(home, settings)
    assert changed_lines(removed, themed) == (
        Counter(['theme = "batchtui-dark"       # the theme picker changes this']),
        Counter(['theme = "nord"       # the theme picker changes this']),
    )

    for text in (added, removed, themed):
        assert full_line_comments(HAND) == full_line_comments(text)  # every one, in order
        assert comments(HAND) == comments(text)
        assert WORK in text and GEMINI in text and PRICES in text  # untouched tables, byte for byte
        assert text.startswith("# batchtui settings, kept by hand\n# (this header survives every save)\n\n")


def test_an_unchanged_save_changes_nothing(home):
    home.config_dir.mkdir(parents=True)
    home.config_file.write_text(HAND, encoding="utf-8")
    assert saved(home, load_settings(home)) == HAND


def test_removing_the_first_or_the_only_account_keeps_the_comments_after_it(home):
    text = (
        "[[accounts]]\nname = \"a\"\nprovider = \"openai\"\n\n# b: the team's\n"
        "[[accounts]]\nname = \"b\"\nprovider = \"openai\"\n\n# prices below\n"
        "[prices.m]\ninput = 1\n"
    )
    settings = parse_settings(text, SOURCE)
    first_gone = edit_settings_text(text, remove_account(settings, "a"), SOURCE)
    assert first_gone == "\n# b: the team's\n[[accounts]]\nname = \"b\"\nprovider = \"openai\"\n\n# prices below\n" \
                         "[prices.m]\ninput = 1\n"
    none_left = edit_settings_text(first_gone, remove_account(remove_account(settings, "a"), "b"), SOURCE)
    assert full_line_comments(none_left) == ["# b: the team's", "# prices below"]
    assert none_left.endswith("# prices below\n[prices.m]\ninput = 1\n")
    assert parse_settings(none_left, SOURCE) == Settings(prices={"m": {"input": 1}})


def test_a_theme_is_added_where_the_user_keeps_ui_settings():
    # Dotted keys, an inline table and a [ui.keymap]-only file each get the theme in their own style.
    for text, expected in (
        ('ui.bell = false  # quiet\n', 'ui.bell = false  # quiet\nui.theme = "nord"\n'),
        ('ui = { bell = false }\n', 'ui = { bell = false, theme = "nord"}\n'),
        ('[ui]\nbell = false\n\n# poll next\n[poll]\nactive_seconds = 3\n',
         '[ui]\nbell = false\ntheme = "nord"\n\n# poll next\n[poll]\nactive_seconds = 3\n'),
    ):
        settings = parse_settings(text, SOURCE)
        settings = settings.model_copy(update={"ui": settings.ui.model_copy(update={"theme": "nord"})})
        assert edit_settings_text(text, settings, SOURCE) == expected


def test_an_account_that_follows_poll_stays_unwritten_and_inline_accounts_stay_inline():
    text = 'accounts = [{ name = "a", provider = "openai" }]  # mine\n'
    settings = add_account(parse_settings(text, SOURCE), Account(name="b", provider="gemini", poll_idle_seconds=60))
    edited = edit_settings_text(text, settings, SOURCE)
    assert edited.startswith('accounts = [{ name = "a", provider = "openai" }, ')
    assert "poll_active_seconds" not in edited and "poll_idle_seconds = 60" in edited
    assert edited.endswith("]  # mine\n")
    assert parse_settings(edited, SOURCE) == settings


@given(st.text(max_size=30), st.text(max_size=30))
def test_any_string_survives_an_edit(theme, keymap_key):
    without_accounts = HAND.split("[[accounts]]")[0]
    settings = Settings(ui=UiSettings(theme=theme or "x", keymap={keymap_key: theme}))
    assert parse_settings(edit_settings_text(without_accounts, settings, SOURCE), SOURCE) == settings


# --- what is never written ---------------------------------------------------------------------


def test_a_file_that_is_not_toml_is_not_overwritten(home):
    home.config_dir.mkdir(parents=True)
    broken = '# mine\n[ui]\ntheme = "nord\n'
    home.config_file.write_text(broken, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(home.config_file))}:3:\d+: invalid TOML"):
        save_settings(home, Settings(accounts=[Account(name="a", provider="openai")]))
    assert home.config_file.read_text(encoding="utf-8") == broken


def test_a_file_with_a_key_in_it_is_not_overwritten(home):
    home.config_dir.mkdir(parents=True)
    with_key = '[[accounts]]\nname = "a"\nprovider = "openai"\napi_key = "sk-not-a-real-one"\n'
    home.config_file.write_text(with_key, encoding="utf-8")
    where = re.escape(str(home.config_file))
    with pytest.raises(ConfigError, match=rf"^{where}:4: accounts\[0\]\.api_key: API keys do not belong"):
        save_settings(home, Settings())
    assert home.config_file.read_text(encoding="utf-8") == with_key


@pytest.mark.parametrize("existing", [None, "# mine\n"])
def test_key_like_settings_are_refused_on_the_way_out(home, existing):
    if existing is not None:
        home.config_dir.mkdir(parents=True)
        home.config_file.write_text(existing, encoding="utf-8")
    with pytest.raises(ConfigError, match="not saved.*\n.*prices.m.token: API keys do not belong"):
        save_settings(home, Settings(prices={"m": {"token": 1.0}}))
    assert (home.config_file.read_text(encoding="utf-8") if home.config_file.exists() else None) == existing


def test_an_edit_that_would_read_back_as_other_settings_is_not_written(home, monkeypatch):
    home.config_dir.mkdir(parents=True)
    home.config_file.write_text(HAND, encoding="utf-8")
    # A stand-in for a bug in the editor: it forgets the change.
    monkeypatch.setattr("batchtui.core.config_edit.edit_settings_text", lambda text, settings, source: text)
    with pytest.raises(ConfigError, match="not saved, the new text would read back as other settings"):
        save_settings(home, remove_account(load_settings(home), "lab"))
    assert home.config_file.read_text(encoding="utf-8") == HAND


def test_an_edit_keeps_the_file_private_and_leaves_no_temp_file(home):
    home.config_dir.mkdir(parents=True)
    home.config_file.write_text(HAND, encoding="utf-8")
    os.chmod(home.config_file, 0o644)  # whatever the user did to it, a save makes it private again
    save_settings(home, remove_account(load_settings(home), "lab"))
    assert stat.S_IMODE(home.config_file.stat().st_mode) == 0o600
    assert [p.name for p in home.config_dir.iterdir()] == ["config.toml"]


# --- the writers -------------------------------------------------------------------------------


def test_cli_accounts_add_and_remove_keep_the_comments(home, file_keyring, monkeypatch):
    from batchtui.cli.main import main

    home.config_dir.mkdir(parents=True)
    home.config_file.write_text(HAND, encoding="utf-8")
    monkeypatch.setattr("sys.stdin", io.StringIO("sk-test-not-real\n"))
    assert main(["accounts", "add", "new", "--provider", "openai", "--key-stdin", "--no-check"]) == 0
    assert main(["accounts", "remove", "work"]) == 0
    text = home.config_file.read_text(encoding="utf-8")
    assert [a.name for a in load_settings(home).accounts] == ["lab", "g", "new"]
    assert full_line_comments(text) == full_line_comments(HAND)
    # Every comment but the one on a line of the removed table.
    assert comments(text) == [c for c in comments(HAND) if c != "# my key order, not the model's"]
    assert GEMINI in text and PRICES in text
