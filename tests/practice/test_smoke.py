def test_shell_has_tabs(login, admin_user):
    response = login(admin_user).get("/settings/")
    assert response.status_code == 200
    html = response.content.decode()
    for tab in ("SCHEDULING", "Patients", "Settings"):
        assert f">{tab}</a>" in html
    assert 'aria-current="page">Settings</a>' in html
    assert "Riverside Counseling" in html
    assert "Sign out" in html


def test_missing_page_is_a_friendly_404(login, admin_user):
    response = login(admin_user).get("/no-such-page/")
    assert response.status_code == 404
    assert (
        b"There is nothing here, or it is not part of your practice."
        in response.content
    )
