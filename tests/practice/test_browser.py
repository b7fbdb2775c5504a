"""Real Chromium: signing in, adding a clinician, the network page, phone width."""

import pytest

from practice.models import Role, User
from practice.services import networks_set
from tests.support import browser_login

pytestmark = pytest.mark.browser

SETTINGS_PAGES = [
    "/settings/",
    "/settings/practice/",
    "/settings/users/",
    "/settings/users/add/",
    "/settings/network/",
    "/settings/audit/",
    "/password/change/",
]


def csp_violations(page) -> list[str]:
    messages = []
    page.on(
        "console",
        lambda message: (
            messages.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return messages


def test_signing_in_and_out(page, admin_user):
    page.goto("/settings/")
    page.wait_for_url("**/login/?next=/settings/")
    page.get_by_label("Email").fill(admin_user.email)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_text("That email and password do not match").is_visible()

    browser_login(page, admin_user.email)
    page.wait_for_url("**/scheduling/")
    assert page.get_by_role("link", name="SCHEDULING").is_visible()
    assert page.get_by_role("link", name="Settings").is_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login/")
    page.goto("/settings/")
    page.wait_for_url("**/login/?next=/settings/")


def test_administrator_adds_a_clinician(page, admin_user):
    violations = csp_violations(page)
    browser_login(page, admin_user.email)
    page.wait_for_url("**/scheduling/")
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings").get_by_role(
        "link", name="Users"
    ).click()
    page.get_by_role("link", name="Add a user").click()
    page.wait_for_url("**/settings/users/add/")

    # Forgetting the role is caught with a clear message.
    page.get_by_label("Email").fill("kim@riverside.test")
    page.get_by_label("Name:", exact=True).fill("Robin Kim")
    page.get_by_label("Credentials").fill("LMFT")
    page.get_by_role("button", name="Add user").click()
    assert page.get_by_text("Choose at least one role.").is_visible()
    assert not User.objects.filter(email="kim@riverside.test").exists()

    page.get_by_label("Clinician").check()
    page.get_by_role("button", name="Add user").click()
    page.wait_for_url("**/settings/users/")
    assert page.get_by_text("Robin Kim, LMFT was added").is_visible()
    assert page.get_by_role("link", name="Robin Kim, LMFT", exact=True).is_visible()
    kim = User.objects.get(email="kim@riverside.test")
    assert kim.roles == [Role.CLINICIAN]
    assert kim.practice_id == admin_user.practice_id
    assert violations == []


def test_network_restricted_practice_shows_its_403_page(page, admin_user, practice):
    # The live server sees 127.0.0.1; the practice allows only 10.0.0.0/8.
    browser_login(page, admin_user.email)
    page.wait_for_url("**/scheduling/")
    networks_set(
        practice=practice, cidrs=["10.0.0.0/8"], actor=admin_user, client_ip="10.1.2.3"
    )
    answer = page.goto("/settings/")
    assert answer.status == 403
    assert page.get_by_role(
        "heading", name="Tend is not available from this network"
    ).is_visible()
    assert page.get_by_text("127.0.0.1").is_visible()

    # Signing in again from here answers as a wrong password does: the network
    # page would confirm the password to anyone anywhere.
    page.get_by_role("button", name="Sign out").click()
    with page.expect_response(
        lambda response: (
            response.request.method == "POST" and response.url.endswith("/login/")
        )
    ) as answer:
        browser_login(page, admin_user.email)
    assert answer.value.status == 200
    assert (
        page.get_by_role("alert")
        .get_by_text("That email and password do not match an active account.")
        .is_visible()
    )
    page.goto("/settings/")
    assert page.url.endswith("/login/?next=/settings/"), "not signed in"


def test_phone_width_has_no_horizontal_overflow(phone_page, admin_user):
    page = phone_page
    violations = csp_violations(page)
    page.goto("/login/")
    widths = {"/login/": page.evaluate("document.documentElement.scrollWidth")}
    browser_login(page, admin_user.email)
    page.wait_for_url("**/scheduling/**")
    for path in SETTINGS_PAGES:
        page.goto(path)
        widths[path] = page.evaluate("document.documentElement.scrollWidth")
    assert {path: width for path, width in widths.items() if width > 360} == {}
    assert violations == []
