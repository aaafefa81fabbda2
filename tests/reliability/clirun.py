"""Running `batchtui` as a subprocess, as a user would, with everything it writes kept apart.

Keys go to the throwaway file keyring (tests/support/filekeyring.py), outside BATCHTUI_HOME,
so a test can read everything batchtui wrote and look for them. Every stdout and stderr is
kept for the same reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class Cli:
    def __init__(self, base: Path, *, log_level: str | None = None) -> None:
        self.home = base / "home"
        self.keyring = base / "keyring.json"
        self.outputs: list[bytes] = []
        self.env = {
            # No provider key from the developer's environment may stand in for the test's own.
            **{k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "BATCHTUI_HOME"))},
            "BATCHTUI_HOME": str(self.home),
            "PYTHON_KEYRING_BACKEND": "support.filekeyring.FileKeyring",
            "BATCHTUI_TEST_KEYRING": str(self.keyring),
            "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]),
        }
        if log_level:
            self.env["BATCHTUI_LOG_LEVEL"] = log_level

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "batchtui", *args]

    def __call__(self, *args: str, input: bytes | str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        data = input.encode() if isinstance(input, str) else input
        result = subprocess.run(self.argv(*args), input=data, env=self.env, capture_output=True, timeout=timeout,
                                cwd=REPO)
        self.outputs += [result.stdout, result.stderr]
        return result

    def popen(self, *args: str) -> subprocess.Popen:
        """A long-running call (stdin, stdout and stderr are pipes); `finish` collects it."""
        return subprocess.Popen(self.argv(*args), env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=REPO)

    def finish(self, process: subprocess.Popen, input: bytes | None = None) -> subprocess.CompletedProcess:
        stdout, stderr = process.communicate(input, timeout=120)
        self.outputs += [stdout, stderr]
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def add_account(self, name: str, provider: str, base_url: str, key: str, *extra: str) -> None:
        result = self("accounts", "add", name, "--provider", provider, "--base-url", base_url, "--key-stdin",
                      "--no-check", *extra, input=key + "\n")
        assert result.returncode == 0, result.stderr


def text(result: subprocess.CompletedProcess) -> tuple[str, str]:
    return result.stdout.decode("utf-8", "replace"), result.stderr.decode("utf-8", "replace")
