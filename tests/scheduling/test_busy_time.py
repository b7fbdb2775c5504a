"""A clinician's personal busy time in SCHEDULING: the selector (one query, merged,
scoped to the practice), the booking check (create, move, reassign, series, book
anyway) and the blocks of the day, week and agenda views (time and words only)."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from scheduling.busy import _busy_rows, busy_times
from scheduling.models import Appointment, BusyTime
from scheduling.recurrence import WEEKLY, Recurrence
from scheduling.services import (
    SchedulingConflict,
    appointment_create,
    appointment_update,
)
from tests.factories import make_busy_calendar, make_busy_time
from tests.scheduling.test_appointment_pages import booking

pytestmark = pytest.mark.django_db

# The calendar's name and nothing of its events may show anywhere in SCHEDULING.
SECRET_NAME = "Dentist with Alex (private)"


def create(practice, clinician, patients, start, minutes=53, **kwargs):
    return appointment_create(
        practice=practice,
        actor=None,
        clinician=clinician,
        patients=patients,
        start=start,
        end=start + timedelta(minutes=minutes),
        **kwargs,
    )


def update(appointment, **fields):
    """Change ``appointment`` as its edit page does, from an up-to-date form."""
    return appointment_update(
        appointment=appointment, actor=None, expected_revision=None, **fields
    )


def messages(caught) -> list[str]:
    return [conflict.message for conflict in caught.value.conflicts]


# -- the selector -------------------------------------------------------------------


def test_busy_times_merge_calendars_and_keep_tentative_apart(
    practice, clinician, other_clinician, at, django_assert_num_queries
):
    personal = make_busy_calendar(clinician, name=SECRET_NAME)
    family = make_busy_calendar(
        clinician, name="Family", read_at=timezone.now() - timedelta(days=3)
    )
    make_busy_time(clinician, calendar=personal, start=at(2026, 12, 1, 10, 0))
    make_busy_time(
        clinician, calendar=family, start=at(2026, 12, 1, 10, 30), minutes=90
    )
    make_busy_time(
        clinician, calendar=personal, start=at(2026, 12, 1, 15, 0), tentative=True
    )
    make_busy_time(other_clinician, start=at(2026, 12, 1, 10, 0))
    make_busy_time(clinician, start=at(2026, 12, 3, 10, 0))  # outside the range
    with django_assert_num_queries(1):
        blocks = busy_times(
            practice=practice,
            clinician_ids=[clinician.pk],
            start=at(2026, 12, 1, 0, 0),
            end=at(2026, 12, 2, 0, 0),
        )
    assert [(b.start, b.end, b.tentative, b.stale) for b in blocks] == [
        (at(2026, 12, 1, 10, 0), at(2026, 12, 1, 12, 0), False, True),
        (at(2026, 12, 1, 15, 0), at(2026, 12, 1, 16, 0), True, False),
    ]
    assert blocks[0].read_at == family.read_at


@pytest.fixture
def foreign_busy(other_practice, clinician, outsider_admin, at):
    """The other practice's busy time 10:00–11:00 on Tue 1 Dec 2026: its
    administrator's, and a row of that practice that names our clinician (which
    is still the other practice's)."""
    theirs = make_busy_calendar(outsider_admin)
    make_busy_time(outsider_admin, calendar=theirs, start=at(2026, 12, 1, 10, 0))
    BusyTime.objects.create(
        calendar=theirs,
        practice=other_practice,
        clinician=clinician,
        start=at(2026, 12, 1, 10, 0),
        end=at(2026, 12, 1, 11, 0),
    )


@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="SQLite's plan names the index it uses"
)
def test_busy_times_read_the_lookup_index(practice, clinician, at):
    rows = _busy_rows(
        practice=practice,
        clinician_ids=[clinician.pk],
        start=at(2026, 12, 1, 0, 0),
        end=at(2026, 12, 8, 0, 0),
    )
    assert "busytime_lookup" in rows.explain()


