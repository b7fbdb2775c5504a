"""Settings → Users: add with roles and an invitation, edit roles, deactivate."""

import pytest
from django.core import mail

from practice.models import AuditEvent, Role, User
from tests.factories import make_user
from tests.practice.test_password import LINK, closed_port

ADMIN_PAGES = [
    "/settings/users/",
    "/settings/users/add/",
    "/settings/practice/",
    "/settings/network/",
    "/settings/audit/",
]


def add_form(**overrides):
    data = {
        "email": "kim@riverside.test",
        "display_name": "Robin Kim",
        "credentials": "LMFT",
        "roles": ["clinician"],
    }
    data.update(overrides)
    return data


def snapshot():
    return User.objects.count(), AuditEvent.objects.count(), len(mail.outbox)


def test_users_page_lists_the_practice(login, admin_user, clinician, scheduler):
    response = login(admin_user).get("/settings/users/")
    assert response.status_code == 200
    html = response.content.decode()
    for person in (admin_user, clinician, scheduler):
        assert person.email in html
    assert "Dana Rivera, LCSW" in html
    assert "Practice administrator" in html and "Scheduler" in html


def test_users_page_query_count_does_not_grow(
    login, admin_user, practice, django_assert_max_num_queries
):
    client = login(admin_user)
    client.get("/settings/users/")
    # One more than before the calendar state column: whose sync is off.
    with django_assert_max_num_queries(9) as few:
        client.get("/settings/users/")
    for _ in range(15):
        make_user(practice, roles=[Role.CLINICIAN])
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/settings/users/")
    assert response.content.decode().count(">Deactivate<") == 15


def test_admin_adds_a_clinician_who_is_invited_by_email(
    login, admin_user, client, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://tend.example.com"
    settings.ALLOWED_HOSTS = ["*"]
    login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/settings/users/add/",
            add_form(email="Kim@Riverside.test", roles=["clinician", "scheduler"]),
            HTTP_HOST="attacker.example",
            REMOTE_ADDR="192.0.2.10",
        )
    assert response.status_code == 302
    assert response["Location"] == "/settings/users/"
    kim = User.objects.get(email="kim@riverside.test")
    assert kim.practice == admin_user.practice
    assert kim.roles == [Role.SCHEDULER, Role.CLINICIAN]
    assert kim.label == "Robin Kim, LMFT"
    assert not kim.has_usable_password()
    assert not kim.is_staff and not kim.is_superuser

    event = AuditEvent.objects.get(kind=AuditEvent.Kind.USER_CREATED, target_user=kim)
    assert (event.actor, event.target_user, event.practice) == (
        admin_user,
        kim,
        admin_user.practice,
    )
    assert event.client_ip == "192.0.2.10"

    [invite] = mail.outbox
    assert invite.to == ["kim@riverside.test"]
    assert invite.subject == "You have been added to Tend"
    assert "Riverside Counseling has added you to Tend" in invite.body
    link = LINK.search(invite.body).group(1)
    assert link.startswith("https://tend.example.com/password/reset/")
    assert "attacker.example" not in invite.body

    # The invitation lets Kim choose a password and sign in.
    client.post("/logout/")
    path = "/" + link.split("/", 3)[3]
    form_url = client.get(path, follow=True).redirect_chain[-1][0]
    client.post(
        form_url, {"new_password1": "kims-own-pw-9", "new_password2": "kims-own-pw-9"}
    )
    signed_in = client.post(
        "/login/", {"username": "kim@riverside.test", "password": "kims-own-pw-9"}
    )
    assert signed_in.status_code == 302


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"email": "RIVERA@riverside.test"}, "email", "already in your practice"),
        ({"roles": []}, "roles", "Choose at least one role."),
        ({"email": "not-an-address"}, "email", "Enter a valid email address."),
        ({"display_name": "  "}, "display_name", "This field is required."),
        ({"roles": ["owner"]}, "roles", "Select a valid choice."),
    ],
    ids=["duplicate-email", "no-role", "bad-email", "no-name", "unknown-role"],
)
def test_bad_user_input_is_refused_and_nothing_saved(
    login, admin_user, clinician, client, overrides, field, message
):
    login(admin_user)
    before = snapshot()
    response = client.post("/settings/users/add/", add_form(**overrides))
    assert response.status_code == 200
    form = response.context["form"]
    assert any(message in error for error in form.errors[field])
    assert message in response.content.decode()
    assert snapshot() == before


def test_user_is_added_even_when_the_invitation_cannot_be_sent(
    login, admin_user, client, settings, caplog, django_capture_on_commit_callbacks
):
    """The invitation goes out in the background: a mail server that is down shows
    in the log, and the person can still ask for a link through "Forgot your
    password?"."""
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": closed_port(), "timeout": 2},
        }
    }
    login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/settings/users/add/", add_form(), follow=True)
    assert "Robin Kim, LMFT was added." in response.content.decode()
    kim = User.objects.get(email="kim@riverside.test")
    assert f"Invitation email to user {kim.pk} could not be sent" in caplog.text


def test_edit_roles_is_audited(login, admin_user, clinician, client):
    login(admin_user)
    page = client.get(f"/settings/users/{clinician.pk}/")
    assert page.status_code == 200
    assert page.context["form"].initial["roles"] == ["clinician"]
    response = client.post(
        f"/settings/users/{clinician.pk}/",
        {"display_name": "Dana Rivera", "credentials": "LCSW", "roles": ["scheduler"]},
        REMOTE_ADDR="192.0.2.11",
    )
    assert response.status_code == 302
    clinician.refresh_from_db()
    assert clinician.roles == [Role.SCHEDULER]
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.ROLE_CHANGED)
    assert event.actor == admin_user
    assert event.target_user == clinician
    assert event.practice == admin_user.practice
    assert event.client_ip == "192.0.2.11"
    assert event.details == {"before": ["clinician"], "after": ["scheduler"]}


