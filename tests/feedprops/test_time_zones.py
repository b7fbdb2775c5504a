"""Events across both clock changes and overnight, in practices whose zones have odd
rules: every real parser reads the same UTC instants as the database holds, and no
feed ever names a zone other than by its IANA name."""

import zoneinfo
from datetime import UTC, datetime, time, timedelta

import icalendar
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calendarsync.models import FeedScope
from practice.models import Practice, Role
from scheduling.models import Appointment
from scheduling.publication import calendar_days
from tests.conformance.harness import (
    assert_all_parsers_agree,
    assert_byte_level_ok,
    assert_feed_structure_ok,
    expected_event,
)
from tests.factories import feed_paths, make_appointment, make_practice, make_user
from tests.feedprops.oracles import assert_only_expected_properties
from tests.support import rolled_back

ZONES = [
    "America/St_Johns",  # -03:30, DST at 02:00 local
    "Asia/Kolkata",  # +05:30, no DST
    "Australia/Lord_Howe",  # +10:30, a 30-minute DST
    "Europe/Dublin",  # "negative DST" in the tz database: IST in summer is standard
    "America/New_York",
]
# Windows' names for zones, which some servers write and `ical` refuses.
WINDOWS_NAMES = [
    b"Standard Time",
    b"Daylight Time",
    b"Newfoundland",
    b"India Standard",
    b"GMT Standard",
    b"Lord Howe",
]


def offset_changes(zone: zoneinfo.ZoneInfo, start: datetime, end: datetime):
    """Every UTC instant in [start, end) at which the zone's offset changes, found by
    walking in quarter hours and then minutes (independently of the feed's code)."""
    changes = []
    moment = start
    step = timedelta(minutes=15)
    while moment < end:
        after = moment + step
        if moment.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            probe = moment
            while (
                probe.astimezone(zone).utcoffset()
                == moment.astimezone(zone).utcoffset()
            ):
                probe += timedelta(minutes=1)
            changes.append(probe)
        moment = after
    return changes


def around(change: datetime) -> list[tuple[datetime, datetime]]:
    """Appointments (UTC start, end) across, into, out of and inside the change, in
    both occurrences of a repeated hour and right after a skipped one."""
    minutes = timedelta(minutes=1)
    return [
        (change - 90 * minutes, change + 90 * minutes),
        (change - 45 * minutes, change + 5 * minutes),
        (change - 15 * minutes, change + 35 * minutes),
        (change, change + 50 * minutes),
        (change + 15 * minutes, change + 65 * minutes),
        (change + 45 * minutes, change + 95 * minutes),
        (change - 6 * 60 * minutes, change + 6 * 60 * minutes),  # overnight across it
    ]


def book(practice: Practice):
    clinician = make_user(
        practice,
        email=f"tz-{practice.pk}@feed.test",
        name="Zone Clinician",
        roles=[Role.ADMINISTRATOR, Role.CLINICIAN],
    )
    zone = practice.zone
    now = timezone.now()
    first_day, after_last_day = calendar_days(
        scope=FeedScope.PERSONAL, zone=practice.zone, now=now
    )
    window_start = datetime.combine(first_day + timedelta(days=1), time(0), zone)
    window_end = datetime.combine(after_last_day - timedelta(days=1), time(0), zone)
    slots = []
    changes = offset_changes(zone, window_start.astimezone(UTC), window_end)
    for change in changes:
        slots += around(change)
    # Overnight on ordinary nights, and the last minutes before local midnight.
    for days in (3, 40, 200):
        night = (now.astimezone(zone) + timedelta(days=days)).date()
        late = datetime.combine(night, time(23, 0), zone)
        slots.append((late, late + timedelta(hours=2)))
        slots.append((late + timedelta(minutes=50), late + timedelta(minutes=70)))
    for index, (start, end) in enumerate(slots):
        make_appointment(
            clinician,
            kind=Appointment.Kind.EVENT,
            title=f"Slot {index}",
            start=start,
            end=end,
        )
    return clinician, changes


@pytest.mark.parametrize("zone_key", ZONES)
def test_every_parser_reads_the_database_instants_across_clock_changes(
    db, client, zone_key
):
    practice = make_practice(name=f"Practice in {zone_key}", time_zone=zone_key)
    clinician, changes = book(practice)
    if zone_key == "Asia/Kolkata":
        assert changes == []
    else:
        assert len(changes) >= 2, changes  # both changes of at least one year

    stored = Appointment.objects.filter(practice=practice).values_list(
        "uid", "title", "start", "end"
    )
    expected = [
        expected_event(
            uid=f"{uid}@tend",
            summary=title,
            status="CONFIRMED",
            start=start.astimezone(UTC),
            end=end.astimezone(UTC),
        )
        for uid, title, start, end in stored
    ]
    paths = feed_paths(clinician)
    for scope in ("personal", "practice"):
        body = client.get(paths[scope]).content
        assert_byte_level_ok(body)
        assert_feed_structure_ok(body)
        for name in WINDOWS_NAMES:
            assert name not in body, name
        assert f"TZID:{zone_key}\r\n".encode() in body
        assert f"X-WR-TIMEZONE:{zone_key}\r\n".encode() in body
        if scope == "personal":
            assert_only_expected_properties(body, events=len(expected))
            assert_all_parsers_agree(body, expected)


@pytest.mark.parametrize(
    "name", ["Eastern Standard Time", "Newfoundland Standard Time", "EST5EDT ", ""]
)
def test_a_practice_cannot_hold_a_windows_zone_name(db, name):
    with pytest.raises(ValidationError):
        Practice(name="Windows", time_zone=name).full_clean()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    zone_key=st.sampled_from(ZONES),
    slots=st.lists(
        st.tuples(
            # Minutes from the start of the feed's window, and a length of up to a day.
            st.integers(min_value=0, max_value=420 * 24 * 60),
            st.integers(min_value=1, max_value=24 * 60),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_any_instant_in_any_zone_reads_back_as_stored(db, client, zone_key, slots):
    with rolled_back():
        practice = make_practice(name="Anywhere", time_zone=zone_key)
        clinician = make_user(practice, email="anywhere@feed.test", name="Anywhere")
        first_day, after_last_day = calendar_days(
            scope=FeedScope.PERSONAL, zone=practice.zone, now=timezone.now()
        )
        origin = datetime.combine(first_day, time(0), practice.zone).astimezone(UTC)
        last = datetime.combine(after_last_day, time(0), practice.zone)
        stored = {}
        for index, (offset, length) in enumerate(slots):
            start = origin + timedelta(minutes=offset)
            if start >= last:
                continue
            appointment = make_appointment(
                clinician,
                kind=Appointment.Kind.EVENT,
                title=f"Slot {index}",
                start=start,
                end=start + timedelta(minutes=length),
            )
            stored[f"{appointment.uid}@tend"] = (start, appointment.end)
        body = client.get(feed_paths(clinician)["personal"]).content
        calendar = icalendar.Calendar.from_ical(body)
        read = {
            str(event["UID"]): (event.decoded("DTSTART"), event.decoded("DTEND"))
            for event in calendar.walk("VEVENT")
        }
        assert read == stored
        for start, _end in read.values():
            assert start.utcoffset() is not None  # never floating