def test_busy_times_never_read_another_practice(
    practice, clinician, outsider_admin, foreign_busy, at
):
    window = {"start": at(2026, 12, 1, 0, 0), "end": at(2026, 12, 2, 0, 0)}
    assert busy_times(practice=practice, clinician_ids=[clinician.pk], **window) == []
    assert (
        busy_times(practice=practice, clinician_ids=[outsider_admin.pk], **window) == []
    )


# -- booking over busy time ---------------------------------------------------------


def test_booking_over_busy_time_warns_naming_only_the_personal_calendar(
    practice, clinician, patient, at
):
    make_busy_time(
        clinician,
        calendar=make_busy_calendar(clinician, name=SECRET_NAME),
        start=at(2026, 12, 1, 10, 0),
    )
    with pytest.raises(SchedulingConflict) as caught:
        create(practice, clinician, [patient], at(2026, 12, 1, 10, 30))
    assert messages(caught) == [
        "Dana Rivera, LCSW is busy (personal calendar) Tue 1 Dec 2026, 10:00–11:00."
    ]
    assert caught.value.conflicts[0].appointment is None
    assert not Appointment.objects.exists()
    # Book anyway: the same override as for a double booking.
    booked = create(
        practice, clinician, [patient], at(2026, 12, 1, 10, 30), allow_conflicts=True
    )
    assert booked.start == at(2026, 12, 1, 10, 30)


def test_tentative_and_stale_busy_time_warn_too(practice, clinician, patient, at):
    stale = make_busy_calendar(
        clinician, read_at=at(2026, 11, 20, 9, 0), name="Old phone"
    )
    make_busy_time(
        clinician, calendar=stale, start=at(2026, 12, 1, 10, 0), tentative=True
    )
    with pytest.raises(SchedulingConflict) as caught:
        create(practice, clinician, [patient], at(2026, 12, 1, 9, 30), minutes=60)
    assert messages(caught) == [
        "Dana Rivera, LCSW is tentatively busy (personal calendar; not updated "
        "since 20 Nov) Tue 1 Dec 2026, 10:00–11:00."
    ]


def test_events_are_checked_and_time_beside_busy_time_is_free(
    practice, clinician, patient, at
):
    make_busy_time(clinician, start=at(2026, 12, 1, 10, 0))
    # Back to back with the busy time: no overlap.
    create(practice, clinician, [patient], at(2026, 12, 1, 9, 0), minutes=60)
    create(practice, clinician, [patient], at(2026, 12, 1, 11, 0))
    with pytest.raises(SchedulingConflict):
        create(
            practice,
            clinician,
            [],
            at(2026, 12, 1, 10, 0),
            kind=Appointment.Kind.EVENT,
            title="Supervision",
        )


def test_another_clinicians_busy_time_never_counts(
    practice, clinician, other_clinician, patient, at
):
    make_busy_time(other_clinician, start=at(2026, 12, 1, 10, 0))
    create(practice, clinician, [patient], at(2026, 12, 1, 10, 0))


def test_another_practices_busy_time_never_counts(
    practice, clinician, patient, foreign_busy, at
):
    create(practice, clinician, [patient], at(2026, 12, 1, 10, 0))


def test_moving_onto_busy_time_warns(practice, clinician, patient, book, at):
    make_busy_time(clinician, start=at(2026, 12, 2, 14, 0))
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 14, 0)
    )
    with pytest.raises(SchedulingConflict) as caught:
        update(appointment, start=at(2026, 12, 2, 14, 30), end=at(2026, 12, 2, 15, 23))
    assert messages(caught) == [
        "Dana Rivera, LCSW is busy (personal calendar) Wed 2 Dec 2026, 14:00–15:00."
    ]
    appointment.refresh_from_db()
    assert appointment.start == at(2026, 12, 1, 14, 0)
    update(
        appointment,
        allow_conflicts=True,
        start=at(2026, 12, 2, 14, 30),
        end=at(2026, 12, 2, 15, 23),
    )
    appointment.refresh_from_db()
    assert appointment.start == at(2026, 12, 2, 14, 30)


