"""Personal calendars read in as busy time: real iCalendar files served over
loopback, read through the outbound rules and expanded by recurring-ical-events.
The expected intervals are worked out by hand from the samples in
``busy_samples/`` (times in the practice's zone, America/New_York)."""

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from calendarsync import crypto
from calendarsync.busy_read import address_hint, ics_address
from calendarsync.busy_sources import (
    busy_read_request,
    busy_source_add_ics,
    busy_source_read,
    busy_source_remove,
)
from calendarsync.models import BusySource
from practice.models import Role
from practice.services import user_set_active, user_update
from scheduling.models import BusyCalendar, BusyTime
from tests.calendarsync.busy_support import Answer, sample

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
HTML_LOGIN = (
    b"<!DOCTYPE html><html><head><title>Sign in</title></head>"
    b"<body><form>Sign in to see this calendar</form></body></html>"
)


def busy(source_or_calendar) -> list[tuple[str, str, bool]]:
    """The kept intervals as ("12-07 17:00", "12-07 18:00", tentative) in New York."""
    calendar = getattr(source_or_calendar, "calendar", source_or_calendar)
    return [
        (
            f"{row.start.astimezone(NEW_YORK):%m-%d %H:%M}",
            f"{row.end.astimezone(NEW_YORK):%m-%d %H:%M}",
            row.tentative,
        )
        for row in BusyTime.objects.filter(calendar=calendar).order_by("start")
    ]


def add(calendar_server, clinician, name: str, body: bytes, *, now=NOW, **answer):
    calendar_server.routes[f"/{name}"] = Answer(body=body, **answer)
    return busy_source_add_ics(
        user=clinician, url=calendar_server.url(f"/{name}"), now=now
    )


def reread(source, *, now) -> str:
    source = BusySource.objects.select_related("calendar", "practice", "owner").get(
        pk=source.pk
    )
    return busy_source_read(source=source, now=now).result


def test_a_google_export_keeps_series_overrides_all_day_and_tentative(
    calendar_server, clinician
):
    source = add(calendar_server, clinician, "google.ics", sample("google.ics"))

    assert source.calendar.name == "Dana — personal"
    assert busy(source) == [
        # The weekly lesson: 14 Dec excluded, 21 Dec moved to 19:00.
        ("12-07 17:00", "12-07 18:00", False),
        # The dentist (in UTC) and the school pickup overlapping it, merged.
        ("12-09 10:00", "12-09 12:00", False),
        # The yoga class is only tentative; the cancelled lunch is gone.
        ("12-11 12:00", "12-11 13:00", True),
        ("12-21 19:00", "12-21 20:00", False),
        # A two-day all-day event: busy from midnight to midnight.
        ("12-24 00:00", "12-26 00:00", False),
        ("12-28 17:00", "12-28 18:00", False),
    ]
    assert source.busy_count == 6
    assert source.calendar.read_at == NOW


def test_an_icloud_calendar_keeps_its_zone_floating_times_and_durations(
    calendar_server, clinician
):
    source = add(calendar_server, clinician, "home.ics", sample("icloud.ics"))

    assert source.calendar.name == "Home"
    assert busy(source) == [
        ("12-03 13:00", "12-03 14:30", False),  # 18:00 in London
        ("12-04 08:00", "12-04 09:30", False),  # floating: the practice's zone
        ("12-05 09:00", "12-05 11:00", False),  # 14:00 London for two hours
    ]


def test_an_outlook_calendar_with_windows_zone_names_and_no_vtimezone(
    calendar_server, clinician
):
    source = add(calendar_server, clinician, "outlook.ics", sample("outlook.ics"))

    assert busy(source) == [
        ("12-01 09:00", "12-01 10:00", False),  # 15:00 W. Europe Standard Time
        # 2 Dec is marked free in Outlook; 3 Dec tentative.
        ("12-03 14:00", "12-03 15:00", True),
        ("12-15 09:00", "12-15 10:00", False),  # 8 Dec excluded
    ]


def test_a_series_across_a_clock_change_keeps_its_wall_time(calendar_server, clinician):
    now = datetime(2027, 2, 20, 15, 0, tzinfo=UTC)
    source = add(calendar_server, clinician, "dst.ics", sample("dst.ics"), now=now)

    rows = BusyTime.objects.filter(calendar=source.calendar).order_by("start")
    assert [(row.start, row.end) for row in rows] == [
        # 9:00 in New York: 14:00 UTC in winter, 13:00 UTC after 14 March.
        (
            datetime(2027, 3, 8, 14, 0, tzinfo=UTC),
            datetime(2027, 3, 8, 15, 0, tzinfo=UTC),
        ),
        (
            datetime(2027, 3, 15, 13, 0, tzinfo=UTC),
            datetime(2027, 3, 15, 14, 0, tzinfo=UTC),
        ),
        # 9:00 in Berlin: 08:00 UTC, then 07:00 UTC after 28 March.
        (
            datetime(2027, 3, 22, 8, 0, tzinfo=UTC),
            datetime(2027, 3, 22, 8, 30, tzinfo=UTC),
        ),
        (
            datetime(2027, 3, 29, 7, 0, tzinfo=UTC),
            datetime(2027, 3, 29, 7, 30, tzinfo=UTC),
        ),
    ]


