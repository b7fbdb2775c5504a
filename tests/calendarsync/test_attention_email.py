"""The "needs attention" email: a password revoked on a real Radicale makes the
push fail; the real database worker emails the owner through a real SMTP server
(aiosmtpd) once per failing episode, however many runs fail, and again only after
a recovery and a new failure. Administrators see the account marked."""

import threading

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.utils import timezone

from calendarsync import attention, push
from calendarsync.models import CalendarAccount
from tests.factories import (
    connect_calendar_account_to,
    make_appointment,
    make_patient,
)
from tests.support import run_worker


@pytest.fixture
def database_queue(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@pytest.fixture
def revoked(radicale):
    """A context that changes the account's password on the server, as a user
    revoking an app password does, and puts it back afterwards."""
    users = radicale.folder / "users"

    class Revoked:
        def __enter__(self):
            users.write_text(f"{radicale.username}:revoked-elsewhere\n")

        def __exit__(self, *exc):
            users.write_text(f"{radicale.username}:{radicale.password}\n")

    yield Revoked
    users.write_text(f"{radicale.username}:{radicale.password}\n")


def body(message) -> str:
    return message.get_payload(decode=True).decode()


def fail_runs(account, count: int) -> None:
    """``count`` push runs, each committing its outcome, then the worker."""
    for _ in range(count):
        push.reconcile(account)
        run_worker()


def test_one_email_per_failing_episode_through_the_worker(
    transactional_db,
    clinician,
    radicale,
    revoked,
    database_queue,
    smtp_server,
    settings,
):
    patient = make_patient(clinician.practice, first_name="Ottoline", last_name="Q")
    account = connect_calendar_account_to(clinician, radicale)
    make_appointment(clinician, patients=[patient])
    run_worker()
    assert smtp_server.messages == []

    with revoked():
        fail_runs(account, 3)
        # The push task itself (as a change or the nightly reconcile queues it).
        push.push_account.enqueue(account.pk)
        run_worker()

    assert len(smtp_server.messages) == 1
    (message,) = smtp_server.messages
    assert message["To"] == clinician.email
    assert message["Subject"] == "Tend can no longer write to your CalDAV calendar"
    text = body(message)
    assert "the server refused the password" in text
    assert "new app-specific password" in text
    assert "Enter a new app password" in text and "disconnect" not in text
    assert f"{settings.SITE_URL}/settings/sync/#account" in text
    assert "Ottoline" not in text and "O. Q." not in text and "OQ" not in text
    account.refresh_from_db()
    assert account.needs_attention and account.attention_emailed_at is not None

    # Recovered: the flag clears; a new failure emails again, once.
    push.reconcile(account)
    account.refresh_from_db()
    assert not account.needs_attention and account.attention_emailed_at is None
    with revoked():
        fail_runs(account, 2)

    assert len(smtp_server.messages) == 2
    assert [tuple(e.rcpt_tos) for e in smtp_server.envelopes] == [
        (clinician.email,),
        (clinician.email,),
    ]


def test_a_second_sender_sends_nothing(db, clinician, radicale, revoked, smtp_server):
    account = connect_calendar_account_to(clinician, radicale)
    with revoked():
        push.reconcile(account)

    # Two workers handed the same task: the claim lets one send.
    assert attention.attention_email_deliver(account_id=account.pk, kind="auth")
    assert not attention.attention_email_deliver(account_id=account.pk, kind="auth")
    assert len(smtp_server.messages) == 1


def test_nothing_is_sent_once_the_account_recovered(
    db, clinician, radicale, smtp_server
):
    account = connect_calendar_account_to(clinician, radicale)
    CalendarAccount.objects.filter(pk=account.pk).update(needs_attention=False)
    assert not attention.attention_email_deliver(account_id=account.pk, kind="auth")
    assert smtp_server.messages == []


def test_a_failed_send_can_be_tried_again(db, clinician, radicale, revoked, settings):
    account = connect_calendar_account_to(clinician, radicale)
    with revoked():
        push.reconcile(account)
    # Nothing listens on this port: the SMTP connection fails.
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},
        }
    }
    with pytest.raises(OSError):
        attention.attention_email_deliver(account_id=account.pk, kind="auth")
    account.refresh_from_db()
    assert account.attention_emailed_at is None


def test_each_reason_is_said_in_plain_words(db, clinician, radicale):
    account = CalendarAccount(provider=CalendarAccount.Provider.ICLOUD)
    happened, todo = attention.attention_reason(account, "auth")
    assert happened == "the server refused the password"
    assert "account.apple.com" in todo and "Sync Calendars" in todo
    assert attention.attention_reason(account, "full")[0] == (
        "the calendar account is full"
    )
    assert "administrator" in attention.attention_reason(account, "refused")[1]


def test_administrators_see_the_account_needing_attention(
    clinician, admin_user, radicale, revoked, login
):
    account = connect_calendar_account_to(clinician, radicale)
    with revoked():
        push.reconcile(account)

    html = login(admin_user).get("/settings/sync/admin/").content.decode()

    assert "1 calendar account needs attention" in html
    assert "Needs attention" in html
    assert "Failing since" in html and "the server refused the password" in html
    # An administrator cannot enter it: the words say who can.
    assert "only its owner can enter a new password" in html
    assert "enter a new app password" not in html
    assert f"An email to {clinician.label} is on its way." in html

    CalendarAccount.objects.filter(pk=account.pk).update(
        attention_emailed_at=timezone.now()
    )
    html = login(admin_user).get("/settings/sync/admin/").content.decode()
    assert f"{clinician.label} was emailed on " in html


def test_an_unreadable_saved_password_is_told_as_such(
    db, clinician, radicale, settings, smtp_server
):
    account = connect_calendar_account_to(clinician, radicale)
    # The key the password was saved under is gone.
    settings.CALENDAR_ACCOUNT_KEY = Fernet.generate_key().decode()
    settings.CALENDAR_ACCOUNT_KEY_FALLBACKS = []
    push.reconcile(account)
    account.refresh_from_db()
    assert account.needs_attention

    assert attention.attention_email_deliver(account_id=account.pk, kind="auth")

    text = body(smtp_server.messages[0])
    assert "Tend can no longer read the password it saved" in text
    assert "Enter a new app password" in text
    assert "disconnect" not in text


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_one_email(
    clinician, radicale, revoked, smtp_server, settings
):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent workers share a PostgreSQL database")
    # The task each failing run queues is what the two workers below run.
    settings.TASKS = {
        "default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}
    }
    account = connect_calendar_account_to(clinician, radicale)
    for round_ in range(3):
        with revoked():
            push.reconcile(account)
        start = threading.Barrier(2)
        sent = []

        def worker(start=start, sent=sent):
            try:
                start.wait()
                sent.append(
                    attention.attention_email_deliver(
                        account_id=account.pk, kind="auth"
                    )
                )
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(sent) == [False, True]
        assert len(smtp_server.messages) == round_ + 1
        # Recovered before the next round's failure.
        push.reconcile(account)
