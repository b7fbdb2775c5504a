import pytest
from django.core.management import call_command

from scheduling.models import Appointment, AppointmentChange, Patient

pytestmark = pytest.mark.django_db


def snapshot():
    return (
        sorted(Appointment.objects.values_list("uid", "sequence", "status", "start")),
        sorted(Patient.objects.values_list("first_name", "last_name", "is_active")),
        AppointmentChange.objects.count(),
    )


def test_seed_demo_fills_riverside_and_is_idempotent():
    call_command("seed_demo")
    riverside = Appointment.objects.filter(practice__name="Riverside Counseling")
    harbor = Appointment.objects.filter(practice__name="Harbor Family Therapy")
    assert Patient.objects.filter(practice__name="Riverside Counseling").count() >= 40
    assert harbor.exists()
    for email in (
        "admin@riverside.test",
        "rivera@riverside.test",
        "chen@riverside.test",
        "okafor@riverside.test",
    ):
        mine = riverside.filter(clinician__email=email)
        assert mine.filter(series__isnull=False).exists(), email
        assert mine.filter(kind="event", title="Staff meeting").count() == 12
    statuses = set(riverside.values_list("status", flat=True))
    assert {"attended", "no_show", "cancelled", "scheduled"} <= statuses
    assert riverside.filter(kind="event", title="Out of office").exists()
    assert any(
        a.patients.count() == 2
        for a in riverside.filter(service__name="Couples therapy")[:1]
    )
    assert riverside.filter(service__name="Group therapy").exists()
    names = set(Patient.objects.values_list("first_name", flat=True))
    assert {"Élodie", "王小明", "Cher", "Анна"} <= names
    before = snapshot()
    call_command("seed_demo")
    assert snapshot() == before
