"""What a batch costs: the shipped price table, the user's overrides, each provider's batch rule.

Prices are the providers' *standard* (interactive) list prices in USD per 1M tokens; the batch
price is derived here, per provider (PROVIDERS.md §A.13, §B.10, §C.9, §F.3):

- OpenAI and OpenAI-compatible: 50% of everything. Whether the cached-input price is halved too
  is unverified; third-party calculators say it is, so `openai_cached_batch_discount=True` (the
  default) halves it and False charges the full cached price.
- Anthropic: 50% of everything, with the cache multipliers stacked on the batch price (cache read
  0.1x input, 5-minute write 1.25x, 1-hour write 2x).
- Gemini: 50% of uncached input and output; cached tokens at the normal, non-batch cache price.

The arithmetic is done in `Decimal` and rounded to 6 decimals of a dollar once, at the end, so
a batch summed over many models does not drift. A model the table does not know gives
`usd=None` with the reason: never a guessed number.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib.resources import files
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from batchtui.core.errors import ConfigError
from batchtui.core.models import Cost, Provider, Usage

PerMillion = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]

_MILLION = Decimal(1_000_000)
_HALF = Decimal("0.5")
_MICRO_USD = Decimal("0.000001")  # we report USD to 6 decimals

# Anthropic's prompt-caching multipliers on the base input price.
_ANTHROPIC_CACHE_READ = Decimal("0.1")
_ANTHROPIC_CACHE_WRITE_5M = Decimal("1.25")
_ANTHROPIC_CACHE_WRITE_1H = Decimal("2")


class PriceEntry(BaseModel):
    """One model's prices as written in prices.toml or under `[prices."MODEL"]` in config.toml.

    Extra keys are refused so a typo (`cached_imput`) is an error, not a silently full price.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Provider | None = None  # optional in config.toml: an override inherits it
    input: PerMillion
    output: PerMillion
    cached_input: PerMillion | None = None
    cache_write: PerMillion | None = None


class ModelPrice(BaseModel):
    """A resolved table entry: `name` is the table's name for it (`gpt-5` for `gpt-5-2025-08-07`)."""

    model_config = ConfigDict(frozen=True)

    name: str
    provider: Provider | None
    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None


@dataclass(frozen=True)
class _Rates:
    """USD per 1M tokens for each kind of token, at one tier (standard or batch)."""

    uncached: Decimal
    cached: Decimal
    write_5m: Decimal
    write_1h: Decimal
    output: Decimal

    def usd(self, usage: Usage) -> Decimal:
        # Unified `input` includes cached and cache-written tokens (PROVIDERS.md §F.3): split them
        # back out. Clamps keep an inconsistent usage record from producing a negative cost.
        one_hour = min(usage.cache_write_1h, usage.cache_write)
        five_min = usage.cache_write - one_hour
        uncached = max(usage.input - usage.cached_input - usage.cache_write, 0)
        # `reasoning` is deliberately absent: it is already inside `output`.
        micro = (
            uncached * self.uncached
            + usage.cached_input * self.cached
            + five_min * self.write_5m
            + one_hour * self.write_1h
            + usage.output * self.output
        )
        return micro / _MILLION


# --- model names ------------------------------------------------------------------------------

_DOT_IN_VERSION = re.compile(r"(?<=\d)\.(?=\d)")
# Suffixes that name a snapshot of a model rather than a different model: dates in the
# providers' formats (2025-08-07, 20251001, 09-2025, 05-20, 0613), Gemini's -001 versions,
# -latest and -preview, stripped one at a time. Anything else (-pro, -audio, -image, -tts) is a
# different model with different prices, so it must NOT fall back to a shorter name: that is
# why this is not a plain longest-prefix match.
_SNAPSHOT_SUFFIX = re.compile(
    r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{2}-\d{4}|\d{2}-\d{2}|\d{3,4}|latest|preview)$"
)


def model_key(name: str) -> str:
    """The comparison key of a model name: `models/Gemini-2.5-Flash` -> `gemini-2-5-flash`.

    Dots inside version numbers become dashes so `claude-sonnet-4.6` and `claude-sonnet-4-6`
    are one model; a path prefix (`models/`, `publishers/google/models/`, a gateway's
    `openai/`) and Vertex's `@date` are taken apart.
    """
    key = name.strip().lower().rsplit("/", 1)[-1].replace("@", "-")
    return _DOT_IN_VERSION.sub("-", key)


def _candidate_keys(name: str):
    """The key itself, then each shorter key left by stripping one snapshot suffix."""
    key = model_key(name)
    yield key
    while (match := _SNAPSHOT_SUFFIX.search(key)) and match.start() > 0:
        key = key[: match.start()]
        yield key


# --- the table ----------------------------------------------------------------------------------


