"""Issue 6, item 7 (the engine and CLI part): a secrets audit of the whole command-line flow.

One known key per provider is added through `accounts add --key-stdin`, then every command
runs against `batchtui sim` (a subprocess on loopback) with logging at DEBUG: ls, show, fetch,
retry, submit (one of whose answers is lost), cancel, accounts list/test. Afterwards the keys
must be in no file batchtui wrote (config, ledger and its WAL, downloads, logs), in no stdout
or stderr, and in no process's argv, read from /proc while the processes ran; directories are
0700 and files with results 0600; each key reached only its own provider, and a redirect to
another host carried none.
"""

from __future__ import annotations

import hashlib
import json
import stat
import uuid
from pathlib import Path

import httpx
from starlette.responses import RedirectResponse

from reliability.clirun import Cli, text
from reliability.fake_provider import FakeProvider
from reliability.figures import record
from support.loopback import serve_on_loopback

RUN = uuid.uuid4().hex  # a fresh tail, so nothing from an earlier run can match by chance
KEYS = {"openai": f"sk-audit-openai-{RUN}", "anthropic": f"sk-ant-audit-{RUN}", "gemini": f"AIza-audit-{RUN}"}
NAMES = {"openai": "oa", "anthropic": "an", "gemini": "gm"}
MODEL = {"gemini": ["--model", "gemini-2.5-flash"]}


