"""One worker, many accounts: a queued run takes the other accounts whose runs are
due and pushes them beside its own on threads (``push.push_account``), and their
own queued tasks then find nothing to do. Against a real Radicale, and with a
real ``manage.py db_worker``. Threads run on PostgreSQL only: SQLite runs one
account at a time (``PUSH_CONCURRENCY`` is 1 there), and its in-memory test
database cannot be written by several threads at once."""

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from calendarsync import push, pushqueue
from calendarsync.models import CalendarAccount, PushedEvent
from tests.calendarsync.test_push import age
from tests.factories import (
    connect_calendar_account_to,
    local,
    make_appointment,
    make_user,
)
from tests.support import db_worker_command, db_worker_env

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def queued_runs() -> list[DBTaskResult]:
    return list(
        DBTaskResult.objects.filter(
            task_path="calendarsync.push.push_account", status="READY"
        ).order_by("enqueued_at")
    )


def call(run: DBTaskResult) -> dict:
    """Run a queued task as the worker would (outside any transaction)."""
    return push.push_account.call(*run.args_kwargs["args"], **run.args_kwargs["kwargs"])


def account_of(run: DBTaskResult) -> int:
    return run.args_kwargs["args"][0]


@pytest.fixture
def accounts(practice, clinician, radicale, settings):
    """Four clinicians with connected accounts (each with its own Tend calendar
    on the same Radicale), their first syncs done, and two appointments each
    booked since: four runs queued and due, none started."""
    settings.TASKS = DATABASE_QUEUE
    settings.PUSH_CONCURRENCY = 4 if threads() else 1
    staff = [clinician] + [
        make_user(practice, email=f"c{index}@riverside.test", name=f"Clin {index}")
        for index in range(3)
    ]
    accounts = []
    for user in staff:
        account = connect_calendar_account_to(user, radicale)
        push.reconcile(account)
        accounts.append(account)
    DBTaskResult.objects.all().delete()
    CalendarAccount.objects.update(push_queued_at=None, push_wanted_at=None)
    for user in staff:
        for day in (1, 2):
            make_appointment(user, start=local(practice, days=day, hour=9))
    age()
    return accounts


def threads() -> bool:
    return connection.vendor == "postgresql"


def uids_of(account) -> set[str]:
    return {
        str(uid)
        for uid in account.user.appointments.values_list("uid", flat=True)
        if uid is not None
    }


def on_server(account) -> set[str]:
    with push.client_for(account) as client:
        hrefs = client.resources(account.calendar_url)
    return {href.rstrip("/").rsplit("/", 1)[-1].removesuffix(".ics") for href in hrefs}


def test_a_queued_run_pushes_the_other_due_accounts_beside_its_own(accounts):
    if not threads():
        pytest.skip("other accounts run on threads on PostgreSQL")
    runs = queued_runs()
    assert len(runs) == len(accounts)
    first = runs[0]

    outcome = call(first)

    # Its own account and the three others, in one run of the task.
    assert outcome["error"] is None
    assert outcome["writes"] == 2
    assert outcome["others"] == 3
    for account in accounts:
        assert on_server(account) == uids_of(account)
        fresh = CalendarAccount.objects.get(pk=account.pk)
        assert fresh.push_wanted_at is None
        assert fresh.push_lease_until is None
        assert fresh.failing_since is None
    # Each event was written once: a second run finds nothing to do.
    assert PushedEvent.objects.count() == 8
    # The others' own queued tasks find their runs taken.
    for run in runs[1:]:
        assert call(run) == {"skipped": "taken"}
    for account in accounts:
        assert push.reconcile(account).writes == 0


