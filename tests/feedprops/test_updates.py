"""Every change a person makes through the scheduling services reaches a subscribed
calendar as a newer version of that one event, and nothing else in the feed moves.

Timestamps have one-second resolution in iCalendar and HTTP, so before each step
every stored time is moved a minute into the past ("aged"): the step then happens
a minute after the previous version, as it would for a person, without sleeping."""

import re
import time
from datetime import timedelta

import icalendar
import pytest
from django.db.models import F
from django.utils.http import http_date, parse_http_date

from calendarsync.models import FeedLink
from scheduling.models import Appointment
from scheduling.services import (
    appointment_delete,
    appointment_set_status,
    appointment_update,
    location_update,
    patient_update,
)
from tests.factories import (
    feed_paths,
    local,
    make_appointment,
    make_location,
    make_patient,
)

VEVENT = re.compile(rb"BEGIN:VEVENT\r\n.*?END:VEVENT\r\n", re.DOTALL)
UID = re.compile(rb"\r\nUID:([^\r]+)\r\n")
MINUTE = timedelta(minutes=1)


def age(delta: timedelta = MINUTE) -> None:
    """Move every appointment's moments ``delta`` into the past, as if time had
    passed. What the server last told clients (the link's Last-Modified) stays: a
    client keeps it as it was. Straight to the table: the services never date back."""
    Appointment.objects.update(
        created_at=F("created_at") - delta,
        updated_at=F("updated_at") - delta,
        cancelled_at=F("cancelled_at") - delta,
        deleted_at=F("deleted_at") - delta,
    )


def events_of(body: bytes) -> dict[str, bytes]:
    """{UID: the VEVENT's exact bytes}."""
    return {UID.search(block)[1].decode(): block for block in VEVENT.findall(body)}


def read(block: bytes) -> icalendar.Event:
    return icalendar.Event.from_ical(block.decode())


@pytest.fixture
def booked(practice, clinician, admin_user):
    office = make_location(practice, name="Main Street Office")
    annex = make_location(practice, name="Annex")
    elodie = make_patient(practice, first_name="Élodie", last_name="O'Brien")
    mary = make_patient(practice, first_name="Mary", last_name="Kay")
    session = make_appointment(
        clinician,
        patients=[elodie],
        location=office,
        start=local(practice, days=3, hour=10),
        end=local(practice, days=3, hour=10, minute=50),
    )
    meeting = make_appointment(
        clinician,
        kind=Appointment.Kind.EVENT,
        title="Supervision",
        start=local(practice, days=4, hour=8),
        end=local(practice, days=4, hour=9),
    )
    steady = make_appointment(
        clinician,
        kind=Appointment.Kind.EVENT,
        title="Steady",
        start=local(practice, days=5, hour=8),
        end=local(practice, days=5, hour=9),
    )
    return {
        "session": session,
        "meeting": meeting,
        "steady": steady,
        "office": office,
        "annex": annex,
        "elodie": elodie,
        "mary": mary,
    }


def fresh(appointment: Appointment) -> Appointment:
    return Appointment.objects.get(pk=appointment.pk)


STEPS = [
    (
        "reschedule",
        "session",
        lambda b, actor: appointment_update(
            appointment=fresh(b["session"]),
            actor=actor,
            expected_revision=None,
            start=b["session"].start + timedelta(days=1, hours=2),
            end=b["session"].end + timedelta(days=1, hours=2),
        ),
        "DTSTART",
    ),
    (
        "change location",
        "session",
        lambda b, actor: appointment_update(
            appointment=fresh(b["session"]),
            actor=actor,
            expected_revision=None,
            location=b["annex"],
        ),
        "LOCATION",
    ),
    (
        "rename the location",
        "session",
        lambda b, actor: location_update(
            location=b["annex"],
            name="Annex, 2nd floor",
            is_telehealth=False,
            is_active=True,
        ),
        "LOCATION",
    ),
    (
        "change patients",
        "session",
        lambda b, actor: appointment_update(
            appointment=fresh(b["session"]),
            actor=actor,
            expected_revision=None,
            patients=[b["elodie"], b["mary"]],
        ),
        "SUMMARY",
    ),
    (
        "rename a patient",
        "session",
        lambda b, actor: patient_update(
            patient=b["mary"], actor=actor, last_name="Zhou"
        ),
        "SUMMARY",
    ),
    (
        "rename the title",
        "meeting",
        lambda b, actor: appointment_update(
            appointment=fresh(b["meeting"]),
            actor=actor,
            expected_revision=None,
            title="Peer supervision",
        ),
        "SUMMARY",
    ),
    (
        "cancel",
        "session",
        lambda b, actor: appointment_set_status(
            appointment=fresh(b["session"]),
            actor=actor,
            status=Appointment.Status.CANCELLED,
            expected_revision=None,
        ),
        "STATUS",
    ),
    (
        "delete",
        "meeting",
        lambda b, actor: appointment_delete(
            appointment=fresh(b["meeting"]), actor=actor, expected_revision=None
        ),
        "STATUS",
    ),
]


