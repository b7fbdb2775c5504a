"""Real Chromium at phone width: a clinician adds a personal calendar by its secret
address, sees its state, and removes it."""

import pytest

from scheduling.models import BusyTime
from tests.calendarsync.busy_support import Answer
from tests.calendarsync.test_busy_pages import personal
from tests.support import browser_login

pytestmark = pytest.mark.browser


def test_a_clinician_adds_a_personal_calendar_and_sees_its_state(
    phone_page, clinician, calendar_server
):
    calendar_server.routes["/private-77aa/basic.ics"] = Answer(
        body=personal(clinician.practice)
    )
    calendar_server.routes["/gone.ics"] = Answer(404, b"Not found")
    page = phone_page
    browser_login(page, clinician.email)
    page.wait_for_url("**/scheduling/**")
    page.goto("/settings/sync/")
    page.get_by_role("heading", name="Personal calendars as busy time").wait_for()

    page.get_by_label("Secret iCal address").fill(calendar_server.url("/gone.ics"))
    page.get_by_role("button", name="Add calendar").click()
    page.get_by_text("404 — the address may have been reset").wait_for()

    page.get_by_label("Calendar name").fill("Family")
    page.get_by_label("Secret iCal address").fill(
        calendar_server.url("/private-77aa/basic.ics")
    )
    page.get_by_role("button", name="Add calendar").click()
    page.get_by_text("“Family” is read as busy time").wait_for()
    state = page.locator(".sync-busy-state")
    assert state.inner_text() == "Read just now · 3 busy times"
    assert "private-77aa" not in page.content()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    page.get_by_role("button", name="Refresh now").click()
    page.get_by_text("is being read again").wait_for()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove").click()
    page.get_by_text("“Family” was removed").wait_for()
    assert not BusyTime.objects.exists()