def test_only_today_to_ninety_days_ahead_is_kept(calendar_server, clinician):
    body = b"\r\n".join(
        [
            b"BEGIN:VCALENDAR",
            b"VERSION:2.0",
            b"PRODID:-//Example//EN",
            b"BEGIN:VEVENT",
            b"UID:daily@example.org",
            b"DTSTAMP:20261101T000000Z",
            b"DTSTART;TZID=America/New_York:20261101T070000",
            b"DTEND;TZID=America/New_York:20261101T073000",
            b"RRULE:FREQ=DAILY",
            b"END:VEVENT",
            b"END:VCALENDAR",
            b"",
        ]
    )
    source = add(calendar_server, clinician, "daily.ics", body)

    kept = busy(source)
    assert kept[0] == ("11-29 07:00", "11-29 07:30", False)
    assert kept[-1] == ("02-26 07:00", "02-26 07:30", False)
    assert len(kept) == 90


def test_a_second_read_is_conditional_and_a_304_only_confirms(
    calendar_server, clinician
):
    source = add(
        calendar_server,
        clinician,
        "google.ics",
        sample("google.ics"),
        etag='"v1"',
        last_modified="Sun, 29 Nov 2026 14:00:00 GMT",
    )
    before = busy(source)
    later = NOW + timedelta(minutes=10)

    assert reread(source, now=later) == "unchanged"

    _path, headers = calendar_server.requests[-1]
    assert headers["If-None-Match"] == '"v1"'
    assert headers["If-Modified-Since"] == "Sun, 29 Nov 2026 14:00:00 GMT"
    assert "Cookie" not in headers
    source.refresh_from_db()
    assert source.calendar.read_at == later and busy(source) == before
    assert source.busy_count == len(before)


def test_a_changed_calendar_replaces_the_busy_time(calendar_server, clinician):
    source = add(calendar_server, clinician, "cal.ics", sample("icloud.ics"), etag="1")
    calendar_server.routes["/cal.ics"] = Answer(body=sample("outlook.ics"), etag="2")

    assert reread(source, now=NOW + timedelta(minutes=10)) == "read"

    assert busy(source)[0] == ("12-01 09:00", "12-01 10:00", False)
    source.refresh_from_db()
    assert source.etag == "2" and source.busy_count == 3
    # The name the calendar had when it was added stays.
    assert source.calendar.name == "Home"


def big_calendar() -> bytes:
    event = (
        b"BEGIN:VEVENT\r\nUID:%d@example.org\r\nDTSTAMP:20261101T000000Z\r\n"
        b"DTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\n"
        b"SUMMARY:" + b"x" * 200 + b"\r\nEND:VEVENT\r\n"
    )
    events = b"".join(event % n for n in range(20_000))
    return b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" + events + b"END:VCALENDAR\r\n"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (Answer(404, b"Not Found"), "404 — the address may have been reset"),
        (Answer(410, b"Gone"), "410 — the address may have been reset"),
        (Answer(401, b"Unauthorized"), "401 — the calendar refused Tend"),
        (Answer(503, b"Busy"), "the calendar server answered with an error (503)"),
        (
            Answer(200, HTML_LOGIN, {"Content-Type": "text/html"}),
            "is not a calendar",
        ),
        (Answer(200, b""), "is not a calendar"),
        (Answer(200, b"BEGIN:VCALENDAR\r\nthis is not iCalendar"), "not a calendar"),
        (Answer(200, big_calendar()), "larger than Tend accepts"),
        (
            Answer(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"}),
            "cloud metadata or link-local address",
        ),
        (
            Answer(302, b"", {"Location": "http://10.20.30.40/calendar.ics"}),
            "on a private network",
        ),
    ],
    ids=[
        "404",
        "410",
        "401",
        "503",
        "html",
        "empty",
        "garbage",
        "over-5MB",
        "redirect-metadata",
        "redirect-private",
    ],
)
def test_a_failing_read_keeps_the_last_good_busy_time(
    calendar_server, clinician, answer, message
):
    source = add(calendar_server, clinician, "cal.ics", sample("google.ics"))
    kept = busy(source)
    calendar_server.routes["/cal.ics"] = answer
    failed_at = NOW + timedelta(minutes=10)

    assert reread(source, now=failed_at) == "failed"
    assert reread(source, now=failed_at + timedelta(minutes=10)) == "failed"

    source.refresh_from_db()
    assert message in source.failure_message
    assert source.failing_since == failed_at
    assert busy(source) == kept
    calendar = BusyCalendar.objects.get(pk=source.calendar_id)
    assert calendar.read_at == NOW
    assert not calendar.is_stale(NOW + timedelta(hours=23))
    assert calendar.is_stale(NOW + timedelta(days=1, minutes=1))

    # Back to normal: the failure is over and the busy time current again.
    calendar_server.routes["/cal.ics"] = Answer(body=sample("google.ics"))
    assert reread(source, now=NOW + timedelta(hours=1)) == "read"
    source.refresh_from_db()
    assert source.failing_since is None and source.failure_message == ""


