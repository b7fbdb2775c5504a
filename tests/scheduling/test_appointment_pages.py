"""Booking, editing, status and delete pages: forms, warnings, permissions, 404s."""

import pytest

from practice.services import practice_update
from scheduling.models import Appointment, AppointmentChange
from tests.scheduling.helpers import main

pytestmark = pytest.mark.django_db


def booking(clinician, chosen, start="2026-12-01T09:00", end="", **extra):
    data = {
        "kind": "session",
        "clinician": clinician.pk,
        "patients": [patient.pk for patient in chosen],
        "start": start,
        "end": end,
        "repeat": "",
        "interval": "1",
        "ends": "count",
        "notes": "",
    }
    data.update(extra)
    return data


def test_book_a_weekly_series_through_the_form(
    login, scheduler, clinician, patient, service, office
):
    response = login(scheduler).post(
        "/scheduling/new/",
        booking(
            clinician,
            [patient],
            service=service.pk,
            location=office.pk,
            repeat="weekly",
            count="4",
        ),
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/scheduling/?date=2026-12-01")
    appointments = list(Appointment.objects.order_by("start"))
    assert len(appointments) == 4
    # No end given: the service's usual 53 minutes.
    assert all(a.duration_minutes == 53 for a in appointments)
    assert appointments[0].series_id == appointments[3].series_id


def test_book_until_a_date(login, scheduler, clinician, patient):
    response = login(scheduler).post(
        "/scheduling/new/",
        booking(
            clinician,
            [patient],
            end="2026-12-01T10:00",
            repeat="weekly",
            ends="until",
            until="2026-12-22",
        ),
    )
    assert response.status_code == 302
    assert Appointment.objects.count() == 4


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"end": "2026-12-01T08:00"}, "end", "The end is before the start."),
        ({"end": "2026-12-01T09:00"}, "end", "would last no time"),
        ({"end": "2026-12-02T09:30"}, "end", "more than 24 hours"),
        ({"end": ""}, "end", "Give an end time, or choose a service."),
        (
            {"start": "2026-03-08T02:30", "end": "2026-03-08T04:00"},
            "start",
            "the clocks skip it",
        ),
        ({"start": "not a date"}, "start", "Enter a date and time"),
        (
            {"repeat": "weekly", "count": "500", "end": "2026-12-01T10:00"},
            "count",
            "at most 104 occurrences",
        ),
        (
            {
                "repeat": "weekly",
                "ends": "until",
                "until": "2040-01-01",
                "end": "2026-12-01T10:00",
            },
            "until",
            "more than 104 occurrences",
        ),
        (
            {"repeat": "weekly", "count": "", "end": "2026-12-01T10:00"},
            "count",
            "how many",
        ),
        (
            {"patients": [], "end": "2026-12-01T10:00"},
            "patients",
            "at least one patient",
        ),
    ],
)
def test_bad_input_is_a_form_error_and_nothing_is_saved(
    login, scheduler, clinician, patient, extra, field, message
):
    response = login(scheduler).post(
        "/scheduling/new/", booking(clinician, [patient], **extra)
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert message in " ".join(errors[field])
    assert not Appointment.objects.exists()
    assert message.encode() in response.content.replace(b"&#x27;", b"'")


def test_objects_of_another_practice_are_form_errors(
    login,
    scheduler,
    clinician,
    patient,
    outsider_patient,
    outsider_service,
    outsider_location,
    outsider_admin,
):
    response = login(scheduler).post(
        "/scheduling/new/",
        booking(
            clinician,
            [patient, outsider_patient],
            end="2026-12-01T10:00",
            service=outsider_service.pk,
            location=outsider_location.pk,
        ),
    )
    errors = response.context["form"].errors
    assert errors["patients"] == ["Choose patients from this practice's patient list."]
    assert errors["service"] == ["Choose a service of this practice."]
    assert errors["location"] == ["Choose a location of this practice."]
    response = login(scheduler).post(
        "/scheduling/new/", booking(outsider_admin, [patient], end="2026-12-01T10:00")
    )
    assert response.context["form"].errors["clinician"]
    assert not Appointment.objects.exists()


def test_deactivated_clinician_is_a_clear_form_error(
    login, scheduler, admin_user, clinician, patient
):
    from practice.services import user_set_active

    user_set_active(user=clinician, active=False, actor=admin_user, client_ip=None)
    response = login(scheduler).post(
        "/scheduling/new/", booking(clinician, [patient], end="2026-12-01T10:00")
    )
    assert "Dana Rivera, LCSW is deactivated" in response.content.decode()
    assert not Appointment.objects.exists()


def test_conflict_warns_then_books_anyway(
    login, scheduler, clinician, patient, second_patient, book, at
):
    book(clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0))
    client = login(scheduler)
    data = booking(
        clinician, [second_patient], start="2026-12-01T09:30", end="2026-12-01T10:20"
    )
    response = client.post("/scheduling/new/", data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "This overlaps other bookings" in html
    assert "Dana Rivera, LCSW is already booked Tue 1 Dec 2026, 09:00–09:53" in html
    assert "Book anyway" in html
    assert Appointment.objects.count() == 1
    response = client.post("/scheduling/new/", {**data, "book_anyway": "on"})
    assert response.status_code == 302
    assert Appointment.objects.count() == 2


def test_event_form_warns_that_titles_are_published(login, scheduler, clinician):
    client = login(scheduler)
    html = client.get("/scheduling/new/?kind=event").content.decode()
    assert "Titles are visible in synced calendars" in html
    assert 'name="patients"' not in html
    response = client.post(
        "/scheduling/new/",
        {
            "kind": "event",
            "clinician": clinician.pk,
            "title": "Staff meeting",
            "start": "2026-12-01T08:00",
            "end": "2026-12-01T09:00",
        },
    )
    assert response.status_code == 302
    event = Appointment.objects.get()
    assert (event.kind, event.title, event.summary_text) == (
        "event",
        "Staff meeting",
        "Staff meeting",
    )


def test_edit_moves_and_records_history(login, scheduler, clinician, patient, book, at):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9)
    )
    client = login(scheduler)
    form = client.get(f"/scheduling/appointments/{appointment.pk}/edit/")
    assert b'name="revision" value="0"' in form.content
    response = client.post(
        f"/scheduling/appointments/{appointment.pk}/edit/",
        booking(
            clinician,
            [patient],
            start="2026-12-02T11:00",
            end="2026-12-02T11:53",
            service=appointment.service_id,
            location=appointment.location_id,
            revision="0",
        ),
    )
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.sequence == 1
    detail = client.get(f"/scheduling/appointments/{appointment.pk}/").content.decode()
    assert "History" in detail
    assert "1 Dec 2026, 09:00 → 2 Dec 2026, 11:00" in detail
    assert "Sam Porter" in detail


