"""The one date helper's brief "when": the time on the same day, the date and time
on another, both in the zone given."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from practice.dates import format_moment

NEW_YORK = ZoneInfo("America/New_York")


def test_a_moment_today_is_its_time_and_another_day_adds_the_date():
    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # 10:00 in New York

    assert (
        format_moment(datetime(2026, 12, 1, 14, 42, tzinfo=UTC), NEW_YORK, now=now)
        == "09:42"
    )
    assert (
        format_moment(datetime(2026, 11, 30, 14, 42, tzinfo=UTC), NEW_YORK, now=now)
        == "30 Nov 2026, 09:42"
    )


def test_the_day_is_the_zones_day():
    # 03:00 UTC on 1 Dec is still 30 Nov in New York, where "now" is 1 Dec.
    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    assert (
        format_moment(datetime(2026, 12, 1, 3, 0, tzinfo=UTC), NEW_YORK, now=now)
        == "30 Nov 2026, 22:00"
    )
