"""Booking guards: conflicts that say whose time it is (events included), the safe
action first, outcomes only once an appointment has started, status buttons that say
what they do, possible duplicate patients, the only clinician preselected, and the
summary of a failed save."""

import re
from datetime import date

import pytest

from practice.models import Role
from scheduling.models import Appointment, Patient, StatusTransitionError
from scheduling.recurrence import WEEKLY, Recurrence
from scheduling.services import (
    DuplicatePatient,
    SchedulingConflict,
    appointment_create,
    appointment_set_status,
    patient_create,
    patient_update,
)
from tests.factories import local, make_appointment, make_patient, make_user
from tests.scheduling.helpers import main


def session_data(clinician, patients, *, start, end="", **extra):
    return {
        "kind": "session",
        "clinician": clinician.pk,
        "patients": [patient.pk for patient in patients],
        "start": start,
        "end": end,
        "repeat": "",
        "interval": "1",
        "ends": "count",
        "notes": "",
        **extra,
    }


# -- conflicts and blocked time ---------------------------------------------------


def test_booking_over_out_of_office_warns_by_name(
    practice, scheduler, clinician, patient, at
):
    make_appointment(
        clinician,
        kind=Appointment.Kind.EVENT,
        title="Out of office",
        start=at(2027, 3, 5, 8, 0),
        end=at(2027, 3, 5, 18, 0),
        allow_conflicts=False,
    )
    with pytest.raises(SchedulingConflict) as raised:
        appointment_create(
            practice=practice,
            actor=scheduler,
            clinician=clinician,
            patients=[patient],
            start=at(2027, 3, 5, 10, 0),
            end=at(2027, 3, 5, 10, 50),
        )
    [conflict] = raised.value.conflicts
    assert conflict.message == (
        "Dana Rivera, LCSW is not available Fri 5 Mar 2027, 08:00–18:00: "
        "“Out of office” is in their calendar."
    )


def test_patient_conflict_names_the_other_clinician_and_time(
    login, scheduler, clinician, other_clinician, patient, book, at
):
    book(clinician=other_clinician, patients=[patient], start=at(2027, 3, 5, 10, 0))
    data = session_data(
        clinician, [patient], start="2027-03-05T10:30", end="2027-03-05T11:20"
    )
    html = login(scheduler).post("/scheduling/new/", data).content.decode()
    assert (
        "É.O. already has an appointment with Wei Chen, PhD at 10:00–10:53 on "
        "Fri 5 Mar 2027." in html
    )
    assert Appointment.objects.count() == 1


def test_conflict_makes_the_safe_action_primary(
    login, scheduler, clinician, patient, second_patient, book, at
):
    book(clinician=clinician, patients=[patient], start=at(2027, 3, 5, 9, 0))
    client = login(scheduler)
    data = session_data(
        clinician, [second_patient], start="2027-03-05T09:30", end="2027-03-05T10:20"
    )
    html = main(client.post("/scheduling/new/", data)).decode()
    primary = re.findall(r'class="button primary"[^>]*>([^<]+)<', html)
    assert primary == ["Change the time", "Book"]
    assert re.search(r'<button[^>]*name="book_anyway"[^>]*class="button">Book', html)
    # Book (the primary button) checks again; nothing is saved while it overlaps.
    assert client.post("/scheduling/new/", data).status_code == 200
    assert Appointment.objects.count() == 1
    response = client.post("/scheduling/new/", {**data, "book_anyway": "on"})
    assert response.status_code == 302
    assert Appointment.objects.count() == 2


# -- outcomes wait for the start --------------------------------------------------


@pytest.mark.parametrize(
    "status", [Appointment.Status.ATTENDED, Appointment.Status.NO_SHOW]
)
def test_no_outcome_before_the_start(practice, scheduler, clinician, patient, status):
    appointment = make_appointment(
        clinician, patients=[patient], start=local(practice, days=1, hour=9)
    )
    with pytest.raises(StatusTransitionError, match="once it has started") as raised:
        appointment_set_status(
            appointment=appointment,
            actor=scheduler,
            status=status,
            expected_revision=None,
        )
    assert raised.value.code == "not_started"
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.SCHEDULED
    assert appointment.revision == 0


