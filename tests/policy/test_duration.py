"""Retention durations: calendar arithmetic and the parser (examples and properties)."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.policy.duration import MAX_YEARS, Duration, DurationError, parse_duration

from .helpers import at


@pytest.mark.parametrize(
    "text, start, expected",
    [
        ("7y", at(2020, 2, 29, 10), at(2027, 2, 28, 10)),  # leap day clamps
        ("7y", at(2020, 3, 1), at(2027, 3, 1)),
        ("6m", at(2024, 8, 31), at(2025, 2, 28)),
        ("6m", at(2024, 1, 15, 12, 30), at(2024, 7, 15, 12, 30)),
        ("1m", at(2024, 1, 31), at(2024, 2, 29)),
        ("90d", at(2024, 1, 1), at(2024, 3, 31)),
        ("2w", at(2024, 12, 25), at(2025, 1, 8)),
        ("1y6m", at(2023, 7, 1), at(2025, 1, 1)),
        ("18m", at(2023, 7, 1), at(2025, 1, 1)),
        ("1Y 2D", at(2023, 1, 1), at(2024, 1, 3)),
        ("0d", at(2023, 1, 1), at(2023, 1, 1)),
    ],
)
def test_after_is_calendar_arithmetic(text, start, expected):
    assert parse_duration(text).after(start) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "7",
        "y",
        "-1d",
        "7x",
        "1.5y",
        "7 years",
        "d7",
        "7y-",
        "P7Y",
        "１d",
        f"{MAX_YEARS + 1}y",
        "9" * 5000 + "d",
    ],
)
def test_invalid_text_is_a_clear_error(text):
    with pytest.raises(DurationError) as e:
        parse_duration(text)
    assert "duration" in str(e.value)


@pytest.mark.parametrize("value", [7, None, 7.5, ["7y"]])
def test_non_string_is_a_clear_error(value):
    with pytest.raises(DurationError, match="string"):
        parse_duration(value)


@given(st.text(max_size=30))
def test_parser_never_raises_anything_else(text):
    try:
        d = parse_duration(text)
    except DurationError:
        return
    assert d.years >= 0 and 0 <= d.months < 12 and d.days >= 0


durations = st.builds(
    Duration, years=st.integers(0, 200), months=st.integers(0, 11), days=st.integers(0, 20000)
)
starts = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))


@given(durations)
def test_text_round_trip(d):
    assert parse_duration(str(d)) == d


@given(st.integers(0, 100), st.integers(0, 100), st.integers(0, 5000), st.integers(0, 500))
def test_units_add_up(y, m, d, w):
    parsed = parse_duration(f"{y}y{m}m{d}d{w}w")
    assert parsed == Duration(y + m // 12, m % 12, d + 7 * w)


@given(durations, durations, starts)
def test_after_is_monotonic(a, b, start):
    small = Duration(min(a.years, b.years), min(a.months, b.months), min(a.days, b.days))
    large = Duration(max(a.years, b.years), max(a.months, b.months), max(a.days, b.days))
    assert start <= small.after(start) <= large.after(start)


@given(st.integers(0, 30000), starts)
def test_days_are_exact_days(n, start):
    assert parse_duration(f"{n}d").after(start) == start + timedelta(days=n)


@given(st.integers(0, 200), starts)
def test_years_keep_month_and_day_unless_leap_day(n, start):
    end = parse_duration(f"{n}y").after(start)
    assert (end.year, end.month, end.hour, end.minute) == (
        start.year + n,
        start.month,
        start.hour,
        start.minute,
    )
    assert end.day == start.day or (start.month, start.day, end.day) == (2, 29, 28)


def test_far_future_is_clamped_not_a_crash():
    end = parse_duration("1000y").after(at(9500, 1, 1))
    assert end.year == 9999