def test_reassigning_checks_the_new_clinicians_busy_time(
    practice, clinician, other_clinician, patient, second_patient, book, at
):
    make_busy_time(clinician, start=at(2026, 12, 1, 9, 0))
    make_busy_time(other_clinician, start=at(2026, 12, 1, 10, 0))
    # Booked over Dana's busy time on purpose.
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0)
    )
    # A change of patients alone does not warn again about the time.
    update(appointment, patients=[patient, second_patient])
    # Wei Chen is free at 9:00: Dana's busy time is not his.
    update(appointment, clinician=other_clinician)
    with pytest.raises(SchedulingConflict) as caught:
        update(appointment, start=at(2026, 12, 1, 10, 0), end=at(2026, 12, 1, 10, 53))
    assert messages(caught) == [
        "Wei Chen, PhD is busy (personal calendar) Tue 1 Dec 2026, 10:00–11:00."
    ]
    # Back to Dana, whose two calendars are busy 9:00–10:00 and 9:30–10:00.
    make_busy_time(clinician, start=at(2026, 12, 1, 9, 30), minutes=30)
    with pytest.raises(SchedulingConflict) as caught:
        update(appointment, clinician=clinician)
    assert messages(caught) == [
        "Dana Rivera, LCSW is busy (personal calendar) Tue 1 Dec 2026, 09:00–10:00."
    ]


def test_each_occurrence_of_a_series_is_checked(practice, clinician, patient, at):
    make_busy_time(clinician, start=at(2026, 12, 15, 9, 30), minutes=30)
    make_busy_time(clinician, start=at(2026, 12, 29, 8, 0), minutes=90)
    with pytest.raises(SchedulingConflict) as caught:
        create(
            practice,
            clinician,
            [patient],
            at(2026, 12, 1, 9, 0),
            recurrence=Recurrence(frequency=WEEKLY, count=5),
        )
    assert messages(caught) == [
        "Dana Rivera, LCSW is busy (personal calendar) Tue 15 Dec 2026, 09:30–10:00.",
        "Dana Rivera, LCSW is busy (personal calendar) Tue 29 Dec 2026, 08:00–09:30.",
    ]
    create(
        practice,
        clinician,
        [patient],
        at(2026, 12, 1, 9, 0),
        recurrence=Recurrence(frequency=WEEKLY, count=5),
        allow_conflicts=True,
    )
    assert Appointment.objects.count() == 5


def test_moving_a_series_checks_every_following_occurrence(
    practice, clinician, patient, at
):
    first = create(
        practice,
        clinician,
        [patient],
        at(2026, 12, 1, 9, 0),
        recurrence=Recurrence(frequency=WEEKLY, count=4),
    )
    make_busy_time(clinician, start=at(2026, 12, 22, 13, 0))
    with pytest.raises(SchedulingConflict) as caught:
        update(
            first,
            scope="following",
            start=at(2026, 12, 1, 13, 0),
            end=at(2026, 12, 1, 13, 53),
        )
    assert messages(caught) == [
        "Dana Rivera, LCSW is busy (personal calendar) Tue 22 Dec 2026, 13:00–14:00."
    ]


