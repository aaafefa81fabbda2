"""Our keys module against a real Secret Service: gnome-keyring in a private D-Bus session.

Everything runs in a child process with its own bus, HOME and XDG dirs, so the developer's own
keyring is never touched, and the daemon goes away with the bus.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.keyring_real

REPO = Path(__file__).resolve().parents[1]
FAKE_KEY = "sk-test-REAL-KEYRING-0123456789abcdef"

# Runs inside the session, through batchtui's own functions.
SCRIPT = f"""
import keyring
from batchtui.core import keys
from batchtui.core.accounts import Account

backend = keyring.get_keyring()
assert type(backend).__module__ == "keyring.backends.SecretService", backend
status = keys.keyring_status()
assert status.ok, status.message

account = Account(name="real-test", provider="openai")
keys.store_key(account.name, {FAKE_KEY!r})
assert keys.get_key(account, env={{}}) == {FAKE_KEY!r}
assert keys.key_source(account, env={{}}) == "keyring"
assert keys.delete_key(account.name) is True
assert keys.get_key(account, env={{}}) is None
assert keys.delete_key(account.name) is False
print("real keyring: ok")
"""

# The daemon reads the login keyring's password on stdin; --unlock creates and unlocks it.
SESSION = (
    'printf %s "$KEYRING_PASSWORD" | gnome-keyring-daemon --unlock --components=secrets >/dev/null'
    ' && exec "$PYTHON" "$SCRIPT"'
)


def test_store_read_delete_through_gnome_keyring(tmp_path):
    missing = [tool for tool in ("dbus-run-session", "gnome-keyring-daemon") if not shutil.which(tool)]
    if missing:
        tools = " and ".join(missing)
        pytest.skip(f"no Secret Service to test against: {tools} not installed (apt install gnome-keyring dbus)")
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    home = tmp_path / "home"
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),  # the keyring files land here
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_RUNTIME_DIR": str(runtime),
        "PYTHONPATH": str(REPO),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring",
        "KEYRING_PASSWORD": "throwaway-test-password",
        "PYTHON": sys.executable,
        "SCRIPT": str(script),
    }
    result = subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", SESSION], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "real keyring: ok" in result.stdout
    # gnome-keyring encrypts what it stores: the key was never on disk in clear.
    stored = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".keyring" for p in stored), stored
    assert not [p for p in stored if FAKE_KEY.encode() in p.read_bytes()]
