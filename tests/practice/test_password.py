"""Password reset by email (no enumeration, links from SITE_URL) and password change.
The emails go out when the request's work commits (the suite runs tasks at once)."""

import re
import socket

import pytest
from django.core import mail

from practice.models import AuditEvent
from practice.services import user_set_active
from tests.factories import PASSWORD

LINK = re.compile(r"(https?://\S+/password/reset/\S+/\S+/)")


def closed_port() -> int:
    """A local port with nothing listening (the SMTP server is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_down(settings):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": closed_port(), "timeout": 2},
        }
    }


def test_reset_answers_the_same_for_known_and_unknown_addresses(
    client, clinician, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        known = client.post("/password/reset/", {"email": clinician.email})
        unknown = client.post("/password/reset/", {"email": "nobody@riverside.test"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"] == "/password/reset/sent/"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [clinician.email]
    page = client.get("/password/reset/sent/")
    assert b"If the address you entered belongs to an active account" in page.content


def test_reset_sends_nothing_to_deactivated_users(
    client, clinician, admin_user, django_capture_on_commit_callbacks
):
    user_set_active(user=clinician, active=False, actor=admin_user, client_ip=None)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/password/reset/", {"email": clinician.email})
    assert response.status_code == 302
    assert mail.outbox == []


def test_reset_link_is_built_from_site_url_not_host_header(
    client, clinician, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://tend.example.com"
    settings.ALLOWED_HOSTS = ["*"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/password/reset/",
            {"email": clinician.email},
            HTTP_HOST="attacker.example",
        )
    body = mail.outbox[0].body
    assert "attacker.example" not in body
    link = LINK.search(body).group(1)
    assert link.startswith("https://tend.example.com/password/reset/")


def test_reset_link_sets_a_new_password_once(
    client, clinician, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/password/reset/", {"email": clinician.email}, REMOTE_ADDR="192.0.2.8"
        )
    path = "/" + LINK.search(mail.outbox[0].body).group(1).split("/", 3)[3]
    form_page = client.get(path, follow=True)
    assert b"Choose a new password" in form_page.content
    form_url = form_page.redirect_chain[-1][0]
    response = client.post(
        form_url,
        {"new_password1": "a-new-secret-42", "new_password2": "a-new-secret-42"},
    )
    assert response.status_code == 302
    clinician.refresh_from_db()
    assert clinician.check_password("a-new-secret-42")
    # The link is spent.
    again = client.get(path, follow=True)
    assert b"This link no longer works" in again.content
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.PASSWORD_RESET_REQUESTED)
    assert (event.target_user, event.practice) == (clinician, clinician.practice)
    assert event.client_ip == "192.0.2.8"
    changed = AuditEvent.objects.get(kind=AuditEvent.Kind.PASSWORD_CHANGED)
    assert (changed.actor, changed.practice) == (clinician, clinician.practice)
    assert changed.details == {"through": "emailed link"}


def test_reset_answers_the_same_when_email_cannot_be_sent(
    client, clinician, smtp_down, caplog, django_capture_on_commit_callbacks
):
    """A mail failure must not reveal that the address has an account."""
    with django_capture_on_commit_callbacks(execute=True):
        known = client.post("/password/reset/", {"email": clinician.email})
        unknown = client.post("/password/reset/", {"email": "nobody@riverside.test"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]
    assert "Password reset email to user" in caplog.text
    assert not AuditEvent.objects.filter(
        kind=AuditEvent.Kind.PASSWORD_RESET_REQUESTED
    ).exists()


def test_reset_rejects_a_malformed_address(client, db):
    response = client.post("/password/reset/", {"email": "not-an-address"})
    assert response.status_code == 200
    assert b"Enter a valid email address." in response.content


def test_password_change(login, clinician, client):
    login(clinician)
    wrong = client.post(
        "/password/change/",
        {
            "old_password": "not-it",
            "new_password1": "another-secret-77",
            "new_password2": "another-secret-77",
        },
    )
    assert wrong.status_code == 200
    assert b"Your old password was entered incorrectly" in wrong.content
    response = client.post(
        "/password/change/",
        {
            "old_password": PASSWORD,
            "new_password1": "another-secret-77",
            "new_password2": "another-secret-77",
        },
        REMOTE_ADDR="192.0.2.9",
    )
    assert response.status_code == 302
    clinician.refresh_from_db()
    assert clinician.check_password("another-secret-77")
    # Still signed in after the change.
    assert client.get("/settings/").status_code == 200
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.PASSWORD_CHANGED)
    assert (event.actor, event.client_ip) == (clinician, "192.0.2.9")


# -- The password rule (NIST SP 800-63B) ----------------------------------------------

RULE = "At least 12 characters."


def change_password(client, new_password):
    return client.post(
        "/password/change/",
        {
            "old_password": PASSWORD,
            "new_password1": new_password,
            "new_password2": new_password,
        },
    )


@pytest.mark.parametrize(
    ("new_password", "refusal"),
    [
        ("eleven-char", "This password is too short."),
        ("password1234", "This password is too common."),
        ("rivera-riverside", "The password is too similar to the email"),
    ],
)
def test_a_password_is_long_and_not_common(
    login, clinician, client, new_password, refusal
):
    login(clinician)
    response = change_password(client, new_password)
    assert response.status_code == 200
    assert refusal in response.content.decode()
    clinician.refresh_from_db()
    assert clinician.check_password(PASSWORD)


@pytest.mark.parametrize(
    "new_password",
    [
        "twelve chars",  # letters and a space, nothing else
        "731948205617",  # digits only
        "ALLCAPSWORDS",
        "élan vital près du lac",
    ],
)
def test_a_password_needs_no_mix_of_kinds_of_character(
    login, clinician, client, new_password
):
    login(clinician)
    response = change_password(client, new_password)
    assert response.status_code == 302, response.content.decode()
    clinician.refresh_from_db()
    assert clinician.check_password(new_password)


def test_the_validators_are_length_common_list_and_similarity_only(settings):
    names = [v["NAME"].rsplit(".", 1)[1] for v in settings.AUTH_PASSWORD_VALIDATORS]
    assert names == [
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
    ]


def test_every_form_that_chooses_a_password_says_the_rule(
    client, login, admin_user, practice, django_capture_on_commit_callbacks
):
    # Invitation: the link in the email opens the set-password form.
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/settings/users/add/",
            {
                "email": "kim@riverside.test",
                "display_name": "Kim",
                "roles": ["clinician"],
            },
        )
    # Reset: the same form, reached by asking for a link.
    client.post("/logout/")
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/password/reset/", {"email": admin_user.email})
    assert len(mail.outbox) == 2
    for message in mail.outbox:
        path = "/" + LINK.search(message.body).group(1).split("/", 3)[3]
        page = client.get(path, follow=True)
        assert b"Save password" in page.content
        assert RULE in page.content.decode(), message.subject
    # Change, for someone signed in.
    login(admin_user)
    page = client.get("/password/change/")
    assert RULE in page.content.decode()
