"""Which usage prices a batch, and whether its cost is final or an estimate.

OpenAI reports batch-wide usage on the batch itself (live while it runs); Anthropic and
Gemini report usage only per result line, so their cost is known once the results have been
read (by `fetch`, `show`, or the dashboard's background analysis) and is absent before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchtui.core.models import Batch, Cost, Status

if TYPE_CHECKING:
    from batchtui.core.ledger import Analysis
    from batchtui.core.pricing import PriceTable


def attach_cost(batch: Batch, prices: PriceTable, analysis: Analysis | None) -> Batch:
    batch = batch.with_cost(cost_of(batch, prices, analysis))
    if batch.model is None and analysis is not None:
        # Anthropic's batch object names no model; its results do (one per request).
        models = [m for m in analysis.usage_by_model if m != "unknown"]
        if models:
            batch = batch.model_copy(update={"model": models[0] if len(models) == 1 else f"{models[0]} +{len(models) - 1}"})
    return batch


def money(cost: Cost | None) -> str:
    """A cost as people read it: "$1.23", "~" before an estimate, "-" when unknown (the CLI's
    tables and the dashboard's cells alike)."""
    if cost is None or cost.usd is None:
        return "-"
    text = f"${cost.usd:,.2f}" if cost.usd >= 0.01 or cost.usd == 0 else f"${cost.usd:.4f}"
    return ("~" + text) if cost.estimated else text


def cost_of(batch: Batch, prices: PriceTable, analysis: Analysis | None) -> Cost:
    running = not batch.is_terminal
    if analysis is not None and not running:
        # Results read line by line carry the exact model snapshot of every request.
        return prices.cost(batch.provider, analysis.usage_by_model)
    if batch.usage is not None and not batch.usage.is_zero:
        model = batch.model or "unknown"
        if running:
            done = batch.counts.done
            return prices.estimate_running(batch.provider, {model: batch.usage}, done=done, total=batch.counts.total)
        return prices.cost(batch.provider, {model: batch.usage})
    if batch.status is Status.FAILED and not (batch.counts.succeeded or batch.counts.failed):
        return _FAILED_EARLY
    if running:
        return _NO_USAGE_YET
    return _USAGE_IN_RESULTS


# The same few costs for thousands of batches: built once (they are frozen).
_FAILED_EARLY = Cost(usd=0.0, standard_usd=0.0, reason="the batch failed before running any request")
_NO_USAGE_YET = Cost(estimated=True, reason="no usage reported yet")
_USAGE_IN_RESULTS = Cost(reason="usage is in the results: fetch them to price this batch")
