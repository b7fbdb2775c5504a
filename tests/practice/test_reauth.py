"""Re-authentication before sensitive administrator actions: network
restrictions, roles, the two-factor requirement and the practice-wide calendar
switch need the password or a second factor confirmed in the last
REAUTH_MINUTES."""

import time

import pytest

from practice.models import AllowedNetwork, AuditEvent, Role
from practice.twofactor.services import REAUTH_SESSION_KEY
from tests.factories import PASSWORD, make_authenticator, make_recovery_codes
from tests.support import pass_second_step, totp_code


@pytest.fixture
def stale_admin(login, admin_user, settings):
    """An administrator whose last confirmation is older than REAUTH_MINUTES (the
    session's note is moved back in time)."""
    client = login(admin_user)
    session = client.session
    session[REAUTH_SESSION_KEY] = int(time.time()) - settings.REAUTH_MINUTES * 60 - 1
    session.save()
    return client


def test_a_fresh_sign_in_counts_as_confirmed(login, admin_user):
    assert login(admin_user).get("/settings/network/").status_code == 200


def test_a_page_goes_through_confirm_and_back(stale_admin):
    response = stale_admin.get("/settings/network/")
    assert response.url == "/login/confirm/?next=%2Fsettings%2Fnetwork%2F"
    page = stale_admin.get(response.url)
    assert page.status_code == 200
    assert "Confirm it's you" in page.content.decode()

    wrong = stale_admin.post(
        "/login/confirm/", {"password": "wrong", "next": "/settings/network/"}
    )
    assert b"That password is not right" in wrong.content
    assert stale_admin.get("/settings/network/").status_code == 302

    back = stale_admin.post(
        "/login/confirm/", {"password": PASSWORD, "next": "/settings/network/"}
    )
    assert back.url == "/settings/network/"
    assert stale_admin.get("/settings/network/").status_code == 200
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.REAUTHENTICATED).exists()


def test_a_posted_change_is_refused_until_confirmed(stale_admin, practice):
    refused = stale_admin.post("/settings/network/", {"networks": "10.0.0.0/8"})
    assert refused.status_code == 403
    assert b"Nothing was saved" in refused.content
    assert b'name="next" value="/settings/network/"' in refused.content
    assert not AllowedNetwork.objects.filter(practice=practice).exists()


def test_role_changes_need_a_recent_confirmation(stale_admin, clinician):
    assert stale_admin.get(f"/settings/users/{clinician.pk}/").url.startswith(
        "/login/confirm/"
    )
    refused = stale_admin.post(
        f"/settings/users/{clinician.pk}/",
        {"display_name": "Dana Rivera", "roles": ["clinician", "administrator"]},
    )
    assert refused.status_code == 403
    clinician.refresh_from_db()
    assert clinician.roles == [Role.CLINICIAN]


def test_the_practice_calendar_switch_needs_a_recent_confirmation(
    stale_admin, practice
):
    refused = stale_admin.post("/settings/sync/admin/practice/", {"enabled": "0"})
    assert refused.status_code == 403
    assert b'name="next" value="/settings/sync/admin/"' in refused.content
    practice.refresh_from_db()
    assert practice.calendar_sync_enabled
    stale_admin.post(
        "/login/confirm/", {"password": PASSWORD, "next": "/settings/sync/admin/"}
    )
    stale_admin.post("/settings/sync/admin/practice/", {"enabled": "0"})
    practice.refresh_from_db()
    assert not practice.calendar_sync_enabled


def test_only_switching_the_requirement_needs_a_confirmation(
    stale_admin, admin_user, practice
):
    make_authenticator(admin_user)
    form = {"name": "Riverside Counselling", "time_zone": practice.time_zone}
    assert stale_admin.post("/settings/practice/", form).status_code == 302
    practice.refresh_from_db()
    assert practice.name == "Riverside Counselling"

    refused = stale_admin.post(
        "/settings/practice/", {**form, "two_factor_required": "on"}
    )
    assert refused.status_code == 403
    practice.refresh_from_db()
    assert not practice.two_factor_required


def test_a_code_confirms_too_and_wrong_ones_count(client, admin_user, settings):
    key = make_authenticator(admin_user)
    codes = make_recovery_codes(admin_user)
    client.force_login(admin_user)
    pass_second_step(client, key)
    session = client.session
    session[REAUTH_SESSION_KEY] = 0
    session.save()
    form = {"code": "", "next": "/settings/network/"}
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        wrong = client.post("/login/confirm/", {**form, "code": "nope"})
        assert b"That code is not right" in wrong.content
    assert client.post("/login/confirm/", {**form, "code": codes[0]}).url == (
        "/settings/network/"
    )
    assert client.get("/settings/network/").status_code == 200
    assert totp_code(key)  # the app still works; nothing was locked


def test_wrong_passwords_on_confirm_lock_like_sign_in(stale_admin, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        stale_admin.post("/login/confirm/", {"password": "wrong"})
    locked = stale_admin.post("/login/confirm/", {"password": PASSWORD})
    assert locked.status_code == 429
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.LOCKOUT).count() == 1


def test_other_roles_never_reach_the_confirmation(login, scheduler):
    assert login(scheduler).get("/settings/network/").status_code == 403
