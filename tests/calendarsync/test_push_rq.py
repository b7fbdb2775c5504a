"""The push on a Redis-backed queue (django-tasks-rq, worked by a real RQ worker)
instead of the database backend: Tend's queue correctness lives on the account
(``push_queued_at``), not in the backend, so the same changes reach Radicale
through Redis, one run per account however many changes."""

import pytest
from django.tasks import task_backends

from calendarsync.models import CalendarAccount
from tests.factories import (
    connect_calendar_account_to,
    local,
    make_appointment,
)
from tests.support import caldav_uids

rq = pytest.importorskip("rq")
django_rq = pytest.importorskip("django_rq")

RQ_TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend"}}


@pytest.fixture
def rq_queue(settings, fresh_redis):
    """Django's tasks on RQ, with the test run's own Redis."""
    settings.RQ_QUEUES = {"default": {"URL": fresh_redis.url}}
    settings.TASKS = RQ_TASKS
    assert type(task_backends["default"]).__name__ == "RQBackend"
    return django_rq.get_queue("default")


def work(queue) -> None:
    """A real RQ worker (without forking, so it sees the test's database) until
    the queue is empty."""
    from django_tasks_rq.backend import Job

    # Its job class calls the task (``manage.py rqworker --job-class``).
    worker = rq.SimpleWorker([queue], connection=queue.connection, job_class=Job)
    worker.work(burst=True)


def server_uids(server, account) -> set[str]:
    return caldav_uids(server, account.calendar_url)


@pytest.mark.django_db(transaction=True)
def test_a_push_runs_through_redis_and_an_rq_worker(clinician, radicale, rq_queue):
    practice = clinician.practice
    account = connect_calendar_account_to(clinician, radicale)
    # The first full sync is queued in Redis; the changes after it find a run
    # waiting (push_queued_at) and queue nothing more.
    first = make_appointment(clinician, start=local(practice, days=1, hour=9))
    second = make_appointment(clinician, start=local(practice, days=2, hour=9))
    assert rq_queue.count == 1
    assert CalendarAccount.objects.get(pk=account.pk).push_queued_at is not None
    assert server_uids(radicale, account) == set()

    work(rq_queue)

    assert server_uids(radicale, account) == {
        f"{first.uid}@tend",
        f"{second.uid}@tend",
    }
    account.refresh_from_db()
    assert account.push_queued_at is None and account.last_sent_at is not None
    assert rq_queue.count == 0

    # The next change queues the next run.
    make_appointment(clinician, start=local(practice, days=3, hour=9))
    assert rq_queue.count == 1
    work(rq_queue)
    assert len(server_uids(radicale, account)) == 3