def test_stale_form_says_reload_and_saves_nothing(
    login, scheduler, admin_user, clinician, patient, book, at
):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9)
    )
    data = booking(
        clinician,
        [patient],
        start="2026-12-01T09:00",
        end="2026-12-01T09:53",
        service=appointment.service_id,
        location=appointment.location_id,
        revision="0",
    )
    first = login(admin_user).post(
        f"/scheduling/appointments/{appointment.pk}/edit/",
        {**data, "start": "2026-12-01T10:00", "end": "2026-12-01T10:53"},
    )
    assert first.status_code == 302
    second = login(scheduler).post(
        f"/scheduling/appointments/{appointment.pk}/edit/",
        {**data, "notes": "mine"},
    )
    assert second.status_code == 200
    assert "Changed by someone else" in second.content.decode()
    assert "Reload the current version" in second.content.decode()
    appointment.refresh_from_db()
    assert appointment.notes == ""
    assert (
        appointment.changes.filter(action=AppointmentChange.Action.CHANGED).count() == 1
    )


def test_status_buttons_and_this_and_following(
    login, scheduler, clinician, patient, book, at
):
    from scheduling.recurrence import WEEKLY, Recurrence

    first = book(
        clinician=clinician,
        patients=[patient],
        start=at(2026, 12, 1, 9),
        recurrence=Recurrence(frequency=WEEKLY, count=4),
    )
    second = first.series.occurrences.get(series_index=1)
    client = login(scheduler)
    html = client.get(f"/scheduling/appointments/{second.pk}/").content.decode()
    assert "This and all following appointments of the series" in html
    assert "Cancel appointment" in html
    assert "Mark attended" not in html  # not yet started
    assert "4 appointments, 2 after this one" in html
    response = client.post(
        f"/scheduling/appointments/{second.pk}/status/",
        {"status": "cancelled", "scope": "following", "revision": "0"},
    )
    assert response.status_code == 302
    statuses = list(
        first.series.occurrences.order_by("start").values_list("status", flat=True)
    )
    assert statuses == ["scheduled", "cancelled", "cancelled", "cancelled"]
    # Not allowed by the table: a message, nothing changes.
    client.post(
        f"/scheduling/appointments/{second.pk}/status/",
        {"status": "attended", "revision": "1"},
    )
    second.refresh_from_db()
    assert second.status == "cancelled"