def proc_cmdlines() -> dict[int, bytes]:
    """Every process's argv that /proc lets us read (ours, at least), joined by NULs."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "cmdline").read_bytes()
            except OSError:  # gone already, or not ours to read
                continue
    return found


class Audit:
    def __init__(self) -> None:
        self.scans = 0  # /proc scans made while a process of ours held a key
        self.leaks: list[str] = []

    def scan(self, *pids: int) -> None:
        self.scans += 1
        for pid, cmdline in proc_cmdlines().items():
            for key in KEYS.values():
                if key.encode() in cmdline or RUN.encode() in cmdline:
                    self.leaks.append(f"argv of pid {pid}")
        for pid in pids:  # our own children's environments too
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            if RUN.encode() in environ:
                self.leaks.append(f"environment of pid {pid}")


def request_line(provider: str, i: int) -> dict:
    if provider == "openai":
        return {"custom_id": f"q-{i}", "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": f"q {i}"}]}}
    if provider == "anthropic":
        return {"custom_id": f"t-{i}", "params": {"model": "claude-haiku-4-5", "max_tokens": 32,
                                                   "messages": [{"role": "user", "content": f"t {i}"}]}}
    return {"key": f"g-{i}", "request": {"contents": [{"role": "user", "parts": [{"text": f"g {i}"}]}]}}


def test_no_key_leaks_anywhere_in_the_whole_cli_flow(tmp_path):
    cli = Cli(tmp_path, log_level="DEBUG")
    audit = Audit()
    sim = cli.popen("sim", "--port", "0", "--seed", "0", "--speed", "1", "--scenario", "empty")
    try:
        urls = dict(sim.stdout.readline().decode().split() for _ in range(3))
        host = urls["openai"].rsplit("/openai/v1", 1)[0]
        control = httpx.Client(base_url=f"{host}/_sim")

        def faults(provider: str, **config) -> None:
            control.post("/faults", json={"provider": provider, "key": KEYS[provider], "faults": config}).raise_for_status()

        # accounts add: the key goes in on stdin. A slow simulator holds the key check in flight,
        # so the process is alive, key in hand, when /proc is read.
        for provider, key in KEYS.items():
            faults(provider, rate=1.0, kinds=["slow"], slow_seconds=0.5)
            adding = cli.popen("accounts", "add", NAMES[provider], "--provider", provider,
                               "--base-url", urls[provider], "--key-stdin")
            adding.stdin.write(key.encode() + b"\n")
            adding.stdin.flush()
            assert b"key stored in the keyring" in adding.stderr.readline()  # event: key read and stored
            audit.scan(adding.pid, sim.pid)
            result = cli.finish(adding)
            assert result.returncode == 0, result.stderr
            faults(provider)  # no faults from here on

        # Every command, each provider.
        batch_ids = {}
        for provider in KEYS:
            name = NAMES[provider]
            files = []
            for n in (200, 201):  # sizes differ: Anthropic finds a lost create by its size
                files.append(tmp_path / f"{provider}-{n}.jsonl")
                files[-1].write_text("".join(json.dumps(request_line(provider, i)) + "\n" for i in range(n)))
            submitted = cli("submit", str(files[0]), "--account", name, "--json", *MODEL.get(provider, []))
            assert submitted.returncode == 0, submitted.stderr
            batch_ids[provider] = json.loads(submitted.stdout)["batch_id"]
            # A second submission whose answer is lost: found again, nothing re-sent.
            faults(provider, lose_create_answers=1)
            lost = cli("submit", str(files[1]), "--account", name, "--json", *MODEL.get(provider, []))
            assert lost.returncode == 0 and b"answer was lost; found the batch" in lost.stderr, lost.stderr
            assert cli("cancel", json.loads(lost.stdout)["batch_id"], "--account", name).returncode == 0
        control.post("/advance", json={"seconds": 3 * 3600}).raise_for_status()
        for provider, batch_id in batch_ids.items():
            name = NAMES[provider]
            calls = [["show", batch_id], ["fetch", batch_id], ["retry", batch_id, "--include-request-errors"]]
            if provider == "openai":  # the other forms once: they share every code path but the output
                calls += [["show", batch_id, "--json"], ["fetch", batch_id, "--out", str(tmp_path / "out"), "--json"],
                          ["retry", batch_id, "--dry-run", "--json"]]
            for args in calls:
                result = cli(*args, "--account", name)
                assert result.returncode == 0, (args, result.stderr)
        for args in (["ls"], ["ls", "--json"], ["accounts", "list"], ["accounts", "list", "--json"],
                     ["accounts", "test", "oa"]):
            assert cli(*args).returncode == 0, args

        # A long-running call: /proc is read over and over while it is alive.
        faults("anthropic", rate=1.0, kinds=["slow"], slow_seconds=1.0)
        listing = cli.popen("ls", "--account", "an")
        while listing.poll() is None:
            audit.scan(listing.pid, sim.pid)
        assert cli.finish(listing).returncode == 0
        state = control.get("/state").json()
    finally:
        sim.terminate()
        cli.finish(sim)

    # No key in any file batchtui wrote, whole or by its distinctive tail.
    written = [p for p in cli.home.rglob("*") if p.is_file()] + [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    names = {p.name for p in written}
    assert {"config.toml", "ledger.db", "batchtui.log"} <= names and "results.jsonl" in names
    log = (cli.home / "logs" / "batchtui.log").read_text()
    assert " DEBUG " in log and "HTTP Request" in log  # DEBUG logging really ran
    for path in written:
        data = path.read_bytes()
        assert RUN.encode() not in data, f"a key leaked into {path}"
    # ...in no output, and in no argv or environment while the processes ran.
    for output in cli.outputs:
        assert RUN.encode() not in output
    assert audit.scans >= 4 and audit.leaks == []

    # Private by mode: every directory 0700, result files, ledger, config and log 0600.
    for path in [cli.home, *(p for p in cli.home.rglob("*") if p.is_dir()), *(tmp_path / "out").rglob("*")]:
        if path.is_dir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in written:
        if path.suffix in (".jsonl", ".db", ".toml", ".log") or path.name.startswith("ledger.db"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    # Each key opened a workspace with its own provider only: it was sent nowhere else.
    opened = {(ws["provider"], ws["workspace"]) for ws in state["workspaces"]}
    for provider, key in KEYS.items():
        workspace = f"key-{hashlib.sha256(key.encode()).hexdigest()[:10]}"
        assert {p for p, w in opened if w == workspace} == {provider}
    record("secrets_audit_cli", commands_run=len(cli.outputs) // 2, files_checked=len(written),
           proc_scans=audit.scans, keys_found=0, modes_checked=len(written))


def test_a_redirect_to_another_host_never_carries_the_key(tmp_path):
    elsewhere = FakeProvider()  # records anything that reaches it
    with serve_on_loopback(elsewhere) as other:
        redirecting = FakeProvider()
        redirecting.fallback = lambda request: RedirectResponse(f"{other}/collect", status_code=307)
        with serve_on_loopback(redirecting) as host:
            cli = Cli(tmp_path)
            bases = {"openai": f"{host}/v1", "anthropic": host, "gemini": host}
            for provider, key in KEYS.items():
                cli.add_account(NAMES[provider], provider, bases[provider], key)
            results = {p: cli("ls", "--account", NAMES[p]) for p in KEYS}
    for provider, result in results.items():
        stdout, stderr = text(result)
        assert result.returncode == 1
        assert f"redirected to {other}/collect; not followed (it would carry the key)" in stderr, stderr
        assert RUN not in stdout + stderr
    assert elsewhere.seen == []  # the other host got nothing at all, so no key
    sent = {seen.credentials for seen in redirecting.seen}
    assert sent == {("Bearer " + KEYS["openai"],), (KEYS["anthropic"],), (KEYS["gemini"],)}
    record("secrets_redirects", redirects_refused=len(results), requests_to_other_host=0)
