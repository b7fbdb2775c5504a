"""Chromium: a scheduler books, moves and cancels a series from the week view; a
clinician cannot reach another clinician's patient."""

import re

import pytest
from playwright.sync_api import expect

from scheduling.models import Appointment
from tests.support import browser_login

pytestmark = pytest.mark.browser


def entry(page, text):
    return page.locator("a.cal-entry", has_text=text)


def test_scheduler_books_moves_and_cancels_a_weekly_series(
    page, scheduler, clinician, patient, service, office
):
    browser_login(page, scheduler.email)
    page.wait_for_url("**/scheduling/**")
    page.goto(f"/scheduling/?date=2027-01-05&clinician={clinician.pk}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("4 – 10 January 2027")

    # Book: click the free 9:00 slot on Tuesday.
    page.get_by_role(
        "link", name="Book Tue 5 Jan at 09:00 with Dana Rivera, LCSW"
    ).click()
    expect(page.get_by_label("Starts")).to_have_value("2027-01-05T09:00")
    page.get_by_role("combobox", name="Patients").fill("obri")
    page.get_by_role("option", name="O'Brien, Élodie").click()
    page.get_by_label("Service").select_option(label="Psychotherapy, 53 min")
    page.get_by_label("Location").select_option(label="Main Street office")
    expect(page.get_by_label("Ends")).to_have_value(
        "2027-01-05T09:53"
    )  # from the service
    page.get_by_label("Repeats").select_option("weekly")
    page.get_by_role("spinbutton", name="Number of appointments").fill("4")
    page.get_by_role("button", name="Book").click()
    expect(page.get_by_text("Series booked.")).to_be_visible()
    expect(entry(page, "Élodie O'Brien")).to_contain_text("09:00–09:53")
    assert Appointment.objects.count() == 4

    # Move the second occurrence (12 January) to Wednesday 11:00, only that one.
    page.get_by_role("link", name="Next").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("11 – 17 January 2027")
    entry(page, "Élodie O'Brien").click()
    page.get_by_role("link", name="Edit or reschedule").click()
    page.get_by_label("Starts").fill("2027-01-13T11:00")
    page.get_by_label("Ends").fill("2027-01-13T11:53")
    page.get_by_label("Only this appointment").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Appointment saved.")).to_be_visible()
    moved = entry(page, "Élodie O'Brien")
    expect(moved).to_contain_text("11:00–11:53")
    expect(
        page.locator("section.cal-col", has_text="13 Jan").locator("a.cal-entry")
    ).to_have_count(1)
    expect(
        page.locator("section.cal-col", has_text="12 Jan").locator("a.cal-entry")
    ).to_have_count(0)

    # Cancel the third occurrence and the ones after it.
    page.get_by_role("link", name="Next").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("18 – 24 January 2027")
    entry(page, "Élodie O'Brien").click()
    page.get_by_label("This and all following appointments of the series").first.check()
    page.get_by_role("button", name="Cancel appointment").click()
    expect(page.get_by_text("Marked cancelled.")).to_be_visible()
    page.get_by_role("link", name="Back to the calendar").click()
    cancelled = entry(page, "Élodie O'Brien")
    expect(cancelled).to_have_class(re.compile(r"\bis-cancelled\b"))
    expect(cancelled).to_contain_text("Cancelled")
    page.get_by_role("link", name="Next").click()
    expect(entry(page, "Élodie O'Brien")).to_have_class(re.compile(r"\bis-cancelled\b"))
    page.get_by_role("link", name="Hide cancelled").click()
    expect(entry(page, "Élodie O'Brien")).to_have_count(0)
    # The first two are untouched.
    page.goto(f"/scheduling/?date=2027-01-05&clinician={clinician.pk}")
    expect(entry(page, "Élodie O'Brien")).not_to_have_class(re.compile("is-cancelled"))
    statuses = list(
        Appointment.objects.order_by("start").values_list("status", flat=True)
    )
    assert statuses == ["scheduled", "scheduled", "cancelled", "cancelled"]


def test_clinician_cannot_see_another_clinicians_patient(
    page, clinician, other_clinician, patient, other_patient
):
    browser_login(page, clinician.email)
    page.wait_for_url("**/scheduling/**")
    page.get_by_role("link", name="Patients").click()
    expect(page.get_by_role("link", name="O'Brien, Élodie")).to_be_visible()
    expect(page.get_by_text("Mensah")).to_have_count(0)
    page.get_by_label("Search by name").fill("kwame")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No patient matches")).to_be_visible()
    response = page.goto(f"/patients/{other_patient.pk}/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_text("Kwame")).to_have_count(0)


def test_week_view_works_at_phone_width(phone_page, scheduler, clinician):
    browser_login(phone_page, scheduler.email)
    phone_page.wait_for_url("**/scheduling/**")
    # A phone's week shows one day at a time.
    phone_page.goto(f"/scheduling/?view=week&date=2027-01-04&clinician={clinician.pk}")
    expect(phone_page.locator("section.cal-col")).to_have_count(1)
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360
    phone_page.get_by_role(
        "link", name="Book Mon 4 Jan at 10:00 with Dana Rivera, LCSW"
    ).click()
    expect(phone_page.get_by_label("Starts")).to_have_value("2027-01-04T10:00")
