"""Two-factor sign-in: the second step after the password, recovery codes, the
lockout on wrong codes, a practice's requirement, operators, and the two-factor
page."""

from datetime import timedelta

import pytest
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from practice.models import AuditEvent, User
from practice.twofactor.services import PENDING_KEY_SESSION_KEY
from tests.factories import (
    PASSWORD,
    make_authenticator,
    make_recovery_codes,
)
from tests.support import pass_second_step, totp_code

ADDRESS = {"REMOTE_ADDR": "198.51.100.20"}


def sign_in(client, user, password=PASSWORD):
    return client.post(
        "/login/", {"username": user.email, "password": password}, **ADDRESS
    )


def enter_code(client, code, next_page=""):
    return client.post("/login/verify/", {"code": code, "next": next_page}, **ADDRESS)


def signed_in(client) -> bool:
    """Whether the client can use Tend (a page, not the second step)."""
    return client.get("/settings/").status_code == 200


def events(kind, user):
    return AuditEvent.objects.filter(kind=kind, target_user=user) | (
        AuditEvent.objects.filter(kind=kind, actor=user)
    )


def test_a_user_with_an_authenticator_passes_a_second_step(client, clinician):
    key = make_authenticator(clinician)
    response = sign_in(client, clinician)
    assert response.status_code == 302
    # The password alone reaches nothing: every page sends to the second step.
    page = client.get("/settings/")
    assert page.url == "/login/verify/?next=%2Fsettings%2F"
    assert client.get("/scheduling/").url.startswith("/login/verify/")
    assert client.get("/settings/two-factor/").url.startswith("/login/verify/")
    # Nor can it add a factor of its own to get past the step.
    assert client.post(
        "/settings/two-factor/authenticator/", {"code": totp_code(key)}
    ).url.startswith("/login/verify/")
    assert client.post("/two-factor/passkeys/registration/begin/").status_code == 302
    assert client.get("/login/confirm/").url.startswith("/login/verify/")
    assert client.get("/operator/").url.startswith("/login/verify/")
    step = client.get(page.url)
    assert step.status_code == 200
    assert b"One more step" in step.content
    session_before = client.session.session_key

    passed = enter_code(client, totp_code(key), next_page="/settings/")
    assert passed.url == "/settings/"
    assert signed_in(client)
    assert client.session.session_key != session_before
    event = events(AuditEvent.Kind.TWO_FACTOR_PASSED, clinician).get()
    assert event.details == {"method": "authenticator app", "for": "sign-in"}
    assert event.client_ip == "198.51.100.20"


def test_a_user_without_a_second_factor_signs_in_with_the_password(client, clinician):
    sign_in(client, clinician)
    assert signed_in(client)


def test_the_second_step_refuses_wrong_codes_and_unsafe_next(client, clinician):
    key = make_authenticator(clinician)
    sign_in(client, clinician)
    wrong = enter_code(client, "000000" if totp_code(key) != "000000" else "111111")
    assert wrong.status_code == 200
    assert b"That code is not right" in wrong.content
    assert not signed_in(client)
    passed = enter_code(client, totp_code(key), next_page="https://evil.example/")
    assert passed.url == "/"


def test_a_recovery_code_works_once(client, clinician):
    make_authenticator(clinician)
    codes = make_recovery_codes(clinician)
    sign_in(client, clinician)
    passed = enter_code(client, codes[0].upper())
    assert passed.status_code == 302
    assert signed_in(client)
    assert StaticToken.objects.filter(device__user=clinician).count() == 9

    client.post("/logout/")
    sign_in(client, clinician)
    again = enter_code(client, codes[0])
    assert b"That code is not right" in again.content
    assert not signed_in(client)