def test_every_visible_change_is_a_newer_version_of_that_event_only(
    client, clinician, admin_user, booked
):
    path = feed_paths(clinician)["personal"]
    steady_uid = f"{booked['steady'].uid}@tend"
    for label, key, step, visible in STEPS:
        age()
        before = client.get(path)
        assert client.get(path).content == before.content, f"{label}: not stable"
        uid = f"{booked[key].uid}@tend"
        old_events = events_of(before.content)
        old = read(old_events[uid])

        step(booked, admin_user)

        after = client.get(path)
        assert after.status_code == 200
        new_events = events_of(after.content)
        new = read(new_events[uid])
        assert new.decoded(visible) != old.decoded(visible), label
        assert new["SEQUENCE"] > old["SEQUENCE"], label
        assert new.decoded("LAST-MODIFIED") > old.decoded("LAST-MODIFIED"), label
        # The one event changed; every other event is the same bytes.
        assert set(new_events) == set(old_events), label
        for other in set(new_events) - {uid}:
            assert new_events[other] == old_events[other], (label, other)
        assert new_events[steady_uid] == old_events[steady_uid]

        # What a client holding the previous version is told. The new bytes'
        # date is later than the previous one's; it is sent once the clock has
        # reached it (never ahead of the clock), and only then validates them.
        assert after["ETag"] != before["ETag"], label
        moved = parse_http_date(after["Last-Modified"]) > parse_http_date(
            before["Last-Modified"]
        )
        assert moved or after["Last-Modified"] == before["Last-Modified"], label
        assert parse_http_date(after["Last-Modified"]) <= time.time()
        for stale in (
            {"If-None-Match": before["ETag"]},
            {"If-Modified-Since": before["Last-Modified"]},
            {
                "If-None-Match": before["ETag"],
                "If-Modified-Since": after["Last-Modified"],
            },
        ):
            again = client.get(path, headers=stale)
            assert again.status_code == 200, (label, stale)
            assert again.content == after.content
        current = client.get(path, headers={"If-None-Match": after["ETag"]})
        assert current.status_code == 304, label
        by_date = client.get(
            path, headers={"If-Modified-Since": after["Last-Modified"]}
        )
        # Only the very date remembered for these bytes validates them.
        stored = FeedLink.objects.get(access__user=clinician, scope="personal")
        exact = http_date(stored.served_last_modified.timestamp())
        assert by_date.status_code == (
            304 if after["Last-Modified"] == exact else 200
        ), label

    (cancelled,) = [
        read(block)
        for uid, block in events_of(client.get(path).content).items()
        if uid == f"{booked['session'].uid}@tend"
    ]
    assert str(cancelled["SUMMARY"]) == "Cancelled: É.O. & M.Z."
    assert str(cancelled["TRANSP"]) == "TRANSPARENT"
    assert str(cancelled["LOCATION"]) == "Annex, 2nd floor"


@pytest.mark.parametrize("how", ["cancel", "delete", "cancel then delete"])
def test_tombstones_stay_30_days_then_drop_out_as_a_newer_feed(
    client, clinician, admin_user, booked, how
):
    path = feed_paths(clinician)["personal"]
    session = booked["session"]
    uid = f"{session.uid}@tend"
    age()
    live = read(events_of(client.get(path).content)[uid])
    if "cancel" in how:
        appointment_set_status(
            appointment=fresh(session),
            actor=admin_user,
            status=Appointment.Status.LATE_CANCELLED,
            expected_revision=None,
        )
    if "delete" in how:
        if how != "delete":
            age()
        appointment_delete(
            appointment=fresh(session), actor=admin_user, expected_revision=None
        )
    first = client.get(path)
    tombstone = read(events_of(first.content)[uid])
    assert str(tombstone["STATUS"]) == "CANCELLED"
    assert str(tombstone["TRANSP"]) == "TRANSPARENT"
    assert str(tombstone["SUMMARY"]) == "Cancelled: É.O."
    assert tombstone["SEQUENCE"] > live["SEQUENCE"]
    assert tombstone.decoded("DTSTART") == live.decoded("DTSTART")

    # Day 29 after the last change: still there, the same version.
    age(timedelta(days=29))
    day_29 = client.get(path)
    kept = read(events_of(day_29.content)[uid])
    for name in ("STATUS", "TRANSP", "SUMMARY", "SEQUENCE", "DTSTART", "DTEND"):
        assert kept.decoded(name) == tombstone.decoded(name), name
    # Day 31: gone, and the feed that no longer has it is a newer feed, even though
    # the latest change it reflects is now older than before.
    age(timedelta(days=2))
    day_31 = client.get(path)
    assert uid not in events_of(day_31.content)
    assert len(events_of(day_31.content)) == 2
    assert parse_http_date(day_31["Last-Modified"]) >= parse_http_date(
        day_29["Last-Modified"]
    )
    held = {"If-Modified-Since": day_29["Last-Modified"]}
    assert client.get(path, headers=held).status_code == 200


def test_ios_style_revalidation_in_every_http_date_form(
    client, clinician, admin_user, booked
):
    """iOS (dataaccessd) revalidates with If-Modified-Since only; HTTP allows three
    date forms. 304 for the date of these bytes or later, 200 for anything older or
    unreadable."""
    path = feed_paths(clinician)["personal"]
    iphone = {"User-Agent": "iOS/18.1 (22B83) dataaccessd/1.0"}
    age()
    first = client.get(path, headers=iphone)
    stamp = parse_http_date(first["Last-Modified"])
    assert first["Last-Modified"] == http_date(stamp)

    import email.utils
    import time

    forms = {
        "IMF-fixdate": http_date(stamp),
        "RFC 850": time.strftime("%A, %d-%b-%y %H:%M:%S GMT", time.gmtime(stamp)),
        "asctime": time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(stamp)),
        "numeric zone": email.utils.formatdate(stamp, usegmt=True),
    }
    for form, value in forms.items():
        response = client.get(path, headers={**iphone, "If-Modified-Since": value})
        assert response.status_code == 304, form
    for value in (http_date(stamp - 1), "yesterday", "", "0"):
        response = client.get(path, headers={**iphone, "If-Modified-Since": value})
        assert response.status_code == 200, value
        assert response.content == first.content
