"""Chromium at phone width (390×844): moving an appointment to another day keeps
its length, a couples session is booked with the patient picker by keyboard alone,
and a failed save puts focus on the summary of its errors."""

import pytest
from playwright.sync_api import expect

from scheduling.models import Appointment
from tests.factories import make_patient
from tests.support import browser_login

pytestmark = pytest.mark.browser


def test_moving_to_another_day_moves_the_end_with_the_start(
    phone, scheduler, clinician, patient, book, at
):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2027, 1, 12, 9, 0)
    )
    browser_login(phone, scheduler.email)
    phone.wait_for_url("**/scheduling/**")
    phone.goto(f"/scheduling/appointments/{appointment.pk}/edit/")
    expect(phone.get_by_label("Ends")).to_have_value("2027-01-12T09:53")

    phone.get_by_label("Starts").fill("2027-01-14T11:00")
    expect(phone.get_by_label("Ends")).to_have_value("2027-01-14T11:53")
    phone.get_by_role("button", name="Save").click()

    expect(phone.get_by_text("Appointment saved.")).to_be_visible()
    appointment.refresh_from_db()
    assert (appointment.start, appointment.end) == (
        at(2027, 1, 14, 11, 0),
        at(2027, 1, 14, 11, 53),
    )

    # An end changed by hand is left where it was put.
    phone.goto(f"/scheduling/appointments/{appointment.pk}/edit/")
    phone.get_by_label("Ends").fill("2027-01-14T12:30")
    phone.get_by_label("Starts").fill("2027-01-14T11:30")
    expect(phone.get_by_label("Ends")).to_have_value("2027-01-14T12:30")


def test_couples_session_booked_with_the_keyboard_alone(
    phone, scheduler, clinician, patient, second_patient, service
):
    make_patient(clinician.practice, first_name="Marek", last_name="Vance")
    browser_login(phone, scheduler.email)
    phone.wait_for_url("**/scheduling/**")
    phone.goto(f"/scheduling/new/?start=2027-01-05T09:00&clinician={clinician.pk}")
    combobox = phone.get_by_role("combobox", name="Patients")
    expect(combobox).to_have_attribute("aria-expanded", "false")
    expect(phone.locator("select[name=patients]")).to_be_hidden()

    phone.get_by_label("Clinician").focus()
    phone.keyboard.press("Tab")
    expect(combobox).to_be_focused()

    phone.keyboard.type("obri")
    expect(combobox).to_have_attribute("aria-expanded", "true")
    listbox = phone.get_by_role("listbox")
    expect(listbox.get_by_role("option")).to_have_count(1)
    expect(combobox).to_have_attribute(
        "aria-activedescendant", f"id_patients_option_{patient.pk}"
    )
    phone.keyboard.press("Enter")
    expect(phone.get_by_role("button", name="Remove O'Brien, Élodie")).to_be_visible()
    expect(combobox).to_have_attribute("aria-expanded", "false")

    # A wrong choice, taken back with Backspace.
    phone.keyboard.type("marek")
    phone.keyboard.press("Enter")
    expect(phone.get_by_role("button", name="Remove Vance, Marek")).to_be_visible()
    phone.keyboard.press("Backspace")
    expect(phone.get_by_role("button", name="Remove Vance, Marek")).to_have_count(0)

    # Escape closes the list without choosing.
    phone.keyboard.type("van")
    expect(combobox).to_have_attribute("aria-expanded", "true")
    phone.keyboard.press("Escape")
    expect(combobox).to_have_attribute("aria-expanded", "false")
    phone.keyboard.press("ArrowDown")  # opens the list again, on its first option
    expect(listbox.get_by_role("option")).to_have_text(
        ["Vance, Marek", "van der Berg, Mary-Kate"]
    )
    phone.keyboard.press("ArrowDown")
    expect(combobox).to_have_attribute(
        "aria-activedescendant", f"id_patients_option_{second_patient.pk}"
    )
    phone.keyboard.press("Enter")
    expect(
        phone.get_by_role("button", name="Remove van der Berg, Mary-Kate")
    ).to_be_visible()

    # The service sets the end; then Enter in the empty search box books.
    phone.keyboard.press("Tab")
    expect(phone.get_by_label("Service")).to_be_focused()
    phone.keyboard.press("ArrowDown")
    expect(phone.get_by_label("Ends")).to_have_value("2027-01-05T09:53")
    phone.keyboard.press("Shift+Tab")
    expect(combobox).to_be_focused()
    phone.keyboard.press("Enter")

    expect(phone.get_by_text("Appointment booked.")).to_be_visible()
    booked = Appointment.objects.get()
    assert {p.pk for p in booked.patients.all()} == {patient.pk, second_patient.pk}


def test_a_failed_save_focuses_the_error_summary(
    phone, scheduler, clinician, patient, book, at
):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2027, 1, 12, 9, 0)
    )
    browser_login(phone, scheduler.email)
    phone.wait_for_url("**/scheduling/**")
    phone.goto(f"/scheduling/appointments/{appointment.pk}/edit/")
    phone.get_by_label("Ends").fill("2027-01-12T08:00")
    phone.get_by_role("button", name="Save").click()

    summary = phone.get_by_role("alert").filter(has_text="Nothing was saved")
    expect(summary).to_be_focused()
    expect(summary).to_be_in_viewport()
    link = summary.get_by_role("link", name="Ends: The end is before the start.")
    link.click()
    expect(phone.get_by_label("Ends")).to_be_focused()
