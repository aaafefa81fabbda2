"""Themes are data: TOML files → a validated model → `textual.theme.Theme`.

Built-in themes are the files in the repository's top-level `themes/` folder; the user's are
`*.toml` files in `Paths.themes_dir` and override a built-in of the same name. A theme file:

    name = "my-theme"           # required: letters, digits, '-' and '_'
    dark = true                 # optional, default true
    primary = "#58a6ff"         # required; the rest of the palette is optional and, when
    secondary = "#1f6feb"       # missing, derived by Textual from `primary`:
    accent = "#d2a8ff"          #   secondary accent foreground background surface panel
    foreground = "#e6edf3"      #   success warning error
    background = "#0d1117"
    ...

    [status]                    # one colour per batch status (optional: derived if missing)
    validating = "#a5d6ff"      # validating in_progress finalizing cancelling
    failed = "#f85149"          # completed failed expired cancelled
    ...

    [variables]                 # optional: any other Textual theme variable
    footer-key-foreground = "#58a6ff"

Colours are anything Textual's `Color.parse` reads ("#rrggbb", "rgb(...)", "ansi_red"...).
Status colours become the theme variables `status-<status>` (`$status-failed` in TCSS).

Where the built-ins are found: `themes/` next to the `batchtui` package in a source checkout
(which `pip install -e .`, `make demo` and `make test` use), else `<prefix>/share/batchtui/themes`,
where a wheel install puts them (pyproject's `[tool.setuptools.data-files]`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import site
import sys
import sysconfig
import threading
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from textual.app import App
from textual.color import Color, ColorParseError
from textual.theme import Theme

from batchtui.core.config import Settings, load_settings, save_settings
from batchtui.core.errors import ConfigError
from batchtui.core.models import Status
from batchtui.core.paths import Paths

DEFAULT_THEME = "batchtui-dark"
# Always registered by Textual: the last resort when even our default failed to load.
_TEXTUAL_FALLBACK = "textual-dark"

STATUS_VARIABLES: tuple[str, ...] = tuple(f"status-{status.value}" for status in Status)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_VARIABLE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# How long the start-up problems toast stays: long enough to read a few file names.
_PROBLEM_TOAST_SECONDS = 15


# --- the model ---------------------------------------------------------------------------------


def _colour(value: str) -> str:
    try:
        Color.parse(value)
    except ColorParseError:
        raise ValueError(f"{value!r} is not a colour (try \"#rrggbb\")") from None
    return value


ColourText = Annotated[str, AfterValidator(_colour)]


class StatusColours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    validating: ColourText | None = None
    in_progress: ColourText | None = None
    finalizing: ColourText | None = None
    cancelling: ColourText | None = None
    completed: ColourText | None = None
    failed: ColourText | None = None
    expired: ColourText | None = None
    cancelled: ColourText | None = None


class ThemeFile(BaseModel):
    """One theme file, validated. Unknown keys are errors: a typo should not pass silently."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=_NAME.pattern)]
    dark: bool = True
    primary: ColourText
    secondary: ColourText | None = None
    accent: ColourText | None = None
    foreground: ColourText | None = None
    background: ColourText | None = None
    surface: ColourText | None = None
    panel: ColourText | None = None
    success: ColourText | None = None
    warning: ColourText | None = None
    error: ColourText | None = None
    status: StatusColours = Field(default_factory=StatusColours)
    variables: dict[Annotated[str, Field(pattern=_VARIABLE.pattern)], str] = Field(default_factory=dict)

    def to_theme(self) -> Theme:
        palette = self.model_dump(exclude={"name", "dark", "status", "variables"}, exclude_none=True)
        given = {f"status-{k}": v for k, v in self.status.model_dump(exclude_none=True).items()}
        theme = Theme(name=self.name, dark=self.dark, variables={**self.variables, **given}, **palette)
        return with_status_variables(theme)


# --- status colours ----------------------------------------------------------------------------


def derived_status_variables(theme: Theme) -> dict[str, str]:
    """A status colour for every status, from the theme's palette (for themes that set none)."""
    palette = theme.to_color_system().generate()
    base = {
        "validating": palette["secondary"],
        "in_progress": palette["primary"],
        "finalizing": palette["accent"],
        "cancelling": palette["warning"],
        "completed": palette["success"],
        "failed": palette["error"],
    }
    if theme.ansi or any(str(v).startswith("ansi_") for v in base.values()):
        # ANSI colours are the terminal's own: they cannot be blended, so pick named ones.
        base.update(expired=palette["warning"], cancelled="ansi_bright_black")
    else:
        warning, error = Color.parse(palette["warning"]), Color.parse(palette["error"])
        foreground, background = Color.parse(palette["foreground"]), Color.parse(palette["background"])
        # Expired sits between a warning and a failure; cancelled is deliberately muted.
        base.update(expired=warning.blend(error, 0.5).hex, cancelled=foreground.blend(background, 0.45).hex)
    return {f"status-{name}": value for name, value in base.items()}