def test_outcome_once_started_leaves_later_occurrences_alone(
    practice, scheduler, clinician, patient
):
    first = make_appointment(
        clinician,
        patients=[patient],
        start=local(practice, days=-8, hour=9),
        recurrence=Recurrence(frequency=WEEKLY, count=3),
    )
    appointment_set_status(
        appointment=first,
        actor=scheduler,
        status=Appointment.Status.ATTENDED,
        expected_revision=None,
        scope="following",
    )
    statuses = list(
        first.series.occurrences.order_by("start").values_list("status", flat=True)
    )
    # Eight and one day ago follow; next week's has not started.
    assert statuses == ["attended", "attended", "scheduled"]


def test_status_buttons_say_what_they_do(
    login, practice, scheduler, clinician, patient
):
    future = make_appointment(
        clinician, patients=[patient], start=local(practice, days=1, hour=9)
    )
    past = make_appointment(
        clinician, patients=[patient], start=local(practice, days=-1, hour=9)
    )
    client = login(scheduler)
    html = main(client.get(f"/scheduling/appointments/{future.pk}/")).decode()
    buttons = re.findall(r'name="status" value="[a-z_]+"[^>]*>([^<]+)<', html)
    assert buttons == ["Cancel appointment", "Mark late-cancelled"]
    assert "can be recorded once the appointment has started" in html
    html = main(client.get(f"/scheduling/appointments/{past.pk}/")).decode()
    buttons = re.findall(r'name="status" value="[a-z_]+"[^>]*>([^<]+)<', html)
    assert buttons == [
        "Mark attended",
        "Mark no-show",
        "Cancel appointment",
        "Mark late-cancelled",
    ]

    response = client.post(
        f"/scheduling/appointments/{future.pk}/status/",
        {"status": "attended", "revision": "0"},
        follow=True,
    )
    assert (
        "can only be marked attended once it has started" in response.content.decode()
    )
    future.refresh_from_db()
    assert future.status == Appointment.Status.SCHEDULED


# -- possible duplicate patients --------------------------------------------------


@pytest.fixture
def existing(practice, clinician):
    return make_patient(
        practice,
        first_name="Jordan",
        last_name="Diaz",
        date_of_birth=date(1990, 4, 2),
        email="jordan@example.test",
        phone="+1 (555) 010-2233",
        primary_clinician=clinician,
    )


@pytest.mark.parametrize(
    "details, reason",
    [
        (
            {
                "first_name": "jordan",
                "last_name": "DIAZ",
                "date_of_birth": "1990-04-02",
            },
            "the same name and date of birth",
        ),
        ({"first_name": "J", "email": "Jordan@Example.test"}, "the same email"),
        ({"first_name": "J", "phone": "555.010.2233"}, "the same phone number"),
    ],
)
def test_possible_duplicate_is_flagged(practice, scheduler, existing, details, reason):
    values = {**details}
    if "date_of_birth" in values:
        values["date_of_birth"] = date.fromisoformat(values["date_of_birth"])
    with pytest.raises(DuplicatePatient) as raised:
        patient_create(practice=practice, actor=scheduler, **values)
    [duplicate] = raised.value.duplicates
    assert (duplicate.patient, duplicate.reason, duplicate.visible) == (
        existing,
        reason,
        True,
    )
    assert Patient.objects.count() == 1
    patient_create(practice=practice, actor=scheduler, allow_duplicate=True, **values)
    assert Patient.objects.count() == 2


def test_only_the_same_details_in_the_same_practice_are_duplicates(
    practice, other_practice, scheduler, outsider_admin, existing
):
    patient_create(
        practice=practice, actor=scheduler, first_name="Jordan", last_name="Diaz"
    )
    patient_create(
        practice=other_practice,
        actor=outsider_admin,
        first_name="Jordan",
        last_name="Diaz",
        date_of_birth=existing.date_of_birth,
        email=existing.email,
        phone=existing.phone,
    )
    patient_create(
        practice=practice, actor=scheduler, first_name="J", phone="1-555-010-2234"
    )
    assert Patient.objects.count() == 4
    # The same name with the same date of birth is one.
    with pytest.raises(DuplicatePatient):
        patient_create(
            practice=practice,
            actor=scheduler,
            first_name="Jordan",
            last_name="Diaz",
            date_of_birth=existing.date_of_birth,
        )


