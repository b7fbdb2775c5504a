import pytest

from tests.conftest import browser_login


def test_login_page_renders(client, db):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"Sign in" in response.content


def test_shell_has_tabs(login, admin_user):
    response = login(admin_user).get("/settings/")
    assert response.status_code == 200
    for tab in (b"SCHEDULING", b"Patients", b"Settings"):
        assert tab in response.content


@pytest.mark.browser
def test_browser_login(page, admin_user):
    browser_login(page, admin_user.email)
    page.wait_for_url("**/scheduling/")
    assert page.get_by_role("link", name="SCHEDULING").is_visible()