def test_the_booking_form_warns_and_books_anyway(
    login, scheduler, clinician, patient, at
):
    make_busy_time(
        clinician,
        calendar=make_busy_calendar(clinician, name=SECRET_NAME),
        start=at(2026, 12, 1, 10, 0),
    )
    client = login(scheduler)
    data = booking(
        clinician, [patient], start="2026-12-01T10:00", end="2026-12-01T10:50"
    )
    response = client.post("/scheduling/new/", data)
    html = response.content.decode()
    assert response.status_code == 200
    assert (
        "Dana Rivera, LCSW is busy (personal calendar) Tue 1 Dec 2026, 10:00–11:00."
        in html
    )
    assert "Book anyway" in html and "Change the time" in html
    assert "This overlaps personal busy time" in html
    assert SECRET_NAME not in html
    assert not Appointment.objects.exists()
    response = client.post("/scheduling/new/", {**data, "book_anyway": "on"})
    assert response.status_code == 302
    assert Appointment.objects.count() == 1

    # Over an appointment and busy time at once, the heading names both.
    response = client.post("/scheduling/new/", data)
    assert "This overlaps other bookings and personal busy time" in (
        response.content.decode()
    )


# -- the calendar views -------------------------------------------------------------

BUSY_BLOCK = re.compile(r'<div class="(?:cal|agenda)-[^"]*busy[^"]*">(.*?)</div>')


def busy_blocks(html: str) -> list[str]:
    """The text of each busy block, its pieces joined with " · "."""
    return [
        " · ".join(
            piece.strip()
            for piece in re.findall(r">([^<]+)<", f">{block}<")
            if piece.strip()
        )
        for block in BUSY_BLOCK.findall(html)
    ]


@pytest.fixture
def busy_day(clinician, at):
    """Dana Rivera's personal calendar, with a distinctive name, busy 10:00–11:00
    and tentatively 16:00–17:00 on Tuesday 1 Dec 2026."""
    calendar = make_busy_calendar(clinician, name=SECRET_NAME)
    make_busy_time(clinician, calendar=calendar, start=at(2026, 12, 1, 10, 0))
    make_busy_time(
        clinician, calendar=calendar, start=at(2026, 12, 1, 16, 0), tentative=True
    )
    return calendar


VIEWS = {
    "day": "view=day&date=2026-12-01&clinician={pk}",
    "week": "view=week&date=2026-12-01&clinician={pk}",
    "agenda": "view=agenda&date=2026-12-01&clinician={pk}",
}


@pytest.mark.parametrize("viewer", ["scheduler", "admin_user", "clinician"])
@pytest.mark.parametrize("view", VIEWS)
def test_busy_blocks_show_time_and_words_only(
    request, login, clinician, busy_day, viewer, view
):
    user = request.getfixturevalue(viewer)
    url = "/scheduling/?" + VIEWS[view].format(pk=clinician.pk)
    html = login(user).get(url).content.decode()
    if view == "agenda":
        expected = [
            "10:00–11:00 · Busy (personal)",
            "16:00–17:00 · Busy (personal, tentative)",
        ]
    else:
        expected = [
            "10:00–11:00 · 10:00 · Busy (personal) · Busy · (personal)",
            "16:00–17:00 · 16:00 · Busy (personal, tentative) · Busy · "
            "(personal, tentative)",
        ]
    assert busy_blocks(html) == expected
    assert SECRET_NAME not in html
    # Not a link to anything: there is nothing to open.
    assert not re.search(r'<a [^>]*class="[^"]*busy', html)


def test_a_stale_calendar_says_since_when(login, scheduler, clinician, at):
    calendar = make_busy_calendar(clinician, read_at=at(2026, 11, 28, 9, 0))
    make_busy_time(clinician, calendar=calendar, start=at(2026, 12, 1, 10, 0))
    client = login(scheduler)
    day = client.get(
        f"/scheduling/?view=day&date=2026-12-01&clinician={clinician.pk}"
    ).content.decode()
    assert busy_blocks(day) == [
        "10:00–11:00 · 10:00 · Busy (personal) · Busy · (personal) · "
        "not updated since 28 Nov"
    ]
    assert "cal-busy r-" in day and "is-stale" in day
    agenda = client.get(
        f"/scheduling/?view=agenda&date=2026-12-01&clinician={clinician.pk}"
    ).content.decode()
    assert "not updated since 28 Nov" in agenda


