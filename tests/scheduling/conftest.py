"""Scheduling fixtures: services, locations and patients of both practices, and a
helper for wall-clock times in a practice's zone."""

from datetime import datetime

import pytest

from scheduling.recurrence import local_to_utc
from scheduling.services import (
    appointment_create,
    location_create,
    patient_create,
    service_create,
)


@pytest.fixture
def at(practice):
    """``at(2026, 3, 9, 9, 0)``: that wall-clock time in the practice's zone, as an
    aware UTC datetime."""

    def make(*parts, zone=None):
        return local_to_utc(datetime(*parts), zone or practice.zone)

    return make


@pytest.fixture
def service(practice):
    return service_create(practice=practice, name="Psychotherapy", default_minutes=53)


@pytest.fixture
def intake(practice):
    return service_create(practice=practice, name="Intake", default_minutes=60)


@pytest.fixture
def office(practice):
    return location_create(
        practice=practice, name="Main Street office", is_telehealth=False
    )


@pytest.fixture
def telehealth(practice):
    return location_create(practice=practice, name="Telehealth", is_telehealth=True)


@pytest.fixture
def patient(practice, clinician):
    return patient_create(
        practice=practice,
        actor=None,
        first_name="Élodie",
        last_name="O'Brien",
        primary_clinician=clinician,
        email="elodie@example.test",
    )


@pytest.fixture
def second_patient(practice, clinician):
    return patient_create(
        practice=practice,
        actor=None,
        first_name="Mary-Kate",
        last_name="van der Berg",
        primary_clinician=clinician,
    )


@pytest.fixture
def other_patient(practice, other_clinician):
    """A patient of another clinician of the same practice."""
    return patient_create(
        practice=practice,
        actor=None,
        first_name="Kwame",
        last_name="Mensah",
        primary_clinician=other_clinician,
    )


@pytest.fixture
def outsider_patient(other_practice, outsider_admin):
    return patient_create(
        practice=other_practice,
        actor=None,
        first_name="Zed",
        last_name="Outside",
        primary_clinician=outsider_admin,
    )


@pytest.fixture
def outsider_service(other_practice):
    return service_create(
        practice=other_practice, name="Harbor session", default_minutes=50
    )


@pytest.fixture
def outsider_location(other_practice):
    return location_create(
        practice=other_practice, name="Harbor office", is_telehealth=False
    )


@pytest.fixture
def book(practice, scheduler, service, office):
    """Book a session (or series) through the service, as the scheduler."""

    def make(*, clinician, patients, start, minutes=53, **kwargs):
        from datetime import timedelta

        kwargs.setdefault("service", service)
        kwargs.setdefault("location", office)
        kwargs.setdefault("allow_conflicts", True)
        return appointment_create(
            practice=practice,
            actor=scheduler,
            clinician=clinician,
            patients=patients,
            start=start,
            end=start + timedelta(minutes=minutes),
            **kwargs,
        )

    return make