def test_a_valid_calendar_without_events_is_believed(calendar_server, clinician):
    source = add(calendar_server, clinician, "cal.ics", sample("google.ics"))
    calendar_server.routes["/cal.ics"] = Answer(
        body=b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example//EN\r\n"
        b"X-WR-CALNAME:Empty now\r\nEND:VCALENDAR\r\n"
    )

    assert reread(source, now=NOW + timedelta(minutes=10)) == "read"

    assert busy(source) == []
    source.refresh_from_db()
    assert source.busy_count == 0 and source.failing_since is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "Enter the calendar's address."),
        ("ftp://calendar.example/cal.ics", "starts with https:// or webcal://"),
        ("calendar.google.com/calendar/ical/x/basic.ics", "https:// or webcal://"),
        ("http://", "not a web address Tend can connect to"),
    ],
)
def test_an_unusable_address_is_refused_and_nothing_saved(clinician, url, message):
    with pytest.raises(ValidationError) as refused:
        busy_source_add_ics(user=clinician, url=url, now=NOW)

    assert message in " ".join(refused.value.messages)
    assert not BusyCalendar.objects.exists() and not BusySource.objects.exists()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (Answer(404, b"Not Found"), "404 — the address may have been reset"),
        (Answer(200, HTML_LOGIN), "is not a calendar"),
        (
            Answer(302, b"", {"Location": "http://169.254.169.254/"}),
            "cloud metadata",
        ),
    ],
)
def test_an_address_that_gives_no_calendar_is_never_saved(
    calendar_server, clinician, answer, message
):
    calendar_server.routes["/cal.ics"] = answer
    with pytest.raises(ValidationError) as refused:
        busy_source_add_ics(user=clinician, url=calendar_server.url("/cal.ics"))

    assert message in refused.value.messages[0]
    assert refused.value.messages[0].startswith("Tend could not read that calendar: ")
    assert not BusyCalendar.objects.exists() and not BusySource.objects.exists()


def test_loopback_and_plain_http_are_refused_outside_the_allowed_networks(
    calendar_server, clinician, settings
):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    calendar_server.routes["/cal.ics"] = Answer(body=sample("google.ics"))

    with pytest.raises(ValidationError) as refused:
        busy_source_add_ics(user=clinician, url=calendar_server.url("/cal.ics"))

    assert "this machine itself, which Tend does not" in refused.value.messages[0]
    assert calendar_server.requests == []


def test_webcal_addresses_are_read_over_https_and_shown_masked():
    secret = "webcal://p58-caldav.icloud.com/published/2/MTIzNDU2Nzg5MDEy"
    assert ics_address(secret) == (
        "https://p58-caldav.icloud.com/published/2/MTIzNDU2Nzg5MDEy"
    )
    assert address_hint(secret) == "p58-caldav.icloud.com/…"
    assert address_hint("https://user:pw@calendar.google.com/x") == (
        "calendar.google.com/…"
    )


def test_the_address_is_stored_encrypted(calendar_server, clinician):
    url = calendar_server.url("/private-a1b2c3d4e5/basic.ics")
    calendar_server.routes["/private-a1b2c3d4e5/basic.ics"] = Answer(
        body=sample("icloud.ics")
    )

    source = busy_source_add_ics(user=clinician, url=url, name="Family", now=NOW)

    assert "a1b2c3d4e5" not in source.secret_url
    assert crypto.decrypt(source.secret_url) == url
    assert source.address_hint == "127.0.0.1:" + url.split(":")[2].split("/")[0] + (
        "/…"
    )
    assert source.calendar.name == "Family"


