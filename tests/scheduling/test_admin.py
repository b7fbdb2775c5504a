import pytest

from practice.models import User
from tests.factories import make_authenticator
from tests.support import pass_second_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(db):
    operator = User.objects.create_superuser(
        email="operator@tend.test", password="x", display_name="Operator"
    )
    operator.authenticator_key = make_authenticator(operator)
    return operator


def test_operator_reads_scheduling_but_cannot_change_it(
    client, operator, book, clinician, patient, at
):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9)
    )
    client.force_login(operator, backend="django.contrib.auth.backends.ModelBackend")
    pass_second_step(client, operator.authenticator_key)  # operators always do
    for name in (
        "appointment",
        "patient",
        "service",
        "location",
        "series",
        "appointmentchange",
    ):
        assert client.get(f"/operator/scheduling/{name}/").status_code == 200
    page = client.get(f"/operator/scheduling/appointment/{appointment.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    patient_page = client.get(f"/operator/scheduling/patient/{patient.pk}/change/")
    # The page shows the record (its practice), but not the patient's details.
    assert patient_page.status_code == 200
    assert patient.practice.name.encode() in patient_page.content
    assert b"elodie@example.test" not in patient_page.content
    assert client.get("/operator/scheduling/appointment/add/").status_code == 403
