"""Paths, and settings read from and written to config.toml."""

from __future__ import annotations

import os
import stat
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchtui.core.accounts import Account
from batchtui.core.config import (
    DuplicateAccountError,
    PollSettings,
    Settings,
    UiSettings,
    UnknownAccountError,
    add_account,
    load_settings,
    parse_settings,
    remove_account,
    render_settings,
    save_settings,
)
from batchtui.core.errors import ConfigError
from batchtui.core.paths import Paths, ensure_private_dir

SOURCE = Path("/somewhere/config.toml")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def config_error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, SOURCE)
    return str(caught.value)


# --- paths -------------------------------------------------------------------------------------


def test_batchtui_home_holds_everything(tmp_path):
    paths = Paths.resolve({"BATCHTUI_HOME": str(tmp_path)})
    assert paths.config_file == tmp_path / "config.toml"
    assert paths.ledger_file == tmp_path / "ledger.db"
    assert paths.downloads_dir == tmp_path / "downloads"
    assert paths.logs_dir == tmp_path / "logs"
    assert paths.themes_dir == tmp_path / "themes"


def test_batchtui_home_is_read_from_the_process_env_by_default(monkeypatch, tmp_path):
    monkeypatch.setenv("BATCHTUI_HOME", str(tmp_path))
    assert Paths.resolve().ledger_file == tmp_path / "ledger.db"


def test_relative_batchtui_home_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert Paths.resolve({"BATCHTUI_HOME": "rel"}).config_file == tmp_path / "rel" / "config.toml"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG dirs are the Linux convention")
@pytest.mark.parametrize("home_value", [None, ""])
def test_without_batchtui_home_platform_dirs_are_used(monkeypatch, tmp_path, home_value):
    if home_value is None:
        monkeypatch.delenv("BATCHTUI_HOME", raising=False)
    else:
        monkeypatch.setenv("BATCHTUI_HOME", home_value)  # empty counts as unset
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    paths = Paths.resolve()
    assert paths.config_file == tmp_path / "cfg" / "batchtui" / "config.toml"
    assert paths.themes_dir == tmp_path / "cfg" / "batchtui" / "themes"
    assert paths.ledger_file == tmp_path / "data" / "batchtui" / "ledger.db"
    assert paths.downloads_dir == tmp_path / "data" / "batchtui" / "downloads"
    assert paths.logs_dir == tmp_path / "data" / "batchtui" / "logs"


@pytest.fixture
def loose_umask():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_private_dirs_are_created_0700_whatever_the_umask(tmp_path, loose_umask):
    target = tmp_path / "a" / "b" / "logs"
    assert ensure_private_dir(target) == target
    assert mode(target) == mode(tmp_path / "a" / "b") == mode(tmp_path / "a") == 0o700


def test_existing_private_dir_is_tightened_but_its_parent_left_alone(tmp_path, loose_umask):
    target = tmp_path / "downloads"
    target.mkdir(mode=0o755)
    tmp_path.chmod(0o755)
    ensure_private_dir(target)
    assert mode(target) == 0o700
    assert mode(tmp_path) == 0o755


def test_settings_downloads_override(tmp_path):
    paths = Paths.resolve({"BATCHTUI_HOME": str(tmp_path)})
    assert Settings().downloads_path(paths) == tmp_path / "downloads"
    assert Settings(downloads_dir="/srv/out").downloads_path(paths) == Path("/srv/out")
    assert Settings(downloads_dir="~/out").downloads_path(paths) == Path.home() / "out"


# --- reading -----------------------------------------------------------------------------------


def test_no_config_file_means_defaults(home):
    settings = load_settings(home)
    assert settings == Settings()
    assert settings.ui.theme == "batchtui-dark" and settings.ui.bell and settings.ui.notify
    assert settings.accounts == []


def test_a_full_config_is_read():
    settings = parse_settings(
        """
downloads_dir = "/data/batches"

[ui]
theme = "nord"
bell = false

[ui.keymap]
"app.quit" = "ctrl+q"

[poll]
active_seconds = 5
idle_seconds = 120

[prices."gemini-2.5-flash"]
input = 0.30
output = 2.50

[[accounts]]
name = "work"
provider = "openai"
project = "proj_123"

[[accounts]]
name = "local"
provider = "openai-compatible"
base_url = "http://127.0.0.1:8000/v1"
poll_active_seconds = 1
""",
        SOURCE,
    )
    assert settings.downloads_dir == Path("/data/batches")
    assert settings.ui == UiSettings(theme="nord", bell=False, keymap={"app.quit": "ctrl+q"})
    assert settings.prices == {"gemini-2.5-flash": {"input": 0.30, "output": 2.50}}
    work, local = settings.accounts
    assert (work.name, work.provider, work.project) == ("work", "openai", "proj_123")
    # Accounts without their own intervals follow [poll]; their own values win.
    assert (work.poll_active_seconds, work.poll_idle_seconds) == (5, 120)
    assert (local.poll_active_seconds, local.poll_idle_seconds) == (1, 120)
    assert settings.account("local") is local


