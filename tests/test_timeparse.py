from datetime import UTC, datetime

import pytest

from batchtui.core.timeparse import parse_time


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
