"""Edits that must not silently take something over: a clinician editing a
colleague's patient keeps the colleague as primary clinician, and an appointment
edit without the version it was opened on is refused."""

import re

import pytest

from practice.services import user_set_active
from scheduling.models import Appointment, Patient
from tests.factories import make_patient

pytestmark = pytest.mark.django_db


def _selected_clinicians(html: str) -> list[str]:
    select = re.search(
        r'<select name="primary_clinician"[^>]*>(.*?)</select>', html, re.S
    )
    assert select, "the form shows the primary clinician"
    return re.findall(r'<option value="(\d*)"[^>]*selected', select.group(1))


def _patient_post(patient: Patient, **extra) -> dict:
    data = {
        "first_name": patient.first_name,
        "last_name": "Mensah-Boateng",
        "preferred_name": "",
        "date_of_birth": "",
        "email": "",
        "phone": "",
    }
    data.update(extra)
    return data


def test_clinician_editing_a_colleagues_patient_keeps_the_colleague(
    login, clinician, other_clinician, other_patient, book, at
):
    # Booked with the clinician, so the clinician sees and may edit the patient.
    book(clinician=clinician, patients=[other_patient], start=at(2026, 12, 1, 9))
    client = login(clinician)
    url = f"/patients/{other_patient.pk}/edit/"
    form = client.get(url).content.decode()
    assert _selected_clinicians(form) == [str(other_clinician.pk)]
    assert "Only an administrator or a scheduler can give this patient" in form

    # A browser leaves a disabled select out of the post.
    response = client.post(url, _patient_post(other_patient))
    assert response.status_code == 302
    other_patient.refresh_from_db()
    assert other_patient.last_name == "Mensah-Boateng"
    assert other_patient.primary_clinician == other_clinician

    # Posting oneself anyway takes nothing over.
    response = client.post(
        url, _patient_post(other_patient, primary_clinician=clinician.pk)
    )
    assert response.status_code == 302
    other_patient.refresh_from_db()
    assert other_patient.primary_clinician == other_clinician


def test_clinician_keeps_their_own_patient_and_may_take_on_nobodys(
    login, practice, clinician, other_clinician, patient, book, at
):
    client = login(clinician)
    url = f"/patients/{patient.pk}/edit/"
    # Their own patient cannot be handed to a colleague by them.
    refused = client.post(
        url, _patient_post(patient, primary_clinician=other_clinician.pk)
    )
    assert refused.status_code == 200
    assert "primary_clinician" in refused.context["form"].errors
    patient.refresh_from_db()
    assert patient.primary_clinician == clinician

    # A patient with no primary clinician stays so unless the clinician says.
    nobodys = make_patient(practice, first_name="Ines", last_name="Lopez")
    book(clinician=clinician, patients=[nobodys], start=at(2026, 12, 2, 9))
    url = f"/patients/{nobodys.pk}/edit/"
    assert client.post(url, _patient_post(nobodys)).status_code == 302
    nobodys.refresh_from_db()
    assert nobodys.primary_clinician is None
    taken = client.post(url, _patient_post(nobodys, primary_clinician=clinician.pk))
    assert taken.status_code == 302
    nobodys.refresh_from_db()
    assert nobodys.primary_clinician == clinician


def test_scheduler_keeps_a_deactivated_primary_clinician(
    login, admin_user, scheduler, other_clinician, other_patient
):
    user_set_active(
        user=other_clinician, active=False, actor=admin_user, client_ip=None
    )
    client = login(scheduler)
    url = f"/patients/{other_patient.pk}/edit/"
    form = client.get(url).content.decode()
    assert _selected_clinicians(form) == [str(other_clinician.pk)]
    response = client.post(
        url, _patient_post(other_patient, primary_clinician=other_clinician.pk)
    )
    assert response.status_code == 302
    other_patient.refresh_from_db()
    assert other_patient.primary_clinician == other_clinician


def _edit(appointment, clinician, patient, **extra):
    """What the edit page posts, less anything in ``extra``'s place."""
    data = {
        "kind": "session",
        "clinician": clinician.pk,
        "patients": [patient.pk],
        "start": "2026-12-01T09:00",
        "end": "2026-12-01T09:53",
        "service": appointment.service_id,
        "location": appointment.location_id,
        "notes": "",
    }
    data.update(extra)
    return data


@pytest.mark.parametrize("revision", [None, "", "not-a-number"])
def test_edit_without_its_revision_saves_nothing(
    login, scheduler, admin_user, clinician, patient, book, at, revision
):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9)
    )
    url = f"/scheduling/appointments/{appointment.pk}/edit/"
    # Someone else moves it first.
    moved = login(admin_user).post(
        url,
        {
            **_edit(appointment, clinician, patient, revision="0"),
            "start": "2026-12-01T10:00",
            "end": "2026-12-01T10:53",
        },
    )
    assert moved.status_code == 302
    data = _edit(appointment, clinician, patient, notes="mine")
    if revision is not None:
        data["revision"] = revision
    response = login(scheduler).post(url, data)
    assert response.status_code == 200
    assert "Nothing was saved: reload the appointment" in response.content.decode()
    current = Appointment.objects.get(pk=appointment.pk)
    assert (current.notes, current.revision) == ("", 1)
    assert current.start == at(2026, 12, 1, 10)