def test_malformed_toml_names_the_file_and_line():
    message = config_error('[ui]\ntheme = "nord"\nbell = maybe\n')
    assert message.startswith(f"{SOURCE}:3:")
    assert "invalid TOML" in message


def test_toml_error_at_end_of_document_still_names_a_line():
    message = config_error('[ui]\ntheme = "nord"\nkeys = [1,\n')
    assert message.startswith(f"{SOURCE}:3: invalid TOML")


ACCOUNTS = """\
[[accounts]]
name = "one"
provider = "openai"

[[accounts]]
name = "two"
provider = "anthropic"

[[accounts]]
name = "three"
provider = "mistral"
"""


def test_unknown_provider_names_the_key_path_and_line():
    message = config_error(ACCOUNTS)
    assert message.startswith(f"{SOURCE}:11: accounts[2].provider: ")
    assert "openai-compatible" in message  # says what would be accepted


def test_duplicate_account_names_point_at_the_second_one():
    message = config_error(ACCOUNTS.replace('"mistral"', '"gemini"').replace('"three"', '"one"'))
    assert message.startswith(f"{SOURCE}:10: accounts[2].name: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[accounts]]\nname = "has space"\nprovider = "openai"\n', f"{SOURCE}:2: accounts[0].name: account names"),
        ('[ui]\ntheme = "x"\nbell = "loud"\n', f"{SOURCE}:3: ui.bell: "),
        ("[poll]\nactive_seconds = 0\n", f"{SOURCE}:2: poll.active_seconds: "),
        ("[ui]\ncolour = 1\n", f"{SOURCE}:2: ui.colour: unknown setting"),
        ('downloads_dir = "out"\n', f"{SOURCE}:1: downloads_dir: downloads_dir must be an absolute path"),
        (
            '[[accounts]]\nname = "x"\nprovider = "openai-compatible"\n',
            f"{SOURCE}:1: accounts[0]: an openai-compatible account needs a base_url",
        ),
        (
            '[[accounts]]\nname = "x"\nprovider = "openai"\nbase_url = "api.openai.com"\n',
            f"{SOURCE}:4: accounts[0].base_url: base_url must start with https://",
        ),
        # Inline tables have no header: the error points at the nearest enclosing key.
        ('accounts = [{name = "x", provider = "nope"}]\n', f"{SOURCE}:1: accounts[0].provider: "),
    ],
)
def test_schema_errors_name_file_line_and_key_path(text, expected):
    assert config_error(text).startswith(expected)


def test_every_schema_error_is_reported_at_once():
    message = config_error('[ui]\nbell = "loud"\nnotify = "never"\n')
    assert f"{SOURCE}:2: ui.bell" in message and f"{SOURCE}:3: ui.notify" in message


def test_schema_errors_never_echo_the_value():
    # Someone pasted a key where the account name goes: say it is wrong, never repeat it.
    message = config_error('[[accounts]]\nname = "sk-test FAKEVALUE123"\nprovider = "openai"\n')
    assert "accounts[0].name" in message
    assert "FAKEVALUE123" not in message


@pytest.mark.parametrize(
    ("text", "line", "path"),
    [
        ('[[accounts]]\nname = "w"\nprovider = "openai"\napi_key = "sk-test-FAKEVALUE123"\n', 4, "accounts[0].api_key"),
        ('token = "FAKEVALUE123"\n', 1, "token"),
        ('[ui]\nkey = "FAKEVALUE123"\n', 2, "ui.key"),
        (
            '[[accounts]]\nname = "w"\nprovider = "openai"\nOPENAI_API_KEY = "FAKEVALUE123"\n',
            4,
            "accounts[0].OPENAI_API_KEY",
        ),
    ],
)
def test_key_looking_fields_are_refused_without_echoing_them(text, line, path):
    message = config_error(text)
    assert message.startswith(f"{SOURCE}:{line}: {path}: API keys do not belong in config.toml")
    assert "keyring" in message
    assert "FAKEVALUE123" not in message


def test_keymap_binding_ids_are_not_mistaken_for_keys():
    settings = parse_settings('[ui.keymap]\nnext_token = "n"\n', SOURCE)
    assert settings.ui.keymap == {"next_token": "n"}


def test_unreadable_config_is_a_config_error(home):
    home.config_file.parent.mkdir(parents=True)
    home.config_file.write_bytes(b'theme = "\xff"\n')
    with pytest.raises(ConfigError, match=str(home.config_file)):
        load_settings(home)


# --- writing -----------------------------------------------------------------------------------


