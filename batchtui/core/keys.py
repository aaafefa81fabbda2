"""API keys: only in the OS keyring (service "batchtui", username = account name), with the
provider's own env var as the fallback (CLI-CONTRACT.md, "Where things live").

A key is never logged, never put in an exception message and never held by an object with a
repr: functions here take and return plain strings and keep nothing. Any keyring failure (no
backend, D-Bus down, a locked collection) becomes `KeyringUnavailable`, never a crash.

Keyring calls can block on an unlock prompt, so UI code runs them in a thread worker.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO, TypeVar

from batchtui.core.accounts import KEY_ENV_VARS, Account
from batchtui.core.errors import BatchtuiError

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

SERVICE = "batchtui"
# Not a valid account name (those start with a letter or digit), so it can never hold a real key.
_PROBE_USERNAME = "__batchtui_probe__"

_ALL_ENV_VARS = ", ".join(dict.fromkeys(name for names in KEY_ENV_VARS.values() for name in names))
FIX_HINT = (
    "Run a Secret Service such as gnome-keyring (in a D-Bus session, unlocked), "
    f"or give the key through the provider's env var instead ({_ALL_ENV_VARS})."
)

T = TypeVar("T")


class KeyringUnavailable(BatchtuiError):
    """The OS keyring could not be used. The message names the fix and never holds a key."""


class KeyInputError(BatchtuiError):
    """No usable key was typed or piped in."""


@dataclass(frozen=True)
class KeyringStatus:
    backend: str  # the backend's class, e.g. "keyring.backends.SecretService.Keyring"
    usable: bool  # keys can be stored and read back
    secure: bool  # ...and are not kept in plain text
    message: str  # one line for a human; names the fix when not ok

    @property
    def ok(self) -> bool:
        return self.usable and self.secure


def store_key(account_name: str, key: str) -> None:
    if not key:
        raise KeyInputError("refusing to store an empty API key")
    _call(f"store the key of account {account_name!r}", lambda b: b.set_password(SERVICE, account_name, key), key)


def delete_key(account_name: str) -> bool:
    """Remove the account's key; False when the keyring held none."""
    from keyring.errors import PasswordDeleteError

    def delete(backend: KeyringBackend) -> bool:
        try:
            backend.delete_password(SERVICE, account_name)
        except PasswordDeleteError:
            # Backends say "not there" this way; anything else is a real failure.
            return False
        return True

    return _call(f"delete the key of account {account_name!r}", delete)


def get_key(account: Account, env: Mapping[str, str] = os.environ) -> str | None:
    """The account's key: the keyring's, else the provider's env var, else None."""
    found = _lookup(account, env)
    return found[0] if found else None


def key_source(account: Account, env: Mapping[str, str] = os.environ) -> str | None:
    """Where get_key would find the key: "keyring", "env:NAME" or None."""
    found = _lookup(account, env)
    return found[1] if found else None


def _lookup(account: Account, env: Mapping[str, str]) -> tuple[str, str] | None:
    try:
        key = _call(f"read the key of account {account.name!r}", lambda b: b.get_password(SERVICE, account.name))
        failure = None
    except KeyringUnavailable as exc:
        # A headless machine has no keyring but may well have the env var: try it before failing.
        key, failure = None, exc
    if key:
        return key, "keyring"
    for name in account.key_env_vars:
        if env.get(name):
            return env[name], f"env:{name}"
    if failure is not None:
        raise failure
    return None


def keyring_status() -> KeyringStatus:
    """Whether the active backend can hold keys safely, with a message naming the fix if not.

    It reads one entry that cannot exist, so a locked keyring may ask to be unlocked here.
    """
    from keyring.backends import fail, null

    try:
        backend = _effective_backend()
    except Exception as exc:  # a bad PYTHON_KEYRING_BACKEND, a broken keyring config
        return KeyringStatus("(none)", False, False, f"The keyring could not be loaded ({_describe(exc)}). {FIX_HINT}")
    if backend is None:
        return KeyringStatus("(none)", False, False, f"No usable keyring backend. {FIX_HINT}")
    name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    if isinstance(backend, fail.Keyring | null.Keyring):
        return KeyringStatus(name, False, False, f"No usable keyring backend ({name}). {FIX_HINT}")
    try:
        priority = type(backend).priority
        backend.get_password(SERVICE, _PROBE_USERNAME)
    except Exception as exc:  # D-Bus down, locked or missing collection, backend not viable
        return KeyringStatus(name, False, False, f"The keyring ({name}) does not work: {_describe(exc)}. {FIX_HINT}")
    if "plaintext" in type(backend).__name__.lower() or priority < 1:
        unsafe = f"The keyring backend {name} does not keep keys safely (plain text, or a low priority)."
        return KeyringStatus(name, True, False, f"{unsafe} {FIX_HINT}")
    return KeyringStatus(name, True, True, f"Keys are kept in {name}.")


def read_key(from_stdin: bool, stdin: TextIO | None = None) -> str:
    """The key for `accounts add`: the first line of stdin, or a hidden prompt. Never argv."""
    if from_stdin:
        key = (stdin or sys.stdin).readline().strip()
    else:
        try:
            # getpass prompts on the terminal (or stderr), leaving stdout to --json output.
            key = getpass.getpass("API key (input hidden): ").strip()
        except EOFError:
            key = ""
    if not key:
        raise KeyInputError("no API key given (the input was empty)")
    return key


def _effective_backend() -> KeyringBackend | None:
    import keyring  # deferred: importing keyring costs ~100 ms of start-up

    backend = keyring.get_keyring()
    # keyring's chainer stores into its first backend: that one decides how safe keys are.
    chained = getattr(type(backend), "backends", None)
    if isinstance(chained, list):
        return chained[0] if chained else None
    return backend


def _call(action: str, operation: Callable[[KeyringBackend], T], secret: str | None = None) -> T:
    import keyring

    try:
        return operation(keyring.get_keyring())
    except Exception as exc:  # KeyringError, NoKeyringError, D-Bus and secretstorage errors alike
        raise KeyringUnavailable(f"Could not {action} in the keyring: {_describe(exc, secret)}. {FIX_HINT}") from None


def _describe(exc: BaseException, secret: str | None = None) -> str:
    detail = str(exc).strip().rstrip(".")
    if secret:
        # Belt and braces: a backend has no reason to echo the key, but must not get to.
        detail = detail.replace(secret, "[redacted]")
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
