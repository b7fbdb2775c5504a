"""A calendar of the connected CalDAV account read as busy time, against a real
Radicale: only read (never written), unchanged calendars answered by their ctag,
and Tend's own pushed calendar never offered or read."""

import uuid
from datetime import timedelta

import caldav
import pytest
from django.core.exceptions import ValidationError

from calendarsync.busy_sources import (
    TEND_CALENDAR,
    busy_source_add_caldav,
    busy_source_read,
)
from calendarsync.models import BusySource
from scheduling.models import BusyTime
from tests.calendarsync.busy_support import vcalendar, vevent
from tests.factories import connect_calendar_account_to, local


def personal_calendar(radicale, name: str):
    dav = caldav.DAVClient(
        url=radicale.url, username=radicale.username, password=radicale.password
    )
    return dav.principal().make_calendar(name=name, cal_id=uuid.uuid4().hex)


def kept(source) -> list:
    return [
        (row.start, row.end, row.tentative)
        for row in BusyTime.objects.filter(calendar=source.calendar)
    ]


def reread(source):
    source = BusySource.objects.select_related(
        "calendar", "practice", "owner", "account"
    ).get(pk=source.pk)
    return busy_source_read(source=source).result


def test_a_calendar_of_the_account_is_read_and_reread_by_its_ctag(radicale, clinician):
    practice = clinician.practice
    account = connect_calendar_account_to(clinician, radicale)
    family = personal_calendar(radicale, "Family")
    swim = local(practice, days=1, hour=7)
    family.save_event(
        vcalendar(
            vevent(
                "swim@example.org",
                swim,
                swim + timedelta(hours=1),
                extra=("SUMMARY:Swim", "RRULE:FREQ=WEEKLY;COUNT=2"),
            )
        ).decode()
    )
    family.save_event(
        vcalendar(
            vevent(
                "free@example.org",
                swim,
                swim + timedelta(hours=3),
                extra=("TRANSP:TRANSPARENT",),
            )
        ).decode()
    )

    source = busy_source_add_caldav(user=clinician, calendar_url=str(family.url))

    assert source.calendar.name == "Family"
    assert source.address_hint.endswith("Family")
    assert kept(source) == [
        (swim, swim + timedelta(hours=1), False),
        (swim + timedelta(days=7), swim + timedelta(days=7, hours=1), False),
    ]
    assert source.etag  # the ctag

    # Unchanged: only the calendar list is asked for.
    assert reread(source) == "unchanged"

    lunch = local(practice, days=2, hour=12)
    family.save_event(
        vcalendar(
            vevent(
                "lunch@example.org",
                lunch,
                lunch + timedelta(hours=1),
                extra=("STATUS:TENTATIVE",),
            )
        ).decode()
    )
    assert reread(source) == "read"
    assert (lunch, lunch + timedelta(hours=1), True) in kept(source)
    # Read only: the calendar holds what the test wrote, nothing of Tend's.
    assert sorted(
        str(resource.icalendar_component["UID"]) for resource in family.events()
    ) == ["free@example.org", "lunch@example.org", "swim@example.org"]
    assert account.calendar_url


def test_tends_own_calendar_is_never_read_as_busy_time(radicale, clinician):
    account = connect_calendar_account_to(clinician, radicale)

    with pytest.raises(ValidationError) as refused:
        busy_source_add_caldav(user=clinician, calendar_url=account.calendar_url)

    assert refused.value.messages == [TEND_CALENDAR]
    assert not BusySource.objects.exists()


def test_a_calendar_read_once_is_not_added_twice(radicale, clinician):
    connect_calendar_account_to(clinician, radicale)
    work = personal_calendar(radicale, "Work")
    busy_source_add_caldav(user=clinician, calendar_url=str(work.url))

    with pytest.raises(ValidationError, match="already read"):
        busy_source_add_caldav(user=clinician, calendar_url=str(work.url))


def test_a_disconnected_account_keeps_the_last_busy_time_and_says_why(
    radicale, clinician
):
    account = connect_calendar_account_to(clinician, radicale)
    gym = personal_calendar(radicale, "Gym")
    start = local(clinician.practice, days=1, hour=18)
    event = vevent("g@example.org", start, start + timedelta(hours=1))
    gym.save_event(vcalendar(event).decode())
    source = busy_source_add_caldav(user=clinician, calendar_url=str(gym.url))
    account.delete()

    assert reread(source) == "failed"

    source.refresh_from_db()
    assert "disconnected" in source.failure_message
    assert len(kept(source)) == 1
