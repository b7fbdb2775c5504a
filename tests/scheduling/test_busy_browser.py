"""Chromium on a small phone (360×740): a clinician's personal busy time is a
visible block on their column (and a line of the agenda), and booking over it
warns naming only "personal calendar", with "Book anyway" booking all the same."""

import pytest
from playwright.sync_api import expect

from scheduling.models import Appointment
from tests.factories import make_busy_calendar, make_busy_time
from tests.support import browser_login

pytestmark = pytest.mark.browser

SECRET_NAME = "Therapy of my own (private)"


@pytest.fixture
def busy(clinician, at):
    calendar = make_busy_calendar(clinician, name=SECRET_NAME)
    return make_busy_time(clinician, calendar=calendar, start=at(2027, 1, 12, 10, 0))


def test_busy_block_on_the_clinicians_column_at_phone_width(
    phone_page, scheduler, clinician, other_clinician, patient, book, busy, at
):
    book(clinician=clinician, patients=[patient], start=at(2027, 1, 12, 10, 30))
    browser_login(phone_page, scheduler.email)
    phone_page.wait_for_url("**/scheduling/**")
    phone_page.goto("/scheduling/?view=day&date=2027-01-12&clinician=all")
    column = phone_page.get_by_role("region", name="Dana Rivera, LCSW")
    block = column.locator(".cal-busy")
    block.scroll_into_view_if_needed()
    expect(block).to_be_visible()
    expect(block).to_contain_text("10:00–11:00")
    expect(block).to_contain_text("Busy (personal)")
    expect(block).not_to_contain_text(SECRET_NAME)
    # Beside the appointment it overlaps, which stays in view and clickable.
    entry = column.locator("a.cal-entry")
    expect(entry).to_be_visible()
    block_box, entry_box = block.bounding_box(), entry.bounding_box()
    assert block_box["x"] + block_box["width"] <= entry_box["x"] + 1
    # A colleague's column has none of it.
    colleague = phone_page.get_by_role("region", name="Wei Chen, PhD")
    expect(colleague.locator(".cal-busy")).to_have_count(0)
    # Not a link: tapping it opens nothing.
    assert block.evaluate("(element) => element.closest('a')") is None
    # The agenda lists it among the day's appointments, in time order.
    phone_page.goto(
        f"/scheduling/?view=agenda&date=2027-01-12&clinician={clinician.pk}"
    )
    items = phone_page.locator(".agenda-day").first.locator(".agenda-item")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text("Busy (personal)")
    expect(items.nth(1)).to_contain_text("Élodie O'Brien")
    assert (
        phone_page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        <= 0
    )


def test_booking_over_busy_time_warns_and_books_anyway_at_phone_width(
    phone_page, scheduler, clinician, patient, service, busy
):
    browser_login(phone_page, scheduler.email)
    phone_page.wait_for_url("**/scheduling/**")
    phone_page.goto(f"/scheduling/new/?start=2027-01-12T10:30&clinician={clinician.pk}")
    combobox = phone_page.get_by_role("combobox", name="Patients")
    combobox.fill("obri")
    combobox.press("Enter")
    expect(
        phone_page.get_by_role("button", name="Remove O'Brien, Élodie")
    ).to_be_visible()
    phone_page.get_by_label("Ends").fill("2027-01-12T11:20")
    phone_page.get_by_role("button", name="Book", exact=True).click()

    warning = phone_page.get_by_role("alert").filter(has_text="personal calendar")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text(
        "Dana Rivera, LCSW is busy (personal calendar) Tue 12 Jan 2027, 10:00–11:00."
    )
    expect(warning).not_to_contain_text(SECRET_NAME)
    expect(warning.get_by_role("link", name="Change the time")).to_be_visible()
    assert not Appointment.objects.exists()

    phone_page.get_by_role("button", name="Book anyway").click()
    expect(phone_page.get_by_text("Appointment booked.")).to_be_visible()
    booked = Appointment.objects.get()
    assert booked.clinician == clinician
    assert [p.pk for p in booked.patients.all()] == [patient.pk]