def test_removing_a_source_forgets_its_calendar_and_busy_time(
    calendar_server, clinician
):
    source = add(calendar_server, clinician, "cal.ics", sample("google.ics"))

    busy_source_remove(source=source)

    assert not BusySource.objects.exists()
    assert not BusyCalendar.objects.exists()
    assert not BusyTime.objects.exists()


def test_a_clinician_who_leaves_or_loses_the_role_has_no_busy_time_read(
    calendar_server, clinician, admin_user, django_capture_on_commit_callbacks
):
    source = add(calendar_server, clinician, "cal.ics", sample("google.ics"))

    user_update(
        user=clinician,
        display_name=clinician.display_name,
        credentials=clinician.credentials,
        roles=[Role.SCHEDULER],
        actor=admin_user,
        client_ip=None,
    )

    assert not BusyTime.objects.exists()
    requests = len(calendar_server.requests)
    assert reread(source, now=NOW + timedelta(minutes=10)) == "stopped"
    assert len(calendar_server.requests) == requests

    # The role given back: the calendar is read again (at once with the tests'
    # immediate tasks).
    clinician.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        user_update(
            user=clinician,
            display_name=clinician.display_name,
            credentials=clinician.credentials,
            roles=[Role.CLINICIAN],
            actor=admin_user,
            client_ip=None,
        )
    assert len(calendar_server.requests) == requests + 1
    source.refresh_from_db()
    assert source.attempted_at > NOW and source.failing_since is None

    clinician.refresh_from_db()
    user_set_active(user=clinician, active=False, actor=admin_user, client_ip=None)
    assert not BusyTime.objects.exists()


def test_only_clinicians_add_personal_calendars(calendar_server, scheduler):
    calendar_server.routes["/cal.ics"] = Answer(body=sample("google.ics"))
    with pytest.raises(ValidationError, match="Only clinicians"):
        busy_source_add_ics(user=scheduler, url=calendar_server.url("/cal.ics"))
    assert calendar_server.requests == []


def test_a_refresh_is_queued_once_however_often_it_is_asked_for(
    calendar_server, clinician, settings
):
    source = add(calendar_server, clinician, "cal.ics", sample("google.ics"))
    settings.TASKS = {
        "default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}
    }

    assert busy_read_request([source.pk, source.pk]) == [source.pk]
    assert busy_read_request([source.pk]) == []
    source.refresh_from_db()
    assert source.read_queued_at is not None


def test_unknown_zones_alarms_to_dos_and_old_history(calendar_server, clinician):
    body = b"\r\n".join(
        [
            b"BEGIN:VCALENDAR",
            b"VERSION:2.0",
            b"PRODID:-//Example//EN",
            b"BEGIN:VTODO",
            b"UID:todo@example.org",
            b"DTSTART:20261201T090000Z",
            b"DUE:20261201T100000Z",
            b"SUMMARY:Renew insurance",
            b"END:VTODO",
            b"BEGIN:VEVENT",
            b"UID:unknown-zone@example.org",
            b"DTSTART;TZID=Mars/Olympus_Mons:20261202T090000",
            b"DTEND;TZID=Mars/Olympus_Mons:20261202T100000",
            b"BEGIN:VALARM",
            b"ACTION:DISPLAY",
            b"TRIGGER:-PT15M",
            b"DESCRIPTION:Reminder",
            b"END:VALARM",
            b"END:VEVENT",
            b"BEGIN:VEVENT",
            b"UID:long-ago@example.org",
            b"DTSTART:20190105T090000Z",
            b"DTEND:20190105T100000Z",
            b"END:VEVENT",
            b"BEGIN:VEVENT",
            b"UID:spans-into-window@example.org",
            b"DTSTART;VALUE=DATE:20261120",
            b"DTEND;VALUE=DATE:20261201",
            b"END:VEVENT",
            b"END:VCALENDAR",
            b"",
        ]
    )
    source = add(calendar_server, clinician, "misc.ics", body)

    assert busy(source) == [
        # A holiday begun before today: busy from today's midnight on.
        ("11-29 00:00", "12-01 00:00", False),
        # A zone nobody knows: read in the practice's zone, like a floating time.
        ("12-02 09:00", "12-02 10:00", False),
    ]


def test_floating_times_follow_the_calendars_own_zone_when_it_names_one(
    calendar_server, clinician
):
    body = sample("icloud.ics").replace(
        b"X-WR-CALNAME:Home\r\n",
        b"X-WR-CALNAME:Home\r\nX-WR-TIMEZONE:Europe/London\r\n",
    )
    source = add(calendar_server, clinician, "home.ics", body)

    # "Swim" at 08:00 floating, in a London calendar: 03:00 in New York.
    assert ("12-04 03:00", "12-04 04:30", False) in busy(source)
