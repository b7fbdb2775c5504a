"""Real Chromium at phone width: a clinician makes, resets and turns off a
busy-only link on the sync page, and the personal link stays as it was."""

import pytest

from scheduling.models import Appointment
from tests.factories import make_appointment, make_patient
from tests.support import browser_login

pytestmark = pytest.mark.browser


@pytest.fixture
def live_site(settings, live_server):
    settings.SITE_URL = live_server.url
    return live_server.url


def test_clinician_makes_resets_and_disables_a_busy_link_on_a_phone(
    phone_page, live_site, practice, clinician
):
    patient = make_patient(practice, first_name="Zebulonia", last_name="Quixwhistle")
    make_appointment(clinician, patients=[patient])
    make_appointment(clinician, kind=Appointment.Kind.EVENT, title="Dentist visit")
    page = phone_page
    browser_login(page, clinician.email)
    page.wait_for_url("**/scheduling/**")
    page.goto("/settings/sync/")
    section = page.locator("#busy")
    section.get_by_role("heading", name="Busy-only calendar to share").wait_for()
    assert "no patient initials" in section.inner_text()
    personal = page.locator(f"#feed-personal-{clinician.pk}-url").input_value()

    section.get_by_role("button", name="Make a busy-only link").click()
    page.get_by_text("Your busy-only link is ready").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    section = page.locator("#busy")
    address = section.locator(f"#feed-busy-{clinician.pk}-url")
    busy_url = address.input_value()
    assert busy_url.startswith(live_site + "/calendar/")
    assert busy_url != personal
    subscribe = section.get_by_role("link", name="Subscribe")
    assert subscribe.get_attribute("href") == "webcal://" + busy_url.split("://", 1)[1]
    section.locator(f'[data-copy="#feed-busy-{clinician.pk}-url"]').click()
    assert page.evaluate("navigator.clipboard.readText()") == busy_url
    section.get_by_text("QR code for a phone").click()
    assert section.get_by_alt_text("QR code", exact=False).is_visible()
    assert section.get_by_role("button", name="Email this link to me").is_visible()

    feed = page.request.get(busy_url)
    assert feed.status == 200
    body = feed.text()
    assert body.count("SUMMARY:Busy\r\n") == 2
    for leak in ("Zebulonia", "Z.Q.", "Dentist"):
        assert leak not in body

    messages = []

    def accept(dialog):
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    section.get_by_role("button", name="Reset busy-only link").click()
    page.get_by_text("Your busy-only link was replaced").wait_for()
    assert "personal calendar link does not change" in messages[0]
    renewed = page.locator(f"#feed-busy-{clinician.pk}-url").input_value()
    assert renewed != busy_url
    assert page.request.get(busy_url).status == 404
    assert page.request.get(renewed).status == 200
    assert page.locator(f"#feed-personal-{clinician.pk}-url").input_value() == personal
    assert page.request.get(personal).status == 200

    page.once("dialog", accept)
    page.locator("#busy").get_by_role("button", name="Disable busy-only link").click()
    page.get_by_text("Your busy-only link is off").wait_for()
    assert "stops working at once" in messages[1]
    assert page.request.get(renewed).status == 404
    assert page.request.get(personal).status == 200
    assert page.locator(f"#feed-busy-{clinician.pk}-url").count() == 0
    page.locator("#busy").get_by_role("button", name="Make a busy-only link").wait_for()