def test_saving_without_a_role_change_records_no_role_event(
    login, admin_user, clinician, client
):
    login(admin_user).post(
        f"/settings/users/{clinician.pk}/",
        {
            "display_name": "Dana M. Rivera",
            "credentials": "LCSW",
            "roles": ["clinician"],
        },
    )
    clinician.refresh_from_db()
    assert clinician.display_name == "Dana M. Rivera"
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.ROLE_CHANGED).exists()


def test_edit_without_roles_is_refused(login, admin_user, clinician, client):
    response = login(admin_user).post(
        f"/settings/users/{clinician.pk}/",
        {"display_name": "Dana Rivera", "credentials": "LCSW"},
    )
    assert response.status_code == 200
    assert b"Choose at least one role." in response.content
    clinician.refresh_from_db()
    assert clinician.roles == [Role.CLINICIAN]


def test_admin_cannot_remove_own_administrator_role(login, admin_user, client):
    response = login(admin_user).post(
        f"/settings/users/{admin_user.pk}/",
        {"display_name": "Morgan Ellis", "credentials": "PsyD", "roles": ["clinician"]},
    )
    assert response.status_code == 200
    assert b"You cannot remove your own administrator role" in response.content
    admin_user.refresh_from_db()
    assert admin_user.has_role(Role.ADMINISTRATOR)


def test_deactivate_and_reactivate(login, admin_user, clinician, client):
    from django.test import Client

    clinicians_browser = Client()
    clinicians_browser.force_login(clinician)
    assert clinicians_browser.get("/settings/").status_code == 200

    login(admin_user)
    # Deactivate asks first: the page (GET) changes nothing.
    confirm = client.get(f"/settings/users/{clinician.pk}/active/")
    assert confirm.status_code == 200
    assert "Deactivate Dana Rivera, LCSW?" in confirm.content.decode()
    clinician.refresh_from_db()
    assert clinician.is_active
    response = client.post(
        f"/settings/users/{clinician.pk}/active/",
        {"active": "0"},
        REMOTE_ADDR="192.0.2.12",
    )
    assert response.status_code == 302
    clinician.refresh_from_db()
    assert not clinician.is_active
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.USER_DEACTIVATED)
    assert (event.actor, event.target_user, event.practice, event.client_ip) == (
        admin_user,
        clinician,
        admin_user.practice,
        "192.0.2.12",
    )
    # Their open session ends at once and they cannot sign in again.
    assert clinicians_browser.get("/settings/").status_code == 302
    refused = Client().post(
        "/login/", {"username": clinician.email, "password": "correct-horse-battery"}
    )
    assert refused.status_code == 200
    # Still listed (never deleted), marked deactivated.
    listing = client.get("/settings/users/").content.decode()
    assert clinician.email in listing and "Deactivated" in listing

    client.post(f"/settings/users/{clinician.pk}/active/", {"active": "1"})
    clinician.refresh_from_db()
    assert clinician.is_active
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.USER_REACTIVATED).count() == 1


def test_admin_cannot_deactivate_themselves(login, admin_user, client):
    response = login(admin_user).post(
        f"/settings/users/{admin_user.pk}/active/", {"active": "0"}, follow=True
    )
    assert b"You cannot deactivate yourself." in response.content
    admin_user.refresh_from_db()
    assert admin_user.is_active


def test_users_are_never_deleted(login, admin_user, clinician, client):
    """There is no delete: the only way out is deactivation, so history stays.
    The user pages are exactly these; a new one (a delete) must be added here."""
    from tests.practice.test_network import every_url_name

    user_routes = {
        name for name, path in every_url_name() if path.startswith("/settings/users/")
    }
    assert user_routes == {
        "practice:users",
        "practice:user_add",
        "practice:user_edit",
        "practice:user_active",
        "practice:user_sign_out",
        "practice:user_two_factor_reset",
    }
    login(admin_user)
    client.delete(f"/settings/users/{clinician.pk}/")
    assert User.objects.filter(pk=clinician.pk, is_active=True).exists()


@pytest.mark.parametrize("who", ["scheduler", "clinician"])
def test_only_administrators_reach_administration(login, request, who, admin_user):
    member = request.getfixturevalue(who)
    client = login(member)
    assert client.get("/settings/").status_code == 200
    for url in ADMIN_PAGES + [f"/settings/users/{admin_user.pk}/"]:
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"You do not have access to this page" in response.content
    response = client.post(f"/settings/users/{admin_user.pk}/active/", {"active": "0"})
    assert response.status_code == 403
    admin_user.refresh_from_db()
    assert admin_user.is_active


def test_settings_index_shows_administration_to_admins_only(
    login, admin_user, clinician
):
    from django.test import Client

    admin_page = login(admin_user).get("/settings/").content.decode()
    assert "/settings/users/" in admin_page and "/settings/audit/" in admin_page
    other = Client()
    other.force_login(clinician)
    clinician_page = other.get("/settings/").content.decode()
    assert "/settings/users/" not in clinician_page
    assert "/settings/network/" not in clinician_page


def test_deactivation_needs_a_valid_choice(client, login, admin_user, clinician):
    login(admin_user)
    for bad in ({"active": "yes"}, {}):
        response = client.post(
            f"/settings/users/{clinician.pk}/active/", bad, follow=True
        )
        assert "Choose Deactivate or Reactivate." in response.content.decode()
        clinician.refresh_from_db()
        assert clinician.is_active
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.USER_DEACTIVATED).exists()
