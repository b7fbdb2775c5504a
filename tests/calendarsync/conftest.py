"""Fixtures for calendar sync: appointments made straight with the ORM, and links
issued through the real service."""

from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from calendarsync.models import FeedScope
from calendarsync.services import feed_links_issue
from scheduling.models import Appointment, Location, Patient
from scheduling.services import appointment_touch


@pytest.fixture
def office(practice):
    return Location.objects.create(practice=practice, name="Main Street Office")


@pytest.fixture
def telehealth(practice):
    return Location.objects.create(
        practice=practice, name="Telehealth", is_telehealth=True
    )


@pytest.fixture
def make_patient():
    def make(practice, first, last="", **extra):
        return Patient.objects.create(
            practice=practice, first_name=first, last_name=last, **extra
        )

    return make


@pytest.fixture
def make_appointment():
    def make(
        clinician,
        *,
        start=None,
        minutes=50,
        patients=(),
        location=None,
        kind=Appointment.Kind.SESSION,
        title="",
        **extra,
    ):
        start = start or local(clinician.practice, days=1, hour=9)
        appointment = Appointment.objects.create(
            practice=clinician.practice,
            clinician=clinician,
            kind=kind,
            title=title,
            location=location,
            start=start,
            end=start + timedelta(minutes=minutes),
            **extra,
        )
        if patients:
            appointment.patients.set(patients)
        return appointment

    return make


def local(practice, *, days=0, hour=9, minute=0) -> datetime:
    """A time ``days`` from today at ``hour:minute`` in the practice's zone."""
    zone = practice.zone
    today = timezone.now().astimezone(zone).date() + timedelta(days=days)
    return datetime(today.year, today.month, today.day, hour, minute, tzinfo=zone)


def change(appointment, **fields):
    """What the SCHEDULING tab does on a visible change: new values, touched as a
    published change (``scheduling.services.appointment_touch``), saved."""
    for name, value in fields.items():
        if name == "status":
            appointment.set_status(value, now=timezone.now())
        else:
            setattr(appointment, name, value)
    appointment_touch(appointment, published=True)
    appointment.save()
    return appointment


def feed_path(url: str) -> str:
    return urlsplit(url).path


@pytest.fixture
def links_of():
    """{(scope, clinician id): feed path} of a user's current links."""

    def issued(user):
        _access, links = feed_links_issue(user=user)
        return {
            (item.link.scope, item.link.clinician_id): feed_path(item.https_url)
            for item in links
        }

    return issued


@pytest.fixture
def personal_path(links_of):
    def path(user):
        return links_of(user)[(FeedScope.PERSONAL, user.pk)]

    return path


@pytest.fixture
def practice_path(links_of):
    def path(user):
        return links_of(user)[(FeedScope.PRACTICE, None)]

    return path
