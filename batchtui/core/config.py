"""Settings: one validated model, read from and written to `config.toml`, outside any UI.

API keys never live here (keys.py keeps them in the OS keyring), so a key-looking entry in the
file is refused rather than read. Errors name the file, the line and the key path, because the
person fixing them has the file open in an editor.

The format (every section optional; defaults are not written back):

    downloads_dir = "~/batch-results"

    [ui]
    theme = "batchtui-dark"
    bell = true
    notify = true

    [ui.keymap]
    refresh = "ctrl+r"

    [poll]                      # defaults for accounts that do not set their own
    active_seconds = 15.0
    idle_seconds = 300.0

    [prices."gemini-2.5-flash"]
    input = 0.30
    output = 2.50

    [[accounts]]
    name = "work"
    provider = "openai"
    project = "proj_123"
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from batchtui.core.accounts import Account
from batchtui.core.errors import ConfigError
from batchtui.core.paths import Paths, ensure_private_dir


class UnknownAccountError(ConfigError):
    """No account has that name (a usage error for the CLI)."""


class DuplicateAccountError(ConfigError):
    """An account with that name already exists."""


# --- the model ---------------------------------------------------------------------------------


class UiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    theme: str = "batchtui-dark"
    bell: bool = True  # ring the terminal bell when a batch ends
    notify: bool = True  # toast when a batch ends
    keymap: dict[str, str] = Field(default_factory=dict)  # binding id -> keys, for App.set_keymap


class PricingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Whether OpenAI's cached-input price is halved again for batches: unverified by OpenAI,
    # third-party calculators say it is (PROVIDERS.md A.13), so that is the default.
    openai_cached_batch_discount: bool = True


class PollSettings(BaseModel):
    """Poll intervals for accounts that do not set their own."""

    model_config = ConfigDict(extra="forbid")

    # One source of truth for the numbers: the Account model's own defaults.
    active_seconds: float = Field(default=Account.model_fields["poll_active_seconds"].default, gt=0)
    idle_seconds: float = Field(default=Account.model_fields["poll_idle_seconds"].default, gt=0)


class Settings(BaseModel):
    """Everything config.toml says. Treat as immutable: the helpers below return new ones."""

    model_config = ConfigDict(extra="forbid")

    accounts: list[Account] = Field(default_factory=list)
    # Per-model price overrides, kept raw: the pricing module validates their columns.
    # Values are numbers, plus an optional `provider` string; the pricing module validates them.
    prices: dict[str, dict[str, Any]] = Field(default_factory=dict)
    pricing: PricingSettings = Field(default_factory=PricingSettings)
    ui: UiSettings = Field(default_factory=UiSettings)
    poll: PollSettings = Field(default_factory=PollSettings)
    downloads_dir: Path | None = None  # None: Paths.downloads_dir

    @field_validator("accounts")
    @classmethod
    def _unique_names(cls, accounts: list[Account]) -> list[Account]:
        seen: set[str] = set()
        for index, account in enumerate(accounts):
            if account.name in seen:
                # A ValidationError (not a ValueError) so the error points at accounts[i].name.
                raise ValidationError.from_exception_data(
                    "Settings",
                    [
                        InitErrorDetails(
                            type=PydanticCustomError("duplicate_account", "another account already has this name"),
                            loc=(index, "name"),
                            input=account.name,
                        )
                    ],
                )
            seen.add(account.name)
        return accounts

    @field_validator("downloads_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        # Relative to what? The answer would change with the working directory, so refuse it.
        if value is not None and not value.expanduser().is_absolute():
            raise ValueError("downloads_dir must be an absolute path (or start with ~)")
        return value

    @model_validator(mode="after")
    def _apply_poll_defaults(self) -> Settings:
        self.accounts = [_with_poll_defaults(account, self.poll) for account in self.accounts]
        return self

    def account(self, name: str) -> Account:
        for account in self.accounts:
            if account.name == name:
                return account
        known = ", ".join(a.name for a in self.accounts) or "none yet"
        raise UnknownAccountError(f"no account named {name!r} (accounts: {known})")

    def downloads_path(self, paths: Paths) -> Path:
        return self.downloads_dir.expanduser() if self.downloads_dir else paths.downloads_dir


def _with_poll_defaults(account: Account, poll: PollSettings) -> Account:
    unset = {
        field: value
        for field, value in (("poll_active_seconds", poll.active_seconds), ("poll_idle_seconds", poll.idle_seconds))
        if field not in account.model_fields_set
    }
    return account.model_copy(update=unset) if unset else account


def add_account(settings: Settings, account: Account) -> Settings:
    if any(a.name == account.name for a in settings.accounts):
        raise DuplicateAccountError(f"an account named {account.name!r} already exists")
    return _replace_accounts(settings, [*settings.accounts, account])


def remove_account(settings: Settings, name: str) -> Settings:
    settings.account(name)  # raises UnknownAccountError
    return _replace_accounts(settings, [a for a in settings.accounts if a.name != name])


def _replace_accounts(settings: Settings, accounts: list[Account]) -> Settings:
    # Validated again (not model_copy) so poll defaults apply to a new account.
    return Settings.model_validate({**dict(settings), "accounts": accounts})


# --- reading -----------------------------------------------------------------------------------


def load_settings(paths: Paths) -> Settings:
    """The settings in paths.config_file; the defaults when there is no such file."""
    source = paths.config_file
    text = _read_config(source)
    return Settings() if text is None else parse_settings(text, source)


def _read_config(source: Path) -> str | None:
    """The file's text; None when there is no such file."""
    try:
        return source.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read: {exc}") from None


