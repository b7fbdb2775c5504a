"""The audit trail of patient data: who saw which patient, appointment or calendar
page, and every change to a patient's details, with sensitive values masked."""

from datetime import date

from practice.models import AuditEvent
from scheduling.models import Patient

ADDRESS = "203.0.113.5"
Kind = AuditEvent.Kind


def _events(kind):
    return list(AuditEvent.objects.filter(kind=kind).order_by("id"))


def test_a_patient_page_records_who_saw_which_patient(
    login, practice, scheduler, patient
):
    response = login(scheduler).get(f"/patients/{patient.pk}/", REMOTE_ADDR=ADDRESS)
    assert response.status_code == 200
    [event] = _events(Kind.PATIENT_VIEWED)
    assert event.practice == practice
    assert event.actor == scheduler
    assert event.client_ip == ADDRESS
    assert event.patient_id_list == [patient.pk]
    # Initials only: the name stays in scheduling, which tells the log page.
    assert event.details == {"patient": patient.initials, "page": "details"}
    assert "Brien" not in str(event.details)


def test_the_patient_edit_form_counts_as_a_view(login, scheduler, patient):
    login(scheduler).get(f"/patients/{patient.pk}/edit/")
    [event] = _events(Kind.PATIENT_VIEWED)
    assert event.details["page"] == "edit form"
    assert event.patient_id_list == [patient.pk]


def test_an_appointment_page_records_every_patient_on_it(
    login, scheduler, clinician, patient, second_patient, book, at
):
    appointment = book(
        clinician=clinician,
        patients=[patient, second_patient],
        start=at(2026, 12, 1, 9),
    )
    client = login(scheduler)
    assert client.get(f"/scheduling/appointments/{appointment.pk}/").status_code == 200
    client.get(f"/scheduling/appointments/{appointment.pk}/edit/")
    viewed, edit_form = _events(Kind.APPOINTMENT_VIEWED)
    assert viewed.actor == scheduler
    assert viewed.patient_id_list == sorted([patient.pk, second_patient.pk])
    assert viewed.details["appointment"] == appointment.pk
    assert viewed.details["page"] == "details"
    assert sorted(viewed.details["patients"]) == sorted(
        [patient.initials, second_patient.initials]
    )
    assert "Tue 1 Dec 2026, 09:00" in viewed.details["when"]
    assert edit_form.details["page"] == "edit form"


def test_a_calendar_page_records_its_days_not_each_patient(
    login, scheduler, clinician, patient, book, at
):
    book(clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9))
    client = login(scheduler)
    client.get("/scheduling/?view=month&date=2026-12-10&clinician=all")
    client.get(f"/scheduling/?view=day&date=2026-12-01&clinician={clinician.pk}")
    month, day = _events(Kind.CALENDAR_VIEWED)
    assert month.details == {
        "view": "month",
        "days": "2026-11-30 – 2027-01-03",
        "calendar": "all clinicians",
    }
    assert month.patient_ids == ""
    assert day.details == {
        "view": "day",
        "days": "2026-12-01 – 2026-12-01",
        "calendar": clinician.label,
    }


def test_a_refused_page_records_nothing(login, other_clinician, patient, other_patient):
    client = login(other_clinician)
    assert client.get(f"/patients/{patient.pk}/").status_code == 404
    assert client.get(f"/patients/{other_patient.pk}/").status_code == 200
    [event] = _events(Kind.PATIENT_VIEWED)
    assert event.patient_id_list == [other_patient.pk]


def test_patient_changes_keep_old_and_new_values_but_mask_sensitive_ones(
    login, scheduler, clinician, other_clinician, patient
):
    assert patient.email and not patient.phone and patient.date_of_birth is None
    response = login(scheduler).post(
        f"/patients/{patient.pk}/edit/",
        {
            "first_name": "Élodie",
            "last_name": "Martin",
            "preferred_name": "",
            "date_of_birth": "1990-04-02",
            "email": "",
            "phone": "555 0100",
            "primary_clinician": other_clinician.pk,
        },
        REMOTE_ADDR=ADDRESS,
    )
    assert response.status_code == 302
    [event] = _events(Kind.PATIENT_CHANGED)
    assert event.actor == scheduler
    assert event.client_ip == ADDRESS
    assert event.patient_id_list == [patient.pk]
    assert event.details["changed"] == {
        "last_name": ["O'Brien", "Martin"],
        "date_of_birth": "added",
        "email": "removed",
        "phone": "added",
        "primary_clinician": [clinician.label, other_clinician.label],
    }
    recorded = str(event.details)
    for secret in ("1990", "555 0100", "elodie@example.test"):
        assert secret not in recorded


