"""Patients tab: list, search, add, edit, deactivate, who sees whom, same 404."""

import pytest

from practice.services import practice_update
from scheduling.models import Patient
from scheduling.selectors import patient_list
from scheduling.services import patient_create, patient_update
from tests.scheduling.helpers import main

pytestmark = pytest.mark.django_db


def test_search_name_is_kept_in_step(practice, clinician):
    patient = patient_create(
        practice=practice,
        actor=None,
        first_name=" Zoë ",
        last_name="D’Angelo",
        preferred_name="Zo",
    )
    assert (patient.first_name, patient.search_name) == ("Zoë", "zoe dangelo zo")
    patient_update(patient=patient, actor=None, last_name="Brontë")
    patient.refresh_from_db()
    assert patient.search_name == "zoe bronte zo"


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("elodie", True),
        ("ÉLODIE", True),
        ("obrien", True),
        ("o'brien", True),
        ("O’Brien élo", True),
        ("brien", True),
        ("mary", False),
        ("", True),
    ],
)
def test_search_ignores_accents_case_and_apostrophes(scheduler, patient, query, found):
    assert (patient in patient_list(user=scheduler, query=query)) is found


def test_search_non_latin_and_particles(practice, scheduler):
    wang = patient_create(practice=practice, actor=None, first_name="王小明")
    berg = patient_create(
        practice=practice, actor=None, first_name="Mary-Kate", last_name="van der Berg"
    )
    assert list(patient_list(user=scheduler, query="小明")) == [wang]
    assert list(patient_list(user=scheduler, query="kate berg")) == [berg]
    assert list(patient_list(user=scheduler, query="van der")) == [berg]


def test_who_sees_whom(
    scheduler, admin_user, clinician, other_clinician, patient, other_patient, book, at
):
    assert set(patient_list(user=scheduler)) == {patient, other_patient}
    assert set(patient_list(user=admin_user)) == {patient, other_patient}
    assert set(patient_list(user=clinician)) == {patient}
    assert set(patient_list(user=other_clinician)) == {other_patient}
    # Booking a patient with a clinician makes them visible to that clinician.
    book(clinician=clinician, patients=[other_patient], start=at(2026, 12, 1, 9))
    assert set(patient_list(user=clinician)) == {patient, other_patient}


def test_list_page_and_query_count(
    login, practice, scheduler, clinician, django_assert_num_queries
):
    for number in range(30):
        patient_create(
            practice=practice,
            actor=None,
            first_name=f"Pat{number}",
            last_name="Example",
            primary_clinician=clinician,
        )
    client = login(scheduler)
    client.get("/patients/")
    # Session, user, practice, networks; count and page of patients (with their
    # clinicians joined); the audit event; the session's save.
    with django_assert_num_queries(10):
        response = client.get("/patients/?q=example")
    assert response.status_code == 200
    assert response.content.count(b"Example, Pat") == 30


def test_list_page_search(login, scheduler, patient, second_patient):
    html = login(scheduler).get("/patients/?q=ELODIE").content.decode()
    assert "O&#x27;Brien, Élodie" in html
    assert "van der Berg" not in html
    html = login(scheduler).get("/patients/?q=nobody").content.decode()
    assert "No patient matches" in html


def test_add_edit_and_deactivate(login, scheduler, clinician):
    client = login(scheduler)
    response = client.post(
        "/patients/new/",
        {
            "first_name": "Siobhán",
            "last_name": "Ní Bhraonáin",
            "preferred_name": "",
            "date_of_birth": "1990-04-02",
            "email": "s@example.test",
            "phone": "555",
            "primary_clinician": clinician.pk,
        },
    )
    patient = Patient.objects.get()
    assert response["Location"] == f"/patients/{patient.pk}/"
    assert patient.initials == "S.N."
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "S.N." in page and "Dana Rivera, LCSW" in page
    response = client.post(
        f"/patients/{patient.pk}/edit/",
        {"first_name": "Siobhán", "last_name": "Byrne", "primary_clinician": ""},
    )
    assert response.status_code == 302
    patient.refresh_from_db()
    assert (patient.last_name, patient.primary_clinician, patient.search_name) == (
        "Byrne",
        None,
        "siobhan byrne",
    )
    # Anything but an explicit choice is refused, changing nothing.
    refused = client.post(f"/patients/{patient.pk}/active/", {"active": "yes"})
    assert refused.status_code == 302
    patient.refresh_from_db()
    assert patient.is_active
    assert (
        "Choose Deactivate or Reactivate." in client.get(refused.url).content.decode()
    )
    client.post(f"/patients/{patient.pk}/active/", {"active": "0"})
    patient.refresh_from_db()
    assert not patient.is_active
    assert b"Byrne, Siobh" not in client.get("/patients/").content
    assert b"Byrne, Siobh" in client.get("/patients/?inactive=on").content


