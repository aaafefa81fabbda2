"""Every command as a subprocess against `batchtui sim` on a loopback socket.

Accounts are added through the CLI with --key-stdin; keys go to a throwaway file keyring
outside BATCHTUI_HOME, so the test can grep everything batchtui wrote for the keys.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
KEYS = {
    "acme-prod": "sim-key-openai-acme-prod",
    "claude-team": "sim-key-anthropic-team",
    "gemini-lab": "sim-key-gemini-lab",
    "old-intern-key": "sim-key-anthropic-revoked",
}
PROVIDER = {"acme-prod": "openai", "claude-team": "anthropic", "gemini-lab": "gemini", "old-intern-key": "anthropic"}


class Cli:
    def __init__(self, home: Path, keyring_file: Path, urls: dict[str, str], host: str):
        self.home, self.urls, self.host = home, urls, host
        self.outputs: list[str] = []
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
            "BATCHTUI_HOME": str(home),
            "PYTHON_KEYRING_BACKEND": "support.filekeyring.FileKeyring",
            "BATCHTUI_TEST_KEYRING": str(keyring_file),
            "PYTHONPATH": str(REPO / "tests"),
        }

    def __call__(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "batchtui", *args], input=input, env=self.env,
                                capture_output=True, text=True, timeout=120)
        self.outputs += [result.stdout, result.stderr]
        return result

    def json(self, *args: str, code: int = 0) -> dict:
        result = self(*args, "--json")
        assert result.returncode == code, result.stderr
        return json.loads(result.stdout)

    def advance(self, seconds: float) -> None:
        httpx.post(f"{self.host}/_sim/advance", json={"seconds": seconds}).raise_for_status()

    def state(self) -> dict:
        return httpx.get(f"{self.host}/_sim/state").json()


@pytest.fixture(scope="module")
def sim_server():
    proc = subprocess.Popen([sys.executable, "-m", "batchtui", "sim", "--port", "0", "--seed", "0", "--speed", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    urls = {}
    for _ in range(3):
        provider, url = proc.stdout.readline().split()
        urls[provider] = url
    yield urls
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


@pytest.fixture(scope="module")
def cli(sim_server, tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    host = sim_server["openai"].rsplit("/openai/v1", 1)[0]
    c = Cli(base / "home", base / "keyring.json", sim_server, host)
    for name, key in KEYS.items():
        result = c("accounts", "add", name, "--provider", PROVIDER[name], "--base-url", sim_server[PROVIDER[name]],
                   "--key-stdin", input=key + "\n")
        assert result.returncode == 0, result.stderr
    return c


def test_sim_prints_one_base_url_per_provider(sim_server):
    assert set(sim_server) == {"openai", "anthropic", "gemini"}
    assert sim_server["openai"].endswith("/openai/v1") and sim_server["openai"].startswith("http://127.0.0.1:")


def test_accounts_add_stores_keys_in_the_keyring_and_warns_on_a_bad_one(cli):
    stored = Path(cli.env["BATCHTUI_TEST_KEYRING"]).read_text()
    assert all(key in stored for key in KEYS.values())
    listed = cli.json("accounts", "list")
    assert {a["name"]: a["key"] for a in listed["accounts"]} == {n: "keyring" for n in KEYS}
    warnings = [o for o in cli.outputs if "warning: the key did not work" in o]
    assert len(warnings) == 1 and "old-intern-key" in warnings[0]
    config = (cli.home / "config.toml").read_text()
    assert "claude-team" in config and not any(k in config for k in KEYS.values())


def test_accounts_test_reports_exit_status(cli):
    assert cli("accounts", "test", "acme-prod").returncode == 0
    bad = cli("accounts", "test", "old-intern-key")
    assert bad.returncode == 1 and "old-intern-key" in bad.stderr


def test_ls_lists_every_account_and_reports_the_failing_one(cli):
    out = cli.json("ls", code=1)
    accounts = {a["name"]: a for a in out["accounts"]}
    assert accounts["old-intern-key"]["ok"] is False and accounts["old-intern-key"]["error"]
    assert all(a["ok"] for n, a in accounts.items() if n != "old-intern-key")
    sim_ids = {b["id"] for ws in cli.state()["workspaces"] if ws["workspace"] in ("acme-prod", "claude-team", "gemini-lab")
               for b in ws["batches"]}
    assert sim_ids == {b["id"] for b in out["batches"]}
    b = out["batches"][0]
    assert set(b) >= {"account", "provider", "id", "status", "provider_status", "created_at", "ended_at", "expires_at",
                      "model", "counts", "cost"}
    assert set(b["counts"]) == {"total", "succeeded", "failed", "expired", "cancelled", "processing"}
    assert set(b["cost"]) >= {"usd", "standard_usd", "estimated"}
    only = cli.json("ls", "--account", "acme-prod", "--status", "completed")
    assert only["batches"] and {x["account"] for x in only["batches"]} == {"acme-prod"}
    assert {x["status"] for x in only["batches"]} == {"completed"}
    human = cli("ls", "--account", "claude-team")
    assert human.returncode == 0 and human.stdout.splitlines()[0].split()[:3] == ["ACCOUNT", "PROVIDER", "ID"]


@pytest.mark.parametrize("only", [["--account", "acme-prod"], []], ids=["buffered", "larger than the buffer"])
def test_ls_into_a_closed_pipe_fails_quietly(cli, only):
    """A reader gone before the output is out (`batchtui ls --json | head -c0`): exit 1, no
    traceback, no "Exception ignored" noise; whether the write fails in the command (more
    than the stdout buffer) or at the last flush before the exit (less)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, "-m", "batchtui", "ls", "--json", *only],
                                env=cli.env, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    assert cli.json("ls", "--account", "acme-prod")["batches"]  # the ledger is fine for the next run


