"""Emails with a password link or a calendar link: sent by the background worker
(the database queue and its ``db_worker`` command, to a real SMTP server), the same
work in the request whether or not an account exists, rate-limited per account and
per client address, and links that work for one hour."""

import re

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_tasks_db.models import DBTaskResult

from practice.models import AuditEvent, User
from practice.services import EMAIL_TAKEN_ELSEWHERE, user_set_active
from tests.factories import make_user
from tests.support import run_worker

RESET = "/password/reset/"
LINK = re.compile(r"(https?://\S+/password/reset/\S+/\S+/)")
FEED = re.compile(r"(https?://\S+/calendar/\S+\.ics)")


@pytest.fixture
def database_queue(settings):
    """Tasks go to the database queue, as in production, instead of running at
    once in the request (the test suite's default)."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def body(message) -> str:
    return message.get_payload(decode=True).decode()


def test_worker_sends_queued_emails_through_smtp(
    transactional_db,
    client,
    login,
    admin_user,
    clinician,
    database_queue,
    smtp_server,
):
    # Each request commits for real (transactional_db), as in production, and the
    # worker then runs in this process against what was committed.
    client.post(RESET, {"email": clinician.email})
    client.post(RESET, {"email": "nobody@riverside.test"})
    login(admin_user).post(
        "/settings/users/add/",
        {"email": "kim@riverside.test", "display_name": "Robin Kim"}
        | {"roles": ["clinician"]},
    )
    signed_in = login(clinician)
    html = signed_in.get("/settings/sync/").content.decode()
    public_id = re.search(r'name="link" value="([^"]+)"', html)[1]
    signed_in.post("/settings/sync/email/", {"link": public_id})

    # Nothing went out during the requests: four tasks wait in the queue, and
    # none of them holds a secret (the links are made when the emails are).
    assert smtp_server.messages == []
    queued = list(DBTaskResult.objects.order_by("enqueued_at"))
    assert [task.task_path for task in queued] == [
        "practice.tasks.password_reset_email",
        "practice.tasks.password_reset_email",
        "practice.tasks.invitation_email",
        "calendarsync.tasks.feed_link_email",
    ]
    assert {task.status for task in queued} == {"READY"}

    run_worker()

    assert {task.status for task in DBTaskResult.objects.all()} == {"SUCCESSFUL"}
    by_recipient = {
        tuple(envelope.rcpt_tos): message
        for envelope, message in zip(
            smtp_server.envelopes, smtp_server.messages, strict=True
        )
    }
    assert set(by_recipient) == {
        (clinician.email,),
        ("kim@riverside.test",),
    }
    assert len(smtp_server.messages) == 3
    reset, link_email = sorted(
        (m for m in smtp_server.messages if m["To"] == clinician.email),
        key=lambda m: m["Subject"],
    )
    assert reset["Subject"] == "Reset your Tend password"
    assert LINK.search(body(reset))
    assert link_email["Subject"].startswith("Your Tend calendar link")
    feed_url = FEED.search(body(link_email)).group(1)
    secret = feed_url.rsplit("/", 1)[1]
    assert LINK.search(body(by_recipient[("kim@riverside.test",)]))
    for task in DBTaskResult.objects.all():
        stored = str(task.args_kwargs) + str(task.return_value)
        assert secret not in stored and "token" not in stored
    assert AuditEvent.objects.filter(
        kind=AuditEvent.Kind.PASSWORD_RESET_REQUESTED, target_user=clinician
    ).exists()


def test_reset_does_the_same_work_for_known_and_unknown_addresses(
    client, clinician, database_queue, django_capture_on_commit_callbacks
):
    """The request neither looks the account up nor sends anything: both answers
    run the same statements and queue one task each, so their timing cannot tell
    whether the address has an account."""
    statements = []
    for email in (clinician.email, "nobody@riverside.test"):
        with (
            CaptureQueriesContext(connection) as queries,
            django_capture_on_commit_callbacks(execute=True),
        ):
            response = client.post(RESET, {"email": email})
        assert response.status_code == 302
        assert response["Location"] == "/password/reset/sent/"
        statements.append(
            [re.sub(r"'[^']*'|\d+", "?", query["sql"]) for query in queries]
        )
    known, unknown = statements
    assert known == unknown
    assert not any("practice_user" in sql for sql in known)
    assert DBTaskResult.objects.count() == 2


def test_ten_resets_for_one_account_send_at_most_the_limit(
    client, clinician, settings, mailoutbox, django_capture_on_commit_callbacks
):
    assert settings.PASSWORD_EMAILS_PER_ACCOUNT_HOUR == 3
    for attempt in range(10):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                RESET, {"email": clinician.email}, REMOTE_ADDR=f"192.0.2.{attempt}"
            )
        assert response["Location"] == "/password/reset/sent/"
    assert len(mailoutbox) == 3
    assert all(message.to == [clinician.email] for message in mailoutbox)


def test_resets_from_one_address_are_limited(
    client, clinician, settings, database_queue, django_capture_on_commit_callbacks
):
    assert settings.PASSWORD_EMAILS_PER_ADDRESS_HOUR == 10
    for number in range(12):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                RESET,
                {"email": f"guess{number}@riverside.test"},
                REMOTE_ADDR="192.0.2.1",
            )
        assert response["Location"] == "/password/reset/sent/"
    assert DBTaskResult.objects.count() == 10
    # Another address is not held back.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(RESET, {"email": clinician.email}, REMOTE_ADDR="192.0.2.2")
    assert DBTaskResult.objects.count() == 11


def test_invitations_from_one_address_are_limited_with_a_clear_message(
    login, admin_user, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.PASSWORD_EMAILS_PER_ADDRESS_HOUR = 2
    signed_in = login(admin_user)
    for number in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            response = signed_in.post(
                "/settings/users/add/",
                {
                    "email": f"new{number}@riverside.test",
                    "display_name": f"New Person {number}",
                    "roles": ["clinician"],
                },
                REMOTE_ADDR="192.0.2.3",
            )
    assert response.status_code == 200
    assert (
        "You have sent 2 invitations in the last hour, the most Tend sends from one "
        "address. Nobody was added; try again later." in response.content.decode()
    )
    assert not User.objects.filter(email="new2@riverside.test").exists()
    assert sorted(message.to[0] for message in mailoutbox) == [
        "new0@riverside.test",
        "new1@riverside.test",
    ]


def test_reset_links_work_for_one_hour(client, clinician, settings):
    assert settings.PASSWORD_RESET_TIMEOUT == 3600
    uid = urlsafe_base64_encode(force_bytes(clinician.pk))
    now = default_token_generator._num_seconds(default_token_generator._now())
    for age, works in ((3590, True), (3610, False)):
        # A link made ``age`` seconds ago (its timestamp is part of the token).
        token = default_token_generator._make_token_with_timestamp(
            clinician, now - age, default_token_generator.secret
        )
        page = client.get(f"/password/reset/{uid}/{token}/", follow=True)
        assert page.context["validlink"] is works, age
        assert (b"This link no longer works" in page.content) is not works, age


def test_invitation_is_not_sent_to_a_user_deactivated_before_it_went_out(
    transactional_db, login, admin_user, database_queue, smtp_server
):
    login(admin_user).post(
        "/settings/users/add/",
        {"email": "kim@riverside.test", "display_name": "Robin Kim"}
        | {"roles": ["clinician"]},
    )
    kim = User.objects.get(email="kim@riverside.test")
    user_set_active(user=kim, active=False, actor=admin_user, client_ip=None)
    run_worker()
    assert smtp_server.messages == []


@pytest.mark.parametrize(
    "holder",
    ["other-practice", "operator"],
)
def test_adding_an_email_used_outside_the_practice_says_no_more_than_it_must(
    login, admin_user, outsider_admin, holder, django_user_model
):
    if holder == "operator":
        email = "ops@tend.test"
        django_user_model.objects.create_superuser(email=email, password="x" * 16)
    else:
        email = outsider_admin.email.upper()
    response = login(admin_user).post(
        "/settings/users/add/",
        {"email": email, "display_name": "Some One", "roles": ["clinician"]},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["email"] == [EMAIL_TAKEN_ELSEWHERE]
    html = response.content.decode()
    assert "already exists" not in html
    assert "Harbor" not in html


def test_adding_an_email_of_the_practice_says_who_has_it(
    login, admin_user, clinician, other_clinician
):
    user_set_active(
        user=other_clinician, active=False, actor=admin_user, client_ip=None
    )
    signed_in = login(admin_user)
    errors = {}
    for member in (clinician, other_clinician):
        response = signed_in.post(
            "/settings/users/add/",
            {"email": member.email, "display_name": "Some One", "roles": ["clinician"]},
        )
        errors[member.email] = response.context["form"].errors["email"]
    assert errors == {
        clinician.email: [
            "A user with this email address is already in your practice."
        ],
        other_clinician.email: [
            "A deactivated user of your practice has this email address: "
            "reactivate them on the Users page instead."
        ],
    }


def test_a_deactivated_user_elsewhere_gets_the_same_neutral_answer(
    login, admin_user, other_practice, outsider_admin
):
    elsewhere = make_user(other_practice, email="gone@harbor.test")
    user_set_active(user=elsewhere, active=False, actor=outsider_admin, client_ip=None)
    response = login(admin_user).post(
        "/settings/users/add/",
        {"email": elsewhere.email, "display_name": "Some One", "roles": ["clinician"]},
    )
    assert response.context["form"].errors["email"] == [EMAIL_TAKEN_ELSEWHERE]