@cache
def _shipped() -> tuple[date | None, tuple[tuple[str, PriceEntry], ...]]:
    # parse_float=Decimal: 0.075 stays 0.075, not 0.07499999999999999722...
    text = files("batchtui").joinpath("data/prices.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text, parse_float=Decimal)
    entries = []
    for name, raw in data.get("models", {}).items():
        entry = PriceEntry.model_validate(raw)
        if entry.provider is None:
            raise ValueError(f"shipped prices.toml: model {name!r} has no provider")
        entries.append((name, entry))
    return data.get("meta", {}).get("as_of"), tuple(entries)


def _validate_override(name: object, raw: object) -> PriceEntry:
    where = f'[prices."{name}"]'
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: a price needs a model name")
    if isinstance(raw, BaseModel):
        raw = raw.model_dump(exclude_none=True)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a table with input and output prices, got {raw!r}")
    try:
        return PriceEntry.model_validate(_decimals(raw))
    except ValidationError as exc:
        raise ConfigError(f"{where} {_describe(exc, name)}") from None


def _describe(exc: ValidationError, name: str) -> str:
    """The one error worth reading first, naming its field."""
    # An unknown key comes first: a typo (`inptu`) also explains the "input missing" beside it.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    error = errors[0]
    field = ".".join(str(part) for part in error["loc"]) or "?"
    if error["type"] == "extra_forbidden":
        if isinstance(error.get("input"), Mapping):
            # `[prices.gpt-5.4]` without quotes is the nested table `gpt-5` -> `4` in TOML.
            return f'field {field!r} is a table: quote a model name with dots, [prices."{name}.{field}"]'
        return f"unknown field {field!r} (expected {', '.join(PriceEntry.model_fields)})"
    if error["type"] == "missing":
        return f"field {field!r} is required"
    return f"field {field!r}: {error['msg']} (got {error.get('input')!r})"


def _decimals(raw: Mapping[str, Any]) -> dict[str, Any]:
    # Floats go through str() so a config value of 0.075 is exactly 0.075 in the sums.
    # (inf and nan are left as floats for the validator to refuse by their own names.)
    return {k: Decimal(str(v)) if isinstance(v, float) and math.isfinite(v) else v for k, v in raw.items()}


class PriceTable:
    """Model prices, looked up by any spelling of a model's name, and the cost of usage."""

    def __init__(
        self,
        entries: Mapping[str, PriceEntry],
        *,
        openai_cached_batch_discount: bool = True,
        as_of: date | None = None,
    ):
        self.openai_cached_batch_discount = openai_cached_batch_discount
        self.as_of = as_of  # when the shipped prices were compiled, for a "prices as of" note
        self._by_key: dict[str, ModelPrice] = {}
        for name, entry in entries.items():
            key = model_key(name)
            if key in self._by_key:
                raise ValueError(f"{name!r} and {self._by_key[key].name!r} name the same model")
            self._by_key[key] = ModelPrice(name=name, **entry.model_dump())
        # The table never changes once built, and a listing prices thousands of batches of a
        # few models: each name is resolved, and each model's rates derived, once.
        self._resolved: dict[str, ModelPrice | None] = {}
        self._rates: dict[tuple[str, Provider], tuple[_Rates, _Rates]] = {}

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        *,
        openai_cached_batch_discount: bool = True,
    ) -> PriceTable:
        """The shipped table with config.toml's `[prices."MODEL"]` tables laid over it.

        An override replaces the whole entry (its prices are what the user wrote: a shipped
        cached price is not kept beside a new input price), inheriting only the provider.
        Raises ConfigError naming the model and field of a bad override.
        """
        as_of, shipped = _shipped()
        entries: dict[str, PriceEntry] = {}
        names: dict[str, str] = {}  # key -> name as written, to merge spellings of one model
        for name, entry in shipped:
            entries[name] = entry
            names[model_key(name)] = name
        seen: dict[str, str] = {}
        for name, raw in (overrides or {}).items():
            entry = _validate_override(name, raw)
            key = model_key(name)
            if key in seen:
                raise ConfigError(f'[prices."{name}"] and [prices."{seen[key]}"] name the same model')
            seen[key] = name
            shipped_name = names.pop(key, None)
            if shipped_name is not None:
                shipped_entry = entries.pop(shipped_name)
                if entry.provider is None:
                    entry = entry.model_copy(update={"provider": shipped_entry.provider})
            entries[name] = entry
            names[key] = name
        return cls(entries, openai_cached_batch_discount=openai_cached_batch_discount, as_of=as_of)

    def prices(self) -> list[ModelPrice]:
        """Every entry, by name (for a `prices` listing)."""
        return sorted(self._by_key.values(), key=lambda p: p.name)

    def resolve(self, model: str) -> ModelPrice | None:
        """The entry pricing `model`: an exact name first, then its family without snapshot
        suffixes (`gpt-5.4-mini-2026-03-05` -> `gpt-5.4-mini`). None if the table has neither."""
        try:
            return self._resolved[model]
        except KeyError:
            pass
        found = next((p for key in _candidate_keys(model) if (p := self._by_key.get(key)) is not None), None)
        self._resolved[model] = found
        return found

    def cost(
        self,
        provider: Provider | str,
        usage_by_model: Mapping[str, Usage],
        *,
        estimated: bool = False,
    ) -> Cost:
        """Batch cost and its standard-price equivalent, summed over models.

        If any model with usage is not in the table the whole cost is unknown (usd None), with
        the reason: a partial sum would read as the batch's cost and be too low.
        """
        totals = self._totals(Provider(provider), usage_by_model)
        if isinstance(totals, str):
            return Cost(estimated=estimated, reason=totals)
        batch, standard = totals
        return Cost(usd=_round(batch), standard_usd=_round(standard), estimated=estimated)

    def estimate_running(
        self,
        provider: Provider | str,
        usage_by_model: Mapping[str, Usage],
        *,
        done: int | None,
        total: int | None,
    ) -> Cost:
        """The expected final cost of a running batch: the usage of the `done` requests seen so
        far, scaled up to `total` requests. Always `estimated=True`.

        Without a usable `total`, the cost so far (a lower bound). With nothing done yet there is
        nothing to estimate from, so usd is None rather than a misleading $0.
        """
        if not done or all(usage.is_zero for usage in usage_by_model.values()):
            return Cost(estimated=True, reason="no usage yet to estimate from")
        totals = self._totals(Provider(provider), usage_by_model)
        if isinstance(totals, str):
            return Cost(estimated=True, reason=totals)
        scale = Decimal(total) / Decimal(done) if total and total > done else Decimal(1)
        batch, standard = totals
        return Cost(usd=_round(batch * scale), standard_usd=_round(standard * scale), estimated=True)

    def _totals(
        self, provider: Provider, usage_by_model: Mapping[str, Usage]
    ) -> tuple[Decimal, Decimal] | str:
        """(batch USD, standard USD), or the reason there is no price."""
        batch = standard = Decimal(0)
        missing: list[str] = []
        for model, usage in usage_by_model.items():
            if usage.is_zero:
                continue  # a model with no usage costs nothing, priced or not
            price = self.resolve(model)
            if price is None:
                missing.append(model)
                continue
            standard_rates, batch_rates = self._rates_of(price, provider)
            batch += batch_rates.usd(usage)
            standard += standard_rates.usd(usage)
        if missing:
            names = ", ".join(repr(m) for m in sorted(missing))
            return f"no price for model{'s' if len(missing) > 1 else ''} {names}"
        return batch, standard

    def _rates_of(self, price: ModelPrice, provider: Provider) -> tuple[_Rates, _Rates]:
        """(standard rates, batch rates) of a table entry for a provider's batches."""
        rates = self._rates.get((price.name, provider))
        if rates is None:
            standard = _standard_rates(price, provider)
            rates = self._rates[(price.name, provider)] = (standard, self._batch_rates(standard, provider))
        return rates

    def _batch_rates(self, std: _Rates, provider: Provider) -> _Rates:
        if provider is Provider.GEMINI:
            cached = std.cached  # "priced the same as for non-batch API traffic" (§C.9)
        elif provider in (Provider.OPENAI, Provider.OPENAI_COMPATIBLE):
            cached = std.cached * _HALF if self.openai_cached_batch_discount else std.cached
        else:
            cached = std.cached * _HALF  # Anthropic: multipliers stack on the batch price
        return _Rates(
            uncached=std.uncached * _HALF,
            cached=cached,
            write_5m=std.write_5m * _HALF,
            write_1h=std.write_1h * _HALF,
            output=std.output * _HALF,
        )


