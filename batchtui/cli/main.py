"""`batchtui`: the command line of CLI-CONTRACT.md.

Exit status: 0 success, 1 the operation failed (for commands over several accounts: any
account failed), 2 usage error (bad arguments, unknown account or batch). Scripts read JSON
on stdout (`--json`); people read tables on stdout and messages on stderr.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
PROVIDERS = ("openai", "anthropic", "gemini", "openai-compatible")
STATUSES = ("validating", "in_progress", "finalizing", "cancelling", "completed", "failed", "expired", "cancelled")


class UsageExit(SystemExit):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code is 2 as well; keep its text
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise UsageExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="batchtui", description="Watch and manage LLM batch jobs across providers and accounts.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    demo = sub.add_parser("demo", help="the dashboard on the built-in simulator (no keys needed)")
    demo.add_argument("--speed", type=float, default=30.0, help="simulated seconds per real second (default 30)")
    demo.add_argument("--seed", type=int, default=0)

    accounts = sub.add_parser("accounts", help="add, list, test and remove accounts")
    asub = accounts.add_subparsers(dest="accounts_command", parser_class=_Parser, required=True)
    add = asub.add_parser("add", help="add an account; its key goes to the OS keyring")
    add.add_argument("name")
    add.add_argument("--provider", required=True, choices=PROVIDERS)
    add.add_argument("--base-url")
    add.add_argument("--key-stdin", action="store_true", help="read the key from stdin (else a hidden prompt)")
    add.add_argument("--preset", help="OpenAI-compatible dialect (groq, together, ...)")
    add.add_argument("--organization", help="OpenAI organization id")
    add.add_argument("--project", help="OpenAI project id")
    add.add_argument("--default-model", help="Gemini: the model for submitted files")
    add.add_argument("--no-check", action="store_true", help="do not test the key after storing it")
    lst = asub.add_parser("list", help="the configured accounts")
    lst.add_argument("--json", action="store_true")
    rm = asub.add_parser("remove", help="remove an account and its stored key")
    rm.add_argument("name")
    test = asub.add_parser("test", help="check an account's key with one request")
    test.add_argument("name")
    test.add_argument("--json", action="store_true")

    ls = sub.add_parser("ls", help="every batch of every account (polls each once)")
    ls.add_argument("--account", action="append", dest="accounts", metavar="NAME")
    ls.add_argument("--status", choices=STATUSES)
    ls.add_argument("--json", action="store_true")

    show = sub.add_parser("show", help="one batch, with its error breakdown when results are known")
    show.add_argument("batch_id")
    show.add_argument("--account")
    show.add_argument("--json", action="store_true")

    fetch = sub.add_parser("fetch", help="download a batch's results (and error file)")
    fetch.add_argument("batch_id")
    fetch.add_argument("--account")
    fetch.add_argument("--out", help="folder for <account>/<batch id>/ (default: the downloads dir)")
    fetch.add_argument("--json", action="store_true")

    retry = sub.add_parser("retry", help="resend a batch's failed items as a new batch")
    retry.add_argument("batch_id")
    retry.add_argument("--account")
    retry.add_argument("--dry-run", action="store_true")
    retry.add_argument("--include-request-errors", action="store_true")
    retry.add_argument("--input", help="the original JSONL, when neither the provider nor the ledger has it")
    retry.add_argument("--force", action="store_true", help="even while an earlier retry is running")
    retry.add_argument("--json", action="store_true")

    cancel = sub.add_parser("cancel", help="cancel a batch")
    cancel.add_argument("batch_id")
    cancel.add_argument("--account")
    cancel.add_argument("--json", action="store_true")

    submit = sub.add_parser("submit", help="validate and submit a batch JSONL")
    submit.add_argument("file")
    submit.add_argument("--account", required=True)
    submit.add_argument("--model", help="Gemini: the model (else the account's default_model)")
    submit.add_argument("--json", action="store_true")

    sim = sub.add_parser("sim", help="serve the provider simulator on loopback")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=0)
    sim.add_argument("--speed", type=float, default=1.0)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--scenario", default="demo", choices=("demo", "empty"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The `batchtui` command. With `argv` None it is the process itself (the console
    script, `python -m batchtui`), about to exit once it returns."""
    if argv is not None:
        try:
            return _main(argv)
        finally:
            spared.clear()
    try:
        code = _main(None)
    finally:
        # Spare the process its last garbage collection: at exit Python collects every
        # object still tracked (each module's, pydantic's schemas, whatever a command kept),
        # ~0.15 s, to free memory the OS takes back anyway. Frozen objects are left out.
        gc.freeze()
    if _engine_command_ran:
        _exit(code)
    return code  # the dashboard, the demo and the simulator end the usual way


