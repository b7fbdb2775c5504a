"""Tend's own events are never counted twice: a personal calendar that subscribes
to Tend's feed, or holds Tend's pushed events, gives no busy time for them."""

from datetime import timedelta

from calendarsync.busy_sources import busy_source_add_ics
from scheduling.models import BusyTime
from tests.calendarsync.busy_support import Answer, vcalendar, vevent
from tests.factories import local, make_appointment, personal_feed_path


def test_tends_own_feed_read_back_gives_no_busy_time(
    client, calendar_server, clinician
):
    practice = clinician.practice
    make_appointment(clinician, start=local(practice, days=1, hour=9))
    make_appointment(clinician, start=local(practice, days=2, hour=14))
    feed = client.get(personal_feed_path(clinician))
    assert feed.status_code == 200 and b"@tend" in feed.content
    calendar_server.routes["/tend.ics"] = Answer(body=feed.content)

    source = busy_source_add_ics(user=clinician, url=calendar_server.url("/tend.ics"))

    assert source.busy_count == 0
    assert not BusyTime.objects.exists()


def test_tends_events_among_personal_ones_are_skipped_by_their_uid(
    client, calendar_server, clinician
):
    practice = clinician.practice
    booked = make_appointment(clinician, start=local(practice, days=1, hour=9))
    feed = client.get(personal_feed_path(clinician)).content.decode()
    (tend_event,) = [
        "BEGIN:VEVENT" + part.split("END:VEVENT")[0] + "END:VEVENT\r\n"
        for part in feed.split("BEGIN:VEVENT")[1:]
    ]
    gym = local(practice, days=1, hour=18)
    body = vcalendar(
        tend_event,
        # As a calendar application may keep a pushed or copied event: the UID
        # in capitals, the times in UTC.
        vevent(
            f"{str(booked.uid).upper()}@TEND",
            local(practice, days=3, hour=9),
            local(practice, days=3, hour=10),
        ),
        vevent("gym-1@example.org", gym, gym + timedelta(hours=1)),
        # Not Tend's: only looks alike.
        vevent(
            f"{booked.uid}@tend.example.org",
            local(practice, days=4, hour=9),
            local(practice, days=4, hour=10),
        ),
    )
    calendar_server.routes["/mixed.ics"] = Answer(body=body)

    source = busy_source_add_ics(user=clinician, url=calendar_server.url("/mixed.ics"))

    rows = BusyTime.objects.filter(calendar=source.calendar)
    assert [(row.start, row.end) for row in rows] == [
        (gym, gym + timedelta(hours=1)),
        (local(practice, days=4, hour=9), local(practice, days=4, hour=10)),
    ]
