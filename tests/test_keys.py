"""API keys: the keyring, the env var fallback, the keyring's health, and never leaking a key."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import traceback
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail
from keyring.errors import KeyringError, KeyringLocked

from batchtui.core import keys
from batchtui.core.accounts import Account
from batchtui.core.config import Settings, add_account, save_settings
from batchtui.core.errors import BatchtuiError
from batchtui.core.keys import KeyInputError, KeyringUnavailable

FAKE_KEY = "sk-test-FAKE-0123456789abcdefghij"
REPO = Path(__file__).resolve().parents[1]

OPENAI = Account(name="work", provider="openai")
GEMINI = Account(name="g", provider="gemini")
COMPATIBLE = Account(name="local", provider="openai-compatible", base_url="http://127.0.0.1:9/v1")


@pytest.fixture
def use_backend():
    """Install an in-test backend for one test, then put the previous one back."""
    previous = keyring.get_keyring()
    yield keyring.set_keyring
    keyring.set_keyring(previous)


class _InTest(KeyringBackend):
    # Never a candidate for keyring's auto-detection, only installed by hand.
    viable = False
    priority = 5  # type: ignore[assignment]

    def get_password(self, service, username):
        return None

    def set_password(self, service, username, password):
        pass

    def delete_password(self, service, username):
        pass


class SafeKeyring(_InTest):
    pass


class PlaintextKeyring(_InTest):
    pass


class WeakKeyring(_InTest):
    priority = 0.5  # type: ignore[assignment]


class DBusErrorResponse(Exception):
    """Stands in for jeepney's error when the Secret Service is not on the bus."""


class BrokenKeyring(_InTest):
    """Fails every call, echoing the password in its message as a careless backend might."""

    def __init__(self, error: type[Exception] = KeyringError):
        super().__init__()
        self.error = error

    def get_password(self, service, username):
        raise self.error("org.freedesktop.DBus.Error.ServiceUnknown")

    def set_password(self, service, username, password):
        raise self.error(f"could not save {password!r}")

    delete_password = get_password


# --- store, read, delete -----------------------------------------------------------------------


def test_store_get_delete(file_keyring):
    keys.store_key("work", FAKE_KEY)
    assert keys.get_key(OPENAI, env={}) == FAKE_KEY
    assert keys.key_source(OPENAI, env={}) == "keyring"
    assert keys.delete_key("work") is True
    assert keys.get_key(OPENAI, env={}) is None
    assert keys.key_source(OPENAI, env={}) is None
    assert keys.delete_key("work") is False  # nothing left to delete is not an error


def test_keys_are_per_account_under_the_batchtui_service(file_keyring):
    keys.store_key("work", FAKE_KEY)
    assert keyring.get_password("batchtui", "work") == FAKE_KEY
    assert keys.get_key(Account(name="other", provider="openai"), env={}) is None


def test_an_empty_key_is_not_stored(file_keyring):
    with pytest.raises(KeyInputError):
        keys.store_key("work", "")
    assert keyring.get_password("batchtui", "work") is None


# --- env var fallback --------------------------------------------------------------------------


def test_env_var_is_the_fallback(file_keyring):
    env = {"OPENAI_API_KEY": "sk-test-from-env"}
    assert keys.get_key(OPENAI, env=env) == "sk-test-from-env"
    assert keys.key_source(OPENAI, env=env) == "env:OPENAI_API_KEY"


def test_the_keyring_wins_over_the_env_var(file_keyring):
    keys.store_key("work", FAKE_KEY)
    assert keys.get_key(OPENAI, env={"OPENAI_API_KEY": "sk-test-from-env"}) == FAKE_KEY


