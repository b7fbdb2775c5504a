"""The calendar at a large practice: the agenda, overlap lanes, whose an event is,
teams and locations as filters, 25 clinicians a page, pinned query counts, and
Settings → Teams."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from practice.models import Role
from scheduling.models import Appointment, Team
from scheduling.selectors import MAX_LANES, calendar_page
from tests.factories import (
    make_appointment,
    make_location,
    make_patient,
    make_team,
    make_user,
)

pytestmark = pytest.mark.django_db


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(context)


def _columns(html: str) -> int:
    return len(re.findall(r'<section class="cal-col', html))


def _crowd(practice, count, *, patient, at, location=None):
    clinicians = []
    for number in range(count):
        clinician = make_user(
            practice, roles=[Role.CLINICIAN], name=f"Clinician {number:03d}"
        )
        for day in range(3):
            make_appointment(
                clinician,
                patients=[patient],
                start=at(2027, 1, 4 + day, 8 + number % 9, 0),
                location=location,
            )
        clinicians.append(clinician)
    return clinicians


VIEWS = [
    "view=agenda&date=2027-01-04",
    "view=week&date=2027-01-04",
    "view=week&days=1&date=2027-01-04",
    "view=day&date=2027-01-05",
    "view=month&date=2027-01-04",
]


@pytest.mark.parametrize("view", VIEWS)
def test_all_clinicians_views_make_as_many_queries_for_3_clinicians_as_for_40(
    login, practice, scheduler, at, view
):
    patient = make_patient(practice, first_name="Noor", last_name="Ali")
    office = make_location(practice, name="Annex")
    few = _crowd(practice, 3, patient=patient, at=at, location=office)
    team = make_team(practice, name="Adults", members=few)
    client = login(scheduler)
    client.get("/scheduling/")  # warm the session

    def urls(team):
        return {
            "everyone": f"/scheduling/?{view}&clinician=all",
            "team": f"/scheduling/?{view}&clinician=all&team={team.pk}",
            "location": f"/scheduling/?{view}&clinician=all&location={office.pk}",
            "page 2": f"/scheduling/?{view}&clinician=all&page=2",
        }

    small = {name: _queries(client, url) for name, url in urls(team).items()}
    many = _crowd(practice, 37, patient=patient, at=at, location=office)
    everyone = make_team(practice, name="Everyone", members=few + many)
    large = {name: _queries(client, url) for name, url in urls(everyone).items()}
    assert small == large
    # Session, user, practice, allowed networks; clinicians, teams, locations;
    # appointments and their patients; the audit event; the session's save
    # (savepoint, update, release). A team or a location filter adds the one
    # query that narrows the clinicians; every view but the month reads the
    # clinicians' personal busy time in one more.
    busy = 0 if view.startswith("view=month") else 1
    assert large == {
        "everyone": 13 + busy,
        "team": 14 + busy,
        "location": 14 + busy,
        "page 2": 13 + busy,
    }


def test_all_clinicians_views_show_25_clinicians_a_page(login, practice, scheduler, at):
    patient = make_patient(practice, first_name="Noor", last_name="Ali")
    _crowd(practice, 30, patient=patient, at=at)
    client = login(scheduler)
    first = client.get("/scheduling/?view=day&date=2027-01-05&clinician=all")
    html = first.content.decode()
    assert _columns(html) == 25
    assert "Clinicians 1–25 of 30" in html
    assert 'aria-label="Clinician 024"' in html
    assert 'aria-label="Clinician 025"' not in html
    second = client.get(
        "/scheduling/?view=day&date=2027-01-05&clinician=all&page=2"
    ).content.decode()
    assert _columns(second) == 5
    assert "Clinicians 26–30 of 30" in second
    assert 'aria-label="Clinician 025"' in second
    assert 'aria-label="Clinician 024"' not in second
    # A page past the end shows the last one.
    last = client.get("/scheduling/?view=day&date=2027-01-05&clinician=all&page=9")
    assert _columns(last.content.decode()) == 5


def test_team_and_location_filters_narrow_clinicians_and_appointments(
    login, practice, scheduler, clinician, other_clinician, patient, at
):
    annex = make_location(practice, name="Annex")
    main = make_location(practice, name="Main Street")
    third = make_user(practice, roles=[Role.CLINICIAN], name="Lee Park")
    make_appointment(
        clinician, patients=[patient], start=at(2027, 1, 5, 9, 0), location=annex
    )
    make_appointment(
        clinician, patients=[patient], start=at(2027, 1, 5, 11, 0), location=main
    )
    make_appointment(
        other_clinician, patients=[patient], start=at(2027, 1, 5, 10, 0), location=main
    )
    make_appointment(third, patients=[patient], start=at(2027, 1, 5, 12, 0))
    team = make_team(practice, name="Couples", members=[clinician, third])
    client = login(scheduler)
    base = "/scheduling/?view=day&date=2027-01-05&clinician=all"

    by_team = client.get(f"{base}&team={team.pk}").content.decode()
    assert _columns(by_team) == 2
    assert 'aria-label="Dana Rivera, LCSW"' in by_team
    assert 'aria-label="Lee Park"' in by_team
    assert 'aria-label="Wei Chen, PhD"' not in by_team

    at_annex = client.get(f"{base}&location={annex.pk}").content.decode()
    assert _columns(at_annex) == 1  # only Dana Rivera worked at the Annex
    assert "09:00–09:50" in at_annex and "11:00–11:50" not in at_annex

    both = client.get(f"{base}&team={team.pk}&location={main.pk}").content.decode()
    assert _columns(both) == 1
    assert "11:00–11:50" in both and "10:00–10:50" not in both


def test_another_practices_team_or_location_is_404(
    login, scheduler, outsider_admin, other_practice
):
    theirs = make_team(other_practice, name="Theirs", members=[outsider_admin])
    their_office = make_location(other_practice, name="Their office")
    client = login(scheduler)
    assert client.get(f"/scheduling/?clinician=all&team={theirs.pk}").status_code == 404
    assert (
        client.get(f"/scheduling/?clinician=all&location={their_office.pk}").status_code
        == 404
    )


def test_agenda_lists_each_day_with_one_line_per_appointment(
    login, clinician, patient, at
):
    make_appointment(clinician, patients=[patient], start=at(2027, 1, 5, 9, 0))
    make_appointment(
        clinician,
        kind=Appointment.Kind.EVENT,
        title="Supervision",
        patients=[],
        start=at(2027, 1, 7, 13, 0),
    )
    html = (
        login(clinician)
        .get("/scheduling/?view=agenda&date=2027-01-04")
        .content.decode()
    )
    for day in ("Monday 4 January", "Tuesday 5 January", "Sunday 10 January"):
        assert day in html
    assert "Monday 11 January" not in html
    assert html.count('class="agenda-item') == 2
    assert "09:00–09:50" in html and "Élodie O&#x27;Brien" in html
    assert "13:00–13:50" in html and "Supervision" in html
    assert "Nothing booked." in html


def test_events_say_whose_they_are_in_all_clinicians_views(
    login, scheduler, clinician, other_clinician, at
):
    for owner in (clinician, other_clinician):
        make_appointment(
            owner,
            kind=Appointment.Kind.EVENT,
            title="Staff meeting",
            patients=[],
            start=at(2027, 1, 6, 12, 0),
        )
    make_appointment(
        other_clinician,
        kind=Appointment.Kind.EVENT,
        title="Out of office",
        patients=[],
        start=at(2027, 1, 7, 8, 0),
        minutes=480,
    )
    client = login(scheduler)
    month = client.get(
        "/scheduling/?view=month&date=2027-01-06&clinician=all"
    ).content.decode()
    assert "Out of office — Wei Chen" in month
    assert "Staff meeting — Dana Rivera" in month
    assert "Staff meeting — Wei Chen" in month
    week = client.get(
        "/scheduling/?view=week&date=2027-01-06&clinician=all"
    ).content.decode()
    assert re.search(
        r"Out of office</span>\s*<span class=\"cal-short\">[^<]*</span>\s*"
        r"<span class=\"cal-who\">Wei Chen</span>",
        week,
    )
    agenda = client.get(
        "/scheduling/?view=agenda&date=2027-01-06&clinician=all"
    ).content.decode()
    assert agenda.count('<span class="agenda-who">Wei Chen</span>') == 2
    # One clinician's own calendar needs no owner.
    own = client.get(
        f"/scheduling/?view=month&date=2027-01-06&clinician={other_clinician.pk}"
    ).content.decode()
    assert "Out of office — " not in own


def test_seven_overlapping_appointments_take_six_lanes_and_one_more(
    scheduler, clinician, at
):
    for number in range(7):
        patient = make_patient(
            clinician.practice, first_name=f"P{number}", last_name="Ng"
        )
        make_appointment(clinician, patients=[patient], start=at(2027, 1, 5, 9, 0))
    later = make_patient(clinician.practice, first_name="Later", last_name="Ng")
    make_appointment(clinician, patients=[later], start=at(2027, 1, 5, 14, 0))
    page = calendar_page(
        user=scheduler,
        view="day",
        anchor=at(2027, 1, 5, 9, 0).date(),
        clinician_id=clinician.pk,
    )
    (column,) = page.columns
    assert column.lanes == MAX_LANES == 6
    assert len(column.entries) == 7  # six at 9:00, the 14:00 one in lane 0
    assert sorted(entry.lane for entry in column.entries) == [0, 0, 1, 2, 3, 4, 5]
    (more,) = column.more
    assert more.count == 1
    assert column.grid_lanes == 7
    # The 14:00 appointment has the whole width.
    (alone,) = [e for e in column.entries if e.start.hour == 14]
    assert alone.width == 6


# -- Settings → Teams ----------------------------------------------------------------


def test_an_administrator_adds_and_changes_a_team(
    login, admin_user, clinician, other_clinician
):
    client = login(admin_user)
    assert client.get("/settings/teams/").status_code == 200
    response = client.post(
        "/settings/teams/new/",
        {"name": "  Children  and families ", "members": [clinician.pk]},
    )
    assert response.status_code == 302
    team = Team.objects.get()
    assert team.name == "Children and families"
    assert list(team.members.all()) == [clinician]
    page = client.get("/settings/teams/").content.decode()
    assert "Children and families" in page
    assert 'aria-current="page">Teams' in page

    client.post(
        f"/settings/teams/{team.pk}/",
        {"name": "Families", "members": [clinician.pk, other_clinician.pk]},
    )
    team.refresh_from_db()
    assert team.name == "Families"
    assert set(team.members.all()) == {clinician, other_clinician}

    # The same name twice is refused with a message; nothing is saved.
    again = client.post("/settings/teams/new/", {"name": "families"})
    assert again.status_code == 200
    assert "already exists" in again.content.decode()
    assert Team.objects.count() == 1

    # A bare POST removes nothing; the page's form names the team.
    client.post(f"/settings/teams/{team.pk}/delete/")
    assert Team.objects.exists()
    client.post(f"/settings/teams/{team.pk}/delete/", {"team": team.pk})
    assert not Team.objects.exists()


def test_a_team_takes_only_this_practices_clinicians(
    login, admin_user, scheduler, outsider_admin
):
    client = login(admin_user)
    for member in (outsider_admin, scheduler):  # another practice; not a clinician
        response = client.post(
            "/settings/teams/new/", {"name": "Mixed", "members": [member.pk]}
        )
        assert response.status_code == 200
        assert "Choose clinicians of this practice." in response.content.decode()
    assert not Team.objects.exists()


def test_teams_are_for_administrators_of_the_practice(
    login, scheduler, admin_user, outsider_admin, other_practice
):
    theirs = make_team(other_practice, name="Theirs", members=[outsider_admin])
    assert login(scheduler).get("/settings/teams/").status_code == 403
    client = login(admin_user)
    assert client.get(f"/settings/teams/{theirs.pk}/").status_code == 404
    assert (
        client.post(
            f"/settings/teams/{theirs.pk}/delete/", {"team": theirs.pk}
        ).status_code
        == 404
    )
    assert Team.objects.filter(pk=theirs.pk).exists()
