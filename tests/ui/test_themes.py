"""Themes: built-in and user files load, status colours are theme variables, problems are one
toast, and the choice persists (but never from the demo)."""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st
from textual.app import App, ComposeResult
from textual.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.notifications import Notify
from textual.widgets import Static

from batchtui.core.config import Settings, UiSettings, load_settings, save_settings
from batchtui.core.accounts import Account
from batchtui.core.paths import Paths
from batchtui.ui.theming import (
    DEFAULT_THEME,
    STATUS_VARIABLES,
    ThemeFile,
    builtin_themes_dir,
    choose_theme,
    install_themes,
    load_theme_dir,
    status_color,
    start_in_theme,
    status_variable_defaults,
)

REPO = Path(__file__).resolve().parents[2]
STATUS_NAMES = [name.removeprefix("status-") for name in STATUS_VARIABLES]


class ThemedApp(App):
    """The smallest app that installs themes the way the dashboard does: the theme is chosen
    and made current in the constructor, and installed (toast, persistence) on mount.
    `on_mount_only` sets it on mount instead, the way Textual apps usually do."""

    CSS = "#probe { color: $status-failed; }"

    def __init__(self, paths: Paths, settings: Settings, *, demo: bool = False, on_mount_only: bool = False) -> None:
        super().__init__()
        self.paths = paths
        self.settings = settings
        self.demo = demo
        self.choice = None
        if not on_mount_only:
            self.choice = choose_theme(self, paths, settings)
            start_in_theme(self, self.choice)

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return status_variable_defaults()

    def compose(self) -> ComposeResult:
        yield Static("probe", id="probe")
        yield Static("[red]terminal red[/] [ansi_bright_blue]and blue[/]", id="ansi")

    def on_mount(self) -> None:
        install_themes(self, self.paths, self.settings, self.choice)


def run(app: ThemedApp, toasts: list[Notify]):
    def hook(message):
        if isinstance(message, Notify):
            toasts.append(message)

    return app.run_test(size=(80, 24), message_hook=hook)