def test_a_changed_sensitive_value_is_never_written_down(scheduler, patient):
    from scheduling.services import patient_update

    patient_update(patient=patient, actor=scheduler, email="new@example.test")
    patient_update(patient=patient, actor=scheduler, first_name="Élodie")  # no change
    [event] = _events(Kind.PATIENT_CHANGED)
    assert event.details["changed"] == {"email": "changed (value hidden)"}
    assert "example.test" not in str(event.details)


def test_adding_deactivating_and_reactivating_a_patient_are_recorded(
    login, practice, admin_user
):
    client = login(admin_user)
    response = client.post(
        "/patients/new/",
        {
            "first_name": "Ana",
            "last_name": "Lopez",
            "date_of_birth": "1985-01-01",
            "phone": "555 0199",
            "primary_clinician": admin_user.pk,
        },
        REMOTE_ADDR=ADDRESS,
    )
    assert response.status_code == 302
    added = Patient.objects.get(last_name="Lopez")
    client.post(f"/patients/{added.pk}/active/", {"active": "0"})
    client.post(f"/patients/{added.pk}/active/", {"active": "1"})
    [created] = _events(Kind.PATIENT_CREATED)
    assert created.client_ip == ADDRESS
    assert created.patient_id_list == [added.pk]
    assert created.details == {
        "patient": "A.L.",
        # Which details were given, never their values.
        "details": [
            "first name",
            "last name",
            "date of birth",
            "phone",
            "primary clinician",
        ],
    }
    assert [event.kind for event in _events(Kind.PATIENT_DEACTIVATED)] == [
        Kind.PATIENT_DEACTIVATED
    ]
    assert len(_events(Kind.PATIENT_REACTIVATED)) == 1


def test_the_log_page_names_the_patients_and_links_to_them(
    login, admin_user, scheduler, patient, outsider_patient, outsider_admin
):
    login(scheduler).get(f"/patients/{patient.pk}/")
    # Administrators reach the patient's log from the patient's page.
    detail = login(admin_user).get(f"/patients/{patient.pk}/").content.decode()
    assert f'href="/settings/audit/?patient={patient.pk}">Audit log</a>' in detail
    assert (
        "Audit log</a>"
        not in login(scheduler).get(f"/patients/{patient.pk}/").content.decode()
    )
    filtered = login(admin_user).get(f"/settings/audit/?patient={patient.pk}")
    assert [event.actor for event in filtered.context["page"]] == [
        scheduler,
        admin_user,
        scheduler,
        None,  # created by the factory, without an actor
    ]
    html = login(admin_user).get("/settings/audit/").content.decode()
    assert f'<a href="/patients/{patient.pk}/">Élodie O&#x27;Brien</a>' in html
    assert "Patient viewed" in html
    # Another practice's log never shows this view.
    login(outsider_admin).get(f"/patients/{outsider_patient.pk}/")
    theirs = login(outsider_admin).get("/settings/audit/").content.decode()
    assert "O&#x27;Brien" not in theirs
    assert "Zed Outside" in theirs


def test_events_outlive_a_deactivated_actor(login, admin_user, clinician, patient):
    login(clinician).get(f"/patients/{patient.pk}/")
    login(admin_user).post(f"/settings/users/{clinician.pk}/active/", {"active": "0"})
    clinician.refresh_from_db()
    assert not clinician.is_active
    [event] = _events(Kind.PATIENT_VIEWED)
    assert event.actor == clinician
    html = login(admin_user).get(f"/settings/audit/?person={clinician.pk}").content
    assert b"Dana Rivera, LCSW" in html
    assert b"Patient viewed" in html


def test_date_of_birth_change_is_masked(scheduler, patient):
    from scheduling.services import patient_update

    patient_update(patient=patient, actor=scheduler, date_of_birth=date(1990, 1, 2))
    patient_update(patient=patient, actor=scheduler, date_of_birth=date(1991, 1, 2))
    first, second = _events(Kind.PATIENT_CHANGED)
    assert first.details["changed"] == {"date_of_birth": "added"}
    assert second.details["changed"] == {"date_of_birth": "changed (value hidden)"}


def test_the_patient_list_records_who_was_on_the_page_not_the_search(
    login, scheduler, patient, second_patient, other_patient
):
    client = login(scheduler)
    client.get("/patients/?q=obrien", REMOTE_ADDR=ADDRESS)
    client.get("/patients/")
    searched, listed = _events(Kind.PATIENT_LIST_VIEWED)
    assert searched.actor == scheduler
    assert searched.client_ip == ADDRESS
    assert searched.patient_id_list == [patient.pk]
    assert searched.details == {"page": 1, "patients shown": 1, "search": "yes"}
    assert "obrien" not in str(searched.details)
    assert listed.patient_id_list == sorted(
        [patient.pk, second_patient.pk, other_patient.pk]
    )