def test_five_wrong_codes_lock_the_second_step(client, clinician, settings):
    key = make_authenticator(clinician)
    codes = make_recovery_codes(clinician)
    sign_in(client, clinician)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert enter_code(client, "wrong-code").status_code == 200
    locked = enter_code(client, "wrong-code")
    assert locked.status_code == 429
    assert b"Too many wrong codes" in locked.content
    # The half-signed-in session is over.
    assert "_auth_user_id" not in client.session

    # The password still gets to the second step, which stays locked, even for
    # the right code, a recovery code or a passkey.
    sign_in(client, clinician)
    assert client.get("/login/verify/").status_code == 429
    sign_in(client, clinician)
    assert enter_code(client, totp_code(key)).status_code == 429
    sign_in(client, clinician)
    assert enter_code(client, codes[0]).status_code == 429
    sign_in(client, clinician)
    passkey = client.post("/two-factor/passkeys/authentication/begin/")
    assert passkey.status_code == 429
    assert passkey.json()["code"] == "second_step_locked"
    assert StaticToken.objects.filter(device__user=clinician).count() == 10

    lockouts = events(AuditEvent.Kind.TWO_FACTOR_LOCKOUT, clinician)
    assert lockouts.count() == 1
    assert lockouts.get().practice == clinician.practice
    assert (
        events(AuditEvent.Kind.TWO_FACTOR_FAILED, clinician).count()
        == settings.AXES_FAILURE_LIMIT
    )

    # The lockout period passes: the audit log cannot be rewritten, so the period
    # is shortened to less than the time since the failures instead.
    settings.AXES_COOLOFF_TIME = timedelta(microseconds=1)
    sign_in(client, clinician)
    assert enter_code(client, totp_code(key)).status_code == 302
    assert signed_in(client)


def test_a_passed_step_ends_the_count_of_wrong_codes(client, clinician, settings):
    key = make_authenticator(clinician)
    codes = make_recovery_codes(clinician)
    sign_in(client, clinician)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        enter_code(client, "wrong-code")
    assert enter_code(client, codes[0]).status_code == 302
    client.post("/logout/")
    sign_in(client, clinician)
    assert enter_code(client, "wrong-code").status_code == 200
    assert enter_code(client, totp_code(key)).status_code == 302


def test_the_lockout_is_per_account(client, clinician, other_clinician, settings):
    make_authenticator(clinician)
    other_key = make_authenticator(other_clinician)
    sign_in(client, clinician)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        enter_code(client, "wrong-code")
    sign_in(client, other_clinician)
    assert enter_code(client, totp_code(other_key)).status_code == 302


# A practice's requirement ------------------------------------------------------