def test_a_change_while_a_task_waits_queues_no_other(accounts, clinician):
    own = next(r for r in queued_runs() if account_of(r) == accounts[0].pk)
    # Another worker's run took every due account, and has given them back
    # (without writing anything, as a run whose server refused it).
    assert sorted(pushqueue.push_take_due(10)) == sorted(a.pk for a in accounts)
    assert not CalendarAccount.objects.filter(push_wanted_at__isnull=False).exists()
    CalendarAccount.objects.update(push_lease_until=None)
    # A change after that wants another run; the task still waiting is enough.
    # (Not aged: aging rewrites every appointment of the practice, which wants a
    # run of every account.)
    make_appointment(clinician, start=local(clinician.practice, days=3, hour=9))
    assert [r.pk for r in queued_runs() if account_of(r) == accounts[0].pk] == [own.pk]
    outcome = call(own)
    # Its own three events (the other accounts were taken, not wanted again).
    assert outcome["error"] is None and outcome["writes"] == 3
    assert "others" not in outcome
    assert on_server(accounts[0]) == uids_of(accounts[0])
    # The others' tasks find nothing wanted.
    for run in queued_runs():
        assert call(run) == {"skipped": "taken"}


def test_a_task_for_an_account_another_run_holds_asks_again_shortly(accounts):
    own = next(r for r in queued_runs() if account_of(r) == accounts[0].pk)
    # Another run holds the account (it took it before this change was made).
    assert pushqueue.push_take_due(1) == [accounts[0].pk]
    make_appointment(accounts[0].user, start=local(accounts[0].practice, days=4))
    assert CalendarAccount.objects.get(pk=accounts[0].pk).push_wanted_at is not None

    assert call(own) == {"skipped": "held"}

    # The change still wants a run, and one is queued a moment later.
    account = CalendarAccount.objects.get(pk=accounts[0].pk)
    assert account.push_wanted_at is not None
    (later,) = [
        r for r in queued_runs() if account_of(r) == accounts[0].pk and r.pk != own.pk
    ]
    assert later.run_after > timezone.now() - timedelta(seconds=1)
    assert account.push_queued_at == later.run_after


def test_a_failing_account_waits_for_its_retry(accounts):
    failing = CalendarAccount.objects.filter(pk=accounts[2].pk)
    failing.update(failing_since=local(accounts[2].practice, days=-1))
    taken = pushqueue.push_take_due(10)
    assert accounts[2].pk not in taken and len(taken) == 3


def test_a_run_inside_a_transaction_pushes_only_its_own(accounts):
    # Threads use connections of their own, which cannot see uncommitted rows:
    # a run called inside a transaction leaves the others to their own tasks.
    first = queued_runs()[0]
    with transaction.atomic():
        outcome = call(first)
    assert "others" not in outcome
    assert CalendarAccount.objects.filter(push_wanted_at__isnull=False).count() == 3


def test_a_concurrency_of_one_pushes_only_its_own(accounts, settings):
    settings.PUSH_CONCURRENCY = 1
    first = queued_runs()[0]
    outcome = call(first)
    assert "others" not in outcome
    assert CalendarAccount.objects.filter(push_wanted_at__isnull=False).count() == 3


def test_a_run_not_yet_due_is_not_taken(accounts):
    later = CalendarAccount.objects.filter(pk=accounts[1].pk)
    later.update(push_wanted_at=local(accounts[1].practice, days=1))
    taken = pushqueue.push_take_due(10)
    assert accounts[1].pk not in taken
    assert len(taken) == 3


def test_one_real_worker_pushes_every_account_once(accounts):
    if not threads():
        pytest.skip("a worker process shares a PostgreSQL database")
    worker = subprocess.run(  # noqa: S603 - our own command and arguments
        db_worker_command(batch=True),
        cwd=ROOT,
        env=db_worker_env(PUSH_CONCURRENCY="4"),
        capture_output=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stdout.decode() + worker.stderr.decode()

    results = DBTaskResult.objects.filter(task_path="calendarsync.push.push_account")
    assert not results.filter(status="FAILED").exists()
    values = [r.return_value for r in results.filter(status="SUCCESSFUL")]
    assert len(values) == len(accounts)
    # The first run took the other three; their tasks found nothing to do.
    ran = [v for v in values if "skipped" not in v]
    assert len(ran) == 1 and ran[0]["others"] == 3
    assert sorted(v.get("skipped", "") for v in values) == [
        "",
        "taken",
        "taken",
        "taken",
    ]
    for account in accounts:
        assert on_server(account) == uids_of(account)
    assert PushedEvent.objects.count() == 8
