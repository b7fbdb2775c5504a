"""Scheduling fixtures: services, locations and patients of both practices (made by
``tests.factories``), and wall-clock times in a practice's zone."""

from datetime import datetime

import pytest

from scheduling.recurrence import local_to_utc
from tests.factories import make_appointment, make_location, make_patient, make_service


@pytest.fixture
def at(practice):
    """``at(2026, 3, 9, 9, 0)``: that wall-clock time in the practice's zone, as an
    aware UTC datetime."""

    def make(*parts, zone=None):
        return local_to_utc(datetime(*parts), zone or practice.zone)

    return make


@pytest.fixture
def service(practice):
    return make_service(practice, name="Psychotherapy", minutes=53)


@pytest.fixture
def intake(practice):
    return make_service(practice, name="Intake", minutes=60)


@pytest.fixture
def office(practice):
    return make_location(practice, name="Main Street office")


@pytest.fixture
def telehealth(practice):
    return make_location(practice, name="Telehealth", telehealth=True)


@pytest.fixture
def patient(practice, clinician):
    return make_patient(
        practice,
        first_name="Élodie",
        last_name="O'Brien",
        primary_clinician=clinician,
        email="elodie@example.test",
    )


@pytest.fixture
def second_patient(practice, clinician):
    return make_patient(
        practice,
        first_name="Mary-Kate",
        last_name="van der Berg",
        primary_clinician=clinician,
    )


@pytest.fixture
def other_patient(practice, other_clinician):
    """A patient of another clinician of the same practice."""
    return make_patient(
        practice,
        first_name="Kwame",
        last_name="Mensah",
        primary_clinician=other_clinician,
    )


@pytest.fixture
def outsider_patient(other_practice, outsider_admin):
    return make_patient(
        other_practice,
        first_name="Zed",
        last_name="Outside",
        primary_clinician=outsider_admin,
    )


@pytest.fixture
def outsider_service(other_practice):
    return make_service(other_practice, name="Harbor session", minutes=50)


@pytest.fixture
def outsider_location(other_practice):
    return make_location(other_practice, name="Harbor office")


@pytest.fixture
def book(practice, scheduler, service, office):
    """Book a session (or series) through the service, as the scheduler."""

    def make(*, clinician, patients, start, minutes=53, **kwargs):
        kwargs.setdefault("service", service)
        kwargs.setdefault("location", office)
        kwargs.setdefault("actor", scheduler)
        return make_appointment(
            clinician, patients=patients, start=start, minutes=minutes, **kwargs
        )

    return make
