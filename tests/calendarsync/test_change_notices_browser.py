"""Real Chromium at phone width: a clinician turns change notices on and off."""

import pytest

from calendarsync.models import ChangeNoticeSubscription
from tests.support import browser_login

pytestmark = pytest.mark.browser


def test_clinician_turns_change_notices_on_and_off_on_a_phone(
    phone_page, live_server, clinician
):
    page = phone_page
    browser_login(page, clinician.email)
    page.wait_for_url("**/scheduling/**")
    page.goto("/settings/sync/")
    section = page.locator("#change-notices")
    section.get_by_role("heading", name="Email me about changes soon").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    section.get_by_label("Email me about changes in the next 48 hours").check()
    section.get_by_role("button", name="Save").click()
    page.get_by_text(
        f"Change notices are on: Tend emails {clinician.email}", exact=False
    ).wait_for()
    assert ChangeNoticeSubscription.objects.filter(user=clinician).exists()
    assert section.get_by_label(
        "Email me about changes in the next 48 hours"
    ).is_checked()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    section.get_by_label("No emails").check()
    section.get_by_role("button", name="Save").click()
    page.get_by_text("Change notices are off: Tend no longer emails you").wait_for()
    assert not ChangeNoticeSubscription.objects.filter(user=clinician).exists()
