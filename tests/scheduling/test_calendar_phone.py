"""Chromium at phone width (390×844): the agenda is a phone's first view, the month
is a list of days, overlapping appointments keep their time and initials, the
all-clinicians views filter and page, and no page scrolls sideways."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from practice.models import Role
from scheduling.models import Appointment
from tests.factories import (
    local,
    make_appointment,
    make_location,
    make_patient,
    make_team,
    make_user,
)
from tests.support import browser_login

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
ALL_CLINICIANS_DAY = "/scheduling/?view=day&date=2027-01-14&clinician=all"


def overflow(page) -> int:
    """How many pixels the page is wider than the window (0 when it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


SCROLLED_SIDEWAYS = """() => Array.from(document.querySelectorAll("body *"))
  .filter((element) => {
    const style = getComputedStyle(element);
    return ["auto", "scroll"].includes(style.overflowX)
      && element.scrollWidth > element.clientWidth + 1;
  })
  .map((element) => element.tagName.toLowerCase() + "." + element.className)"""


def scrolled_sideways(page) -> list[str]:
    """The boxes inside the page that scroll sideways (a wide table in a
    scrolling frame, say): the page itself fitting is not enough."""
    return page.evaluate(SCROLLED_SIDEWAYS)


def test_a_phone_opens_the_agenda_one_line_per_appointment(
    phone, clinician, patient, second_patient, at
):
    practice = clinician.practice
    make_appointment(
        clinician, patients=[patient], start=local(practice, days=1, hour=9)
    )
    make_appointment(
        clinician, patients=[second_patient], start=local(practice, days=2, hour=14)
    )
    make_appointment(
        clinician,
        kind=Appointment.Kind.EVENT,
        title="Out of office",
        patients=[],
        start=local(practice, days=3, hour=8),
        minutes=480,
    )
    browser_login(phone, clinician.email)
    phone.wait_for_url("**/scheduling/")
    expect(phone.get_by_role("link", name="Agenda")).to_have_attribute(
        "aria-current", "page"
    )
    tomorrow = (local(practice, days=1)).strftime("%A %-d %B")
    heading = phone.get_by_role("heading", name=tomorrow)
    expect(heading).to_be_visible()
    line = phone.locator("a.agenda-item", has_text="Élodie O'Brien")
    expect(line).to_contain_text("09:00–09:50")
    box = line.bounding_box()
    assert box is not None and box["height"] < 60  # one line, not a block
    expect(phone.locator("a.agenda-item", has_text="Out of office")).to_contain_text(
        "08:00–16:00"
    )
    assert overflow(phone) <= 0
    # A week on a phone shows one day, with next and previous.
    phone.get_by_role("link", name="Week", exact=True).click()
    expect(phone.locator("section.cal-col")).to_have_count(1)
    expect(phone.locator("section.cal-col")).to_have_attribute(
        "aria-label", local(practice).strftime("%A %-d %B")
    )
    phone.get_by_role("link", name="Next").click()
    expect(phone.locator("section.cal-col")).to_have_attribute("aria-label", tomorrow)
    assert overflow(phone) <= 0
    # A message after a change is not lost on the way to the agenda.
    phone.get_by_role("link", name="Agenda").click()
    phone.locator("a.agenda-item", has_text="Élodie O'Brien").click()
    phone.get_by_role("button", name=re.compile("Cancel appointment")).click()
    expect(phone.get_by_text("Marked cancelled.")).to_be_visible()
    phone.get_by_role("link", name="Back to the calendar").click()
    expect(phone.get_by_role("link", name="Agenda")).to_have_attribute(
        "aria-current", "page"
    )
    expect(phone.locator("a.agenda-item", has_text="Élodie O'Brien")).to_contain_text(
        "Cancelled"
    )


def test_month_on_a_phone_is_a_list_of_days(phone, scheduler, clinician, patient, at):
    make_appointment(
        clinician, patients=[patient], start=at(2027, 1, 14, 10, 0)
    )  # a Thursday
    make_appointment(
        clinician,
        kind=Appointment.Kind.EVENT,
        title="Out of office",
        patients=[],
        start=at(2027, 1, 17, 9, 0),
    )  # a Sunday
    browser_login(phone, scheduler.email)
    phone.goto("/scheduling/?view=month&date=2027-01-10&clinician=all")
    assert overflow(phone) <= 0
    thursday = phone.locator(".cal-day", has_text="Thu 14 January")
    expect(thursday).to_contain_text("Élodie O'Brien — Dana Rivera")
    # The Sunday event says whose it is.
    sunday = phone.locator(".cal-day", has_text="Sun 17 January")
    expect(sunday).to_contain_text("Out of office — Dana Rivera")
    # Days follow each other down the page, each as wide as the list.
    first, second = (
        thursday.bounding_box(),
        phone.locator(".cal-day", has_text="Fri 15 January").bounding_box(),
    )
    assert second["y"] > first["y"]
    assert first["width"] > 300
    for chip in phone.locator("a.cal-chip").all():
        box = chip.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_seven_overlapping_appointments_keep_time_and_initials(
    phone, scheduler, clinician, at
):
    names = ["Ana", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus"]
    for first_name in names:
        patient = make_patient(
            clinician.practice, first_name=first_name, last_name="Kowalczyk"
        )
        make_appointment(
            clinician, patients=[patient], start=at(2027, 1, 5, 9, 0), minutes=50
        )
    browser_login(phone, scheduler.email)
    phone.goto(f"/scheduling/?view=day&date=2027-01-05&clinician={clinician.pk}")
    entries = phone.locator("a.cal-entry")
    expect(entries).to_have_count(6)
    more = phone.locator("a.cal-overflow")
    expect(more).to_have_text(re.compile(r"\+1\s+more"))
    expect(more).to_be_visible()
    for entry in entries.all():
        start = entry.locator(".cal-start")
        initials = entry.locator(".cal-short")
        expect(start).to_be_visible()
        expect(start).to_have_text("09:00")
        expect(initials).to_be_visible()
        # Shown whole: nothing of the time or the initials is cut off.
        for line in (start, initials):
            assert line.evaluate("e => e.scrollWidth <= e.clientWidth")
        # No line is cut through the middle: each is inside the block or wholly
        # outside it (wrapped away), never straddling its edge.
        block = entry.bounding_box()
        for line in entry.locator(":scope > span").all():
            box = line.bounding_box()
            if box is None:
                continue  # not displayed
            inside = (
                box["y"] >= block["y"] - 0.5
                and box["y"] + box["height"] <= block["y"] + block["height"] + 0.5
                and box["x"] + box["width"] <= block["x"] + block["width"] + 0.5
            )
            outside = box["x"] >= block["x"] + block["width"] - 0.5
            assert inside or outside, line.text_content()
    assert overflow(phone) <= 0
    # "+1 more" leads to the day's agenda, where all seven are listed.
    more.click()
    expect(phone.locator("a.agenda-item")).to_have_count(7)


def test_all_clinicians_filter_by_team_and_location_and_page(
    phone, practice, scheduler, at
):
    patient = make_patient(practice, first_name="Noor", last_name="Ali")
    clinicians = [
        make_user(practice, roles=[Role.CLINICIAN], name=f"Clinician {number:02d}")
        for number in range(30)
    ]
    annex = make_location(practice, name="Annex")
    for number, clinician in enumerate(clinicians):
        make_appointment(
            clinician,
            patients=[patient],
            start=at(2027, 1, 5, 8 + number % 10, 0),
            location=annex if number in (3, 27) else None,
        )
    make_team(practice, name="Children and families", members=clinicians[:2])
    browser_login(phone, scheduler.email)
    phone.goto("/scheduling/?view=agenda&date=2027-01-05&clinician=all")
    pager = phone.get_by_role("navigation", name="Clinicians")
    expect(pager).to_contain_text("Clinicians 1–25 of 30")
    expect(phone.locator("a.agenda-item")).to_have_count(25)
    pager.get_by_role("link", name="Next clinicians").click()
    expect(pager).to_contain_text("Clinicians 26–30 of 30")
    expect(phone.locator("a.agenda-item")).to_have_count(5)
    expect(phone.locator("a.agenda-item", has_text="Clinician 29")).to_have_count(1)

    phone.get_by_label("Team").select_option(label="Children and families")
    expect(pager).to_contain_text("Clinicians 1–2 of 2")
    expect(phone.locator("a.agenda-item")).to_have_count(2)
    expect(phone.locator("a.agenda-item", has_text="Clinician 01")).to_have_count(1)

    phone.get_by_label("Team").select_option(label="Every team")
    phone.get_by_label("Location").select_option(label="Annex")
    expect(pager).to_contain_text("Clinicians 1–2 of 2")
    items = phone.locator("a.agenda-item")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("Clinician 03")
    expect(items.last).to_contain_text("Clinician 27")
    # The filters carry over to another view.
    phone.get_by_role("link", name="Day", exact=True).click()
    expect(phone.locator("section.cal-col")).to_have_count(2)
    assert overflow(phone) <= 0


def test_week_view_skip_link_and_arrow_keys(page, clinician, patient, at):
    make_appointment(clinician, patients=[patient], start=at(2027, 1, 5, 11, 0))
    make_appointment(clinician, patients=[patient], start=at(2027, 1, 6, 10, 0))
    browser_login(page, clinician.email)
    page.goto("/scheduling/?view=week&date=2027-01-05")
    page.get_by_role("link", name="Skip to the first appointment").click()
    focused = page.locator("a.cal-entry:focus")
    expect(focused).to_contain_text("11:00")
    expect(focused).to_have_attribute("id", "first-appointment")
    page.keyboard.press("ArrowRight")
    expect(page.locator("a.cal-entry:focus")).to_contain_text("10:00")
    page.keyboard.press("ArrowRight")  # Thursday has nothing: its heading
    expect(page.locator(".cal-col-head a:focus")).to_contain_text("7 Jan")
    page.keyboard.press("ArrowLeft")
    expect(page.locator("a.cal-entry:focus")).to_contain_text("10:00")
    page.keyboard.press("ArrowLeft")
    expect(page.locator("a.cal-entry:focus")).to_contain_text("11:00")


def test_no_page_scrolls_sideways_at_phone_width(
    phone, admin_user, clinician, patient, service, office, at
):
    booked = make_appointment(
        clinician,
        patients=[patient],
        service=service,
        location=office,
        start=at(2027, 1, 14, 10, 0),
        notes="A long note " * 20,
    )
    for day in range(1, 29):
        make_appointment(
            clinician,
            patients=[patient],
            start=at(2027, 1, 1, 9, 0) + timedelta(days=day),
        )
    team = make_team(clinician.practice, name="Adults", members=[clinician])
    pages = [
        "/scheduling/",
        "/scheduling/?view=agenda&clinician=all",
        "/scheduling/?view=week&date=2027-01-14&clinician=all",
        f"/scheduling/?view=week&date=2027-01-14&clinician={clinician.pk}",
        ALL_CLINICIANS_DAY,
        f"/scheduling/?view=day&date=2027-01-14&clinician={clinician.pk}",
        "/scheduling/?view=month&date=2027-01-14&clinician=all",
        f"/scheduling/?view=month&date=2027-01-14&clinician={clinician.pk}",
        "/scheduling/new/",
        "/scheduling/new/?kind=event",
        f"/scheduling/appointments/{booked.pk}/",
        f"/scheduling/appointments/{booked.pk}/edit/",
        "/scheduling/setup/",
        "/scheduling/setup/services/new/",
        f"/scheduling/setup/services/{service.pk}/",
        "/scheduling/setup/locations/new/",
        f"/scheduling/setup/locations/{office.pk}/",
        "/patients/",
        "/patients/new/",
        f"/patients/{patient.pk}/",
        f"/patients/{patient.pk}/edit/",
        "/settings/",
        "/settings/practice/",
        "/settings/users/",
        "/settings/users/add/",
        f"/settings/users/{clinician.pk}/",
        "/settings/network/",
        "/settings/audit/",
        "/settings/teams/",
        "/settings/teams/new/",
        f"/settings/teams/{team.pk}/",
        "/settings/sync/",
        "/settings/sync/admin/",
        "/password/change/",
    ]
    browser_login(phone, admin_user.email)
    phone.wait_for_url("**/scheduling/")
    expect(phone.locator(".agenda")).to_be_visible()
    wide = {}
    for path in pages:
        answer = phone.goto(path)
        # None when the page sends a phone on (the calendar to its agenda).
        assert answer is None or answer.status == 200, path
        phone.wait_for_load_state("load")
        inside = scrolled_sideways(phone)
        if path == ALL_CLINICIANS_DAY:
            # A column per clinician: on a phone they scroll inside their frame
            # (the page itself does not).
            inside = [box for box in inside if box != "div.cal-scroll"]
        if overflow(phone) > 0 or inside:
            wide[phone.url] = (overflow(phone), inside)
    assert wide == {}
