"""The SCHEDULING tab's calendar: views, navigation, filters, permissions, queries."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from practice.models import Role
from practice.services import practice_update
from scheduling.models import Appointment
from scheduling.recurrence import WEEKLY, Recurrence
from scheduling.services import appointment_set_status
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_week_view_is_the_default_and_shows_the_practice_time(
    login, scheduler, clinician, patient, book, at
):
    book(clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0))
    response = login(scheduler).get("/scheduling/?date=2026-12-02&clinician=all")
    assert response.status_code == 200
    html = response.content.decode()
    assert "30 Nov – 6 Dec 2026" in html
    assert "09:00–09:53" in html  # New York time, stored as 14:00 UTC
    assert "Élodie O&#x27;Brien" in html


def test_day_view_shows_clinicians_side_by_side(
    login, scheduler, clinician, other_clinician, patient, other_patient, book, at
):
    book(clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0))
    book(
        clinician=other_clinician, patients=[other_patient], start=at(2026, 12, 1, 9, 0)
    )
    html = (
        login(scheduler)
        .get("/scheduling/?view=day&date=2026-12-01&clinician=all")
        .content.decode()
    )
    assert "Tuesday 1 December 2026" in html
    assert html.count('<section class="cal-col') == 2
    assert 'aria-label="Dana Rivera, LCSW"' in html
    assert 'aria-label="Wei Chen, PhD"' in html
    assert "Kwame Mensah" in html and "Élodie" in html


def test_month_view(login, scheduler, clinician, patient, book, at):
    book(clinician=clinician, patients=[patient], start=at(2026, 12, 24, 15, 0))
    html = (
        login(scheduler).get("/scheduling/?view=month&date=2026-12-10").content.decode()
    )
    assert "December 2026" in html
    assert "15:00" in html and "Élodie" in html
    # Weeks start on Monday: 30 November is the first cell, 3 January the last.
    assert "Monday 30 November" in html and "Sunday 3 January" in html


def test_navigation_links(login, scheduler):
    html = (
        login(scheduler)
        .get("/scheduling/?date=2026-12-02&clinician=all")
        .content.decode()
    )
    assert "date=2026-11-25" in html  # previous week
    assert "date=2026-12-09" in html  # next week
    assert 'name="date" value="2026-12-02"' in html


def test_unreadable_date_gets_a_message_not_an_error(login, scheduler):
    response = login(scheduler).get("/scheduling/?date=yesterday&view=year")
    assert response.status_code == 200
    assert b"could not be read" in response.content


def test_free_slots_link_to_a_prefilled_booking_form(login, scheduler, clinician):
    html = (
        login(scheduler)
        .get(f"/scheduling/?date=2026-12-02&clinician={clinician.pk}")
        .content.decode()
    )
    assert (
        f"/scheduling/new/?start=2026-12-01T09:00&amp;clinician={clinician.pk}" in html
    )
    form = login(scheduler).get(
        f"/scheduling/new/?start=2026-12-01T09:00&clinician={clinician.pk}"
    )
    assert b'value="2026-12-01T09:00"' in form.content
    assert f'<option value="{clinician.pk}" selected>'.encode() in form.content


def test_cancelled_are_distinct_and_can_be_hidden(
    login, scheduler, clinician, patient, book, at
):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9)
    )
    appointment_set_status(
        appointment=appointment,
        actor=scheduler,
        status=Appointment.Status.CANCELLED,
        expected_revision=0,
    )
    client = login(scheduler)
    shown = client.get(f"/scheduling/?date=2026-12-01&clinician={clinician.pk}")
    assert b"is-cancelled" in shown.content and b"Hide cancelled" in shown.content
    hidden = client.get(
        f"/scheduling/?date=2026-12-01&clinician={clinician.pk}&cancelled=hide"
    )
    assert b"is-cancelled" not in hidden.content
    assert b"Show cancelled" in hidden.content
    assert b"lodie" not in hidden.content


def test_clinician_sees_own_calendar_only(
    login, clinician, other_clinician, patient, other_patient, book, at
):
    book(clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0))
    book(clinician=other_clinician, patients=[other_patient], start=at(2026, 12, 1, 11))
    client = login(clinician)
    html = client.get("/scheduling/?date=2026-12-01").content.decode()
    assert "Élodie" in html
    assert "Kwame" not in html
    assert 'name="clinician"' not in html  # no clinician filter
    assert (
        client.get(
            f"/scheduling/?date=2026-12-01&clinician={other_clinician.pk}"
        ).status_code
        == 404
    )
    html = client.get("/scheduling/?date=2026-12-01&clinician=all").content.decode()
    assert "Kwame" not in html


def test_admin_who_is_a_clinician_starts_on_own_calendar(
    login, admin_user, clinician, patient, book, at
):
    book(clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0))
    client = login(admin_user)
    assert "Élodie" not in client.get("/scheduling/?date=2026-12-01").content.decode()
    html = client.get("/scheduling/?date=2026-12-01&clinician=all").content.decode()
    assert "Élodie" in html


def test_clinician_without_self_scheduling_sees_no_booking_links(
    login, practice, clinician
):
    practice_update(
        practice=practice,
        actor=None,
        client_ip=None,
        clinicians_may_schedule_themselves=False,
    )
    html = login(clinician).get("/scheduling/").content.decode()
    assert "cal-slot" not in html and "New appointment" not in html
    assert login(clinician).get("/scheduling/new/").status_code == 403


def test_other_practice_clinician_filter_is_404(login, scheduler, outsider_admin):
    response = login(scheduler).get(f"/scheduling/?clinician={outsider_admin.pk}")
    assert response.status_code == 404


def test_other_practice_appointments_never_show(
    login, scheduler, outsider_admin, outsider_patient, at, other_practice
):
    from scheduling.permissions import visible_appointments, visible_patients
    from scheduling.services import appointment_create

    outside = appointment_create(
        practice=other_practice,
        actor=outsider_admin,
        clinician=outsider_admin,
        patients=[outsider_patient],
        start=at(2026, 12, 1, 9, 0),
        end=at(2026, 12, 1, 10, 0),
    )
    html = login(scheduler).get("/scheduling/?date=2026-12-01&clinician=all").content
    assert b"Outside" not in html
    # The calendar lists only this practice's clinicians anyway; the scope that
    # keeps the row out must hold on its own.
    assert not visible_appointments(scheduler).filter(pk=outside.pk).exists()
    assert not visible_patients(scheduler).filter(pk=outsider_patient.pk).exists()
    assert visible_appointments(outsider_admin).filter(pk=outside.pk).exists()


def test_multi_day_and_late_appointments_stretch_the_grid(
    login, scheduler, clinician, patient, book, at
):
    book(
        clinician=clinician,
        patients=[patient],
        start=at(2026, 12, 1, 22, 30),
        minutes=120,
    )
    html = (
        login(scheduler)
        .get(f"/scheduling/?date=2026-12-01&clinician={clinician.pk}")
        .content.decode()
    )
    assert "22:30–00:00" in html  # Tuesday's part
    assert "00:00–00:30" in html  # Wednesday's part
    assert "23:00" in html  # the hour axis reaches midnight


def _week_queries(client, url):
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200
    return len(context)


def test_week_view_query_count_does_not_grow_with_clinicians(
    login, practice, scheduler, patient, book, at
):
    """Pinned: the same number of queries for 1 clinician and for 50, each with a
    week of appointments (several patients each)."""
    first = make_user(practice, roles=[Role.CLINICIAN], name="Clinician 0")
    book(
        clinician=first,
        patients=[patient],
        start=at(2026, 11, 30, 9, 0),
        recurrence=Recurrence(frequency=WEEKLY, count=1 + 1),
    )
    client = login(scheduler)
    url = "/scheduling/?date=2026-12-01&clinician=all"
    one = _week_queries(client, url)
    for number in range(1, 50):
        clinician = make_user(
            practice, roles=[Role.CLINICIAN], name=f"Clinician {number}"
        )
        for day in range(5):
            book(
                clinician=clinician,
                patients=[patient],
                start=at(2026, 11, 30, 9 + number % 8, 0) + timedelta(days=day),
            )
    fifty = _week_queries(client, url)
    assert one == fifty
    # Twelve as before, plus the teams and the locations the filters offer.
    assert fifty == 14


def test_week_view_query_count_pinned(
    login,
    scheduler,
    clinician,
    patient,
    second_patient,
    book,
    at,
    django_assert_num_queries,
):
    for day in range(7):
        book(
            clinician=clinician,
            patients=[patient, second_patient],
            start=at(2026, 11, 30, 10, 0) + timedelta(days=day),
        )
    client = login(scheduler)
    client.get("/scheduling/")  # warm the session
    # Session, user, practice, allowed networks; clinicians, appointments, their
    # patients, personal busy time; the audit event; the session's save
    # (savepoint, update, release).
    with django_assert_num_queries(12):
        client.get(f"/scheduling/?date=2026-12-01&clinician={clinician.pk}")


def test_a_clinicians_own_calendar_does_not_load_the_clinician_list(
    login, clinician, patient, book, at, django_assert_num_queries
):
    booked = book(clinician=clinician, patients=[patient], start=at(2026, 12, 1, 10, 0))
    client = login(clinician)
    client.get("/scheduling/")  # warm the session
    # As a scheduler's page less the clinicians: session, user, practice, allowed
    # networks; appointments, their patients, personal busy time; the audit
    # event; the session's save.
    with django_assert_num_queries(11):
        response = client.get("/scheduling/?date=2026-12-01")
    assert response.status_code == 200
    assert f"/scheduling/appointments/{booked.pk}/".encode() in response.content


def test_no_bookable_slot_hides_under_an_appointment(
    login, scheduler, clinician, patient, book, at
):
    """A block would leave a sliver of the half hours it covers: too small a target
    (WCAG 2.5.8), and a conflict to book. The half hours around it stay."""
    book(clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0))
    html = (
        login(scheduler)
        .get(f"/scheduling/?view=day&date=2026-12-01&clinician={clinician.pk}")
        .content.decode()
    )

    def slot(hour_minute: str) -> str:
        return f"/scheduling/new/?start=2026-12-01T{hour_minute}&amp;clinician="

    assert slot("08:30") in html
    assert slot("09:00") not in html and slot("09:30") not in html
    assert slot("10:00") in html