def test_bad_patient_input(login, scheduler, outsider_admin):
    client = login(scheduler)
    response = client.post(
        "/patients/new/",
        {
            "first_name": "",
            "email": "not-an-email",
            "date_of_birth": "31/31/1990",
            "primary_clinician": outsider_admin.pk,
        },
    )
    errors = response.context["form"].errors
    assert set(errors) == {"first_name", "email", "date_of_birth", "primary_clinician"}
    assert not Patient.objects.exists()


def test_clinician_adds_own_patient_and_cannot_deactivate(login, clinician, practice):
    client = login(clinician)
    response = client.post(
        "/patients/new/", {"first_name": "Cher", "primary_clinician": clinician.pk}
    )
    patient = Patient.objects.get()
    assert response.status_code == 302
    assert patient.primary_clinician == clinician
    assert (
        client.post(f"/patients/{patient.pk}/active/", {"active": "0"}).status_code
        == 403
    )
    practice_update(
        practice=practice,
        actor=None,
        client_ip=None,
        clinicians_may_schedule_themselves=False,
    )
    client = login(clinician)
    assert client.get("/patients/new/").status_code == 403
    assert client.get(f"/patients/{patient.pk}/").status_code == 200
    assert client.get(f"/patients/{patient.pk}/edit/").status_code == 404


def test_clinician_gets_the_same_404_for_another_clinicians_patient(
    login, clinician, other_patient
):
    client = login(clinician)
    missing = client.get("/patients/999999/")
    for suffix in ("", "edit/"):
        response = client.get(f"/patients/{other_patient.pk}/{suffix}")
        assert response.status_code == 404
        assert main(response) == main(missing)
    assert b"Mensah" not in client.get("/patients/?q=kwame").content


def test_other_practice_patient_is_the_same_404(login, scheduler, outsider_patient):
    client = login(scheduler)
    missing = client.get("/patients/999999/")
    for suffix in ("", "edit/"):
        response = client.get(f"/patients/{outsider_patient.pk}/{suffix}")
        assert response.status_code == 404
        assert main(response) == main(missing)
    response = client.post(f"/patients/{outsider_patient.pk}/active/", {"active": "0"})
    assert response.status_code == 404
    outsider_patient.refresh_from_db()
    assert outsider_patient.is_active
    assert b"Outside" not in client.get("/patients/?q=zed").content


def test_patients_tab_is_highlighted(login, scheduler, patient):
    for url in ("/patients/", f"/patients/{patient.pk}/", "/patients/new/"):
        html = login(scheduler).get(url).content.decode()
        assert 'class="tab active" aria-current="page">Patients' in html


def test_detail_page_query_count_does_not_grow_with_appointments(
    login, scheduler, clinician, patient, book, at, django_assert_num_queries
):
    for day in range(1, 13):
        book(clinician=clinician, patients=[patient], start=at(2026, 12, day, 9))
    client = login(scheduler)
    client.get(f"/patients/{patient.pk}/")
    # Session, user, practice, networks; the patient (clinician joined); the audit
    # event; the appointments (clinician, service and location joined); the
    # session's save.
    with django_assert_num_queries(10):
        response = client.get(f"/patients/{patient.pk}/")
    assert response.content.count(b"Dec 2026, 09:00") == 12
