"""Fixtures shared across the suite. Keep each one small and say what it isolates."""

from __future__ import annotations

import pytest

from batchtui.core.paths import Paths


@pytest.fixture
def home(tmp_path, monkeypatch) -> Paths:
    """A fresh BATCHTUI_HOME: config, ledger, downloads and logs all under tmp_path/home."""
    monkeypatch.setenv("BATCHTUI_HOME", str(tmp_path / "home"))
    return Paths.resolve()


@pytest.fixture
def file_keyring(tmp_path, monkeypatch):
    """Keys go to a JSON file outside BATCHTUI_HOME, never to the developer's real keyring.

    Yields the file's path. A subprocess uses the same file when it inherits
    BATCHTUI_TEST_KEYRING and is given PYTHON_KEYRING_BACKEND=support.filekeyring.FileKeyring
    and PYTHONPATH=<repo>/tests.
    """
    import keyring

    from support.filekeyring import ENV, FileKeyring

    path = tmp_path / "keyring.json"
    monkeypatch.setenv(ENV, str(path))
    previous = keyring.get_keyring()
    keyring.set_keyring(FileKeyring())
    yield path
    keyring.set_keyring(previous)
