"""Sessions end SESSION_ABSOLUTE_HOURS after sign-in however active they are, and
"Sign out everywhere" ends every session of a user on every device at once."""

import time

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from practice.models import AuditEvent
from practice.services import user_set_active
from practice.sessions import SIGNED_IN_AT
from tests.factories import PASSWORD, make_appointment, personal_feed_path

EVERYWHERE = "You were signed out on every device, this one included."


def signed_in(user) -> Client:
    """A browser of its own, signed in through the login page."""
    browser = Client()
    response = browser.post("/login/", {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return browser


def signed_in_since(browser: Client, seconds: float) -> None:
    # Fakes time passing: no page can make a session older. The stamp is what the
    # login page stored; only its value moves back.
    session = browser.session
    assert isinstance(session[SIGNED_IN_AT], int)
    session[SIGNED_IN_AT] = int(time.time() - seconds)
    session.save()


def is_signed_in(browser: Client) -> bool:
    return SESSION_KEY in browser.session


# -- absolute lifetime ----------------------------------------------------------


def test_a_busy_session_ends_after_twelve_hours(clinician):
    browser = signed_in(clinician)
    signed_in_since(browser, 12 * 3600 - 120)
    assert browser.get("/settings/").status_code == 200
    assert is_signed_in(browser)

    signed_in_since(browser, 12 * 3600 + 1)
    response = browser.get("/settings/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/settings/"
    assert not is_signed_in(browser)
    page = browser.get(response["Location"]).content.decode()
    assert (
        "You were signed out because you signed in more than 12 hours ago, the "
        "longest a session lasts. Please sign in again." in page
    )
    assert AuditEvent.objects.filter(
        kind=AuditEvent.Kind.LOGOUT, actor=clinician
    ).exists()
    # Signing in again starts a new lifetime.
    again = browser.post("/login/", {"username": clinician.email, "password": PASSWORD})
    assert again.status_code == 302
    assert browser.get("/settings/").status_code == 200


def test_the_lifetime_is_a_setting_and_covers_posts(settings, admin_user, clinician):
    settings.SESSION_ABSOLUTE_HOURS = 1
    browser = signed_in(admin_user)
    signed_in_since(browser, 3600 + 1)
    response = browser.post(f"/settings/users/{clinician.pk}/active/", {"active": "0"})
    assert response.status_code == 302
    # Not back to a form's address after signing in: a GET there would be a 405.
    assert response["Location"] == "/login/"
    clinician.refresh_from_db()
    assert clinician.is_active
    page = browser.get("/login/").content.decode()
    assert "more than 1 hour ago" in page


def test_an_outlived_session_on_the_login_page_or_signing_out(clinician):
    browser = signed_in(clinician)
    signed_in_since(browser, 13 * 3600)
    response = browser.get("/login/")
    assert response["Location"] == "/login/"
    assert "the longest a session lasts" in browser.get("/login/").content.decode()
    again = browser.post("/login/", {"username": clinician.email, "password": PASSWORD})
    assert again["Location"] == "/"

    signed_in_since(browser, 13 * 3600)
    response = browser.post("/logout/")
    assert response["Location"] == "/login/"
    assert not is_signed_in(browser)


def test_a_session_from_before_the_stamp_starts_counting_now(clinician):
    browser = signed_in(clinician)
    # A session signed in before the stamp existed: straight to the store.
    session = browser.session
    del session[SIGNED_IN_AT]
    session.save()
    assert browser.get("/settings/").status_code == 200
    assert time.time() - browser.session[SIGNED_IN_AT] < 3600


def test_calendar_feeds_ignore_an_outlived_session_cookie(clinician):
    make_appointment(clinician)
    path = personal_feed_path(clinician)
    browser = signed_in(clinician)
    signed_in_since(browser, 13 * 3600)
    assert browser.get(path).status_code == 200
    assert browser.get("/healthz").status_code == 200


# -- sign out everywhere ----------------------------------------------------------


def test_sign_out_everywhere_from_your_own_settings(clinician, other_clinician):
    laptop, phone = signed_in(clinician), signed_in(clinician)
    colleague = signed_in(other_clinician)
    page = laptop.get("/password/change/").content.decode()
    assert 'action="/settings/sign-out-everywhere/"' in page
    assert laptop.get("/settings/sign-out-everywhere/").status_code == 405

    response = laptop.post("/settings/sign-out-everywhere/", REMOTE_ADDR="203.0.113.5")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert EVERYWHERE in laptop.get("/login/").content.decode()
    for browser in (laptop, phone):
        answer = browser.get("/settings/")
        assert answer.status_code == 302
        assert answer["Location"].startswith("/login/")
        assert not is_signed_in(browser)
    assert colleague.get("/settings/").status_code == 200

    event = AuditEvent.objects.get(kind=AuditEvent.Kind.SIGNED_OUT_EVERYWHERE)
    assert (event.actor, event.target_user, event.practice) == (
        clinician,
        clinician,
        clinician.practice,
    )
    assert event.client_ip == "203.0.113.5"
    # The password still works.
    assert signed_in(clinician).get("/settings/").status_code == 200


def test_an_administrator_signs_a_user_out_everywhere(admin_user, clinician):
    admin = signed_in(admin_user)
    laptop, phone = signed_in(clinician), signed_in(clinician)
    page = admin.get(f"/settings/users/{clinician.pk}/").content.decode()
    assert f'action="/settings/users/{clinician.pk}/sign-out/"' in page

    response = admin.post(f"/settings/users/{clinician.pk}/sign-out/")
    assert response.status_code == 302
    assert response["Location"] == f"/settings/users/{clinician.pk}/"
    assert "Dana Rivera, LCSW was signed out on every device." in (
        admin.get(response["Location"]).content.decode()
    )
    for browser in (laptop, phone):
        assert browser.get("/settings/").status_code == 302
    assert admin.get("/settings/").status_code == 200
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.SIGNED_OUT_EVERYWHERE)
    assert (event.actor, event.target_user) == (admin_user, clinician)


def test_an_administrator_signing_themself_out_everywhere(admin_user):
    admin, elsewhere = signed_in(admin_user), signed_in(admin_user)
    response = admin.post(f"/settings/users/{admin_user.pk}/sign-out/")
    assert response["Location"] == "/login/"
    assert EVERYWHERE in admin.get("/login/").content.decode()
    assert not is_signed_in(admin)
    assert elsewhere.get("/settings/").status_code == 302


@pytest.mark.parametrize("who", ["scheduler", "clinician", "outsider_admin"])
def test_only_the_users_own_administrators_may(request, who, other_clinician):
    browser = signed_in(request.getfixturevalue(who))
    target = signed_in(other_clinician)
    response = browser.post(f"/settings/users/{other_clinician.pk}/sign-out/")
    assert response.status_code == (404 if who == "outsider_admin" else 403)
    assert target.get("/settings/").status_code == 200
    assert not AuditEvent.objects.filter(
        kind=AuditEvent.Kind.SIGNED_OUT_EVERYWHERE
    ).exists()


def test_missing_user_is_the_same_404(admin_user, outsider_admin):
    admin = signed_in(admin_user)
    missing = admin.post("/settings/users/999999/sign-out/")
    foreign = admin.post(f"/settings/users/{outsider_admin.pk}/sign-out/")
    assert missing.status_code == foreign.status_code == 404


def test_reactivation_never_revives_an_old_session(admin_user, clinician):
    laptop = signed_in(clinician)
    user_set_active(user=clinician, active=False, actor=admin_user, client_ip=None)
    user_set_active(user=clinician, active=True, actor=admin_user, client_ip=None)
    response = laptop.get("/settings/")
    assert response.status_code == 302
    assert not is_signed_in(laptop)
    assert signed_in(clinician).get("/settings/").status_code == 200


def test_changing_the_password_keeps_this_session_and_ends_the_others(clinician):
    laptop, phone = signed_in(clinician), signed_in(clinician)
    response = laptop.post(
        "/password/change/",
        {
            "old_password": PASSWORD,
            "new_password1": "a-new-long-passphrase-42",
            "new_password2": "a-new-long-passphrase-42",
        },
    )
    assert response.status_code == 302
    assert laptop.get("/settings/").status_code == 200
    assert phone.get("/settings/").status_code == 302