def test_all_clinicians_week_says_whose_busy_time(
    login, scheduler, clinician, other_clinician, busy_day, at
):
    html = (
        login(scheduler)
        .get("/scheduling/?view=week&date=2026-12-01&clinician=all")
        .content.decode()
    )
    assert (
        "10:00–11:00 · 10:00 · Busy (personal) · Busy · (personal) · Dana Rivera"
        in (busy_blocks(html))
    )
    day = (
        login(scheduler)
        .get("/scheduling/?view=day&date=2026-12-01&clinician=all")
        .content.decode()
    )
    # The day view's columns are the clinicians: Dana's column has the blocks.
    columns = re.split(r'<section class="cal-col', day)[1:]
    (dana,) = [
        column for column in columns if 'aria-label="Dana Rivera, LCSW"' in column
    ]
    (wei,) = [column for column in columns if 'aria-label="Wei Chen, PhD"' in column]
    assert len(busy_blocks(dana)) == 2 and busy_blocks(wei) == []


def test_a_clinician_sees_only_their_own_busy_time(
    login, clinician, other_clinician, busy_day, at
):
    make_busy_time(other_clinician, start=at(2026, 12, 1, 12, 0))
    client = login(other_clinician)
    html = client.get("/scheduling/?view=week&date=2026-12-01").content.decode()
    assert busy_blocks(html) == [
        "12:00–13:00 · 12:00 · Busy (personal) · Busy · (personal)"
    ]
    # A colleague's calendar is not theirs to open at all.
    url = f"/scheduling/?view=day&date=2026-12-01&clinician={clinician.pk}"
    assert client.get(url).status_code == 404


def test_busy_time_sits_beside_overlapping_appointments_and_takes_no_slot(
    login, scheduler, clinician, patient, book, busy_day, at
):
    book(clinician=clinician, patients=[patient], start=at(2026, 12, 1, 10, 30))
    html = (
        login(scheduler)
        .get(f"/scheduling/?view=day&date=2026-12-01&clinician={clinician.pk}")
        .content.decode()
    )
    # Busy from 10:00 takes the first lane; the 10:30 appointment the next.
    assert re.search(r'class="cal-entry cal-busy r-\d+ s-4 lane-0 w-1"', html)
    assert re.search(r'class="cal-entry r-\d+ s-4 lane-1 w-1 status-', html)
    assert 'class="cal-body lanes-2' in html
    assert "Élodie O&#x27;Brien" in html  # the appointment is not hidden

    def slot(hour_minute: str) -> str:
        return f"/scheduling/new/?start=2026-12-01T{hour_minute}&amp;clinician="

    assert slot("09:30") in html and slot("11:30") in html
    assert slot("10:00") not in html and slot("16:30") not in html


def test_evening_busy_time_adds_no_hours_and_month_shows_none(
    login, scheduler, clinician, at
):
    make_busy_time(clinician, start=at(2026, 12, 1, 22, 0))
    make_busy_time(clinician, start=at(2026, 12, 2, 20, 30), minutes=120)
    client = login(scheduler)
    html = client.get(
        f"/scheduling/?view=week&date=2026-12-01&clinician={clinician.pk}"
    ).content.decode()
    assert "22:00</span>" not in html  # the grid still ends at 21:00
    assert busy_blocks(html) == [
        "20:30–22:30 · 20:30 · Busy (personal) · Busy · (personal)"
    ]
    agenda = client.get(
        f"/scheduling/?view=agenda&date=2026-12-01&clinician={clinician.pk}"
    ).content.decode()
    assert len(busy_blocks(agenda)) == 2
    month = client.get(
        f"/scheduling/?view=month&date=2026-12-01&clinician={clinician.pk}"
    ).content.decode()
    assert busy_blocks(month) == []


def test_other_practices_see_none_of_it(login, outsider_admin, busy_day):
    html = (
        login(outsider_admin)
        .get("/scheduling/?view=week&date=2026-12-01&clinician=all")
        .content.decode()
    )
    assert busy_blocks(html) == []
