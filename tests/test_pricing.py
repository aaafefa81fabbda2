"""Prices and cost. Every expected figure is written out from the list prices (USD per 1M
tokens), never computed by the code under test."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchtui.core.errors import ConfigError
from batchtui.core.models import Cost, Provider, Usage
from batchtui.core.pricing import PriceTable, model_key, savings

M = 1_000_000


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.load()


def approx(x: float):
    return pytest.approx(x, abs=1e-9)


# --- the shipped table ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "provider", "input_", "output"),
    [
        ("claude-haiku-4-5", Provider.ANTHROPIC, 1.00, 5.00),
        ("claude-sonnet-4-6", Provider.ANTHROPIC, 3.00, 15.00),
        ("claude-opus-4-6", Provider.ANTHROPIC, 5.00, 25.00),
        ("gpt-5.4-nano", Provider.OPENAI, 0.20, 1.25),
        ("gpt-5.4-mini", Provider.OPENAI, 0.75, 4.50),
        ("gpt-5.4", Provider.OPENAI, 2.50, 15.00),
        ("gemini-2.5-pro", Provider.GEMINI, 1.25, 10.00),
        ("gemini-2.5-flash", Provider.GEMINI, 0.30, 2.50),
        ("gemini-2.5-flash-lite", Provider.GEMINI, 0.10, 0.40),
        ("gemini-3-pro-preview", Provider.GEMINI, 2.00, 12.00),
        ("gemini-3-flash-preview", Provider.GEMINI, 0.50, 3.00),
    ],
)
def test_shipped_list_prices(table, model, provider, input_, output):
    price = table.resolve(model)
    assert price is not None and price.name == model
    assert price.provider is provider
    assert float(price.input) == input_ and float(price.output) == output


def test_every_shipped_entry_names_its_provider(table):
    prices = table.prices()
    assert len(prices) >= 30
    assert all(p.provider is not None for p in prices)
    assert table.as_of is not None


def test_shipped_decimals_are_exact(table):
    # Parsed as Decimal, not float: 0.075 must not become 0.07499999999999999...
    assert str(table.resolve("gpt-4o-mini").cached_input) == "0.075"


# --- model names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-5.4-mini-2026-03-05", "gpt-5.4-mini"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("gpt-5-2025-08-07", "gpt-5"),
        ("models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("gemini-2.5-flash-001", "gemini-2.5-flash"),
        ("gemini-2.5-flash-preview-09-2025", "gemini-2.5-flash"),
        ("gemini-2.5-flash-lite-preview-09-2025", "gemini-2.5-flash-lite"),
        ("gemini-3-pro-preview-11-2025", "gemini-3-pro-preview"),
        ("publishers/google/models/gemini-2.5-pro", "gemini-2.5-pro"),
        # the tricky prefixes: a longer family never falls back to a shorter one
        ("gpt-5.4-mini", "gpt-5.4-mini"),
        ("gpt-5.4-nano-2026-03-05", "gpt-5.4-nano"),
        ("gpt-5-mini", "gpt-5-mini"),
        ("gpt-5-mini-2025-08-07", "gpt-5-mini"),
        ("gpt-5-nano-2025-08-07", "gpt-5-nano"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-opus-4-20250514", "claude-opus-4"),
        # spellings
        ("claude-sonnet-4.6", "claude-sonnet-4-6"),
        ("Claude-Sonnet-4-6", "claude-sonnet-4-6"),
        ("gpt-5-4-mini", "gpt-5.4-mini"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("claude-haiku-4-5@20251001", "claude-haiku-4-5"),  # Vertex AI's spelling
        # a snapshot with its own price wins over its family
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
    ],
)
def test_resolve(table, model, expected):
    price = table.resolve(model)
    assert price is not None, model
    assert price.name == expected


@pytest.mark.parametrize(
    "model",
    [
        # different models (other prices) that merely start with a known name: unknown, not guessed
        "gpt-5-pro",
        "gpt-5.4-pro-2026-03-05",
        "gemini-2.5-flash-image",
        "gemini-2.5-flash-preview-tts",
        "gpt-4o-audio-preview",
        "claude-opus-5",
        "llama-3.3-70b-versatile",
        "",
    ],
)
def test_resolve_unknown(table, model):
    assert table.resolve(model) is None


def test_model_key():
    assert model_key("models/Gemini-2.5-Flash") == "gemini-2-5-flash"
    assert model_key("claude-sonnet-4.6") == model_key("claude-sonnet-4-6")


# --- Anthropic ------------------------------------------------------------------------------


def test_anthropic_haiku_batch_cache_read_is_5_cents(table):
    cost = table.cost(Provider.ANTHROPIC, {"claude-haiku-4-5-20251001": Usage(input=M, cached_input=M)})
    assert cost.usd == approx(M * 1.00 * 0.1 * 0.5 / M)  # $0.05
    assert cost.usd == approx(0.05)
    assert cost.standard_usd == approx(M * 1.00 * 0.1 / M)
    assert cost.reason is None and cost.estimated is False


def test_anthropic_full_mix(table):
    usage = Usage(input=1_000_000, cached_input=200_000, cache_write=100_000, cache_write_1h=40_000,
                  output=300_000, reasoning=50_000)
    cost = table.cost("anthropic", {"claude-haiku-4-5": usage})
    # input includes cached and cache-written tokens: 1M - 200k - 100k uncached
    expected = (
        (1_000_000 - 200_000 - 100_000) * 1.00 * 0.5  # uncached input, batch
        + 200_000 * 1.00 * 0.1 * 0.5  # cache read
        + (100_000 - 40_000) * 1.00 * 1.25 * 0.5  # 5-minute cache write
        + 40_000 * 1.00 * 2 * 0.5  # 1-hour cache write
        + 300_000 * 5.00 * 0.5  # output (reasoning is inside it)
    ) / M
    standard = (700_000 * 1.00 + 200_000 * 0.10 + 60_000 * 1.25 + 40_000 * 2.00 + 300_000 * 5.00) / M
    assert cost.usd == approx(expected)
    assert cost.usd == approx(1.1875)
    assert cost.standard_usd == approx(standard)
    assert cost.standard_usd == approx(2.375)


def test_anthropic_one_hour_cache_writes(table):
    usage = Usage(input=500_000, cache_write=500_000, cache_write_1h=500_000)
    cost = table.cost(Provider.ANTHROPIC, {"claude-sonnet-4-6": usage})
    assert cost.usd == approx(500_000 * 3.00 * 2 * 0.5 / M)  # $1.50, not the 1.25x $0.9375
    assert cost.standard_usd == approx(500_000 * 3.00 * 2 / M)


def test_anthropic_multi_model_sum(table):
    cost = table.cost(
        Provider.ANTHROPIC,
        {
            "claude-haiku-4-5": Usage(input=2_000_000, output=100_000),
            "claude-opus-4-6": Usage(input=100_000, cached_input=50_000, output=20_000),
            "claude-sonnet-4-6": Usage(),  # no usage: contributes nothing
        },
    )
    haiku = (2_000_000 * 1.00 + 100_000 * 5.00) * 0.5 / M
    opus = (50_000 * 5.00 + 50_000 * 5.00 * 0.1 + 20_000 * 25.00) * 0.5 / M
    assert cost.usd == approx(haiku + opus)
    assert cost.standard_usd == approx((haiku + opus) * 2)


# --- OpenAI ---------------------------------------------------------------------------------

_OPENAI_USAGE = Usage(input=2_000_000, cached_input=500_000, output=400_000, reasoning=100_000)


def test_openai_cached_discount_stacks_by_default(table):
    cost = table.cost(Provider.OPENAI, {"gpt-5.4-mini-2026-03-05": _OPENAI_USAGE})
    expected = (1_500_000 * 0.75 + 500_000 * 0.075 + 400_000 * 4.50) * 0.5 / M
    assert cost.usd == approx(expected)
    assert cost.usd == approx(1.48125)
    assert cost.standard_usd == approx((1_500_000 * 0.75 + 500_000 * 0.075 + 400_000 * 4.50) / M)


def test_openai_cached_discount_not_stacked():
    table = PriceTable.load(openai_cached_batch_discount=False)
    cost = table.cost(Provider.OPENAI, {"gpt-5.4-mini": _OPENAI_USAGE})
    expected = 1_500_000 * 0.75 * 0.5 / M + 500_000 * 0.075 / M + 400_000 * 4.50 * 0.5 / M
    assert cost.usd == approx(expected)
    assert cost.usd == approx(1.5)
    # the standard equivalent does not depend on the setting
    assert cost.standard_usd == approx(2.9625)


def test_openai_cache_write_at_input_price(table):
    usage = Usage(input=1_000_000, cache_write=200_000, output=0)
    cost = table.cost(Provider.OPENAI, {"gpt-5": usage})
    assert cost.usd == approx((800_000 * 1.25 + 200_000 * 1.25) * 0.5 / M)


def test_openai_compatible_follows_openai_rule(table):
    cost = table.cost(Provider.OPENAI_COMPATIBLE, {"openai/gpt-5-nano": Usage(input=M, cached_input=M)})
    assert cost.usd == approx(M * 0.005 * 0.5 / M)


def test_openai_model_without_cached_price_bills_cached_at_input(table):
    cost = table.cost(Provider.OPENAI, {"gpt-4o-2024-05-13": Usage(input=M, cached_input=M)})
    assert cost.usd == approx(M * 5.00 * 0.5 / M)


# --- Gemini ---------------------------------------------------------------------------------


def test_gemini_cached_at_non_batch_cache_price(table):
    usage = Usage(input=1_000_000, cached_input=400_000, output=200_000, reasoning=50_000)
    cost = table.cost(Provider.GEMINI, {"models/gemini-2.5-flash": usage})
    expected = (600_000 * 0.30 * 0.5 + 400_000 * 0.03 + 200_000 * 2.50 * 0.5) / M
    assert cost.usd == approx(expected)
    assert cost.usd == approx(0.352)
    assert cost.standard_usd == approx((600_000 * 0.30 + 400_000 * 0.03 + 200_000 * 2.50) / M)


def test_gemini_multi_model_sum(table):
    cost = table.cost(
        Provider.GEMINI,
        {
            "gemini-2.5-flash-lite": Usage(input=3_000_000, output=1_000_000),
            "gemini-3-pro-preview": Usage(input=100_000, cached_input=100_000, output=10_000),
        },
    )
    lite = (3_000_000 * 0.10 + 1_000_000 * 0.40) * 0.5 / M
    pro = 100_000 * 0.20 / M + 10_000 * 12.00 * 0.5 / M
    assert cost.usd == approx(lite + pro)


# --- unknown models, rounding, savings ------------------------------------------------------


def test_unknown_model_gives_no_number(table):
    cost = table.cost(
        Provider.OPENAI,
        {"gpt-5": Usage(input=1000, output=1000), "mystery-1": Usage(input=10)},
    )
    assert cost.usd is None and cost.standard_usd is None
    assert cost.reason == "no price for model 'mystery-1'"


def test_several_unknown_models_are_all_named(table):
    cost = table.cost(Provider.OPENAI, {"zeta": Usage(output=1), "alpha": Usage(output=1)})
    assert cost.reason == "no price for models 'alpha', 'zeta'"


def test_unknown_model_without_usage_is_ignored(table):
    cost = table.cost(Provider.OPENAI, {"mystery-1": Usage(), "gpt-5": Usage(output=M)})
    assert cost.usd == approx(M * 10.00 * 0.5 / M)


def test_no_usage_costs_nothing(table):
    assert table.cost(Provider.GEMINI, {}) == Cost(usd=0.0, standard_usd=0.0)


def test_rounded_to_six_decimals(table):
    cost = table.cost(Provider.OPENAI, {"gpt-5-nano": Usage(output=7)})
    # 7 x $0.40 x 0.5 / 1M = $0.0000014 -> 0.000001; standard $0.0000028 -> 0.000003
    assert cost.usd == 0.000001
    assert cost.standard_usd == 0.000003


def test_savings(table):
    cost = table.cost(Provider.ANTHROPIC, {"claude-haiku-4-5": Usage(input=M, output=M)})
    assert savings(cost) == approx((1.00 + 5.00) * 0.5)
    assert savings(Cost(reason="no price for model 'x'")) is None
    assert savings(None) is None


def test_estimated_flag(table):
    cost = table.cost(Provider.OPENAI, {"gpt-5": Usage(output=M)}, estimated=True)
    assert cost.estimated is True and cost.usd == approx(5.0)


# --- running batches ------------------------------------------------------------------------


def test_estimate_running_scales_to_total(table):
    cost = table.estimate_running(Provider.OPENAI, {"gpt-5": Usage(input=M, output=M)}, done=250, total=1000)
    assert cost.estimated is True
    assert cost.usd == approx((1.25 + 10.00) * 0.5 * 1000 / 250)
    assert cost.standard_usd == approx((1.25 + 10.00) * 1000 / 250)


def test_estimate_running_without_total_is_cost_so_far(table):
    cost = table.estimate_running(Provider.OPENAI, {"gpt-5": Usage(output=M)}, done=10, total=None)
    assert cost.estimated is True and cost.usd == approx(5.0)


def test_estimate_running_with_nothing_done_is_unknown(table):
    cost = table.estimate_running(Provider.ANTHROPIC, {}, done=0, total=100)
    assert cost.usd is None and cost.estimated is True and cost.reason


def test_estimate_running_unknown_model(table):
    cost = table.estimate_running(Provider.OPENAI, {"mystery-1": Usage(output=1)}, done=1, total=2)
    assert cost.usd is None and cost.reason == "no price for model 'mystery-1'"


# --- config.toml overrides ------------------------------------------------------------------


def test_override_adds_a_model():
    table = PriceTable.load(
        {"llama-3.3-70b-versatile": {"input": 0.59, "output": 0.79, "provider": "openai-compatible"}}
    )
    cost = table.cost(Provider.OPENAI_COMPATIBLE, {"llama-3.3-70b-versatile": Usage(input=M, output=M)})
    assert cost.usd == approx((0.59 + 0.79) * 0.5)


def test_override_replaces_a_shipped_model_and_inherits_its_provider():
    table = PriceTable.load({"gpt-5": {"input": 1.00, "output": 8.00}})
    price = table.resolve("gpt-5-2025-08-07")
    assert price.provider is Provider.OPENAI
    assert price.cached_input is None  # the whole entry is replaced, not merged
    cost = table.cost(Provider.OPENAI, {"gpt-5": Usage(input=M, cached_input=M // 2, output=M)})
    assert cost.usd == approx((500_000 * 1.00 + 500_000 * 1.00 + M * 8.00) * 0.5 / M)


def test_override_by_another_spelling_replaces_the_shipped_entry():
    table = PriceTable.load({"claude-sonnet-4.6": {"input": 2.00, "output": 10.00}})
    price = table.resolve("claude-sonnet-4-6-20260101")
    assert price.name == "claude-sonnet-4.6" and float(price.input) == 2.00
    assert price.provider is Provider.ANTHROPIC
    # Anthropic cache prices still derived from the new input price
    cost = table.cost(Provider.ANTHROPIC, {"claude-sonnet-4-6": Usage(input=M, cached_input=M)})
    assert cost.usd == approx(M * 2.00 * 0.1 * 0.5 / M)


def test_override_with_explicit_cache_prices():
    table = PriceTable.load(
        {"gemini-2.5-flash": {"input": 0.30, "output": 2.50, "cached_input": 0.075, "cache_write": 0.375}}
    )
    cost = table.cost(Provider.GEMINI, {"gemini-2.5-flash": Usage(input=M, cached_input=M)})
    assert cost.usd == approx(M * 0.075 / M)


def test_override_for_a_dated_snapshot_wins_over_its_family():
    table = PriceTable.load({"gpt-5-2025-08-07": {"input": 9, "output": 9}})
    assert table.resolve("gpt-5-2025-08-07").name == "gpt-5-2025-08-07"
    assert table.resolve("gpt-5-2026-01-01").name == "gpt-5"


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        ({"my-model": {"input": "abc", "output": 1}}, ['"my-model"', "'input'"]),
        ({"my-model": {"input": 1}}, ['"my-model"', "'output'", "required"]),
        ({"my-model": {"input": -0.5, "output": 1}}, ['"my-model"', "'input'"]),
        ({"my-model": {"input": 1, "output": float("nan")}}, ['"my-model"', "'output'"]),
        ({"my-model": {"input": 1, "output": 1, "cached_imput": 0.1}}, ['"my-model"', "'cached_imput'"]),
        ({"my-model": {"input": 1, "output": 1, "provider": "aws"}}, ['"my-model"', "'provider'"]),
        ({"gpt-5": {"4": {"input": 1, "output": 2}}}, ['"gpt-5"', '[prices."gpt-5.4"]']),
        ({"my-model": 3}, ['"my-model"']),
        ({"claude-sonnet-4.6": {"input": 1, "output": 1}, "claude-sonnet-4-6": {"input": 1, "output": 1}},
         ["claude-sonnet-4.6", "claude-sonnet-4-6"]),
    ],
)
def test_bad_override_names_model_and_field(overrides, fragments):
    with pytest.raises(ConfigError) as info:
        PriceTable.load(overrides)
    for fragment in fragments:
        assert fragment in str(info.value)


# --- properties -----------------------------------------------------------------------------

_PRICED = ["claude-haiku-4-5", "claude-opus-4-6", "gpt-5.4", "gpt-4o-mini", "gemini-2.5-pro"]


@given(
    model=st.sampled_from(_PRICED),
    provider=st.sampled_from(list(Provider)),
    uncached=st.integers(0, 10**9),
    output=st.integers(0, 10**9),
)
def test_without_cache_batch_is_half_of_standard(table, model, provider, uncached, output):
    cost = table.cost(provider, {model: Usage(input=uncached, output=output)})
    assert cost.usd == pytest.approx(cost.standard_usd / 2, abs=1e-6)


@given(
    model=st.sampled_from(_PRICED),
    provider=st.sampled_from(list(Provider)),
    parts=st.tuples(*[st.integers(0, 10**8)] * 5),
)
def test_batch_never_exceeds_standard(table, model, provider, parts):
    uncached, cached, write_5m, write_1h, output = parts
    usage = Usage(
        input=uncached + cached + write_5m + write_1h,
        cached_input=cached,
        cache_write=write_5m + write_1h,
        cache_write_1h=write_1h,
        output=output,
    )
    cost = table.cost(provider, {model: usage})
    assert 0 <= cost.usd <= cost.standard_usd
