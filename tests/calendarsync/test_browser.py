"""Real Chromium: a clinician on a phone, and an administrator cutting off a link."""

import pytest

from calendarsync.models import FeedScope
from scheduling.models import Appointment
from tests.factories import feed_links, make_appointment
from tests.support import browser_login

pytestmark = pytest.mark.browser


@pytest.fixture
def live_site(settings, live_server):
    settings.SITE_URL = live_server.url
    return live_server.url


def test_clinician_subscribes_from_a_phone_and_resets(phone_page, live_site, clinician):
    make_appointment(clinician, kind=Appointment.Kind.EVENT, title="Team huddle")
    page = phone_page
    browser_login(page, clinician.email)
    page.wait_for_url("**/scheduling/**")
    page.goto("/settings/sync/")
    page.get_by_role("heading", name="Your personal calendar").wait_for()

    # Nothing sticks out sideways on a 360 px screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    address = page.locator(f"#feed-personal-{clinician.pk}-url")
    old_url = address.input_value()
    assert old_url.startswith(live_site + "/calendar/")
    subscribe = page.get_by_role("link", name="Subscribe")
    assert subscribe.get_attribute("href") == "webcal://" + old_url.split("://", 1)[1]
    page.locator(f'[data-copy="#feed-personal-{clinician.pk}-url"]').click()
    assert page.evaluate("navigator.clipboard.readText()") == old_url
    page.get_by_text("QR code for a phone").click()
    assert page.get_by_alt_text("QR code", exact=False).is_visible()

    feed = page.request.get(old_url)
    assert feed.status == 200
    assert feed.headers["content-type"] == "text/calendar; charset=utf-8"
    assert "SUMMARY:Team huddle" in feed.text()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Reset Access").click()
    page.get_by_text("New links were issued").wait_for()
    new_url = page.locator(f"#feed-personal-{clinician.pk}-url").input_value()
    assert new_url != old_url
    assert page.request.get(old_url).status == 404
    assert page.request.get(new_url).status == 200


def test_reset_can_be_called_off(phone_page, live_site, clinician):
    page = phone_page
    browser_login(page, clinician.email)
    page.wait_for_url("**/scheduling/**")
    page.goto("/settings/sync/")
    before = page.locator(f"#feed-personal-{clinician.pk}-url").input_value()
    messages = []

    def dismiss(dialog):
        messages.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="Reset Access").click()
    page.wait_for_timeout(300)
    assert "subscribe again" in messages[0]
    assert page.locator(f"#feed-personal-{clinician.pk}-url").input_value() == before


def test_admin_disables_a_scheduler_and_the_practice_link_dies(
    page, live_site, admin_user, scheduler, clinician
):
    path = feed_links(scheduler)[(FeedScope.PRACTICE, None)]
    assert page.request.get(live_site + path).status == 200

    browser_login(page, admin_user.email)
    page.wait_for_url("**/scheduling/**")
    page.goto("/settings/sync/admin/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Disable access for Sam Porter").click()
    page.get_by_text("Calendar sync is off for Sam Porter").wait_for()
    assert page.request.get(live_site + path).status == 404


def test_clinician_connects_a_calendar_account_and_disconnects_it(
    phone_page, live_site, clinician, radicale
):
    make_appointment(clinician, kind=Appointment.Kind.EVENT, title="Team huddle")
    page = phone_page
    browser_login(page, clinician.email)
    page.wait_for_url("**/scheduling/**")
    page.goto("/settings/sync/")
    page.get_by_role("heading", name="Send to your calendar account").wait_for()

    page.get_by_label("Provider").select_option("other")
    page.get_by_label("Server address").fill(radicale.url)
    page.get_by_label("Username").fill(radicale.username)
    page.get_by_label("App-specific password").fill(radicale.password)
    page.get_by_role("button", name="Connect").click()
    page.get_by_role("heading", name="Choose the calendar Tend writes into").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    page.get_by_role("button", name="Use this calendar").click()
    page.get_by_text("Up to date · last change sent").wait_for()
    assert page.get_by_text("calendar “Tend — Riverside Counseling”").is_visible()

    page.get_by_label("Also delete Tend's calendar from the account").check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Disconnect").click()
    page.get_by_text("Tend's calendar was deleted from your account.").wait_for()
    page.get_by_role("button", name="Connect").wait_for()
