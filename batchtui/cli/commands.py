"""The CLI commands over the engine. Each returns an exit status; errors become one line on
stderr (never a traceback, never a key)."""

from __future__ import annotations

import asyncio
import sys
from argparse import Namespace
from collections.abc import Awaitable, Callable
from pathlib import Path

from batchtui.cli import render
from batchtui.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, spared
from batchtui.core.config import UnknownAccountError
from batchtui.core.engine import AmbiguousBatchError, Engine
from batchtui.core.errors import BatchtuiError, ConfigError, InputError, NotFoundError
from batchtui.core.logs import setup_logging
from batchtui.core.text import printable


def err(message: str) -> None:
    # Our messages may span lines (a submit's problem list): line breaks are the one control
    # character let through, and everything else on each line is escaped.
    sys.stderr.write("\n".join(printable(line) for line in str(message).split("\n")) + "\n")


def run_command(args: Namespace) -> int:
    if args.command == "accounts":
        from batchtui.cli.accounts import run_accounts

        return run_accounts(args)
    handlers: dict[str, Callable[[Engine, Namespace], Awaitable[int]]] = {
        "ls": cmd_ls, "show": cmd_show, "fetch": cmd_fetch, "retry": cmd_retry,
        "cancel": cmd_cancel, "submit": cmd_submit,
    }
    try:
        engine = Engine.open()
        setup_logging(engine.paths)
    except ConfigError as exc:
        err(f"batchtui: {exc}")
        return EXIT_USAGE
    try:
        return asyncio.run(_with_engine(engine, handlers[args.command], args))
    except (UnknownAccountError, AmbiguousBatchError) as exc:
        err(f"batchtui: {exc}")
        return EXIT_USAGE
    except InputError as exc:
        err(f"batchtui: {exc}")
        return EXIT_FAILED
    except NotFoundError as exc:
        err(f"batchtui: {exc}")
        return EXIT_USAGE
    except BatchtuiError as exc:
        err(f"batchtui: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        err("batchtui: interrupted")
        return 130
    except BrokenPipeError:
        # Whoever read our output left (`batchtui ls --json | head`): a failure, nothing to say.
        return EXIT_FAILED
    finally:
        engine.close_ledger()


async def _with_engine(engine: Engine, handler, args: Namespace) -> int:
    try:
        return await handler(engine, args)
    finally:
        await engine.aclose()


# -- batches -------------------------------------------------------------------------------


async def cmd_ls(engine: Engine, args: Namespace) -> int:
    accounts = engine.accounts(args.accounts)
    if not accounts:
        err("batchtui: no accounts yet; add one with `batchtui accounts add NAME --provider P --key-stdin`")
    listing = render.Listing() if args.json else None
    batches, results = await engine.list_accounts(accounts, listed=listing.add if listing else None)
    if args.status:
        batches = [b for b in batches if b.status.value == args.status]
    if listing is not None:
        listing.dump(batches, [r.as_json() for r in results])
    else:
        render.table(render.BATCH_HEADERS, render.batch_rows(batches))
    for result in results:
        if not result.ok:
            err(f"batchtui: account {result.account.name}: {result.error}")
    spared.append((batches, listing))
    return EXIT_FAILED if any(not r.ok for r in results) else EXIT_OK


async def cmd_show(engine: Engine, args: Namespace) -> int:
    from batchtui.core.fetch import analyse_results

    account, batch = await engine.locate(args.batch_id, args.account)
    breakdown = None
    if batch.is_terminal and batch.result_files:
        analysis = engine.ledger.analysis(account.name, batch.id)
        if analysis is None:
            await analyse_results(engine, account, batch)
            analysis = engine.ledger.analysis(account.name, batch.id)
        breakdown = analysis.breakdown if analysis is not None else None
        batch = engine.costed(batch)
    if args.json:
        out = render.batch_json(batch)
        if breakdown is not None:
            out["errors"] = render.breakdown_json(breakdown)
        render.dump(out)
    else:
        render.show_batch(batch, breakdown)
    return EXIT_OK


async def cmd_fetch(engine: Engine, args: Namespace) -> int:
    from batchtui.core.fetch import fetch_results

    account, batch = await engine.locate(args.batch_id, args.account)
    out_dir = Path(args.out).expanduser() if args.out else engine.settings.downloads_path(engine.paths)
    progress = _progress_printer() if sys.stderr.isatty() else None
    result = await fetch_results(engine, account, batch, out_dir, progress=progress)
    if progress is not None:
        sys.stderr.write("\n")
    if args.json:
        render.dump({"batch_id": batch.id, "files": [f.as_json() for f in result.files]})
    else:
        for f in result.files:
            note = " (already fetched)" if f.already_there else ""
            print(f"{f.kind}: {f.path}  {f.lines:,} lines  sha256 {f.sha256[:16]}…{note}")
    if result.no_op:
        err(f"batchtui: results of {batch.id} were already fetched; nothing downloaded")
    return EXIT_OK


async def cmd_retry(engine: Engine, args: Namespace) -> int:
    from batchtui.core.retry import plan_retry, run_retry

    account, batch = await engine.locate(args.batch_id, args.account)
    plan = await plan_retry(engine, account, batch, include_request_errors=args.include_request_errors,
                            input_path=Path(args.input) if args.input else None)
    what = ", ".join(f"{n:,} {kind}" for kind, n in sorted(plan.by_outcome.items()))
    if args.dry_run:
        if args.json:
            render.dump(plan.as_json(None))
        else:
            print(f"would retry {len(plan.custom_ids):,} items of {printable(batch.id)} ({what}); "
                  f"originals from {printable(plan.source)}")
            if plan.estimated_cost is not None:
                print(f"estimated cost {render.money(plan.estimated_cost)}")
        return EXIT_OK
    submitted = await run_retry(engine, plan, force=args.force)
    if args.json:
        render.dump(plan.as_json(submitted.batch.id))
    else:
        print(f"{printable(submitted.batch.id)}: retrying {len(plan.custom_ids):,} items of {printable(batch.id)} ({what})")
    return EXIT_OK


async def cmd_cancel(engine: Engine, args: Namespace) -> int:
    account, batch = await engine.locate(args.batch_id, args.account)
    if batch.is_terminal:
        err(f"batchtui: batch {batch.id} already {batch.status.value}; nothing to cancel")
        return EXIT_FAILED
    cancelled = engine.costed(await engine.client(account).cancel_batch(batch.id))
    await asyncio.to_thread(engine.ledger.upsert_batches, [cancelled])
    if args.json:
        render.dump(render.batch_json(cancelled))
    else:
        print(f"{printable(cancelled.id)}: {cancelled.status.value}")
    return EXIT_OK


async def cmd_submit(engine: Engine, args: Namespace) -> int:
    from batchtui.core.submit import submit_file

    account = engine.settings.account(args.account)
    submitted = await submit_file(engine, account, Path(args.file), model=args.model)
    if submitted.recovered:
        err(f"batchtui: the create's answer was lost; found the batch it made ({submitted.batch.id}), nothing re-sent")
    if args.json:
        render.dump({"batch_id": submitted.batch.id, "requests": submitted.requests})
    else:
        print(f"{printable(submitted.batch.id)}: {submitted.requests:,} requests submitted to {account.name}")
    return EXIT_OK


def _progress_printer():
    import humanize

    def show(kind: str, done: int) -> None:
        if done >= 1 << 20:  # only large files are worth a progress line
            sys.stderr.write(f"\r{kind}: {humanize.naturalsize(done, binary=True)}")
            sys.stderr.flush()

    return show
