"""One fetch in a fresh process, for the results-pipeline benchmark: the real engine path,
timed inside (from the call to its return; the interpreter's start-up and imports are not
counted), with the process's peak RSS.

    PYTHONPATH=.:tests python -m bench.fetch_once PROVIDER BASE_URL KEY BATCH_ID OUT_DIR [STAGE]

STAGE `fetch` (the default) runs `fetch_results`: download, sha256, fsync, ledger, then the
analysis. STAGE `download` runs `download_results`, its first stage alone: every file on disk
under its final name, complete, hashed, fsynced and recorded in the ledger; no analysis.

Prints one JSON line: seconds, bytes, peak RSS, the files written and (for `fetch`) the
analysis totals.
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import sys
import time
from pathlib import Path

from batchtui.core.accounts import Account
from batchtui.core.config import Settings
from batchtui.core.engine import Engine
from batchtui.core.fetch import download_results, fetch_results
from batchtui.core.ledger import Ledger
from batchtui.core.paths import Paths
from batchtui.core.pricing import PriceTable


async def main(provider: str, base_url: str, key: str, batch_id: str, out: str, stage: str = "fetch") -> dict:
    out_dir = Path(out)
    shutil.rmtree(out_dir, ignore_errors=True)  # a fresh ledger too: nothing is "already fetched"
    home = out_dir / "home"
    home.mkdir(parents=True)
    account = Account(name="bench", provider=provider, base_url=base_url)
    settings = Settings().model_copy(update={"accounts": [account]})
    paths = Paths(config_dir=home, data_dir=home)
    engine = Engine(settings=settings, paths=paths, ledger=Ledger.open(paths.ledger_file),
                    prices=PriceTable.load(settings.prices), key_lookup=lambda _: key)
    try:
        batch = await engine.client(account).get_batch(batch_id)
        start = time.perf_counter()
        if stage == "download":
            files = await download_results(engine, account, batch, out_dir / "results")
            result = None
        else:
            result = await fetch_results(engine, account, batch, out_dir / "results")
            files = result.files
        seconds = time.perf_counter() - start
        recorded = [engine.ledger.download(account.name, batch_id, f.kind) for f in files]
    finally:
        await engine.aclose()
        engine.close_ledger()
    common = {
        "seconds": seconds,
        "bytes": sum(f.size for f in files),
        "files": [str(f.path) for f in files],
        "sha256": [f.sha256 for f in files],
        "file_lines": sum(f.lines for f in files),
        "recorded": [r is not None and r.sha256 == f.sha256 for r, f in zip(recorded, files)],
        "peak_rss_mb": peak_rss_mb(),
    }
    if result is None:
        return common
    summary = result.summary
    return {
        **common,
        "lines": summary.lines,
        "outcomes": {o.value: n for o, n in summary.breakdown.outcomes.items()},
        "usage": {m: list(u.model_dump().values()) for m, u in summary.usage_by_model.items()},
        "cost_usd": result.batch.cost.usd if result.batch.cost else None,
    }


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: on Linux ru_maxrss of a child started by
    fork/vfork + exec keeps the parent's high-water mark (the pytest process's, here)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:7]))))
