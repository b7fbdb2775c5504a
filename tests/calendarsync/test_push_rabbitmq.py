"""The push on a RabbitMQ-backed queue (``config.celery_tasks.CeleryBackend``,
worked by a real Celery worker) instead of the database backend: the same changes
reach Radicale through RabbitMQ, one run per account however many changes, and a
run deferred with ``run_after`` (a retry) waits until it is due.

RabbitMQ is the machine's (``RABBITMQ_URL``, exported by .ci/run when it answers).
Each test has a queue of its own, deleted at the end, so that runs side by side
(SQLite and PostgreSQL in CI) never take each other's messages."""

import os
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connections
from django.tasks import task_backends
from django.utils import timezone

from calendarsync import pushqueue
from calendarsync.models import CalendarAccount
from tests.factories import (
    connect_calendar_account_to,
    local,
    make_appointment,
)
from tests.support import caldav_uids

pytest.importorskip("celery")

from celery.contrib.testing.worker import start_worker  # noqa: E402
from celery.signals import task_postrun  # noqa: E402
from kombu.exceptions import OperationalError  # noqa: E402
from kombu.utils.url import maybe_sanitize_url  # noqa: E402

from config.celery import app, run_task  # noqa: E402

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "")


@pytest.fixture
def celery_queue(settings):
    """Django's tasks on Celery, sent to a queue of this test's own in the
    RabbitMQ at ``RABBITMQ_URL``; yields the queue's name."""
    if not RABBITMQ_URL:
        pytest.skip("RABBITMQ_URL is not set (.ci/run sets it when RabbitMQ answers)")
    app.conf.broker_url = RABBITMQ_URL
    # As config/settings.py has it: a message is in RabbitMQ once enqueued.
    app.conf.broker_transport_options = {"confirm_publish": True}
    # The worker's logging must not take over the test run's.
    app.conf.worker_hijack_root_logger = False
    # Without heartbeats a stopping worker notices within a second, not at its
    # next heartbeat check (up to ten).
    app.conf.broker_heartbeat = 0
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
    except (OSError, OperationalError) as error:
        where = maybe_sanitize_url(RABBITMQ_URL)
        pytest.skip(f"RabbitMQ does not answer at {where}: {error}")
    name = f"tend-test-{uuid.uuid4().hex}"
    settings.TASKS = {
        "default": {
            "BACKEND": "config.celery_tasks.CeleryBackend",
            "OPTIONS": {"CELERY_QUEUE": name},
        }
    }
    assert type(task_backends["default"]).__name__ == "CeleryBackend"
    yield name
    with app.connection_for_write() as connection:
        connection.default_channel.queue_delete(name)


def waiting(queue: str) -> int:
    """How many messages wait in ``queue`` (none taken by a worker)."""
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        return channel.queue_declare(queue, passive=True).message_count


class Runs:
    """The tasks a worker finished, as its own signal reports them: the test waits
    on these rather than polling the database while the worker writes to it (an
    in-memory SQLite shared by two threads refuses a write beside a read)."""

    def __init__(self) -> None:
        self.states: list[str] = []
        self.changed = threading.Condition()

    def finished(self, *, state: str, **_) -> None:
        with self.changed:
            self.states.append(state)
            self.changed.notify_all()

    def wait(self, count: int, *, seconds: float = 30) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.states) >= count, seconds)
        assert self.states == ["SUCCESS"] * len(self.states)


@contextmanager
def worker(queue: str):
    """A real Celery worker on ``queue``, in a thread of this process (so it sees
    the test's database), one task at a time; yields its ``Runs``."""
    runs = Runs()
    task_postrun.connect(runs.finished, sender=run_task, weak=False)
    # The worker's thread leaves no connection behind (as Celery's own Django
    # support does between tasks in a real worker): an open one would keep
    # the test database from being dropped at the end of the run.
    task_postrun.connect(close_connections, sender=run_task, weak=False)
    try:
        with start_worker(
            app,
            pool="solo",
            queues=[queue],
            perform_ping_check=False,
            shutdown_timeout=30,
        ):
            yield runs
    finally:
        task_postrun.disconnect(runs.finished, sender=run_task)
        task_postrun.disconnect(close_connections, sender=run_task)


def close_connections(**_) -> None:
    connections.close_all()


def server_uids(server, account) -> set[str]:
    return caldav_uids(server, account.calendar_url)


@pytest.mark.django_db(transaction=True)
def test_a_push_runs_through_rabbitmq_and_a_celery_worker(
    clinician, radicale, celery_queue
):
    practice = clinician.practice
    account = connect_calendar_account_to(clinician, radicale)
    # The first full sync is queued in RabbitMQ; the changes after it find a run
    # waiting (push_queued_at) and queue nothing more.
    first = make_appointment(clinician, start=local(practice, days=1, hour=9))
    second = make_appointment(clinician, start=local(practice, days=2, hour=9))
    assert waiting(celery_queue) == 1
    assert CalendarAccount.objects.get(pk=account.pk).push_queued_at is not None
    assert server_uids(radicale, account) == set()

    with worker(celery_queue) as runs:
        runs.wait(1)
    account.refresh_from_db()
    assert account.push_queued_at is None and account.last_sent_at is not None
    assert server_uids(radicale, account) == {
        f"{first.uid}@tend",
        f"{second.uid}@tend",
    }
    assert waiting(celery_queue) == 0

    # The next change queues the next run.
    make_appointment(clinician, start=local(practice, days=3, hour=9))
    assert waiting(celery_queue) == 1
    with worker(celery_queue) as runs:
        runs.wait(1)
    assert len(server_uids(radicale, account)) == 3


@pytest.mark.django_db(transaction=True)
def test_a_deferred_run_waits_in_rabbitmq_until_it_is_due(
    clinician, radicale, celery_queue
):
    practice = clinician.practice
    account = connect_calendar_account_to(clinician, radicale)
    make_appointment(clinician, start=local(practice, days=1, hour=9))
    with worker(celery_queue) as runs:
        runs.wait(1)
        account.refresh_from_db()
        sent = account.last_sent_at
        assert sent is not None

        # A retry as a failed run asks for one (calendarsync.push.follow_up):
        # deferred, and nothing else queued for the account meanwhile. The worker
        # holds the message until it is due.
        due = timezone.now() + timedelta(seconds=4)
        assert pushqueue.push_request([account.pk], run_after=due) == [account.pk]
        later = make_appointment(clinician, start=local(practice, days=2, hour=9))
        assert CalendarAccount.objects.get(pk=account.pk).push_queued_at == due

        time.sleep(1.5)
        assert timezone.now() < due and len(runs.states) == 1
        assert f"{later.uid}@tend" not in server_uids(radicale, account)

        runs.wait(2)
    account.refresh_from_db()
    assert account.push_queued_at is None
    assert account.last_sent_at >= due
    assert f"{later.uid}@tend" in server_uids(radicale, account)
