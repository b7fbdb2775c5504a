"""Two real worker processes (``manage.py db_worker``) on PostgreSQL working one
account's queued push runs at once: every event is written once, none twice,
none lost. (SQLite's single writer makes the question moot there.)"""

import subprocess
from pathlib import Path

import pytest
from django.db import connection
from django_tasks_db.models import DBTaskResult

from calendarsync import push
from calendarsync.models import PushedEvent
from tests.calendarsync.test_push import age
from tests.factories import (
    connect_calendar_account_to,
    local,
    make_appointment,
)
from tests.support import db_worker_command, db_worker_env

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - our own command and arguments
        db_worker_command(batch=True),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_two_workers_write_each_event_once(clinician, radicale, settings):
    if connection.vendor != "postgresql":
        pytest.skip("two worker processes share a PostgreSQL database")
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    account = connect_calendar_account_to(clinician, radicale)
    practice = clinician.practice
    uids = {
        str(make_appointment(clinician, start=local(practice, days=d, hour=9)).uid)
        for d in range(1, 9)
    }
    # Past the second their dates were held back to, so no run writes them twice.
    age()
    # Runs queued besides the one on commit, as a lost mark, a retry and the
    # nightly command can leave them: the workers take them at the same time.
    for _ in range(5):
        push.push_account.enqueue(account.pk)
    env = db_worker_env()

    workers = [worker(env), worker(env)]
    outputs = [w.communicate(timeout=120)[0].decode() for w in workers]

    assert [w.returncode for w in workers] == [0, 0], outputs
    queued = DBTaskResult.objects.filter(task_path="calendarsync.push.push_account")
    assert not queued.filter(status="FAILED").exists()
    # (A run that found the account held queued another for a few seconds later.)
    runs = list(queued.filter(status="SUCCESSFUL"))
    assert len(runs) >= 6
    # Every event was written by exactly one run (a task that found the account
    # held by another, or its run already taken, wrote nothing).
    assert sum(run.return_value.get("writes", 0) for run in runs) == len(uids)
    assert {row.uid for row in PushedEvent.objects.filter(account=account)} == uids
    with push.client_for(account) as client:
        assert len(client.resources(account.calendar_url)) == len(uids)
    assert push.reconcile(account).writes == 0
