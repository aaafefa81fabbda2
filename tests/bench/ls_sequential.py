"""The baseline of the `batchtui ls` benchmark: `batchtui ls` itself, with the one change
that `Engine.list_accounts` lists the accounts one after another instead of concurrently.
Same start-up, settings, engine, ledger writes and output.

    PYTHONPATH=.:tests python -m bench.ls_sequential --json   (BATCHTUI_HOME and keyring as for batchtui)
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from batchtui.cli.main import main
from batchtui.core.accounts import Account
from batchtui.core.engine import AccountResult, Engine, OnListed
from batchtui.core.errors import BatchtuiError
from batchtui.core.models import Batch


async def one_after_another(self: Engine, accounts: Iterable[Account], *,
                            listed: OnListed | None = None) -> tuple[list[Batch], list[AccountResult]]:
    """`Engine.list_accounts` with each account awaited in turn (same results, same order,
    the same `listed` calls)."""
    batches: list[Batch] = []
    results: list[AccountResult] = []
    for account in accounts:
        try:
            batches_of_account = await self.list_account(account, listed=listed)
        except (BatchtuiError, OSError) as exc:
            results.append(AccountResult(account, ok=False, error=str(exc), error_kind=type(exc).__name__))
            continue
        batches.extend(batches_of_account)
        results.append(AccountResult(account, ok=True, batches=len(batches_of_account)))
    batches.sort(key=lambda b: b.created_at, reverse=True)
    return batches, results


if __name__ == "__main__":
    Engine.list_accounts = one_after_another  # type: ignore[method-assign]
    sys.argv = ["batchtui", "ls", *sys.argv[1:]]
    sys.exit(main())  # as `batchtui` itself calls it
