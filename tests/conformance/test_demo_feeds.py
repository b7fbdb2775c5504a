"""Every feed the demo practice can publish, read by the real parsers our clients use,
and a phone-style subscriber following one appointment from booking to removal."""

from collections import Counter
from datetime import UTC, datetime, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from calendarsync.models import FeedScope
from calendarsync.services import feed_links_issue
from practice.demo import seed_demo_data
from practice.models import User
from scheduling.models import Appointment
from scheduling.publication import calendar_days
from tests.conformance.harness import (
    ParsedCalendar,
    assert_cut_feed_conforms,
    assert_feed_conforms,
    subscribed_events,
)
from tests.factories import (
    change_appointment,
    delete_appointment,
    make_appointment,
    make_patient,
    make_user,
)

pytestmark = pytest.mark.conformance

ACTIVE = [
    Appointment.Status.SCHEDULED,
    Appointment.Status.ATTENDED,
    Appointment.Status.NO_SHOW,
]


def feed_path(issued) -> str:
    return reverse("calendarsync:feed", args=[issued.token])


def every_demo_feed(riverside, harbor):
    """(label, link, path) of each clinician's, the practice-wide and an empty feed."""
    feeds = []
    for practice in (riverside, harbor):
        administrator = User.objects.get(
            practice=practice, is_practice_admin=True, is_active=True
        )
        _, issued = feed_links_issue(user=administrator)
        for link in issued:
            label = f"{practice.name}: {link.link.scope}"
            if link.link.clinician_id:
                label += f" {link.link.clinician.label}"
            feeds.append((label, link.link, feed_path(link)))
    newcomer = make_user(
        riverside, email="newcomer@riverside.test", name="New Clinician"
    )
    _, issued = feed_links_issue(user=newcomer)
    feeds += [
        (f"empty: {link.link.scope}", link.link, feed_path(link)) for link in issued
    ]
    return feeds


def published_appointments(link, now):
    """What the database says a feed must show as booked, in the feed's window."""
    practice = link.access.practice
    first_day, after_last_day = calendar_days(
        scope=link.scope, zone=practice.zone, now=now
    )
    appointments = Appointment.objects.filter(
        practice=practice,
        deleted_at__isnull=True,
        status__in=ACTIVE,
        start__lt=datetime.combine(after_last_day, time(0), tzinfo=practice.zone),
        end__gt=datetime.combine(first_day, time(0), tzinfo=practice.zone),
    )
    if link.scope != FeedScope.PRACTICE:
        appointments = appointments.filter(clinician_id=link.clinician_id)
    return list(appointments)


def check_against_database(reading: ParsedCalendar, appointments) -> list[str]:
    booked = [event for event in reading.events if event.status != "CANCELLED"]
    problems = []
    want = Counter(
        (a.start.astimezone(UTC), a.end.astimezone(UTC)) for a in appointments
    )
    got = Counter((event.start_utc, event.end_utc) for event in booked)
    if want != got:
        problems.append(
            f"booked times differ from the database: missing {want - got}, "
            f"extra {got - want}"
        )
    uids = " ".join(event.uid for event in reading.events)
    lost = [str(a.uid) for a in appointments if str(a.uid) not in uids]
    if lost:
        problems.append(f"{len(lost)} appointments have no event with their UID")
    return problems


def test_every_demo_feed_reads_identically_in_every_real_parser(db, client):
    riverside, harbor = seed_demo_data()
    feeds = every_demo_feed(riverside, harbor)
    scopes = Counter(link.scope for _, link, _ in feeds)
    assert scopes[FeedScope.PRACTICE] == 2
    assert scopes[FeedScope.CLINICIAN] >= 4
    assert any(label.startswith("empty:") for label, _, _ in feeds)

    failures = []
    event_counts = {}
    for label, link, path in feeds:
        now = timezone.now()
        response = client.get(path)
        assert response.status_code == 200, label
        ics = response.content
        try:
            results = assert_feed_conforms(ics)
        except AssertionError as error:
            failures.append(f"== {label}\n{error}")
            continue
        event_counts[label] = len(results["icalendar"].events)
        problems = check_against_database(
            results["icalendar"], published_appointments(link, now)
        )
        failures += [f"== {label}\n{problem}" for problem in problems]

    assert not failures, "\n".join(failures)
    assert sum(event_counts.values()) > 0
    empty = [
        count for label, count in event_counts.items() if label.startswith("empty")
    ]
    assert empty == [0]


def test_a_feed_cut_to_its_size_limit_still_reads_identically(db, client, settings):
    riverside, harbor = seed_demo_data()
    (path,) = [
        path
        for _, link, path in every_demo_feed(riverside, harbor)
        if link.scope == FeedScope.PRACTICE and link.access.practice == riverside
    ]
    assert_cut_feed_conforms(client, settings, path)


# -- a subscriber following one appointment -----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_subscriber_follows_create_reschedule_cancel_delete(
    live_server, client, practice, clinician, subscriber
):
    zone = practice.zone
    day = (timezone.now().astimezone(zone) + timedelta(days=7)).date()

    def local(hour, minute=0, days=0):
        return datetime.combine(day + timedelta(days=days), time(hour, minute), zone)

    patient = make_patient(practice, first_name="Élodie", last_name="O'Brien")
    # Another booking stays put throughout: a feed never goes empty here, and
    # subscribers refuse a feed that suddenly lists nothing.
    steady = make_appointment(
        clinician,
        kind=Appointment.Kind.EVENT,
        title="Supervision",
        start=local(8),
        end=local(8, 50),
    )
    _, issued = feed_links_issue(user=clinician)
    (personal,) = issued
    path = feed_path(personal)
    phone = subscriber(live_server.url + path)
    window = (day - timedelta(days=3), day + timedelta(days=5))

    def step():
        """Both views of the feed now: the parsers' (no errors, agreeing) and the
        subscriber's after a sync, which must match them."""
        return subscribed_events(phone, client.get(path).content, window)

    steady_row = (
        steady.start.astimezone(UTC),
        steady.end.astimezone(UTC),
        "CONFIRMED",
        "Supervision",
    )
    session = make_appointment(
        clinician, patients=[patient], start=local(10), end=local(10, 50)
    )
    created = step()
    assert created[0] == steady_row
    assert created[1][:3] == (
        local(10).astimezone(UTC),
        local(10, 50).astimezone(UTC),
        "CONFIRMED",
    )
    summary = created[1][3]
    assert "Élodie" not in summary and "Brien" not in summary

    change_appointment(session, start=local(14, days=1), end=local(14, 50, days=1))
    assert step() == [
        steady_row,
        (
            local(14, days=1).astimezone(UTC),
            local(14, 50, days=1).astimezone(UTC),
            "CONFIRMED",
            summary,
        ),
    ]

    change_appointment(session, status=Appointment.Status.CANCELLED)
    cancelled = (
        local(14, days=1).astimezone(UTC),
        local(14, 50, days=1).astimezone(UTC),
        "CANCELLED",
        f"Cancelled: {summary}",
    )
    assert step() == [steady_row, cancelled]

    # Deleted: still published as cancelled for 30 days, so every client hears of it.
    delete_appointment(session)
    assert step() == [steady_row, cancelled]

    # ...and then gone (straight to the table: a month passes).
    long_ago = timezone.now() - timedelta(days=31)
    Appointment.objects.filter(pk=session.pk).update(
        deleted_at=long_ago, updated_at=long_ago
    )
    assert step() == [steady_row]