def test_delete_page_soft_deletes(login, scheduler, clinician, patient, book, at):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9)
    )
    client = login(scheduler)
    response = client.post(
        f"/scheduling/appointments/{appointment.pk}/delete/", {"revision": "0"}
    )
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.deleted_at is not None
    assert client.get(f"/scheduling/appointments/{appointment.pk}/").status_code == 404


def test_clinician_manages_own_when_allowed(
    login, practice, clinician, other_clinician, patient, other_patient, book, at
):
    own = book(clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9))
    theirs = book(
        clinician=other_clinician, patients=[other_patient], start=at(2026, 12, 1, 9)
    )
    client = login(clinician)
    assert client.get(f"/scheduling/appointments/{own.pk}/edit/").status_code == 200
    for url in (
        f"/scheduling/appointments/{theirs.pk}/",
        f"/scheduling/appointments/{theirs.pk}/edit/",
    ):
        assert client.get(url).status_code == 404
    response = client.post(
        f"/scheduling/appointments/{theirs.pk}/status/",
        {"status": "cancelled", "revision": "0"},
    )
    assert response.status_code == 404
    # A clinician can only book for themselves.
    response = client.post(
        "/scheduling/new/",
        booking(
            other_clinician, [patient], end="2026-12-03T10:00", start="2026-12-03T09:00"
        ),
    )
    assert response.context["form"].errors["clinician"]
    practice_update(
        practice=practice,
        actor=None,
        client_ip=None,
        clinicians_may_schedule_themselves=False,
    )
    client = login(clinician)
    assert client.get(f"/scheduling/appointments/{own.pk}/").status_code == 200
    assert (
        b"Edit or reschedule"
        not in client.get(f"/scheduling/appointments/{own.pk}/").content
    )
    assert client.get(f"/scheduling/appointments/{own.pk}/edit/").status_code == 404
    response = client.post(
        f"/scheduling/appointments/{own.pk}/delete/", {"revision": "0"}
    )
    assert response.status_code == 404
    own.refresh_from_db()
    assert own.deleted_at is None


def test_other_practice_appointment_is_the_same_404(
    login, outsider_admin, scheduler, clinician, patient, book, at
):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9)
    )
    client = login(outsider_admin)
    missing = client.get("/scheduling/appointments/999999/")
    for suffix in ("", "edit/"):
        response = client.get(f"/scheduling/appointments/{appointment.pk}/{suffix}")
        assert response.status_code == 404
        assert main(response) == main(missing)
    for suffix in ("status/", "delete/"):
        response = client.post(
            f"/scheduling/appointments/{appointment.pk}/{suffix}",
            {"status": "cancelled", "revision": "0"},
        )
        assert response.status_code == 404
    appointment.refresh_from_db()
    assert (appointment.status, appointment.deleted_at) == ("scheduled", None)


def test_book_from_patient_page_preselects_patient(login, scheduler, patient):
    html = (
        login(scheduler).get(f"/scheduling/new/?patient={patient.pk}").content.decode()
    )
    assert f'<option value="{patient.pk}" selected>' in html
