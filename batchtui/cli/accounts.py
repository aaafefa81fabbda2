"""`batchtui accounts add|list|remove|test`.

The key is read from stdin (`--key-stdin`) or a hidden prompt, never argv, and goes straight
to the OS keyring; config.toml only ever learns the account's name, provider and URL.
"""

from __future__ import annotations

import asyncio
import sys
from argparse import Namespace

from batchtui.cli import render
from batchtui.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from batchtui.core import keys
from batchtui.core.accounts import Account
from batchtui.core.config import (
    DuplicateAccountError,
    UnknownAccountError,
    add_account,
    load_settings,
    remove_account,
    save_settings,
)
from batchtui.core.errors import BatchtuiError, ConfigError
from batchtui.core.paths import Paths
from batchtui.core.text import printable


def err(message: str) -> None:
    sys.stderr.write(printable(message) + "\n")


def run_accounts(args: Namespace) -> int:
    paths = Paths.resolve()
    try:
        settings = load_settings(paths)
    except ConfigError as exc:
        err(f"batchtui: {exc}")
        return EXIT_USAGE
    command = args.accounts_command
    try:
        if command == "add":
            return _add(paths, settings, args)
        if command == "list":
            return _list(settings, args)
        if command == "remove":
            return _remove(paths, settings, args.name)
        return _test(paths, settings, args)
    except (UnknownAccountError, DuplicateAccountError) as exc:
        err(f"batchtui: {exc}")
        return EXIT_USAGE
    except BatchtuiError as exc:
        err(f"batchtui: {exc}")
        return EXIT_FAILED


def _add(paths: Paths, settings, args: Namespace) -> int:
    try:
        account = Account(name=args.name, provider=args.provider, base_url=args.base_url, preset=args.preset,
                          organization=args.organization, project=args.project, default_model=args.default_model)
    except ValueError as exc:
        err(f"batchtui: {_first_error(exc)}")
        return EXIT_USAGE
    settings = add_account(settings, account)  # duplicate names fail here, before the key is read
    key = keys.read_key(args.key_stdin)
    status = keys.keyring_status()
    save_settings(paths, settings)
    if not status.ok:
        env = ", ".join(account.key_env_vars) or "none for this provider"
        err(f"batchtui: account {account.name} saved, but its key was NOT stored: {status.message}")
        err(f"batchtui: until then it uses the provider's env var ({env})")
        return EXIT_FAILED
    keys.store_key(account.name, key)
    print(f"account {account.name} ({account.provider.value}) added; key stored in the keyring", file=sys.stderr)
    if args.no_check:
        return EXIT_OK
    ok, error = asyncio.run(_check(paths, settings, account))
    if not ok:
        err(f"batchtui: warning: the key did not work yet ({error}); the account is kept. "
            f"Try `batchtui accounts test {account.name}`")
    return EXIT_OK


def _list(settings, args: Namespace) -> int:
    rows = []
    for account in settings.accounts:
        try:
            source = keys.key_source(account) or "none"
        except keys.KeyringUnavailable:
            source = "keyring unavailable"
        rows.append({"name": account.name, "provider": account.provider.value,
                     "base_url": account.base_url or _default_url(account), "preset": account.preset,
                     "key": source})
    if args.json:
        render.dump({"accounts": rows})
    else:
        render.table(("NAME", "PROVIDER", "BASE URL", "KEY"),
                     [[r["name"], r["provider"], r["base_url"], r["key"]] for r in rows])
    return EXIT_OK


def _remove(paths: Paths, settings, name: str) -> int:
    settings = remove_account(settings, name)
    save_settings(paths, settings)
    try:
        removed_key = keys.delete_key(name)
    except keys.KeyringUnavailable as exc:
        err(f"batchtui: account {name} removed from config, but its key could not be deleted: {exc}")
        return EXIT_FAILED
    note = " and its key" if removed_key else ""
    print(f"account {name}{note} removed", file=sys.stderr)
    return EXIT_OK


def _test(paths: Paths, settings, args: Namespace) -> int:
    account = settings.account(args.name)
    ok, error = asyncio.run(_check(paths, settings, account))
    if getattr(args, "json", False):
        render.dump({"name": account.name, "provider": account.provider.value, "ok": ok, "error": error})
    elif ok:
        print(f"{account.name}: ok")
    else:
        err(f"batchtui: {account.name}: {error}")
    return EXIT_OK if ok else EXIT_FAILED


async def _check(paths: Paths, settings, account: Account) -> tuple[bool, str | None]:
    """One cheap request with the stored key: the first listed batch."""
    from batchtui.core.engine import Engine

    engine = Engine.open(paths, settings=settings)
    try:
        client = engine.client(account)
        async for _ in client.list_batches(stop_at=lambda _id: True, first_page=1):
            break
        return True, None
    except BatchtuiError as exc:
        return False, str(exc)
    finally:
        await engine.aclose()
        engine.close_ledger()


def _default_url(account: Account) -> str:
    from batchtui.core.providers import client_class

    return client_class(account.provider).default_base_url(account)


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    return str(exc)