def test_edit_warns_only_when_it_makes_a_duplicate(
    practice, scheduler, existing, patient
):
    patient_update(patient=patient, actor=scheduler, preferred_name="Lo")
    with pytest.raises(DuplicatePatient):
        patient_update(patient=patient, actor=scheduler, email="JORDAN@example.test")
    patient_update(
        patient=patient,
        actor=scheduler,
        email="JORDAN@example.test",
        allow_duplicate=True,
    )
    # Already alike: saving other details does not ask again.
    patient_update(patient=patient, actor=scheduler, preferred_name="Élo")
    patient.refresh_from_db()
    assert (patient.email, patient.preferred_name) == ("JORDAN@example.test", "Élo")


def test_add_page_warns_with_a_link_then_adds_anyway(login, scheduler, existing):
    client = login(scheduler)
    data = {
        "first_name": "Jordan",
        "last_name": "Diaz",
        "date_of_birth": "1990-04-02",
        "primary_clinician": "",
    }
    response = client.post("/patients/new/", data)
    html = main(response).decode()
    assert response.status_code == 200
    assert "This may be a patient Tend already has" in html
    assert f'href="/patients/{existing.pk}/">Jordan Diaz</a>' in html
    assert "has the same name and date of birth" in html
    assert Patient.objects.count() == 1
    response = client.post("/patients/new/", {**data, "save_anyway": "on"})
    assert response.status_code == 302
    assert Patient.objects.count() == 2


def test_clinician_gets_no_link_to_a_patient_they_cannot_see(
    login, practice, clinician, other_clinician
):
    theirs = make_patient(
        practice,
        first_name="Kim",
        last_name="Lee",
        email="kim@example.test",
        primary_clinician=other_clinician,
    )
    html = main(
        login(clinician).post(
            "/patients/new/",
            {
                "first_name": "Kim",
                "email": "kim@example.test",
                "primary_clinician": clinician.pk,
            },
        )
    ).decode()
    assert "A patient you cannot open" in html
    assert f"/patients/{theirs.pk}/" not in html
    assert "Lee" not in html


# -- the only clinician, the error summary, the patient hint -----------------------


def test_the_only_possible_clinician_is_preselected(login, practice, clinician):
    html = main(login(clinician).get("/scheduling/new/")).decode()
    select = re.search(r'<select name="clinician".*?</select>', html, re.S).group(0)
    assert re.findall(r"<option[^>]*>", select) == [
        f'<option value="{clinician.pk}" selected>'
    ]


def test_scheduler_with_one_active_clinician_gets_it_preselected(
    login, practice, scheduler, clinician
):
    def options():
        html = main(login(scheduler).get("/scheduling/new/")).decode()
        select = re.search(r'<select name="clinician".*?</select>', html, re.S)
        return re.findall(r"<option[^>]*>", select.group(0))

    assert options() == [f'<option value="{clinician.pk}" selected>']
    second = make_user(practice, roles=[Role.CLINICIAN], name="Second Clinician")
    assert options() == [
        '<option value="" selected>',
        f'<option value="{clinician.pk}">',
        f'<option value="{second.pk}">',
    ]


def test_failed_save_lists_each_error_with_a_link(
    login, scheduler, clinician, patient, book, at
):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2027, 1, 12, 9, 0)
    )
    data = session_data(
        clinician,
        [],
        start="2027-01-13T09:00",
        end="2027-01-12T09:53",
        revision=appointment.revision,
    )
    html = main(
        login(scheduler).post(f"/scheduling/appointments/{appointment.pk}/edit/", data)
    ).decode()
    summary = re.search(r'<div class="error-summary".*?</div>', html, re.S).group(0)
    assert 'role="alert"' in summary and 'tabindex="-1"' in summary
    assert re.findall(r'<a href="(#[a-z_]+)">([^<]+)</a>', summary) == [
        ("#id_patients", "Patients: Choose at least one patient."),
        ("#id_end", "Ends: The end is before the start."),
    ]


def test_patient_hint_says_how_to_choose_several_without_script(login, scheduler):
    html = main(login(scheduler).get("/scheduling/new/")).decode()
    assert "hold Ctrl (⌘ on a Mac) while clicking" in html
