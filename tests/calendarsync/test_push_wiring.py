"""What starts a push run (``calendarsync.pushqueue``), against a real Radicale:
changes made through the services reach the server once their transaction
commits, one run per account however many changes; a failed run retries through
the real database worker and catches up; revoking access removes Tend's events;
the nightly command queues every account."""

import random

import caldav
import icalendar
import pytest
from django.core.management import call_command
from django.db import transaction
from django.tasks import default_task_backend
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from calendarsync import push, pushqueue
from calendarsync.models import CalendarAccount
from calendarsync.selectors import calendar_account_state
from calendarsync.services import (
    feed_access_disable,
    practice_sync_set,
)
from practice.services import user_set_active
from scheduling.models import Appointment
from tests.factories import (
    change_appointment,
    connect_calendar_account_to,
    delete_appointment,
    local,
    make_appointment,
)
from tests.servers import RadicaleServer
from tests.support import run_worker

DUMMY = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
DATABASE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def server_events(server, account) -> dict[str, icalendar.Event]:
    """{UID: VEVENT} of Tend's calendar, read with the caldav library."""
    dav = caldav.DAVClient(
        url=server.url, username=server.username, password=server.password
    )
    found = {}
    for resource in dav.calendar(url=account.calendar_url).events():
        (event,) = icalendar.Calendar.from_ical(resource.data).walk("VEVENT")
        found[str(event["UID"])] = event
    return found


def queued_runs() -> list:
    return [r for r in default_task_backend.results if r.task.name == "push_account"]


def test_changes_through_the_services_reach_the_server_on_commit(
    clinician, other_clinician, radicale, django_capture_on_commit_callbacks
):
    practice = clinician.practice
    account = connect_calendar_account_to(clinician, radicale)
    colleague = connect_calendar_account_to(other_clinician, radicale)

    with django_capture_on_commit_callbacks(execute=True):
        booked = make_appointment(clinician, start=local(practice, days=1, hour=9))
    assert server_events(radicale, account)[f"{booked.uid}@tend"].decoded(
        "DTSTART"
    ) == local(practice, days=1, hour=9)

    with django_capture_on_commit_callbacks(execute=True):
        change_appointment(
            booked,
            start=local(practice, days=1, hour=14),
            end=local(practice, days=1, hour=15),
        )
    assert server_events(radicale, account)[f"{booked.uid}@tend"].decoded(
        "DTSTART"
    ) == local(practice, days=1, hour=14)

    with django_capture_on_commit_callbacks(execute=True):
        change_appointment(booked, status=Appointment.Status.CANCELLED)
    event = server_events(radicale, account)[f"{booked.uid}@tend"]
    assert str(event["STATUS"]) == "CANCELLED"

    deleted = make_appointment(clinician, start=local(practice, days=2, hour=9))
    with django_capture_on_commit_callbacks(execute=True):
        delete_appointment(deleted)
    event = server_events(radicale, account)[f"{deleted.uid}@tend"]
    assert str(event["STATUS"]) == "CANCELLED"

    # Given to a colleague: it leaves one calendar and reaches the other.
    handed = make_appointment(clinician, start=local(practice, days=3, hour=9))
    with django_capture_on_commit_callbacks(execute=True):
        push.push_account.call(account.pk)
    assert f"{handed.uid}@tend" in server_events(radicale, account)
    with django_capture_on_commit_callbacks(execute=True):
        change_appointment(handed, clinician=other_clinician)
    assert f"{handed.uid}@tend" not in server_events(radicale, account)
    assert f"{handed.uid}@tend" in server_events(radicale, colleague)


@pytest.mark.django_db(transaction=True)
def test_a_transactions_changes_make_one_run_per_account(
    clinician, other_clinician, radicale, settings
):
    # Each transaction commits for real here (transactional_db), as in production.
    account = connect_calendar_account_to(clinician, radicale)
    connect_calendar_account_to(other_clinician, radicale)
    settings.TASKS = DUMMY
    practice = clinician.practice

    with transaction.atomic():
        appointments = [
            make_appointment(clinician, start=local(practice, days=1, hour=h))
            for h in range(8, 13)
        ]
        for appointment in appointments:
            change_appointment(appointment, status=Appointment.Status.CANCELLED)

    # Ten changes, one run, for the only calendar they touched.
    assert [r.args for r in queued_runs()] == [[account.pk]]

    # While that run waits, a later commit queues no second one...
    make_appointment(clinician, start=local(practice, days=2))
    assert len(queued_runs()) == 1

    # ...and once it has started, the next change queues the next run.
    push.push_account.call(account.pk)
    make_appointment(clinician, start=local(practice, days=3))
    assert [r.args for r in queued_runs()] == [[account.pk], [account.pk]]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_queues_nothing(clinician, radicale, settings):
    connect_calendar_account_to(clinician, radicale)
    settings.TASKS = DUMMY

    with transaction.atomic():
        make_appointment(clinician)
        transaction.set_rollback(True)

    assert queued_runs() == []


