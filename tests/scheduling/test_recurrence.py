"""Series dates: weekly, every N weeks, monthly by weekday position, and DST."""

import zoneinfo
from datetime import UTC, date, datetime

import pytest

from scheduling.recurrence import (
    MONTHLY,
    WEEKLY,
    NonexistentLocalTime,
    Recurrence,
    local_to_utc,
    occurrence_dates,
    occurrence_starts,
)

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def local_times(starts):
    return [start.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M") for start in starts]


def test_weekly_nine_oclock_stays_nine_across_march_dst():
    # 2026: clocks spring forward on Sunday 8 March in New York.
    starts = occurrence_starts(
        datetime(2026, 3, 2, 9, 0),
        Recurrence(frequency=WEEKLY, count=3),
        zone=NEW_YORK,
        limit=104,
    )
    assert local_times(starts) == [
        "2026-03-02 09:00",
        "2026-03-09 09:00",
        "2026-03-16 09:00",
    ]
    # The UTC instant moves by an hour instead.
    assert [start.astimezone(UTC).hour for start in starts] == [14, 13, 13]


def test_weekly_nine_oclock_stays_nine_across_november_dst():
    # 2026: clocks fall back on Sunday 1 November in New York.
    starts = occurrence_starts(
        datetime(2026, 10, 26, 9, 0),
        Recurrence(frequency=WEEKLY, count=2),
        zone=NEW_YORK,
        limit=104,
    )
    assert local_times(starts) == ["2026-10-26 09:00", "2026-11-02 09:00"]
    assert [start.astimezone(UTC).hour for start in starts] == [13, 14]


def test_every_two_weeks_until_a_date_inclusive():
    dates = occurrence_dates(
        date(2026, 1, 5),
        Recurrence(frequency=WEEKLY, interval=2, until=date(2026, 2, 16)),
        limit=104,
    )
    assert dates == [
        date(2026, 1, 5),
        date(2026, 1, 19),
        date(2026, 2, 2),
        date(2026, 2, 16),
    ]


def test_monthly_keeps_the_weekday_position():
    # Tuesday 13 January 2026 is the second Tuesday.
    dates = occurrence_dates(
        date(2026, 1, 13), Recurrence(frequency=MONTHLY, count=4), limit=104
    )
    assert dates == [
        date(2026, 1, 13),
        date(2026, 2, 10),
        date(2026, 3, 10),
        date(2026, 4, 14),
    ]
    assert all(day.weekday() == 1 for day in dates)


def test_monthly_fifth_weekday_means_last():
    # Friday 30 January 2026 is the fifth Friday; February has only four.
    dates = occurrence_dates(
        date(2026, 1, 30), Recurrence(frequency=MONTHLY, count=3), limit=104
    )
    assert dates == [date(2026, 1, 30), date(2026, 2, 27), date(2026, 3, 27)]


def test_monthly_every_two_months_crosses_the_year():
    dates = occurrence_dates(
        date(2026, 11, 2), Recurrence(frequency=MONTHLY, interval=2, count=3), limit=104
    )
    assert dates == [date(2026, 11, 2), date(2027, 1, 4), date(2027, 3, 1)]


def test_generation_stops_just_past_the_limit():
    dates = occurrence_dates(
        date(2026, 1, 1), Recurrence(frequency=WEEKLY, until=date(2100, 1, 1)), limit=10
    )
    assert len(dates) == 11


def test_needs_count_or_until():
    with pytest.raises(ValueError, match="count or an end date"):
        occurrence_dates(date(2026, 1, 1), Recurrence(frequency=WEEKLY), limit=10)


def test_skipped_local_time_is_refused_and_ambiguous_takes_the_first():
    with pytest.raises(NonexistentLocalTime):
        local_to_utc(datetime(2026, 3, 8, 2, 30), NEW_YORK)
    first = local_to_utc(datetime(2026, 11, 1, 1, 30), NEW_YORK)
    assert first == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def test_series_occurrence_in_the_spring_gap_moves_forward():
    starts = occurrence_starts(
        datetime(2026, 3, 1, 2, 30),
        Recurrence(frequency=WEEKLY, count=2),
        zone=NEW_YORK,
        limit=104,
    )
    assert local_times(starts) == ["2026-03-01 02:30", "2026-03-08 03:30"]