def batches_of(cli, account, status="completed"):
    return [b for b in cli.json("ls", "--account", account)["batches"] if b["status"] == status]


def test_usage_errors_exit_2(cli):
    assert cli("show", "msgbatch_doesnotexist", "--account", "nobody").returncode == 2
    assert cli("show", "msgbatch_doesnotexist").returncode == 2
    assert cli("ls", "--status", "sideways").returncode == 2


def test_fetch_twice_is_a_no_op_and_cost_matches_a_hand_computation(cli, tmp_path):
    batch = next(b for b in batches_of(cli, "claude-team") if (b["counts"]["failed"] or 0) > 0)
    first = cli.json("fetch", batch["id"], "--out", str(tmp_path))
    assert [f["kind"] for f in first["files"]] == ["results"]
    path = Path(first["files"][0]["path"])
    assert path == tmp_path / "claude-team" / batch["id"] / "results.jsonl"
    second_run = cli("fetch", batch["id"], "--out", str(tmp_path), "--json")
    assert second_run.returncode == 0 and "already fetched" in second_run.stderr
    assert json.loads(second_run.stdout)["files"][0]["sha256"] == first["files"][0]["sha256"]

    # Anthropic list prices per 1M tokens (standard); batch = 50%, cache multipliers stack on it.
    list_price = {"claude-haiku-4-5": (Decimal("1.00"), Decimal("5.00")),
                  "claude-sonnet-4-6": (Decimal("3.00"), Decimal("15.00")),
                  "claude-opus-4-6": (Decimal("5.00"), Decimal("25.00"))}
    total = Decimal(0)
    for line in path.read_text().splitlines():
        result = json.loads(line)["result"]
        if result["type"] != "succeeded":
            continue
        message = result["message"]
        family = next(k for k in list_price if message["model"].startswith(k))
        price_in, price_out = list_price[family]
        u = message["usage"]
        one_hour = (u.get("cache_creation") or {}).get("ephemeral_1h_input_tokens") or 0
        writes = u.get("cache_creation_input_tokens") or 0
        tokens = (u["input_tokens"] * price_in + (u.get("cache_read_input_tokens") or 0) * price_in * Decimal("0.1")
                  + (writes - one_hour) * price_in * Decimal("1.25") + one_hour * price_in * 2
                  + u["output_tokens"] * price_out)
        total += tokens * Decimal("0.5") / 1_000_000
    shown = cli.json("show", batch["id"])
    assert shown["cost"]["usd"] == pytest.approx(float(total), abs=1e-6)
    assert shown["cost"]["estimated"] is False
    assert shown["errors"]["groups"] and all(g["count"] > 0 for g in shown["errors"]["groups"])


def openai_line(i):
    return {"custom_id": f"q-{i}", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": f"q {i}"}]}}


def anthropic_line(i):
    return {"custom_id": f"t-{i}", "params": {"model": "claude-haiku-4-5", "max_tokens": 32,
                                               "messages": [{"role": "user", "content": f"t {i}"}]}}


def gemini_line(i):
    return {"key": f"g-{i}", "request": {"contents": [{"role": "user", "parts": [{"text": f"g {i}"}]}]}}


def write(path: Path, objects) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objects))
    return path