@pytest.mark.django_db(transaction=True)
def test_a_stopped_server_catches_up_through_the_workers_retry(
    clinician, settings, tmp_path
):
    settings.TASKS = DATABASE
    server = RadicaleServer(tmp_path)
    server.start()
    try:
        account = connect_calendar_account_to(clinician, server)
        run_worker()
        server.stop()
        practice = clinician.practice
        first = make_appointment(clinician, start=local(practice, days=1, hour=9))
        second = make_appointment(clinician, start=local(practice, days=2, hour=9))

        run_worker()

        account.refresh_from_db()
        assert account.failing_since is not None and not account.needs_attention
        (retry,) = DBTaskResult.objects.filter(status="READY")
        assert retry.task_path == "calendarsync.push.push_account"
        assert retry.run_after > account.failing_since
        assert account.push_queued_at == retry.run_after
        assert account.push_wanted_at == retry.run_after

        # The server comes back, and the clock passes the retry's time.
        server.start()
        DBTaskResult.objects.filter(pk=retry.pk).update(run_after=timezone.now())
        CalendarAccount.objects.filter(pk=account.pk).update(
            push_wanted_at=timezone.now()
        )
        run_worker()

        assert set(server_events(server, account)) == {
            f"{first.uid}@tend",
            f"{second.uid}@tend",
        }
        account.refresh_from_db()
        assert account.failing_since is None and account.push_queued_at is None
        assert not DBTaskResult.objects.filter(status="READY").exists()
    finally:
        server.stop()


def test_retries_back_off_exponentially_with_jitter_up_to_a_cap():
    now = timezone.now()
    rng = random.Random(13)
    waits = []
    failing_since = now
    moment = now
    for _ in range(30):
        wait = pushqueue.retry_delay(failing_since=failing_since, now=moment, rng=rng)
        waits.append(wait)
        moment += wait

    assert pushqueue.RETRY_FIRST / 2 <= waits[0] <= pushqueue.RETRY_FIRST
    assert all(wait <= pushqueue.RETRY_CAP for wait in waits)
    # Each wait is at least half the time failed so far: the gaps grow
    # geometrically until the cap.
    assert waits[6] > 8 * waits[0]
    assert waits[-1] >= pushqueue.RETRY_CAP / 2


def test_a_refused_password_is_not_retried_and_a_busy_account_is(
    clinician, radicale, settings
):
    account = connect_calendar_account_to(clinician, radicale)
    settings.TASKS = DUMMY
    users = radicale.folder / "users"
    users.write_text(f"{radicale.username}:a-new-app-password\n")
    try:
        outcome = push.push_account.call(account.pk)
    finally:
        users.write_text(f"{radicale.username}:{radicale.password}\n")

    assert outcome["error"] == "auth"
    assert queued_runs() == []
    account.refresh_from_db()
    assert account.needs_attention
    assert calendar_account_state(account, now=timezone.now()).startswith(
        "Failing since"
    )

    assert push.lease_claim(account)
    busy = push.push_account.call(account.pk)

    assert busy["busy"]
    (again,) = queued_runs()
    assert again.task.run_after is not None
    assert again.task.run_after - timezone.now() <= pushqueue.BUSY_DELAY


def revoke_access(clinician, admin_user):
    feed_access_disable(user=clinician, actor=admin_user, client_ip=None)


def deactivate(clinician, admin_user):
    user_set_active(user=clinician, active=False, actor=admin_user, client_ip=None)


def switch_off_practice(clinician, admin_user):
    practice_sync_set(
        practice=clinician.practice, enabled=False, actor=admin_user, client_ip=None
    )


@pytest.mark.parametrize("revoke", [revoke_access, deactivate, switch_off_practice])
def test_revoking_removes_tends_events_and_the_page_says_so(
    clinician, admin_user, radicale, revoke, django_capture_on_commit_callbacks
):
    account = connect_calendar_account_to(clinician, radicale)
    with django_capture_on_commit_callbacks(execute=True):
        make_appointment(clinician)
        make_appointment(clinician, start=local(clinician.practice, days=2))
    assert len(server_events(radicale, account)) == 2

    with django_capture_on_commit_callbacks(execute=True):
        revoke(clinician, admin_user)

    assert server_events(radicale, account) == {}
    account = CalendarAccount.objects.select_related("user", "practice").get(
        pk=account.pk
    )
    assert calendar_account_state(account, now=timezone.now()).endswith(
        ": Tend's 2 events were removed from your CalDAV calendar."
    )


def test_the_nightly_command_queues_every_connected_account(
    clinician, other_clinician, radicale, settings
):
    account = connect_calendar_account_to(clinician, radicale)
    colleague = connect_calendar_account_to(other_clinician, radicale)
    appointment = make_appointment(clinician)

    call_command("push_reconcile_all", verbosity=0)

    # The immediate backend ran both runs at once.
    assert set(server_events(radicale, account)) == {f"{appointment.uid}@tend"}
    assert server_events(radicale, colleague) == {}

    settings.TASKS = DUMMY
    call_command("push_reconcile_all", verbosity=0)
    call_command("push_reconcile_all", verbosity=0)
    assert sorted(r.args[0] for r in queued_runs()) == sorted(
        [account.pk, colleague.pk]
    )