def _standard_rates(price: ModelPrice, provider: Provider) -> _Rates:
    """Non-batch rates, filling in cache prices the entry leaves out."""
    if (price.provider or provider) is Provider.ANTHROPIC:
        # Anthropic publishes its cache prices as multiples of input: derive what is missing.
        cached = price.cached_input
        write_5m = price.cache_write
        return _Rates(
            uncached=price.input,
            cached=price.input * _ANTHROPIC_CACHE_READ if cached is None else cached,
            write_5m=price.input * _ANTHROPIC_CACHE_WRITE_5M if write_5m is None else write_5m,
            write_1h=price.input * _ANTHROPIC_CACHE_WRITE_1H,
            output=price.output,
        )
    # Elsewhere an unknown cache price means no discount is assumed: cached and cache-written
    # tokens at the input price (what a model without caching bills), never a guessed discount.
    cached = price.input if price.cached_input is None else price.cached_input
    write = price.input if price.cache_write is None else price.cache_write
    return _Rates(uncached=price.input, cached=cached, write_5m=write, write_1h=write, output=price.output)


def _round(usd: Decimal) -> float:
    return float(usd.quantize(_MICRO_USD, rounding=ROUND_HALF_UP))


def savings(cost: Cost | None) -> float | None:
    """What the batch discount saved against standard prices; None when either side is unknown."""
    if cost is None or cost.usd is None or cost.standard_usd is None:
        return None
    return _round(Decimal(str(cost.standard_usd)) - Decimal(str(cost.usd)))
