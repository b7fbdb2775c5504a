"""Sign-in, sign-out, lockout and automatic logoff."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from practice.models import AuditEvent, Practice, Role, User
from practice.services import user_set_active
from tests.factories import PASSWORD, make_authenticator, make_user
from tests.support import pass_second_step

SAME_ERROR = "That email and password do not match an active account."


def sign_in(client, email, password=PASSWORD, **extra):
    return client.post("/login/", {"username": email, "password": password}, **extra)


def test_login_page_renders(client, db):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"Sign in" in response.content
    assert b"Forgot your password?" in response.content


def test_login_signs_in_and_records_event(client, clinician):
    response = sign_in(client, "Rivera@Riverside.test", REMOTE_ADDR="198.51.100.4")
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").url == "/scheduling/"
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.LOGIN)
    assert event.actor == clinician
    assert event.practice == clinician.practice
    assert event.client_ip == "198.51.100.4"
    assert event.created_at is not None


def test_login_follows_safe_next_only(client, admin_user):
    response = client.post(
        "/login/",
        {"username": admin_user.email, "password": PASSWORD, "next": "/settings/"},
    )
    assert response["Location"] == "/settings/"
    client.post("/logout/")
    response = client.post(
        "/login/",
        {
            "username": admin_user.email,
            "password": PASSWORD,
            "next": "https://evil.example/",
        },
    )
    assert response["Location"] == "/"


@pytest.mark.parametrize("case", ["wrong_password", "unknown_email", "inactive"])
def test_failed_login_gives_one_answer_whatever_the_reason(
    client, clinician, admin_user, case
):
    if case == "inactive":
        user_set_active(user=clinician, active=False, actor=admin_user, client_ip=None)
    email = "nobody@riverside.test" if case == "unknown_email" else clinician.email
    password = "wrong-password" if case == "wrong_password" else PASSWORD
    response = sign_in(client, email, password)
    assert response.status_code == 200
    assert SAME_ERROR in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_failed_login_is_audited_in_the_accounts_practice(client, clinician):
    sign_in(client, clinician.email, "wrong-password", REMOTE_ADDR="198.51.100.9")
    sign_in(client, "nobody@riverside.test", "wrong-password")
    known = AuditEvent.objects.get(
        kind=AuditEvent.Kind.LOGIN_FAILED, target_user=clinician
    )
    assert known.practice == clinician.practice
    assert known.client_ip == "198.51.100.9"
    assert known.details == {"email": clinician.email}
    unknown = AuditEvent.objects.get(
        kind=AuditEvent.Kind.LOGIN_FAILED, details__email="nobody@riverside.test"
    )
    assert unknown.practice is None
    # Nobody's practice shows the failure for an address it does not have.
    assert not AuditEvent.objects.filter(
        practice=clinician.practice, details__email="nobody@riverside.test"
    ).exists()


def test_lockout_after_repeated_failures(client, clinician, settings):
    address = {"REMOTE_ADDR": "198.51.100.7"}
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, clinician.email, "wrong", **address).status_code == 200
    locked = sign_in(client, clinician.email, "wrong", **address)
    assert locked.status_code == 429
    assert "registration/locked_out.html" in [t.name for t in locked.templates]
    assert b"Too many failed sign-ins" in locked.content

    # The right password does not get through while the lockout lasts.
    refused = sign_in(client, clinician.email, PASSWORD, **address)
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session

    lockouts = AuditEvent.objects.filter(kind=AuditEvent.Kind.LOCKOUT)
    assert lockouts.count() == 1, "one lockout event per lockout, not per attempt"
    lockout = lockouts.get()
    assert lockout.practice == clinician.practice
    assert lockout.target_user == clinician
    assert lockout.client_ip == "198.51.100.7"


def test_lockout_is_per_account_and_address(
    client, clinician, other_clinician, settings
):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, clinician.email, "wrong")
    assert sign_in(client, clinician.email, PASSWORD).status_code == 429
    # A colleague on the same network still signs in.
    assert sign_in(client, other_clinician.email, PASSWORD).status_code == 302
    client.post("/logout/")
    # The same account from another address is not locked.
    response = sign_in(client, clinician.email, PASSWORD, REMOTE_ADDR="192.0.2.33")
    assert response.status_code == 302


# Spellings of one address that sign-in treats as the same account.
SPELLINGS = [
    "rivera@riverside.test",
    "RIVERA@RIVERSIDE.TEST",
    "Rivera@Riverside.test",
    " rivera@riverside.test",
    "rivera@riverside.test ",
    "  RIVERA@riverside.test\t",
    "rIvErA@riverside.test",
    "rivera@RIVERSIDE.test",
    "\trivera@Riverside.Test",
    "RiVeRa@rIvErSiDe.TeSt ",
]


@pytest.mark.parametrize(
    "spelling",
    ["OKAFOR@riverside.test", " okafor@riverside.test", "Okafor@Riverside.Test  "],
)
def test_lockout_holds_for_every_spelling_of_the_email(
    client, practice, settings, spelling
):
    okafor = make_user(
        practice, roles=[Role.CLINICIAN], email="okafor@riverside.test", name="Okafor"
    )
    address = {"REMOTE_ADDR": "198.51.100.7"}
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, okafor.email, "wrong", **address)
    refused = sign_in(client, spelling, PASSWORD, **address)
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session
    # One lockout, one event, whatever the spelling of the later attempts.
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.LOCKOUT).count() == 1


def test_failures_spread_over_spellings_add_up_to_a_lock(client, clinician, settings):
    address = {"REMOTE_ADDR": "198.51.100.7"}
    assert len(set(SPELLINGS)) == 10
    for _ in range(4):
        for spelling in SPELLINGS:
            sign_in(client, spelling, "wrong", **address)
    for spelling in SPELLINGS:
        assert sign_in(client, spelling, PASSWORD, **address).status_code == 429
    assert "_auth_user_id" not in client.session


def test_signing_in_with_another_spelling_clears_the_failures(
    client, clinician, settings
):
    address = {"REMOTE_ADDR": "198.51.100.7"}
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, "RIVERA@riverside.test", "wrong", **address)
    assert (
        sign_in(client, " Rivera@Riverside.test", PASSWORD, **address).status_code
        == 302
    )
    client.post("/logout/")
    # The count started again: four more failures do not lock.
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, clinician.email, "wrong", **address).status_code == 200
    assert sign_in(client, clinician.email, PASSWORD, **address).status_code == 302


def test_lockout_for_an_unknown_address_looks_the_same(client, clinician, settings):
    """Lockout must not reveal which addresses have accounts."""
    responses = {}
    for email in (clinician.email, "nobody@riverside.test"):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            response = sign_in(client, email, "wrong")
        responses[email] = response
    assert {r.status_code for r in responses.values()} == {429}
    assert b"Too many failed sign-ins" in responses["nobody@riverside.test"].content


def test_logout_needs_post_and_is_audited(client, login, clinician):
    login(clinician)
    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/", REMOTE_ADDR="198.51.100.1")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.LOGOUT)
    assert (event.actor, event.client_ip) == (clinician, "198.51.100.1")
    assert client.get("/settings/").status_code == 302


def test_pages_need_sign_in(client, db):
    for url in ("/", "/settings/", "/settings/users/", "/settings/audit/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/?next="), url


def test_session_expires_after_idle_minutes(client, clinician, settings):
    assert settings.SESSION_IDLE_MINUTES == 30
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    before = timezone.now()
    sign_in(client, clinician.email)
    after = timezone.now()
    session = Session.objects.get(session_key=client.session.session_key)
    idle = timedelta(minutes=30)
    assert before + idle <= session.expire_date <= after + idle + timedelta(seconds=1)

    # Each request pushes the expiry forward (idle time, not time since sign-in).
    Session.objects.filter(pk=session.pk).update(
        expire_date=timezone.now() + timedelta(minutes=1)
    )
    assert client.get("/settings/").status_code == 200
    session.refresh_from_db()
    assert session.expire_date > timezone.now() + timedelta(minutes=29)

    # Once the idle time has passed, the session is gone.
    Session.objects.filter(pk=session.pk).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    response = client.get("/settings/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_session_cookie_is_httponly_and_browser_session(client, clinician):
    response = sign_in(client, clinician.email)
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"]
    assert not cookie["expires"], "the session ends when the browser closes"


def test_signed_in_user_visiting_login_goes_home(login, clinician):
    response = login(clinician).get("/login/")
    assert response.status_code == 302


def test_operator_signing_in_goes_to_django_admin(client, db):
    operator = User.objects.create_superuser(
        "ops@tend.example", "ops-password-123", display_name="Ops"
    )
    key = make_authenticator(operator)
    response = sign_in(client, "ops@tend.example", "ops-password-123")
    assert response.status_code == 302
    # Operators always pass a second step first.
    assert client.get("/").url == "/login/verify/"
    assert pass_second_step(client, key).url == "/"
    assert client.get("/").url == "/operator/"
    assert not Practice.objects.exists()


def test_forms_refuse_posts_without_the_csrf_token(admin_user):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(
        "/login/", {"username": admin_user.email, "password": PASSWORD}
    )
    assert response.status_code == 403
    assert "_auth_user_id" not in strict.session
    strict.force_login(admin_user)
    for path, data in (
        ("/settings/users/add/", {"email": "x@riverside.test", "roles": ["clinician"]}),
        ("/settings/network/", {"networks": "10.0.0.0/8"}),
        ("/logout/", {}),
    ):
        assert strict.post(path, data).status_code == 403, path
    assert not User.objects.filter(email="x@riverside.test").exists()