def require_two_factor(client, admin_user):
    """The administrator (with an app of their own) requires two-factor."""
    key = make_authenticator(admin_user)
    client.force_login(admin_user)
    pass_second_step(client, key)
    response = client.post(
        "/settings/practice/",
        {
            "name": admin_user.practice.name,
            "time_zone": admin_user.practice.time_zone,
            "clinicians_may_schedule_themselves": "on",
            "two_factor_required": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[-1500:]
    client.post("/logout/")


def test_an_administrator_requires_two_factor_and_it_is_audited(
    client, admin_user, practice
):
    require_two_factor(client, admin_user)
    practice.refresh_from_db()
    assert practice.two_factor_required
    change = AuditEvent.objects.filter(kind=AuditEvent.Kind.PRACTICE_CHANGED).get()
    assert change.actor == admin_user
    assert change.details["changed"] == {"two_factor_required": [False, True]}


def test_requiring_two_factor_needs_it_for_yourself_first(login, admin_user, practice):
    response = login(admin_user).post(
        "/settings/practice/",
        {
            "name": practice.name,
            "time_zone": practice.time_zone,
            "two_factor_required": "on",
        },
    )
    assert response.status_code == 200
    assert b"Turn on two-factor sign-in for yourself first" in response.content
    practice.refresh_from_db()
    assert not practice.two_factor_required


def test_a_required_user_without_a_factor_must_set_one_up(
    client, admin_user, clinician
):
    require_two_factor(client, admin_user)
    sign_in(client, clinician)
    # Nothing but the set-up page (and signing out) until there is a factor.
    for path in ("/", "/scheduling/", "/settings/", "/settings/sync/"):
        assert client.get(path).url.startswith("/settings/two-factor/"), path
    setup = client.get("/settings/two-factor/")
    assert setup.status_code == 200
    assert b"Set up two-factor sign-in to continue" in setup.content
    assert b"Your practice requires it" in setup.content
    assert b'src="data:image/svg+xml' in setup.content
    key = client.session[PENDING_KEY_SESSION_KEY]
    assert client.post("/settings/two-factor/recovery-codes/").url.startswith(
        "/settings/two-factor/"
    )

    wrong = client.post("/settings/two-factor/authenticator/", {"code": "123"})
    assert wrong.status_code == 400
    assert b"That code does not match" in wrong.content
    assert not TOTPDevice.objects.filter(user=clinician).exists()

    done = client.post(
        "/settings/two-factor/authenticator/", {"code": totp_code(key, steps_ahead=0)}
    )
    assert done.url == "/settings/two-factor/"
    shown = client.get("/settings/two-factor/")
    codes = list(
        StaticToken.objects.filter(device__user=clinician).values_list(
            "token", flat=True
        )
    )
    assert len(codes) == 10
    assert all(code.encode() in shown.content for code in codes)
    # Shown once.
    assert codes[0].encode() not in client.get("/settings/two-factor/").content
    # The confirmed app counts as this session's second step.
    assert signed_in(client)
    assert events(AuditEvent.Kind.TWO_FACTOR_ADDED, clinician).count() == 1
    assert events(AuditEvent.Kind.RECOVERY_CODES_ISSUED, clinician).count() == 1


def test_turning_the_requirement_on_reaches_sessions_already_open(
    client, login, admin_user, clinician
):
    clinician_client = login(clinician)
    from django.test import Client

    require_two_factor(Client(), admin_user)
    assert clinician_client.get("/scheduling/").url.startswith("/settings/two-factor/")


def test_a_required_user_cannot_remove_their_only_method(client, admin_user):
    require_two_factor(client, admin_user)
    codes = make_recovery_codes(admin_user)
    client.force_login(admin_user)
    device = TOTPDevice.objects.get(user=admin_user)
    enter_code(client, codes[0])
    response = client.post(
        "/settings/two-factor/remove/",
        {"method": "authenticator app", "device": device.pk},
        follow=True,
    )
    assert b"you cannot remove your only method" in response.content
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_removing_the_last_method_turns_two_factor_off(client, clinician):
    key = make_authenticator(clinician)
    make_recovery_codes(clinician)
    client.force_login(clinician)
    pass_second_step(client, key)
    device = TOTPDevice.objects.get(user=clinician)
    client.post(
        "/settings/two-factor/remove/",
        {"method": "authenticator app", "device": device.pk},
    )
    assert not TOTPDevice.objects.filter(user=clinician).exists()
    assert not StaticToken.objects.filter(device__user=clinician).exists()
    assert events(AuditEvent.Kind.TWO_FACTOR_REMOVED, clinician).count() == 1
    client.post("/logout/")
    sign_in(client, clinician)
    assert signed_in(client)


def test_nobody_removes_another_users_method(client, clinician, other_clinician):
    make_authenticator(other_clinician)
    theirs = TOTPDevice.objects.get(user=other_clinician)
    client.force_login(clinician)
    response = client.post(
        "/settings/two-factor/remove/",
        {"method": "authenticator app", "device": theirs.pk},
        follow=True,
    )
    assert b"no longer exists" in response.content
    assert TOTPDevice.objects.filter(pk=theirs.pk).exists()


def test_new_recovery_codes_replace_the_old_ones(client, clinician):
    key = make_authenticator(clinician)
    old = make_recovery_codes(clinician)
    client.force_login(clinician)
    pass_second_step(client, key)
    client.post("/settings/two-factor/recovery-codes/")
    page = client.get("/settings/two-factor/")
    new = list(
        StaticToken.objects.filter(device__user=clinician).values_list(
            "token", flat=True
        )
    )
    assert not set(old) & set(new)
    assert all(code.encode() in page.content for code in new)


# Operators ----------------------------------------------------------------------


@pytest.fixture
def operator(db):
    return User.objects.create_superuser(
        "ops@tend.example", "ops-password-123", display_name="Operator"
    )


def test_an_operator_without_a_second_factor_must_set_one_up(client, operator):
    client.post("/login/", {"username": operator.email, "password": "ops-password-123"})
    admin = client.get("/operator/")
    assert admin.url.startswith("/settings/two-factor/")
    setup = client.get("/settings/two-factor/")
    assert setup.status_code == 200
    assert b"Operators always need it" in setup.content
    key = client.session[PENDING_KEY_SESSION_KEY]
    client.post(
        "/settings/two-factor/authenticator/", {"code": totp_code(key, steps_ahead=0)}
    )
    assert client.get("/operator/").status_code == 200


def test_an_operator_with_a_factor_passes_the_step_before_django_admin(
    client, operator
):
    key = make_authenticator(operator)
    client.post("/login/", {"username": operator.email, "password": "ops-password-123"})
    assert client.get("/operator/").url.startswith("/login/verify/")
    assert client.get("/operator/practice/user/").url.startswith("/login/verify/")
    pass_second_step(client, key)
    assert client.get("/operator/practice/user/").status_code == 200


def test_the_page_offers_passkeys_with_the_relying_party_from_site_url(
    client, clinician, settings
):
    settings.SITE_URL = "https://tend.example.com"
    client.force_login(clinician)
    page = client.get("/settings/two-factor/")
    assert b"passkey-register-button" in page.content
    options = client.post("/two-factor/passkeys/registration/begin/").json()
    assert options["rp"] == {"name": "Tend", "id": "tend.example.com"}
    assert options["authenticatorSelection"]["residentKey"] == "preferred"


def test_an_administrator_turns_off_a_colleagues_lost_factor(
    login, admin_user, clinician, outsider_admin
):
    make_authenticator(clinician)
    make_recovery_codes(clinician)
    # Another practice's administrator gets the same 404 as for a missing user.
    outsider = login(outsider_admin)
    assert (
        outsider.post(f"/settings/users/{clinician.pk}/two-factor/reset/").status_code
        == 404
    )
    assert TOTPDevice.objects.filter(user=clinician).exists()

    client = login(admin_user)
    page = client.get(f"/settings/users/{clinician.pk}/")
    assert b"Turn off two-factor sign-in" in page.content
    response = client.post(f"/settings/users/{clinician.pk}/two-factor/reset/")
    assert response.url == f"/settings/users/{clinician.pk}/"
    assert not TOTPDevice.objects.filter(user=clinician).exists()
    assert not StaticToken.objects.filter(device__user=clinician).exists()
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.TWO_FACTOR_REMOVED)
    assert (event.actor, event.target_user) == (admin_user, clinician)

    refused = client.post(
        f"/settings/users/{admin_user.pk}/two-factor/reset/", follow=True
    )
    assert b"Change your own two-factor sign-in" in refused.content


def test_the_users_page_says_who_has_two_factor(login, admin_user, clinician):
    make_authenticator(clinician)
    html = login(admin_user).get("/settings/users/").content.decode()
    assert html.count("two-factor on") == 1
    row = html[html.index("Dana Rivera") :]
    assert row.index("two-factor on") < row.index("</tr>")


def test_operators_see_whose_second_factors_but_never_their_secrets(
    client, operator, clinician
):
    clinician_key = make_authenticator(clinician)
    operator_key = make_authenticator(operator)
    client.force_login(operator)
    pass_second_step(client, operator_key)
    device = TOTPDevice.objects.get(user=clinician)
    listing = client.get("/operator/otp_totp/totpdevice/")
    assert clinician.label.encode() in listing.content
    page = client.get(f"/operator/otp_totp/totpdevice/{device.pk}/change/")
    assert page.status_code == 200
    assert clinician_key.encode() not in page.content
    assert b"otpauth://" not in page.content
    # A lost app can be removed.
    client.post(f"/operator/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
