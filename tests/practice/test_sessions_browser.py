"""Real Chromium: "Sign out everywhere" asks first, then ends the sessions of every
browser the user signed in with."""

import pytest

from tests.support import browser_login

pytestmark = pytest.mark.browser


def test_an_administrator_signs_a_users_phone_out(page, phone, admin_user, clinician):
    browser_login(phone, clinician.email)
    phone.wait_for_url("**/scheduling/")
    browser_login(page, admin_user.email)
    page.wait_for_url("**/scheduling/")
    page.goto(f"/settings/users/{clinician.pk}/")

    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Sign out everywhere").click()
    page.get_by_text("Dana Rivera, LCSW was signed out on every device.").wait_for()
    assert asked == ["Sign Dana Rivera, LCSW out on every device?"]

    phone.goto("/settings/")
    phone.wait_for_url("**/login/?next=/settings/")
    page.goto("/settings/")
    page.wait_for_url("**/settings/")


def test_you_sign_out_everywhere_after_saying_yes(page, phone, clinician):
    browser_login(phone, clinician.email)
    phone.wait_for_url("**/scheduling/")
    browser_login(page, clinician.email)
    page.wait_for_url("**/scheduling/")
    page.goto("/password/change/")

    # "Cancel" in the confirmation changes nothing.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Sign out everywhere").click()
    phone.goto("/settings/")
    phone.wait_for_url("**/settings/")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Sign out everywhere").click()
    page.wait_for_url("**/login/")
    assert page.get_by_text(
        "You were signed out on every device, this one included."
    ).is_visible()
    phone.goto("/settings/")
    phone.wait_for_url("**/login/?next=/settings/")
