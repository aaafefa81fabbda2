"""`batchtui ls` over 12 accounts (4 per provider) of 1,000 batches each, against `batchtui sim`
on loopback: the real command (accounts polled concurrently by `Engine.list_accounts`) against
the same command with `Engine.list_accounts` listing one account after another
(tests/bench/ls_sequential.py), alternating in one run.

Accounts live in a BATCHTUI_HOME config, added with `batchtui accounts add --key-stdin`, their
keys in the test file keyring. A real provider answers a list call in 100-500 ms; the simulator
on loopback in a few, so the comparison is made with a simulated 150 ms and 300 ms per request
(the simulator's "slow" fault on every request) and, for reference, with none.

Each provider is served by its own `batchtui sim` process (`provider_sims`), as the real ones
are separate services answering in parallel. One simulator process serving all three would
serialise their CPU: building the eight 1,000-batch Anthropic and Gemini pages takes it about
0.8 s, during which OpenAI's next page (ten in a row per account) waits its turn. The
sequential side never asks two providers at once, so only the concurrent side would pay that.
Both sides still list the same simulators in the same run, alternating.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.support import REPO, add_accounts, alternate, child_env, cli_env, median, provider_sims

ACCOUNTS_PER_PROVIDER = 4  # of each of the three providers
ACTIVE = 5  # running batches per account; the rest ended days ago
# Run as a module, so tests/bench is not first on sys.path (its support.py would hide tests/support).
SEQUENTIAL = ["-m", "bench.ls_sequential"]


def _run(args: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], env=env, cwd=REPO, capture_output=True, text=True,
                            timeout=900, **kw)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_cli_ls(full, report, tmp_path):
    per_account = 1_000 if full else 30
    rounds = 5 if full else 1  # alternating; the median of five moves less with one slow run
    latencies = (0.15, 0.3, 0.0)
    env = cli_env(tmp_path)
    with provider_sims() as sim:
        accounts = len(add_accounts(sim, env, per_provider=ACCOUNTS_PER_PROVIDER, batches=per_account, active=ACTIVE))
        report.context.update(accounts=accounts, batches_per_account=per_account, rounds=rounds,
                              statistic="median wall time of alternating rounds, process start to exit")
        outputs: dict[str, str] = {}

        def ls() -> None:
            outputs["ls"] = _run(["-m", "batchtui", "ls", "--json"], env).stdout

        def sequential() -> None:
            outputs["sequential"] = _run([*SEQUENTIAL, "--json"], env).stdout

        ls()  # the first listing fills the ledger; the timed ones find it as a daily user would
        for latency in latencies:
            faults = {"rate": 1.0, "kinds": ["slow"], "slow_seconds": latency} if latency else {"rate": 0.0}
            sim.control("faults", {"faults": faults})
            before = _total_requests(sim)
            times = alternate({"ls": ls, "sequential": sequential}, rounds)
            per_run = (_total_requests(sim) - before) / (2 * rounds)
            listed = json.loads(outputs["ls"])
            assert len(listed["batches"]) == accounts * per_account and all(a["ok"] for a in listed["accounts"])
            # The same batches (running ones move on between the two runs: compare identities).
            assert _ids(listed) == _ids(json.loads(outputs["sequential"])), "the two listings differ"
            report.compare(f"ls, {accounts} accounts x {per_account:,} batches, {latency * 1000:.0f} ms/request (s)",
                           median(times["ls"].wall), median(times["sequential"].wall), "s",
                           "one account after another", higher_is_better=False,
                           target_ratio=4.0 if latency else None,
                           note=f"{per_run:.0f} HTTP requests per listing")
        empty = child_env(BATCHTUI_HOME=str(tmp_path / "empty-home"))
        startup = alternate({"ls": lambda: _run(["-m", "batchtui", "ls", "--json"], empty),
                             "python": lambda: _run(["-c", "pass"], empty)}, 5 if full else 1)
        report.figure("start-up: ls with no accounts (s)", median(startup["ls"].wall), "s",
                      note=f"bare python start: {median(startup['python'].wall):.2f} s")
        # httpx's own command line (click, rich) stays out of batchtui's commands.
        loaded = _run(["-c", "import sys; from batchtui.cli.main import main; main(['ls', '--json']); "
                             "print(sorted({'rich', 'click', 'textual'} & set(sys.modules)))"], empty).stdout
        assert loaded.strip().splitlines()[-1] == "[]"


def _ids(listing: dict) -> set[tuple[str, str]]:
    return {(b["account"], b["id"]) for b in listing["batches"]}


def _total_requests(sim) -> int:
    return sum(sum(ws["requests"].values()) for ws in sim.state()["workspaces"])
