"""A throwaway keyring backend for tests: secrets in a JSON file named by BATCHTUI_TEST_KEYRING.

It works across processes, so a CLI test can run `batchtui` with
`PYTHON_KEYRING_BACKEND=support.filekeyring.FileKeyring` and `PYTHONPATH=<repo>/tests`, then read
what it stored. Keep the file outside BATCHTUI_HOME: tests grep that directory for the key.
Its priority is 1 and its name does not say "plaintext", so `keyring_status()` accepts it.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import KeyringError, PasswordDeleteError

ENV = "BATCHTUI_TEST_KEYRING"


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]
    # Only ever chosen on purpose (PYTHON_KEYRING_BACKEND or keyring.set_keyring): keyring registers
    # every backend class it sees, and merely importing this one must not make it the default.
    viable = False

    def get_password(self, service: str, username: str) -> str | None:
        with self._entries() as entries:
            return entries.get(service, {}).get(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._entries(write=True) as entries:
            entries.setdefault(service, {})[username] = password

    def delete_password(self, service: str, username: str) -> None:
        with self._entries(write=True) as entries:
            if username not in entries.get(service, {}):
                raise PasswordDeleteError("no such password")
            del entries[service][username]

    @contextmanager
    def _entries(self, write: bool = False):
        path = os.environ.get(ENV)
        if not path:
            raise KeyringError(f"{ENV} is not set: the test file keyring has nowhere to keep secrets")
        path = Path(path)
        # One lock file for read-modify-write, so two CLI processes cannot lose each other's keys.
        with open(path.with_name(path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = json.loads(path.read_text()) if path.exists() else {}
            yield entries
            if write:
                temp = path.with_name(path.name + ".tmp")
                temp.write_text(json.dumps(entries))
                os.replace(temp, path)