def test_submit_malformed_sends_nothing(cli, tmp_path):
    before = {ws["workspace"]: len(ws["batches"]) for ws in cli.state()["workspaces"]}
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(anthropic_line(1)) + "\n{oops\n" + json.dumps(anthropic_line(1)) + "\n")
    result = cli("submit", str(path), "--account", "claude-team", "--json")
    assert result.returncode == 1 and result.stdout == ""
    assert "line 2" in result.stderr and "line 3" in result.stderr and "nothing was sent" in result.stderr
    after = {ws["workspace"]: len(ws["batches"]) for ws in cli.state()["workspaces"]}
    assert after == before


@pytest.mark.parametrize("account, make_line, extra", [
    ("acme-prod", openai_line, []),
    ("claude-team", anthropic_line, []),
    ("gemini-lab", gemini_line, ["--model", "gemini-2.5-flash"]),
])
def test_submit_then_retry_sets_per_provider(cli, tmp_path, account, make_line, extra):
    path = write(tmp_path / "in.jsonl", [make_line(i) for i in range(300)])
    submitted = cli.json("submit", str(path), "--account", account, *extra)
    assert submitted["requests"] == 300
    early = cli("retry", submitted["batch_id"], "--account", account, "--dry-run")
    assert early.returncode == 1 and "retry once it has ended" in early.stderr
    cli.advance(3 * 3600)
    shown = cli.json("show", submitted["batch_id"], "--account", account)
    assert shown["status"] == "completed"
    fetched = cli.json("fetch", submitted["batch_id"], "--account", account, "--out", str(tmp_path / "out"))
    # The retry set, computed here from the fetched files alone: server-side failures only.
    want = set()
    for f in fetched["files"]:
        for line in Path(f["path"]).read_text().splitlines():
            want |= retryable_ids(account, json.loads(line))
    dry = cli.json("retry", submitted["batch_id"], "--account", account, "--dry-run")
    assert dry["batch_id"] is None and dry["parent"] == submitted["batch_id"]
    assert set(dry["custom_ids"]) == want
    if want:
        real = cli.json("retry", submitted["batch_id"], "--account", account)
        assert real["batch_id"] and set(real["custom_ids"]) == want
        again = cli("retry", submitted["batch_id"], "--account", account)
        assert again.returncode == 1 and "already has a retry running" in again.stderr


def retryable_ids(account: str, line: dict) -> set[str]:
    if account == "acme-prod":
        if line.get("error"):
            return {line["custom_id"]}
        status = (line.get("response") or {}).get("status_code", 200)
        return {line["custom_id"]} if status >= 500 or status == 0 else set()
    if account == "claude-team":
        result = line["result"]
        if result["type"] in ("canceled", "expired"):
            return {line["custom_id"]}
        if result["type"] == "errored" and result["error"]["error"]["type"] in (
                "api_error", "overloaded_error", "timeout_error", "rate_limit_error"):
            return {line["custom_id"]}
        return set()
    error = line.get("error")
    if error and (error.get("code", 0) >= 500 or error.get("code") in (4, 8, 13, 14)):
        return {line["key"]}
    return set()


def test_cancel_changes_the_status(cli, tmp_path):
    path = write(tmp_path / "c.jsonl", [anthropic_line(i) for i in range(50)])
    submitted = cli.json("submit", str(path), "--account", "claude-team")
    cancelled = cli.json("cancel", submitted["batch_id"], "--account", "claude-team")
    assert cancelled["status"] in ("cancelling", "cancelled") and cancelled["provider_status"] == "canceling"
    cli.advance(600)
    assert cli.json("show", submitted["batch_id"])["status"] == "cancelled"
    assert cli("cancel", submitted["batch_id"]).returncode == 1


def test_remove_deletes_config_entry_and_key(cli):
    key = "sim-key-throwaway-0001"
    assert cli("accounts", "add", "temp", "--provider", "openai", "--base-url", cli.urls["openai"], "--key-stdin",
               "--no-check", input=key + "\n").returncode == 0
    assert key in Path(cli.env["BATCHTUI_TEST_KEYRING"]).read_text()
    assert cli("accounts", "remove", "temp").returncode == 0
    assert key not in Path(cli.env["BATCHTUI_TEST_KEYRING"]).read_text()
    assert "temp" not in {a["name"] for a in cli.json("accounts", "list")["accounts"]}
    assert cli("accounts", "remove", "temp").returncode == 2


def test_zz_no_key_in_any_file_or_output(cli):
    """Last in the module: everything the commands above wrote, checked for every key."""
    secrets = [k.encode() for k in KEYS.values()]
    written = [p for p in cli.home.rglob("*") if p.is_file()]
    assert any(p.name == "ledger.db" for p in written)
    for path in written:
        data = path.read_bytes()
        for secret in secrets:
            assert secret not in data, f"a key leaked into {path}"
    for text in cli.outputs:
        for secret in KEYS.values():
            assert secret not in text
