"""Change notices by email (``calendarsync.notices``): a clinician who opted in is
emailed, by the real database worker through a real SMTP server (aiosmtpd), when
something in the next 48 hours is booked, moved or cancelled on their calendar by
someone else; at most one email per 10 minutes, gathering what changed meanwhile;
never a patient's name or initials; nothing when opted out or no longer allowed
to read the calendar; two senders at once send once (PostgreSQL)."""

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from calendarsync import notices
from calendarsync.models import ChangeNoticeSubscription, PendingChangeNotice
from calendarsync.services import feed_access_disable, practice_sync_set
from practice.models import Role
from practice.services import user_set_active, user_update
from scheduling.models import Appointment
from scheduling.names import initials
from tests.factories import (
    change_appointment,
    delete_appointment,
    local,
    make_appointment,
    make_patient,
    make_user,
)
from tests.support import run_worker

SEND_TASK = "calendarsync.tasks.change_notices_send"


@pytest.fixture
def database_queue(settings):
    """Tasks go to the database queue, as in production."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@pytest.fixture
def patient(practice):
    return make_patient(practice, first_name="Ottoline", last_name="Quenby-Vasquez")


@pytest.fixture
def subscribed(clinician):
    notices.change_notices_set(user=clinician, enabled=True)
    return clinician


def body(message) -> str:
    return message.get_payload(decode=True).decode()


def lines_of(message) -> list[str]:
    return [line[2:] for line in body(message).splitlines() if line.startswith("- ")]


def assert_no_patient_data(text: str, patient) -> None:
    for secret in (
        patient.first_name,
        patient.last_name,
        "Quenby",
        "Vasquez",
        initials(patient.first_name, patient.last_name),
        "O.Q",
    ):
        assert secret not in text


def book(clinician, patient, *, actor, days=1, hour=10, minute=0) -> Appointment:
    return make_appointment(
        clinician,
        start=local(clinician.practice, days=days, hour=hour, minute=minute),
        patients=[patient],
        actor=actor,
    )


def move(appointment, *, actor, days: int, hour: int, minute: int = 0) -> None:
    """``actor`` moves ``appointment``, keeping its 50 minutes."""
    start = local(appointment.practice, days=days, hour=hour, minute=minute)
    change_appointment(
        appointment,
        actor=actor,
        start=start,
        end=start + timedelta(minutes=50),
    )


def days_label(practice, days: int) -> str:
    moment = local(practice, days=days)
    return f"{moment:%a} {moment.day} {moment:%b}"


# -- end to end -----------------------------------------------------------------


def test_the_worker_gathers_changes_into_one_email_and_waits_ten_minutes(
    transactional_db,
    client,
    login,
    clinician,
    scheduler,
    patient,
    database_queue,
    smtp_server,
):
    practice = clinician.practice
    moved = book(clinician, patient, actor=scheduler, hour=10)
    cancelled = book(clinician, patient, actor=scheduler, hour=9)
    signed_in = login(clinician)
    response = signed_in.post("/settings/sync/notices/", {"notices": "on"})
    assert response.status_code == 302
    assert ChangeNoticeSubscription.objects.filter(user=clinician).exists()

    # Three changes by the scheduler, each committed on its own.
    move(moved, actor=scheduler, days=1, hour=11, minute=30)
    book(clinician, patient, actor=scheduler, days=2, hour=14)
    change_appointment(cancelled, actor=scheduler, status="cancelled")

    # One send is queued, a little later, for all three.
    queued = DBTaskResult.objects.filter(task_path=SEND_TASK)
    assert queued.count() == 1
    assert queued.get().run_after > timezone.now() + timedelta(minutes=1)
    run_worker()
    assert smtp_server.messages == []

    queued.update(run_after=timezone.now())
    run_worker()

    (message,) = smtp_server.messages
    assert message["To"] == clinician.email
    assert message["Subject"] == "Tend: 3 changes to your calendar in the next 48 hours"
    tomorrow, after = days_label(practice, 1), days_label(practice, 2)
    assert lines_of(message) == [
        f"{tomorrow}: the 09:00 appointment was cancelled",
        f"{tomorrow}: the 10:00 appointment moved to 11:30",
        f"{after}: a 14:00 appointment was booked",
    ]
    assert_no_patient_data(body(message) + message["Subject"], patient)
    assert not PendingChangeNotice.objects.exists()

    # A change soon after waits for the window: queued for 10 minutes after the
    # email, then sent on its own.
    move(moved, actor=scheduler, days=1, hour=15)
    waiting = queued.filter(status="READY")
    sent_at = ChangeNoticeSubscription.objects.get(user=clinician).last_sent_at
    assert waiting.get().run_after == sent_at + notices.WINDOW
    # Ten minutes pass.
    ChangeNoticeSubscription.objects.update(
        last_sent_at=F("last_sent_at") - notices.WINDOW
    )
    waiting.update(run_after=timezone.now())
    run_worker()

    assert len(smtp_server.messages) == 2
    assert lines_of(smtp_server.messages[1]) == [
        f"{tomorrow}: the 11:30 appointment moved to 15:00"
    ]


# -- what is noticed ----------------------------------------------------------------


@pytest.fixture
def sent(smtp_server, django_capture_on_commit_callbacks):
    """Run what commits would run (the immediate tasks backend sends at once while
    the window is open), and return the messages received."""

    def run(action):
        with django_capture_on_commit_callbacks(execute=True):
            action()
        return smtp_server.messages

    return run


def test_a_change_in_an_open_window_is_sent_at_once_and_later_ones_wait(
    subscribed, scheduler, patient, sent, smtp_server
):
    practice = subscribed.practice
    first = sent(lambda: book(subscribed, patient, actor=scheduler, hour=10))
    assert [lines_of(m) for m in first] == [
        [f"{days_label(practice, 1)}: a 10:00 appointment was booked"]
    ]
    later = book(subscribed, patient, actor=scheduler, days=2, hour=8)
    sent(lambda: change_appointment(later, actor=scheduler, status="cancelled"))
    sent(lambda: book(subscribed, patient, actor=scheduler, hour=16))
    assert len(smtp_server.messages) == 1

    # Inside the window: nothing yet. After it: everything gathered, with the
    # booked-then-cancelled appointment cancelling out.
    assert notices.notices_send(user_id=subscribed.pk) == "later"
    outcome = notices.notices_send(
        user_id=subscribed.pk, now=timezone.now() + notices.WINDOW
    )
    assert outcome == "sent"
    assert lines_of(smtp_server.messages[1]) == [
        f"{days_label(practice, 1)}: a 16:00 appointment was booked"
    ]


def test_a_change_changed_back_says_nothing(subscribed, scheduler, patient, sent):
    appointment = book(subscribed, patient, actor=scheduler, hour=10)
    ChangeNoticeSubscription.objects.update(last_sent_at=timezone.now())
    PendingChangeNotice.objects.all().delete()
    for hour in (12, 10):
        move(appointment, actor=scheduler, days=1, hour=hour)
    assert PendingChangeNotice.objects.count() == 2

    outcome = notices.notices_send(
        user_id=subscribed.pk, now=timezone.now() + notices.WINDOW
    )

    assert outcome == "nothing"
    assert not PendingChangeNotice.objects.exists()
    # Nothing was sent, so the window stays where it was.
    assert ChangeNoticeSubscription.objects.get().last_sent_at < timezone.now()


def test_moves_between_days_deletions_and_handovers_are_worded(
    subscribed, scheduler, patient, practice, smtp_server
):
    colleague = make_user(practice, roles=[Role.CLINICIAN], name="Jo Colleague")
    one = book(subscribed, patient, actor=scheduler, hour=10)
    two = book(subscribed, patient, actor=scheduler, hour=11)
    three = book(subscribed, patient, actor=scheduler, hour=13)
    event = make_appointment(
        subscribed,
        start=local(practice, days=1, hour=17),
        kind=Appointment.Kind.EVENT,
        title="Staff meeting with Ottoline",
        actor=scheduler,
    )
    PendingChangeNotice.objects.all().delete()
    move(one, actor=scheduler, days=2, hour=9)
    delete_appointment(two, actor=scheduler)
    change_appointment(three, actor=scheduler, clinician=colleague)
    move(event, actor=scheduler, days=1, hour=18)

    assert notices.notices_send(user_id=subscribed.pk) == "sent"

    tomorrow, after = days_label(practice, 1), days_label(practice, 2)
    (message,) = smtp_server.messages
    assert lines_of(message) == [
        f"{tomorrow}: the 10:00 appointment moved to {after} at 09:00",
        f"{tomorrow}: the 11:00 appointment was cancelled",
        f"{tomorrow}: the 13:00 appointment was given to another clinician",
        f"{tomorrow}: the 17:00 event moved to 18:00",
    ]
    assert_no_patient_data(body(message), patient)
    assert "Staff meeting" not in body(message)
    assert "Colleague" not in body(message)


def test_given_to_a_subscriber_is_a_booking_for_them(
    subscribed, scheduler, patient, practice, smtp_server
):
    colleague = make_user(practice, roles=[Role.CLINICIAN], name="Jo Colleague")
    theirs = book(colleague, patient, actor=scheduler, hour=10)
    change_appointment(theirs, actor=scheduler, clinician=subscribed)

    notices.notices_send(user_id=subscribed.pk)

    (message,) = smtp_server.messages
    assert lines_of(message) == [
        f"{days_label(practice, 1)}: a 10:00 appointment was booked"
    ]


def test_changes_beyond_48_hours_are_not_noticed(
    subscribed, scheduler, patient, practice, smtp_server
):
    far = book(subscribed, patient, actor=scheduler, days=3, hour=10)
    move(far, actor=scheduler, days=4, hour=10)
    change_appointment(far, actor=scheduler, status="cancelled")
    assert not PendingChangeNotice.objects.exists()
    # A move from far away into the next 48 hours is noticed.
    near = book(subscribed, patient, actor=scheduler, days=5, hour=10)
    move(near, actor=scheduler, days=1, hour=10)
    assert PendingChangeNotice.objects.count() == 1


def test_own_changes_are_not_noticed(subscribed, patient, practice):
    mine = book(subscribed, patient, actor=subscribed, hour=10)
    change_appointment(mine, actor=subscribed, status="cancelled")
    assert not PendingChangeNotice.objects.exists()


def test_opted_out_gets_nothing(clinician, scheduler, patient, sent, smtp_server):
    notices.change_notices_set(user=clinician, enabled=True)
    notices.change_notices_set(user=clinician, enabled=False)

    sent(lambda: book(clinician, patient, actor=scheduler, hour=10))

    assert not PendingChangeNotice.objects.exists()
    assert smtp_server.messages == []


@pytest.mark.parametrize("revoke", ["disable", "deactivate", "role", "practice"])
def test_no_email_once_the_calendar_may_not_be_read(
    subscribed, scheduler, admin_user, patient, revoke, smtp_server
):
    book(subscribed, patient, actor=scheduler, hour=10)
    assert PendingChangeNotice.objects.count() == 1
    if revoke == "disable":
        feed_access_disable(user=subscribed, actor=subscribed, client_ip=None)
    elif revoke == "deactivate":
        user_set_active(user=subscribed, active=False, actor=admin_user, client_ip=None)
    elif revoke == "role":
        user_update(
            user=subscribed,
            display_name=subscribed.display_name,
            credentials=subscribed.credentials,
            roles=[Role.SCHEDULER],
            actor=admin_user,
            client_ip=None,
        )
    else:
        practice_sync_set(
            practice=subscribed.practice,
            enabled=False,
            actor=admin_user,
            client_ip=None,
        )
    subscribed.refresh_from_db()

    assert notices.notices_send(user_id=subscribed.pk) == "stopped"

    assert smtp_server.messages == []
    assert not ChangeNoticeSubscription.objects.exists()
    assert not PendingChangeNotice.objects.exists()


def test_a_failed_send_keeps_the_changes_for_the_next(
    subscribed, scheduler, patient, settings, smtp_server
):
    book(subscribed, patient, actor=scheduler, hour=10)
    mailer = settings.MAILERS
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},
        }
    }
    with pytest.raises(OSError):
        notices.notices_send(user_id=subscribed.pk)
    assert PendingChangeNotice.objects.filter(claim="").count() == 1
    assert ChangeNoticeSubscription.objects.get().last_sent_at is None

    settings.MAILERS = mailer
    assert notices.notices_send(user_id=subscribed.pk) == "sent"
    assert len(smtp_server.messages) == 1


def test_a_lost_task_is_queued_again_by_the_sweep(
    subscribed, scheduler, patient, database_queue
):
    book(subscribed, patient, actor=scheduler, hour=10)
    assert notices.notices_request_due() == [subscribed.pk]
    # Queued once: a second sweep finds the mark.
    assert notices.notices_request_due() == []
    # A mark long past its time is taken for a lost task.
    ChangeNoticeSubscription.objects.update(
        send_queued_at=timezone.now() - notices.STALE - timedelta(minutes=5)
    )
    assert notices.notices_request_due() == [subscribed.pk]


def test_changes_in_one_transaction_queue_one_send(
    subscribed, scheduler, patient, database_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            for hour in (9, 10, 11):
                book(subscribed, patient, actor=scheduler, hour=hour)

    assert PendingChangeNotice.objects.count() == 3
    assert DBTaskResult.objects.filter(task_path=SEND_TASK).count() == 1


def test_the_sweep_command_queues_what_waits(
    subscribed, scheduler, patient, database_queue
):
    book(subscribed, patient, actor=scheduler, hour=10)
    out = StringIO()
    call_command("change_notices_send_due", stdout=out)
    assert out.getvalue().strip() == "Enqueued change notices for 1 user."
    assert DBTaskResult.objects.filter(task_path=SEND_TASK).count() == 1


def test_a_rolled_back_change_leaves_nothing(subscribed, scheduler, patient):
    with transaction.atomic():
        book(subscribed, patient, actor=scheduler, hour=10)
        transaction.set_rollback(True)
    assert not PendingChangeNotice.objects.exists()


# -- the page --------------------------------------------------------------------


def test_the_page_turns_notices_on_and_off(client, login, clinician):
    signed_in = login(clinician)
    html = signed_in.get("/settings/sync/").content.decode()
    assert 'id="change-notices"' in html and "Change notices are off" in html

    response = signed_in.post("/settings/sync/notices/", {"notices": "on"}, follow=True)
    html = response.content.decode()
    assert (
        f"Change notices are on: Tend emails {clinician.email} when something in "
        "the next 48 hours is booked, moved or cancelled."
    ) in html
    assert "Change notices are <strong>on</strong>" in html
    assert notices.change_notices_enabled(user=clinician)

    response = signed_in.post(
        "/settings/sync/notices/", {"notices": "off"}, follow=True
    )
    assert "Change notices are off: Tend no longer emails you" in (
        response.content.decode()
    )
    assert not ChangeNoticeSubscription.objects.exists()


@pytest.mark.parametrize("data", [{}, {"notices": "maybe"}])
def test_the_page_refuses_bad_input(client, login, clinician, data):
    response = login(clinician).post("/settings/sync/notices/", data, follow=True)
    assert "Choose whether Tend emails you about changes." in (
        response.content.decode()
    )
    assert not ChangeNoticeSubscription.objects.exists()


def test_only_users_with_a_personal_calendar_see_or_set_notices(
    client, login, scheduler
):
    signed_in = login(scheduler)
    assert (
        'id="change-notices"' not in signed_in.get("/settings/sync/").content.decode()
    )
    response = signed_in.post("/settings/sync/notices/", {"notices": "on"}, follow=True)
    assert notices.NOT_ALLOWED in response.content.decode()
    assert not ChangeNoticeSubscription.objects.exists()


def test_the_page_needs_a_signed_in_user(db, client):
    response = client.post("/settings/sync/notices/", {"notices": "on"})
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert not ChangeNoticeSubscription.objects.exists()


# -- two senders at once -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_senders_at_once_send_one_email(
    clinician, scheduler, patient, smtp_server, settings
):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent senders need PostgreSQL's row locks")
    # The sends the bookings queue are the two senders below.
    settings.TASKS = {
        "default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}
    }
    notices.change_notices_set(user=clinician, enabled=True)

    for round_ in range(5):
        for minute in (0, 10, 20):
            book(clinician, patient, actor=scheduler, hour=8 + round_, minute=minute)
        # The window is open again for this round.
        ChangeNoticeSubscription.objects.update(last_sent_at=None)
        start = threading.Barrier(2)
        outcomes = []

        def sender(start=start, outcomes=outcomes):
            try:
                start.wait()
                outcomes.append(notices.notices_send(user_id=clinician.pk))
            finally:
                connection.close()

        threads = [threading.Thread(target=sender) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(outcomes)[-1] == "sent" and outcomes.count("sent") == 1
        assert len(smtp_server.messages) == round_ + 1
        assert len(lines_of(smtp_server.messages[-1])) == 3
        assert not PendingChangeNotice.objects.exists()
