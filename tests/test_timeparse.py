from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchtui.core.timeparse import _parse_any, parse_time


@pytest.mark.parametrize(
    "value, expected",
    [
        (1787180460, datetime(2026, 8, 19, 23, 1, tzinfo=UTC)),
        ("2026-08-20T09:14:03.512874Z", datetime(2026, 8, 20, 9, 14, 3, 512874, tzinfo=UTC)),
        # Google's nanoseconds: nine digits, cut to microseconds (not rounded up past a second)
        ("2026-08-20T09:14:03.407650525Z", datetime(2026, 8, 20, 9, 14, 3, 407650, tzinfo=UTC)),
        ("2026-08-20T09:14:03.999999999Z", datetime(2026, 8, 20, 9, 14, 3, 999999, tzinfo=UTC)),
        ("2026-08-20T09:14:03Z", datetime(2026, 8, 20, 9, 14, 3, tzinfo=UTC)),
        ("2026-08-20T11:14:03.5+02:00", datetime(2026, 8, 20, 9, 14, 3, 500000, tzinfo=UTC)),
        ("2026-08-20T09:14:03.1Z", datetime(2026, 8, 20, 9, 14, 3, 100000, tzinfo=UTC)),
    ],
)
def test_provider_timestamps(value, expected):
    assert parse_time(value) == expected


@pytest.mark.parametrize("value", [None, "", "yesterday", {}, [], True, "2026-13-40T00:00:00Z", "²", "١٢٣"])
def test_bad_or_missing_timestamps_are_none(value):
    assert parse_time(value) is None


# What providers send, and near misses: every way of writing a moment the general path reads.
_moments = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1))
_fraction = st.text("0123456789", min_size=0, max_size=12).map(lambda d: f".{d}" if d else "")
_zone = st.sampled_from(["Z", "z", "+00:00", "+02:00", "-05:30", "", " ", "+0000", "UTC"])
_iso = st.builds(lambda m, f, z, sep, pad: f"{pad}{m.strftime(f'%Y-%m-%d{sep}%H:%M:%S')}{f}{z}",
                 _moments, _fraction, _zone, st.sampled_from(["T", " ", "t"]), st.sampled_from(["", " "]))
_dates = _moments.map(lambda m: m.strftime("%Y-%m-%d")) | _moments.map(lambda m: m.strftime("%Y%m%d"))


@settings(max_examples=400, deadline=None)
@given(st.one_of(_iso, _dates, st.integers(min_value=-10**20, max_value=10**20), st.text(max_size=40),
                 st.floats(allow_nan=True), st.integers(0, 4_000_000_000).map(str)))
def test_the_fast_paths_read_every_value_as_the_general_path_does(value):
    # Written out, not compared: equal aware datetimes may still differ in their zone.
    fast, general = parse_time(value), _parse_any(value)
    assert (fast and fast.isoformat()) == (general and general.isoformat())
    assert fast is None or fast.tzinfo is UTC
