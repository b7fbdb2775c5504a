"""Busy-only feeds through the real parsers our clients use, and a phone-style
subscriber that must drop a block once its appointment is cancelled."""

from collections import Counter
from datetime import UTC, datetime, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from calendarsync import ical
from calendarsync.busylinks import busy_link_enable
from calendarsync.models import FeedScope
from calendarsync.services import feed_links_issue
from calendarsync.tokens import busy_uid_stem
from practice.demo import seed_demo_data
from practice.models import User
from scheduling.models import Appointment
from scheduling.publication import calendar_days
from tests.conformance.harness import (
    assert_cut_feed_conforms,
    assert_feed_conforms,
    subscribed_events,
)
from tests.factories import (
    change_appointment,
    delete_appointment,
    make_appointment,
    make_patient,
)

pytestmark = pytest.mark.conformance

BUSY_STATUSES = [
    Appointment.Status.SCHEDULED,
    Appointment.Status.ATTENDED,
    Appointment.Status.NO_SHOW,
]


def busy_path(clinician: User) -> str:
    """The clinician's busy-only feed, made as the sync page makes it."""
    busy_link_enable(user=clinician, client_ip=None)
    _, issued = feed_links_issue(user=clinician)
    (busy,) = [item for item in issued if item.link.scope == FeedScope.BUSY]
    return reverse("calendarsync:feed", args=[busy.token])


def busy_appointments(clinician: User, now: datetime) -> list[Appointment]:
    """What the database says the busy-only feed must show, in its window."""
    practice = clinician.practice
    first_day, after_last_day = calendar_days(
        scope=FeedScope.BUSY, zone=practice.zone, now=now
    )
    return list(
        Appointment.objects.filter(
            practice=practice,
            clinician=clinician,
            deleted_at__isnull=True,
            status__in=BUSY_STATUSES,
            start__lt=datetime.combine(after_last_day, time(0), tzinfo=practice.zone),
            end__gt=datetime.combine(first_day, time(0), tzinfo=practice.zone),
        )
    )


def test_every_demo_busy_feed_reads_identically_in_every_real_parser(db, client):
    riverside, harbor = seed_demo_data()
    clinicians = list(
        User.objects.filter(
            practice__in=[riverside, harbor], is_clinician=True, is_active=True
        )
    )
    assert len(clinicians) >= 4
    failures = []
    total = 0
    for clinician in clinicians:
        label = f"busy: {clinician.label}"
        now = timezone.now()
        response = client.get(busy_path(clinician))
        assert response.status_code == 200, label
        ics = response.content
        try:
            readings = assert_feed_conforms(ics)
        except AssertionError as error:
            failures.append(f"== {label}\n{error}")
            continue
        events = readings["icalendar"].events
        total += len(events)
        expected = busy_appointments(clinician, now)
        want = Counter(
            (a.start.astimezone(UTC), a.end.astimezone(UTC)) for a in expected
        )
        got = Counter((event.start_utc, event.end_utc) for event in events)
        if want != got:
            failures.append(
                f"== {label}\nbusy times differ from the database: "
                f"missing {want - got}, extra {got - want}"
            )
        if {event.summary for event in events} - {"Busy"}:
            failures.append(f"== {label}\nsummaries other than Busy")
        if {event.status for event in events} - {"CONFIRMED"}:
            failures.append(f"== {label}\nstatuses other than CONFIRMED")
        uids = {event.uid for event in events}
        if uids != {f"{busy_uid_stem(str(a.uid))}@busy.tend" for a in expected}:
            failures.append(f"== {label}\nUIDs are not the busy-only UIDs")
        if not all(ical.is_tend_uid(uid) for uid in uids):
            failures.append(f"== {label}\nis_tend_uid does not know a UID")
        names = {str(a.uid) for a in expected}
        if any(uid.split("@")[0] in names for uid in uids):
            failures.append(f"== {label}\nan appointment's own UID is published")
    assert not failures, "\n".join(failures)
    assert total > 0


def test_a_busy_feed_cut_to_its_size_limit_still_reads_identically(
    db, client, settings
):
    riverside, _harbor = seed_demo_data()
    clinician = (
        User.objects.filter(practice=riverside, is_clinician=True, is_active=True)
        .order_by("pk")
        .first()
    )
    path = busy_path(clinician)
    assert_cut_feed_conforms(client, settings, path)


@pytest.mark.django_db(transaction=True)
def test_subscriber_drops_a_busy_block_once_cancelled(
    live_server, client, practice, clinician, subscriber
):
    zone = practice.zone
    day = (timezone.now().astimezone(zone) + timedelta(days=7)).date()

    def local(hour, minute=0, days=0):
        return datetime.combine(day + timedelta(days=days), time(hour, minute), zone)

    patient = make_patient(practice, first_name="Élodie", last_name="O'Brien")
    # Another block stays put throughout, so the feed never goes empty.
    steady = make_appointment(
        clinician,
        kind=Appointment.Kind.EVENT,
        title="Supervision",
        start=local(8),
        end=local(8, 50),
    )
    path = busy_path(clinician)
    phone = subscriber(live_server.url + path)
    window = (day - timedelta(days=3), day + timedelta(days=5))

    def step():
        return subscribed_events(phone, client.get(path).content, window)

    def block(start, end):
        return (start.astimezone(UTC), end.astimezone(UTC), "CONFIRMED", "Busy")

    steady_block = block(steady.start, steady.end)
    session = make_appointment(
        clinician, patients=[patient], start=local(10), end=local(10, 50)
    )
    assert step() == [steady_block, block(local(10), local(10, 50))]

    change_appointment(session, start=local(14, days=1), end=local(14, 50, days=1))
    assert step() == [steady_block, block(local(14, days=1), local(14, 50, days=1))]

    # Cancelled: the block is gone from the phone at the next sync.
    change_appointment(session, status=Appointment.Status.CANCELLED)
    assert step() == [steady_block]

    # An event deleted: gone too.
    delete_appointment(steady)
    other = make_appointment(
        clinician, patients=[patient], start=local(9), end=local(9, 50)
    )
    assert step() == [block(other.start, other.end)]