def full_settings() -> Settings:
    return Settings(
        accounts=[
            Account(name="work", provider="openai", organization="org-1", project="proj_1"),
            Account(name="claude", provider="anthropic", poll_active_seconds=30),
            Account(name="g", provider="gemini", default_model="gemini-2.5-flash"),
            Account(name="local", provider="openai-compatible", base_url="http://127.0.0.1:9/v1", preset="vllm"),
        ],
        prices={"gemini-2.5-flash": {"input": 0.3, "output": 2.5, "cached_input": 0.075}},
        ui=UiSettings(theme="nord", bell=False, notify=False, keymap={"app.quit": "ctrl+q", "refresh": "r"}),
        poll=PollSettings(active_seconds=10, idle_seconds=600),
        downloads_dir="~/batches",
    )


def test_save_then_load_round_trips(home):
    settings = full_settings()
    save_settings(home, settings)
    assert load_settings(home) == settings


def test_written_format(home):
    save_settings(home, full_settings())
    text = home.config_file.read_text()
    assert '[[accounts]]\nname = "work"\nprovider = "openai"\norganization = "org-1"\nproject = "proj_1"\n' in text
    assert '[prices."gemini-2.5-flash"]\ninput = 0.3\n' in text
    assert '[ui.keymap]\n"app.quit" = "ctrl+q"\n' in text
    # None and values that follow [poll] are left out; an account's own interval is kept.
    assert "base_url" not in text.split('name = "local"')[0]
    assert text.count("poll_active_seconds") == 1 and "poll_active_seconds = 30.0" in text
    assert "poll_idle_seconds" not in text


def test_defaults_are_not_written(home):
    save_settings(home, Settings(accounts=[Account(name="a", provider="openai")]))
    assert home.config_file.read_text() == '[[accounts]]\nname = "a"\nprovider = "openai"\n'


def test_saved_file_is_0600_in_a_0700_dir(home, loose_umask):
    save_settings(home, full_settings())
    assert mode(home.config_file) == 0o600
    assert mode(home.config_dir) == 0o700
    save_settings(home, Settings())  # replacing keeps it private
    assert mode(home.config_file) == 0o600


def test_a_failed_save_leaves_the_old_file_whole(home, monkeypatch):
    save_settings(home, full_settings())
    before = home.config_file.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        save_settings(home, Settings())
    assert home.config_file.read_bytes() == before
    assert [p.name for p in home.config_dir.iterdir()] == ["config.toml"]  # no temp file left


@given(st.text(max_size=40), st.text(max_size=40))
def test_any_string_survives_the_toml_writer(theme, keymap_key):
    settings = Settings(ui=UiSettings(theme=theme or "x", keymap={keymap_key: theme}))
    text = render_settings(settings)
    tomllib.loads(text)  # valid TOML
    assert parse_settings(text, SOURCE) == settings


# --- accounts ----------------------------------------------------------------------------------


def test_add_account_returns_new_settings_with_poll_defaults():
    before = Settings(poll=PollSettings(active_seconds=7))
    after = add_account(before, Account(name="work", provider="openai"))
    assert before.accounts == []
    assert after.account("work").poll_active_seconds == 7
    assert after.poll == before.poll


def test_add_account_refuses_a_duplicate_name():
    settings = add_account(Settings(), Account(name="work", provider="openai"))
    with pytest.raises(DuplicateAccountError, match="'work' already exists"):
        add_account(settings, Account(name="work", provider="anthropic"))


def test_remove_account():
    settings = add_account(Settings(), Account(name="a", provider="openai"))
    settings = add_account(settings, Account(name="b", provider="gemini"))
    assert [a.name for a in remove_account(settings, "a").accounts] == ["b"]
    with pytest.raises(UnknownAccountError, match="no account named 'zz' \\(accounts: a, b\\)"):
        remove_account(settings, "zz")


def test_account_errors_are_config_errors():
    # The CLI reports every ConfigError the same way; these are the ones it maps to exit 2.
    assert issubclass(UnknownAccountError, ConfigError) and issubclass(DuplicateAccountError, ConfigError)


def test_price_override_values_are_checked_by_the_price_table():
    """config.toml keeps [prices] entries raw (they may name a provider); the price table
    rejects a bad one, naming the model and the field."""
    from batchtui.core.errors import ConfigError
    from batchtui.core.pricing import PriceTable

    settings = parse_settings('[prices."gemini-2.5-flash"]\ninput = "cheap"\noutput = 1\n', SOURCE)
    with pytest.raises(ConfigError) as info:
        PriceTable.load(settings.prices)
    assert "gemini-2.5-flash" in str(info.value) and "input" in str(info.value)


def test_pricing_section_round_trips(home):
    settings = parse_settings("[pricing]\nopenai_cached_batch_discount = false\n", SOURCE)
    assert settings.pricing.openai_cached_batch_discount is False
    save_settings(home, settings)
    assert load_settings(home).pricing.openai_cached_batch_discount is False