def parse_settings(text: str, source: Path) -> Settings:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_toml_error(str(exc), text, source)) from None
    except RecursionError:  # tomllib gives up past a few hundred levels of nested arrays or tables
        raise ConfigError(f"{source}: invalid TOML: nested too deeply") from None
    locator = _LineLocator(text)
    secrets = list(_key_like_entries(raw))
    if secrets:
        raise ConfigError("\n".join(_problem(source, locator, loc, _KEY_REFUSED) for loc in secrets))
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        # Only pydantic's message and location: never the input, which may be anything.
        problems = [
            _problem(source, locator, err["loc"], _schema_message(err))
            for err in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise ConfigError("\n".join(problems)) from None


def _schema_message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown setting (a typo?)"
    return error["msg"].removeprefix("Value error, ")


def _toml_error(message: str, text: str, source: Path) -> str:
    # tomllib (3.11) puts the position only in its message: "... (at line 3, column 11)".
    found = re.search(r" \(at line (\d+), column (\d+)\)$", message)
    if found:
        return f"{source}:{found[1]}:{found[2]}: invalid TOML: {message[: found.start()]}"
    if message.endswith(" (at end of document)"):
        return f"{source}:{max(1, len(text.splitlines()))}: invalid TOML: {message}"
    return f"{source}: invalid TOML: {message}"


_KEY_REFUSED = (
    "API keys do not belong in config.toml (this value was not used): they live in the OS keyring. "
    "Delete this line and run `batchtui accounts add NAME --provider PROVIDER --key-stdin`, "
    "or set the provider's env var (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY or GOOGLE_API_KEY)."
)
# api_key, apikey, api-key, key, token, openai_api_key, access_token, secret, password...
_KEY_LIKE = re.compile(r"(^|[_-])(api[_-]?key|key|token|secret|password)$", re.IGNORECASE)
# Tables whose keys are data (model ids, binding ids), not setting names.
_DATA_KEYED = {("prices",), ("ui", "keymap")}


def _key_like_entries(node: Any, loc: tuple[str | int, ...] = ()):
    if isinstance(node, dict):
        for name, value in node.items():
            if loc not in _DATA_KEYED and _KEY_LIKE.search(name):
                yield (*loc, name)
            else:
                yield from _key_like_entries(value, (*loc, name))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _key_like_entries(item, (*loc, index))


def _problem(source: Path, locator: _LineLocator, loc: tuple[str | int, ...], message: str) -> str:
    line = locator.line_of(tuple(loc))
    where = f"{source}:{line}" if line else str(source)
    return f"{where}: {_key_path(loc)}: {message}" if loc else f"{where}: {message}"


def _key_path(loc: tuple[str | int, ...]) -> str:
    """("accounts", 2, "provider") -> accounts[2].provider, quoting keys as TOML would."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + _toml_key(part)
    return out


class _LineLocator:
    """Best-effort map from a key path to the line that sets it, by reading headers and `key =`.

    Not a TOML parser: tomllib has already accepted the text, this only points a human at a line.
    A path that is not found falls back to its nearest enclosing table or key.
    """

    _KEY_PART = r"""[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*'"""
    _DOTTED = rf"(?:{_KEY_PART})(?:\s*\.\s*(?:{_KEY_PART}))*"
    _HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]")
    _ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=")

    def __init__(self, text: str):
        self._lines: dict[tuple[str | int, ...], int] = {}
        self._array_index: dict[tuple[str | int, ...], int] = {}
        table: tuple[str | int, ...] = ()
        in_multiline = False
        for number, line in enumerate(text.splitlines(), start=1):
            quotes = line.count('"""') + line.count("'''")
            if in_multiline:
                in_multiline = quotes % 2 == 0
                continue
            if header := self._HEADER.match(line):
                table = self._within_arrays(self._parts(header[2]))
                if header[1] == "[[":
                    index = self._array_index[table] = self._array_index.get(table, -1) + 1
                    table = (*table, index)
                self._lines.setdefault(table, number)
            elif assign := self._ASSIGN.match(line):
                self._lines.setdefault((*table, *self._parts(assign[1])), number)
            in_multiline = quotes % 2 == 1

    def _within_arrays(self, parts: list[str]) -> tuple[str | int, ...]:
        # [accounts.extra] after [[accounts]] belongs to the latest accounts entry.
        path: tuple[str | int, ...] = ()
        for position, part in enumerate(parts):
            path = (*path, part)
            if path in self._array_index and position < len(parts) - 1:
                path = (*path, self._array_index[path])
        return path

    def _parts(self, dotted: str) -> list[str]:
        parts = []
        for token in re.findall(self._KEY_PART, dotted):
            parts.append(tomllib.loads(f"k = {token}")["k"] if token[0] in "\"'" else token)
        return parts

    def line_of(self, loc: tuple[str | int, ...]) -> int | None:
        while loc:
            if loc in self._lines:
                return self._lines[loc]
            loc = loc[:-1]
        return None


# --- writing -----------------------------------------------------------------------------------


def save_settings(paths: Paths, settings: Settings) -> Path:
    """Write settings to paths.config_file atomically, mode 0600, and return its path.

    An existing file is edited, not rewritten (config_edit.py): its comments, blank lines, key
    order and unchanged values stay as the user wrote them, and only what differs from `settings`
    changes. A missing file is written from render_settings. Either way nothing is written unless
    the old file reads as settings (a broken one raises ConfigError naming its line, and is left
    as it is) and the new text reads back as exactly `settings`.
    """
    target = paths.config_file
    ensure_private_dir(target.parent)
    old = _read_config(target)
    if old is None:
        text = render_settings(settings)
    else:
        parse_settings(old, target)  # a file that does not read as settings is the user's to fix, not ours to replace
        from batchtui.core.config_edit import edit_settings_text  # tomlkit only when a file is edited

        text = edit_settings_text(old, settings, target)
    _check_reads_back(text, settings, target)
    # mkstemp creates the file 0600 (never wider, whatever the umask), and the rename makes it
    # appear whole or not at all.
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".config.", suffix=".toml.tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


def _check_reads_back(text: str, settings: Settings, target: Path) -> None:
    # Also what refuses a key-like entry on the way out, as parse_settings refuses it on the way in.
    try:
        written = parse_settings(text, target)
    except ConfigError as exc:
        raise ConfigError(f"{target}: not saved, the new text would not read back:\n{exc}") from None
    if written != settings:
        raise ConfigError(f"{target}: not saved, the new text would read back as other settings (a batchtui bug)")


def render_settings(settings: Settings) -> str:
    """The TOML text of settings: defaults and None left out, accounts as [[accounts]] tables."""
    document: dict[str, Any] = {}
    if settings.downloads_dir is not None:
        document["downloads_dir"] = str(settings.downloads_dir)
    for section in ("ui", "poll", "pricing"):
        values = getattr(settings, section).model_dump(exclude_defaults=True)
        if values:
            document[section] = values
    if settings.prices:
        document["prices"] = settings.prices
    if settings.accounts:
        document["accounts"] = [_account_table(a, settings.poll) for a in settings.accounts]
    return _render_table(document, ())


def _account_table(account: Account, poll: PollSettings) -> dict[str, Any]:
    table = account.model_dump(mode="json", exclude_none=True)
    # Values equal to [poll] are left out so they keep following it.
    for field, default in (("poll_active_seconds", poll.active_seconds), ("poll_idle_seconds", poll.idle_seconds)):
        if table[field] == default:
            del table[field]
    return table


def _render_table(table: dict[str, Any], path: tuple[str, ...]) -> str:
    """A small TOML writer for our own shapes: scalars, nested tables, arrays of tables."""
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict | list)}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    arrays = {k: v for k, v in table.items() if isinstance(v, list)}
    out = "".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in scalars.items())
    for name, sub in tables.items():
        sub_path = (*path, name)
        has_scalars = any(not isinstance(v, dict | list) for v in sub.values())
        header = f"\n[{'.'.join(map(_toml_key, sub_path))}]\n" if has_scalars or not sub else ""
        out += header + _render_table(sub, sub_path)
    for name, items in arrays.items():
        sub_path = (*path, name)
        for item in items:
            if not isinstance(item, dict):
                raise TypeError(f"cannot write {_key_path(sub_path)}: only arrays of tables are supported")
            out += f"\n[[{'.'.join(map(_toml_key, sub_path))}]]\n" + _render_table(item, sub_path)
    return out.lstrip("\n") if not path else out


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_string(value: str) -> str:
    # TOML basic strings forbid raw control characters (and DEL): escape them as \uXXXX.
    escaped = "".join(
        _ESCAPES.get(ch) or (f"\\u{ord(ch):04x}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch) for ch in value
    )
    return f'"{escaped}"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # repr of a float is valid TOML, inf and nan included
    if isinstance(value, str):
        return _toml_string(value)
    raise TypeError(f"cannot write a {type(value).__name__} to TOML")