def with_status_variables(theme: Theme) -> Theme:
    """`theme` with every status variable set; the ones it defines are kept."""
    if all(name in theme.variables for name in STATUS_VARIABLES):
        return theme
    return dataclasses.replace(theme, variables={**derived_status_variables(theme), **theme.variables})


def status_variable_defaults() -> dict[str, str]:
    """Defaults for `App.get_theme_variable_defaults`, so TCSS using `$status-*` parses even
    before `install_themes` runs (CSS is read before `on_mount`)."""
    from textual.theme import BUILTIN_THEMES

    return derived_status_variables(BUILTIN_THEMES[_TEXTUAL_FALLBACK])


def status_color(app: App, status: str) -> str:
    """The current theme's colour for `status` as a Rich colour ("#rrggbb" or an ANSI name)."""
    theme = app.current_theme
    name = f"status-{status}"
    value = theme.variables.get(name) or derived_status_variables(theme).get(name)
    return _rich_colour(value, theme) if value else palette_color(app, "foreground")


def palette_color(app: App, name: str) -> str:
    """A colour of the current theme's palette ("success", "error", "foreground-muted"...) as a
    Rich colour, for text built in Python rather than styled by TCSS."""
    theme = app.current_theme
    value = theme.to_color_system().generate().get(name)
    return _rich_colour(value, theme) if value else "default"


def _rich_colour(value: str, theme: Theme) -> str:
    if value.startswith("ansi_"):
        return value.removeprefix("ansi_")  # Rich's names for the terminal's own colours
    try:
        colour = Color.parse(value)
    except ColorParseError:
        return "default"
    if colour.a < 1:
        # Rich has no alpha: flatten onto the theme's background.
        background = theme.to_color_system().generate().get("background", "#000000")
        try:
            colour = Color.parse(background).blend(colour.with_alpha(1.0), colour.a)
        except ColorParseError:
            colour = colour.with_alpha(1.0)
    return colour.hex6


# --- loading -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LoadedTheme:
    theme: Theme
    path: Path