def write_theme(folder: Path, filename: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(text, encoding="utf-8")
    return path


async def settle(pilot) -> None:
    # The theme signal is delivered with call_next; the save is a worker.
    await pilot.pause()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()


# --- the files ---------------------------------------------------------------------------------


def test_builtin_theme_files_are_at_the_repo_top_and_each_sets_every_status_colour():
    assert builtin_themes_dir() == REPO / "themes"
    files = sorted((REPO / "themes").glob("*.toml"))
    assert len(files) >= 3
    for path in files:
        model = ThemeFile.model_validate(tomllib.loads(path.read_text()))
        # Set in the file itself, not derived: built-ins are the reference palettes.
        assert all(getattr(model.status, name) for name in STATUS_NAMES), path.name
        assert model.name == path.stem, "a built-in's file is named after its theme"


def test_the_dark_and_light_builtins_really_are_dark_and_light():
    loaded = {t.theme.name: t.theme for t in load_theme_dir(REPO / "themes")[0]}
    assert loaded["batchtui-dark"].dark is True
    assert loaded["batchtui-light"].dark is False
    assert Color.parse(loaded["batchtui-light"].background).brightness > 0.5


@hsettings(max_examples=40, deadline=None)
@given(st.lists(st.from_regex(r"#[0-9a-f]{6}", fullmatch=True), min_size=1, max_size=4), st.booleans())
def test_a_palette_only_theme_gets_a_parseable_colour_for_every_status(colours, dark):
    fields = ["primary", "warning", "error", "background"]
    model = ThemeFile.model_validate({"name": "p", "dark": dark, **dict(zip(fields, colours))})
    theme = model.to_theme()
    for name in STATUS_VARIABLES:
        Color.parse(theme.variables[name])


# --- installing into an app --------------------------------------------------------------------


async def test_builtins_register_and_the_configured_theme_applies_with_status_variables(home):
    toasts: list[Notify] = []
    app = ThemedApp(home, Settings(ui=UiSettings(theme="batchtui-solarized")))
    async with run(app, toasts) as pilot:
        await settle(pilot)
        builtin_names = {p.stem for p in (REPO / "themes").glob("*.toml")}
        assert builtin_names <= set(app.available_themes)
        assert app.theme == "batchtui-solarized"
        # Every theme the picker offers (Textual's own too) defines all eight status variables.
        for theme in app.available_themes.values():
            assert set(STATUS_VARIABLES) <= set(theme.variables), theme.name
        # ...and TCSS can use them.
        solarized = app.get_theme("batchtui-solarized")
        assert app.query_one("#probe").styles.color == Color.parse(solarized.variables["status-failed"])
        assert status_color(app, "failed") == Color.parse(solarized.variables["status-failed"]).hex
        assert toasts == []


async def test_a_textual_theme_chosen_in_config_has_its_status_colours_from_the_first_frame(home):
    # Textual's own themes get their status colours after the first frame, except the one
    # shown: that one has them before anything is painted.
    painted: list[str] = []

    class Probe(ThemedApp):
        def on_ready(self) -> None:
            painted.append(self.query_one("#probe").styles.color.hex)

    app = Probe(home, Settings(ui=UiSettings(theme="nord")))
    async with run(app, []) as pilot:
        await settle(pilot)
        nord = app.get_theme("nord")
        assert painted == [Color.parse(nord.variables["status-failed"]).hex]


@pytest.mark.parametrize("name", ["batchtui-light", "batchtui-high-contrast", "nord", "ansi-light"])
async def test_a_theme_set_in_the_constructor_looks_exactly_as_one_set_by_textual_on_mount(home, name):
    # start_in_theme does by hand what Textual's theme watcher does; the two must not drift
    # apart (light themes change the ANSI palette, ansi-light keeps the terminal's own).
    looks = []
    for on_mount_only in (False, True):
        app = ThemedApp(home, Settings(ui=UiSettings(theme=name)), on_mount_only=on_mount_only)
        async with run(app, []) as pilot:
            await settle(pilot)
            red = Segment("x", Style(color="red"))
            filtered = [f.apply([red], app.current_theme.to_color_system().background)
                        for f in app.get_line_filters()]
            looks.append({"theme": app.theme, "classes": set(app.classes), "variables": dict(app.theme_variables),
                          "probe": app.query_one("#probe").styles.color, "filtered": filtered,
                          "screen": app.export_screenshot()})
    early, on_mount = looks
    assert early["theme"] == name
    assert early == on_mount


async def test_the_stylesheets_are_parsed_once_before_the_first_frame(home, monkeypatch):
    # Setting the theme on mount parsed every stylesheet three times (default variables, the
    # theme's, and again after the theme change emptied the parse cache).
    import textual.css.stylesheet as stylesheet

    parsed: list[str] = []
    real_parse = stylesheet.parse

    def counting(scope, css, read_from, *args, **kwargs):
        parsed.append(str(read_from))
        return real_parse(scope, css, read_from, *args, **kwargs)

    monkeypatch.setattr(stylesheet, "parse", counting)
    app = ThemedApp(home, Settings(ui=UiSettings(theme="batchtui-light")))
    async with run(app, []) as pilot:
        await settle(pilot)
        assert app.query_one("#probe").styles.color == Color.parse(
            app.get_theme("batchtui-light").variables["status-failed"])
    counts = Counter(parsed)
    ours = [source for source in counts if "ThemedApp.CSS" in source or "App.DEFAULT_CSS" in source]
    assert len(ours) == 2 and all(counts[source] == 1 for source in ours), counts


async def test_status_color_follows_the_current_theme(home):
    app = ThemedApp(home, Settings())
    async with run(app, []) as pilot:
        dark = status_color(app, "completed")
        app.theme = "batchtui-light"
        await settle(pilot)
        assert status_color(app, "completed") != dark
        assert status_color(app, "completed") == Color.parse(
            app.get_theme("batchtui-light").variables["status-completed"]).hex


async def test_a_user_theme_overrides_a_builtin_and_gets_missing_status_colours(home):
    write_theme(home.themes_dir, "mine.toml", 'name = "batchtui-dark"\nprimary = "#123456"\n'
                '[status]\nfailed = "#ff00ff"\n')
    write_theme(home.themes_dir, "extra.toml", 'name = "my-own"\nprimary = "#abcdef"\ndark = false\n')
    app = ThemedApp(home, Settings())
    async with run(app, []) as pilot:
        await settle(pilot)
        overridden = app.get_theme("batchtui-dark")
        assert overridden.primary == "#123456"
        assert overridden.variables["status-failed"] == "#ff00ff"
        assert set(STATUS_VARIABLES) <= set(overridden.variables)
        assert "my-own" in app.available_themes
        assert app.query_one("#probe").styles.color == Color.parse("#ff00ff")


async def test_bad_theme_files_are_reported_in_exactly_one_toast_and_the_rest_load(home):
    write_theme(home.themes_dir, "broken.toml", 'name = "broken"\nprimary = \n')  # invalid TOML
    write_theme(home.themes_dir, "typo.toml", 'name = "typo"\nprimray = "#ffffff"\n')  # unknown key
    write_theme(home.themes_dir, "colour.toml", 'name = "colour"\nprimary = "not-a-colour"\n')
    write_theme(home.themes_dir, "good.toml", 'name = "good"\nprimary = "#00ff00"\n')
    toasts: list[Notify] = []
    app = ThemedApp(home, Settings())
    async with run(app, toasts) as pilot:
        await settle(pilot)
        assert len(toasts) == 1
        toast = toasts[0].notification
        assert toast.severity == "warning"
        assert toast.markup is False  # file names and messages are shown literally
        for name in ("broken.toml", "typo.toml", "colour.toml"):
            assert name in toast.message
        assert "good.toml" not in toast.message
        assert "good" in app.available_themes
        assert not {"broken", "typo", "colour"} & set(app.available_themes)
        assert app.theme == DEFAULT_THEME


async def test_an_unknown_configured_theme_falls_back_with_one_toast_and_is_not_overwritten(home):
    save_settings(home, Settings(ui=UiSettings(theme="gone-theme")))
    toasts: list[Notify] = []
    app = ThemedApp(home, load_settings(home))
    async with run(app, toasts) as pilot:
        await settle(pilot)
        assert app.theme == DEFAULT_THEME
        assert len(toasts) == 1 and "gone-theme" in toasts[0].notification.message
    # The fallback is for this run only: the user's choice stays in the file.
    assert load_settings(home).ui.theme == "gone-theme"


async def test_choosing_a_theme_persists_it_and_keeps_the_rest_of_the_config(home):
    save_settings(home, Settings(accounts=[Account(name="work", provider="openai")]))
    app = ThemedApp(home, load_settings(home))
    async with run(app, []) as pilot:
        await settle(pilot)
        assert not _config_theme_line(home)  # starting does not write anything
        app.theme = "batchtui-light"
        await settle(pilot)
        assert load_settings(home).ui.theme == "batchtui-light"
        app.theme = "batchtui-solarized"
        await settle(pilot)
    saved = load_settings(home)
    assert saved.ui.theme == "batchtui-solarized"
    assert [a.name for a in saved.accounts] == ["work"]


async def test_the_theme_picker_offers_our_themes_and_its_choice_persists(home):
    app = ThemedApp(home, Settings())
    async with run(app, []) as pilot:
        await settle(pilot)
        app.action_change_theme()  # what the app's `t` binding opens
        await pilot.pause()
        await pilot.press(*"batchtui-solarized")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        assert app.theme == "batchtui-solarized"
    assert load_settings(home).ui.theme == "batchtui-solarized"


async def test_the_demo_never_writes_the_theme_choice(home):
    app = ThemedApp(home, Settings(), demo=True)
    async with run(app, []) as pilot:
        await settle(pilot)
        app.theme = "batchtui-light"
        await settle(pilot)
        assert app.theme == "batchtui-light"
    assert not home.config_file.exists()


async def test_an_unwritable_config_is_a_toast_not_a_crash(home):
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text("[ui\n")  # broken TOML: never overwrite what the user is editing
    toasts: list[Notify] = []
    app = ThemedApp(home, Settings())
    async with run(app, toasts) as pilot:
        await settle(pilot)
        app.theme = "batchtui-light"
        await settle(pilot)
        assert app.is_running
        assert len(toasts) == 1 and "not saved" in toasts[0].notification.message
    assert home.config_file.read_text() == "[ui\n"


def _config_theme_line(home: Paths) -> bool:
    return home.config_file.exists() and "theme" in home.config_file.read_text()