# What a command made and no longer needs, left for the process's exit to drop (see `_exit`):
# freeing `ls`'s 12,000 batches one object at a time took 60 ms, after the output was out.
spared: list[object] = []
_engine_command_ran = False  # a command of cli/commands.py returned (it closed what it opened)


def _exit(code: int) -> NoReturn:
    """End the process once a command is done: its output flushed, its files closed.

    A normal exit frees every object one by one and collects the cyclic ones (~0.1-0.2 s
    after `ls`), memory the OS takes back anyway; nothing of ours runs at exit, and the
    ledger is closed and the log flushed by then. So flush and leave.
    """
    try:
        sys.stdout.flush()
    except OSError:  # a closed pipe (`batchtui ls --json | head`): what was written is out
        code = code or EXIT_FAILED
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageExit as exc:
        return int(exc.code or EXIT_USAGE)
    command = args.command
    if command == "sim":
        from batchtui.sim.server import serve

        if args.host not in ("127.0.0.1", "localhost", "::1") and not args.host.startswith("127."):
            sys.stderr.write("batchtui sim: serves loopback only (127.0.0.0/8 or ::1)\n")
            return EXIT_USAGE
        return serve(args.host, args.port, speed=args.speed, seed=args.seed, scenario=args.scenario)
    if command in (None, "demo"):
        from batchtui.ui.launch import run_dashboard, run_demo

        return run_demo(speed=args.speed, seed=args.seed) if command == "demo" else run_dashboard()
    _without_httpx_cli()
    with _few_gc_passes(command, process=argv is None):
        from batchtui.cli.commands import run_command

        code = run_command(args)
    global _engine_command_ran
    _engine_command_ran = True
    return code


@contextmanager
def _few_gc_passes(command: str, *, process: bool) -> Iterator[None]:
    """The cyclic garbage collector mostly off while a command runs (as it was before, after).

    A command makes tens or hundreds of thousands of objects (12,000 batches for `ls`, each
    with its wire dicts, model and JSON) and hardly any reference cycles: at the default (a
    pass every 700 new objects) a fifth of `ls`'s time went to the collector. At 20,000 the
    passes over the ever-larger young generations still took 0.1-0.4 s of `ls`, so `ls` runs
    with none: the whole listing of 12 accounts x 1,000 batches left 2,736 objects in
    cycles (about 57 a request), a few hundred kB. Others keep a pass every 20,000 objects.
    Set before the command's imports, which made a hundred passes of their own.
    """
    was_enabled, threshold = gc.isenabled(), gc.get_threshold()
    if command == "ls":
        gc.disable()
    else:
        gc.set_threshold(20_000, *threshold[1:])
    try:
        yield
    finally:
        if process:
            # The process ends next: what the command left is frozen first, or the first
            # allocation after gc.enable() would collect all of it (~0.1 s after `ls`).
            gc.freeze()
        gc.set_threshold(*threshold)
        if was_enabled:
            gc.enable()


def _without_httpx_cli() -> None:
    """Keep httpx's own command line (click, rich, pygments) out of batchtui's commands.

    `import httpx` imports `httpx._main` only to offer `httpx.main`, which batchtui never
    calls: 30-80 ms of every command's start-up (measured beside tests/bench/test_cli_ls.py). A
    stand-in registered first is what httpx then imports; it has the one name httpx takes.
    """
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    stand_in = types.ModuleType("httpx._main", "httpx's command line, left out of batchtui's commands")

    def main() -> None:
        sys.exit("httpx's command line is not loaded inside batchtui")

    stand_in.main = main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stand_in


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
