"""Index names by rotation period: the UTC arrival time cut to the period, US weeks for OneWeek."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from destinations.index_rotation import index_name, index_namer


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("NoRotation", "myindex"),
        ("OneHour", "myindex-2016-02-25-13"),
        ("OneDay", "myindex-2016-02-25"),
        # AWS's example table says w08, but its stated rule (weeks start on Sunday, week 1 is
        # the first week with a Saturday) gives w09: the rule is followed.
        ("OneWeek", "myindex-2016-w09"),
        ("OneMonth", "myindex-2016-02"),
    ],
)
def test_each_period(period: str, expected: str) -> None:
    assert index_name("myindex", period, ms(2016, 2, 25, 13)) == expected
    assert index_namer("myindex", period)(ms(2016, 2, 25, 13, 59)) == expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ((2016, 1, 1), "i-2016-w01"),  # a Friday: week 1 holds Jan 1 and Saturday Jan 2
        ((2016, 1, 2), "i-2016-w01"),
        ((2016, 1, 3), "i-2016-w02"),  # Sunday starts week 2
        ((2015, 12, 31), "i-2016-w01"),  # the week holding Jan 1 counts to the new year
        ((2017, 12, 30), "i-2017-w52"),  # a Saturday
        ((2017, 12, 31), "i-2018-w01"),  # Sunday, and 2018 starts on Monday
    ],
)
def test_us_weeks_at_year_ends(moment: tuple[int, int, int], expected: str) -> None:
    assert index_name("i", "OneWeek", ms(*moment)) == expected


def test_hour_boundaries_use_utc() -> None:
    namer = index_namer("i", "OneHour")
    assert namer(ms(2024, 3, 10, 23, 59, 59)) == "i-2024-03-10-23"
    assert namer(ms(2024, 3, 11, 0, 0, 0)) == "i-2024-03-11-00"