def builtin_themes_dir() -> Path | None:
    """The folder holding the built-in theme files (see the module docstring)."""
    package_root = Path(__file__).resolve().parents[2]
    checkout = package_root / "themes"
    # pyproject.toml beside it tells a checkout from an unrelated site-packages/themes.
    if (package_root / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    # A wheel's data files land under the environment's prefix, or the user base (`--user`).
    for prefix in (sysconfig.get_path("data"), sys.prefix, site.getuserbase()):
        installed = Path(prefix) / "share" / "batchtui" / "themes"
        if installed.is_dir():
            return installed
    return None


def load_theme_file(path: Path) -> Theme:
    """The theme in `path`; raises ConfigError naming the file and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None
    try:
        return ThemeFile.model_validate(raw).to_theme()
    except ValidationError as exc:
        # pydantic's location and message only: never echo the input.
        first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "(file)"
        message = "unknown key (a typo?)" if first["type"] == "extra_forbidden" else first["msg"]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{path}: {where}: {message.removeprefix('Value error, ')}{more}") from None


def load_theme_dir(folder: Path | None) -> tuple[list[LoadedTheme], list[str]]:
    """Every valid theme in `folder` (sorted by file name) and one problem line per bad file.

    A missing folder is not a problem: most users never create a themes folder.
    """
    if folder is None or not folder.is_dir():
        return [], []
    loaded: list[LoadedTheme] = []
    problems: list[str] = []
    seen: dict[str, Path] = {}
    for path in sorted(folder.glob("*.toml")):
        try:
            theme = load_theme_file(path)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if theme.name in seen:
            problems.append(f"{path}: name: {theme.name!r} is already the name of {seen[theme.name].name}")
            continue
        seen[theme.name] = path
        loaded.append(LoadedTheme(theme, path))
    return loaded, problems


# --- installing --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ThemeChoice:
    """The theme to show and what went wrong on the way (one toast, once the app runs)."""

    name: str
    problems: tuple[str, ...]


def choose_theme(app: App, paths: Paths, settings: Settings) -> ThemeChoice:
    """Register every theme (built-ins, then the user's) and pick the configured one, falling
    back when it is not available. The chosen one gets its status colours now; Textual's
    other themes get theirs after the first frame (`install_themes`)."""
    builtins, problems = load_theme_dir(builtin_themes_dir())
    if not builtins:
        problems.append("no built-in theme files were found (the themes/ folder is missing)")
    user, user_problems = load_theme_dir(paths.themes_dir)
    problems.extend(user_problems)
    # User themes last, so one named like a built-in replaces it.
    for loaded in [*builtins, *user]:
        app.register_theme(loaded.theme)

    wanted = settings.ui.theme
    chosen = wanted if wanted in app.available_themes else _fallback(app)
    if chosen != wanted:
        problems.append(f"theme {wanted!r} (from config.toml) is not available; using {chosen!r}")
    _complete_theme(app, chosen)
    return ThemeChoice(chosen, tuple(problems))


def start_in_theme(app: App, choice: ThemeChoice) -> None:
    """Make the chosen theme current before the app runs (call it in the constructor).

    Setting `App.theme` on mount, as apps usually do, makes Textual parse every stylesheet
    three times before the first frame: once with the default theme's variables, again for
    the new ones, and again when the screen's widgets mount (the theme change emptied the
    parse cache). That was a fifth of the dashboard's time from mount to first frame. Here the
    stylesheet gets the chosen theme's variables before any CSS is read, so it is parsed once.
    What Textual's theme watcher would do besides is done here too: the app's theme classes
    and the ANSI colour filter, whose terminal palette follows the theme's darkness.
    """
    app.set_reactive(App.theme, choice.name)
    theme = app.current_theme
    app.set_class(theme.dark, "-dark-mode", update=False)
    app.set_class(not theme.dark, "-light-mode", update=False)
    app.set_class(True, f"-theme-{theme.name}", update=False)
    app.stylesheet.set_variables(app.get_css_variables())
    # Textual's own step of its theme watcher (tests compare the result with the watcher's).
    app._refresh_truecolor_filter(app.ansi_theme)


def install_themes(app: App, paths: Paths, settings: Settings, choice: ThemeChoice | None = None) -> None:
    """Apply the chosen theme (choosing it now if the constructor did not), report problems,
    and persist later changes.

    Call it once the app is running (`on_mount`): subscribing to a signal needs a running node.
    """
    if choice is None:
        choice = choose_theme(app, paths, settings)
    if app.theme != choice.name:
        app.theme = choice.name
    # Textual's own themes stay in the picker, with status colours from their palettes. That
    # is ~1 ms a theme, twenty of them: the one shown has them already, the others get them
    # after the first frame (until then they only sit in the picker's list).
    app.call_after_refresh(_complete_themes, app)
    if choice.problems:
        app.notify(_problem_text(choice.problems), title="Theme problems", severity="warning",
                   timeout=_PROBLEM_TOAST_SECONDS, markup=False)
    _ThemePersistence(app, paths, choice.name).subscribe()


def _complete_theme(app: App, name: str) -> None:
    theme = app.available_themes[name]
    complete = with_status_variables(theme)
    if complete is not theme:
        app.register_theme(complete)


def _complete_themes(app: App) -> None:
    for name in list(app.available_themes):
        _complete_theme(app, name)


def _fallback(app: App) -> str:
    return DEFAULT_THEME if DEFAULT_THEME in app.available_themes else _TEXTUAL_FALLBACK


def _problem_text(problems: Iterable[str]) -> str:
    problems = list(problems)
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems; the rest loaded:\n" + "\n".join(f"• {p}" for p in problems)


class _ThemePersistence:
    """Writes `[ui] theme` to config.toml whenever the user picks another theme.

    The file is read again before writing, so accounts added meanwhile (by the CLI, or by the
    accounts screen) are kept. Writes run in a thread; a lock and "write the latest choice"
    keep two quick changes from landing out of order. The start-up fallback is not written:
    a theme file that is broken today should not erase the user's choice for tomorrow.
    """

    def __init__(self, app: App, paths: Paths, current: str) -> None:
        self.app = app
        self.paths = paths
        self.current = current
        self.latest = current
        self.lock = threading.Lock()

    def subscribe(self) -> None:
        self.app.theme_changed_signal.subscribe(self.app, self.changed)

    def changed(self, theme: Theme) -> None:
        if theme.name == self.current:
            return
        self.current = self.latest = theme.name
        if getattr(self.app, "demo", False):
            return  # the demo must not change the user's real configuration
        self.app.run_worker(self._save(), group="theme-save", description="save the theme choice",
                            exit_on_error=False)

    async def _save(self) -> None:
        try:
            await asyncio.to_thread(self._write)
        except (ConfigError, OSError) as exc:
            self.app.notify(f"The theme choice was not saved: {exc}", severity="warning", markup=False)

    def _write(self) -> None:
        with self.lock:
            name = self.latest
            # A broken config.toml raises ConfigError here: better unsaved than overwritten.
            settings = load_settings(self.paths)
            if settings.ui.theme == name:
                return
            ui = settings.ui.model_copy(update={"theme": name})
            save_settings(self.paths, settings.model_copy(update={"ui": ui}))