def test_env_fallback_reads_the_process_env_by_default(file_keyring, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-env")
    assert keys.get_key(Account(name="c", provider="anthropic")) == "sk-ant-test-env"


@pytest.mark.parametrize(
    ("env", "source"),
    [
        ({"GEMINI_API_KEY": "gem", "GOOGLE_API_KEY": "goo"}, "env:GEMINI_API_KEY"),
        ({"GOOGLE_API_KEY": "goo"}, "env:GOOGLE_API_KEY"),
        ({"GEMINI_API_KEY": "", "GOOGLE_API_KEY": "goo"}, "env:GOOGLE_API_KEY"),  # empty is unset
        ({"OPENAI_API_KEY": "other provider's"}, None),
    ],
)
def test_gemini_fallback_order(file_keyring, env, source):
    assert keys.key_source(GEMINI, env=env) == source


def test_openai_compatible_has_no_env_fallback(file_keyring):
    assert keys.get_key(COMPATIBLE, env={"OPENAI_API_KEY": "sk-test-openai"}) is None


# --- keyring status ----------------------------------------------------------------------------


def test_status_no_backend(use_backend):
    use_backend(fail.Keyring())
    status = keys.keyring_status()
    assert not status.usable and not status.ok
    assert status.backend == "keyring.backends.fail.Keyring"
    assert "gnome-keyring" in status.message and "OPENAI_API_KEY" in status.message


def test_status_backend_that_errors(use_backend):
    use_backend(BrokenKeyring(DBusErrorResponse))
    status = keys.keyring_status()
    assert not status.usable
    assert "DBusErrorResponse" in status.message and "gnome-keyring" in status.message


@pytest.mark.parametrize("backend", [PlaintextKeyring(), WeakKeyring()])
def test_status_plaintext_or_low_priority(use_backend, backend):
    use_backend(backend)
    status = keys.keyring_status()
    assert status.usable and not status.secure and not status.ok
    assert type(backend).__name__ in status.message and "gnome-keyring" in status.message


def test_status_good_backend(use_backend):
    use_backend(SafeKeyring())
    status = keys.keyring_status()
    assert status.ok
    assert status.backend.endswith("test_keys.SafeKeyring")


def test_status_accepts_the_test_file_keyring(file_keyring):
    assert keys.keyring_status().ok


# --- keyring failures --------------------------------------------------------------------------


@pytest.mark.parametrize("error", [KeyringError, KeyringLocked, DBusErrorResponse, RuntimeError])
def test_keyring_failures_become_our_error_without_the_key(use_backend, error):
    use_backend(BrokenKeyring(error))
    with pytest.raises(KeyringUnavailable) as caught:
        keys.store_key("work", FAKE_KEY)
    assert isinstance(caught.value, BatchtuiError)
    assert "'work'" in str(caught.value) and "gnome-keyring" in str(caught.value)
    printed = "".join(traceback.format_exception(caught.value))  # what a crash report would show
    assert FAKE_KEY not in printed and FAKE_KEY not in repr(caught.value)


def test_failed_read_and_delete_are_our_error(use_backend):
    use_backend(BrokenKeyring())
    with pytest.raises(KeyringUnavailable):
        keys.get_key(OPENAI, env={})
    with pytest.raises(KeyringUnavailable):
        keys.delete_key("work")


def test_a_broken_keyring_still_lets_the_env_var_through(use_backend):
    use_backend(fail.Keyring())
    env = {"OPENAI_API_KEY": "sk-test-from-env"}
    assert keys.get_key(OPENAI, env=env) == "sk-test-from-env"
    assert keys.key_source(OPENAI, env=env) == "env:OPENAI_API_KEY"


def test_a_bad_backend_name_is_our_error(use_backend, monkeypatch):
    from keyring import core

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "no.such.Backend")
    monkeypatch.setattr(core, "_keyring_backend", None)  # as in a fresh process
    with pytest.raises(KeyringUnavailable):
        keys.get_key(OPENAI, env={})
    assert not keys.keyring_status().usable


# --- reading a key for `accounts add` ----------------------------------------------------------


def test_read_key_from_stdin_takes_the_first_line():
    assert keys.read_key(True, io.StringIO(f"  {FAKE_KEY}  \nsecond line\n")) == FAKE_KEY


@pytest.mark.parametrize("text", ["", "\n", "   \nsk-test-second-line\n"])
def test_read_key_refuses_an_empty_key(text):
    with pytest.raises(KeyInputError):
        keys.read_key(True, io.StringIO(text))


def test_read_key_prompts_hidden(monkeypatch):
    prompts = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: prompts.append(prompt) or f"{FAKE_KEY}\n")
    assert keys.read_key(False) == FAKE_KEY
    assert prompts and "hidden" in prompts[0]


def test_read_key_prompt_closed(monkeypatch):
    def eof(prompt):
        raise EOFError

    monkeypatch.setattr("getpass.getpass", eof)
    with pytest.raises(KeyInputError):
        keys.read_key(False)


# --- the key stays out of our files and across processes --------------------------------------


def test_the_key_is_in_no_file_under_batchtui_home(home, file_keyring):
    keys.store_key("work", FAKE_KEY)
    settings = add_account(Settings(), OPENAI)
    save_settings(home, settings)
    files = [p for p in home.config_dir.rglob("*") if p.is_file()]
    assert home.config_file in files
    assert not [p for p in files if FAKE_KEY.encode() in p.read_bytes()]
    # ...and the check above can see the key where it is: in the keyring's own file.
    assert FAKE_KEY.encode() in file_keyring.read_bytes()


def test_file_keyring_is_shared_with_a_subprocess(file_keyring):
    script = (
        "import keyring\n"
        "from batchtui.core import keys\n"
        "assert type(keyring.get_keyring()).__name__ == 'FileKeyring'\n"
        "assert keys.keyring_status().ok\n"
        f"keys.store_key('work', {FAKE_KEY!r})\n"
    )
    env = {
        **os.environ,
        "PYTHON_KEYRING_BACKEND": "support.filekeyring.FileKeyring",
        "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO)]),
    }
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    assert keys.get_key(OPENAI, env={}) == FAKE_KEY
