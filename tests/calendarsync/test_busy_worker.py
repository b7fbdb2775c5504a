"""Busy time through the real database queue and its worker (``db_worker``): the
first read when a calendar is added, the next one queued 10 minutes later by each
read, "Refresh now", ``manage.py busy_refresh_due``; and proof that nothing of a
calendar but start and end reaches any table, the task queue or the logs."""

import logging
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from calendarsync.busy_sources import (
    READ_EVERY,
    busy_read_request,
    busy_source_add_ics,
)
from calendarsync.models import BusySource
from scheduling.models import BusyTime
from tests.calendarsync.busy_support import Answer, vcalendar, vevent
from tests.factories import local
from tests.support import run_worker

DATABASE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# Words that must never be stored anywhere: each is in a title, place, description,
# attendee, organizer, category, comment or the calendar's description.
SECRETS = [
    "Zanzibarquest",
    "Quillonmarsh",
    "Vorpentide",
    "Ostrelwick",
    "Brimblecombe",
    "Fennimorrow",
    "Yarrowgast",
    "Kestrelbay",
]
ADDRESS_SECRET = "p9x8c7v6b5n4m3"


def distinctive_calendar(practice) -> bytes:
    start = local(practice, days=2, hour=15)
    return vcalendar(
        vevent(
            "a1@example.org",
            start,
            start + timedelta(hours=1),
            extra=(
                "SUMMARY:Zanzibarquest therapy of my own",
                "LOCATION:Quillonmarsh Clinic\\, 4 Vorpentide Road",
                "DESCRIPTION:Ask about Ostrelwick results",
                "ATTENDEE;CN=Brimblecombe:mailto:brimblecombe@example.org",
                "ORGANIZER;CN=Fennimorrow:mailto:fennimorrow@example.org",
                "CATEGORIES:Yarrowgast",
                "COMMENT:Kestrelbay",
                "RRULE:FREQ=WEEKLY;COUNT=3",
            ),
        ),
        name="Personal",
    )


def every_stored_text() -> str:
    """Every value of every row of every table, as text."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            # Table names from the database itself, quoted.
            query = f"SELECT * FROM {connection.ops.quote_name(table)}"  # noqa: S608
            cursor.execute(query)
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        value = bytes(value).decode("utf-8", "replace")
                    found.append(str(value))
    return "\n".join(found)


@pytest.mark.django_db(transaction=True)
def test_nothing_but_start_and_end_is_kept_anywhere(
    calendar_server, clinician, settings, caplog
):
    settings.TASKS = DATABASE
    caplog.set_level(logging.DEBUG)
    path = f"/calendar/ical/{ADDRESS_SECRET}/private-basic.ics"
    calendar_server.routes[path] = Answer(
        body=distinctive_calendar(clinician.practice), etag='"e1"'
    )

    source = busy_source_add_ics(user=clinician, url=calendar_server.url(path))
    # The worker's reads: the queued one (its time brought forward) and a refresh.
    DBTaskResult.objects.update(run_after=timezone.now())
    run_worker()
    calendar_server.routes[path] = Answer(
        body=distinctive_calendar(clinician.practice) + b"\r\n", etag='"e2"'
    )
    busy_read_request([source.pk], now_over_later=True)
    run_worker()

    assert BusyTime.objects.filter(calendar=source.calendar).count() == 3
    assert DBTaskResult.objects.filter(status="SUCCESSFUL").count() == 2
    stored = every_stored_text().lower()
    logged = caplog.text.lower()
    for secret in [*SECRETS, ADDRESS_SECRET]:
        assert secret.lower() not in stored, secret
        assert secret.lower() not in logged, secret


@pytest.mark.django_db(transaction=True)
def test_each_read_queues_the_next_ten_minutes_later(
    calendar_server, clinician, settings
):
    settings.TASKS = DATABASE
    calendar_server.routes["/cal.ics"] = Answer(
        body=distinctive_calendar(clinician.practice), etag='"e1"'
    )
    source = busy_source_add_ics(user=clinician, url=calendar_server.url("/cal.ics"))

    (queued,) = DBTaskResult.objects.filter(status="READY")
    source.refresh_from_db()
    assert queued.task_path == "calendarsync.tasks.busy_source_read"
    assert queued.args_kwargs == {"args": [source.pk], "kwargs": {}}
    assert source.read_queued_at == queued.run_after
    assert queued.run_after - source.attempted_at == READ_EVERY

    # Not due yet: the worker leaves it. Due: read (unchanged, a 304), and the
    # next one is queued.
    run_worker()
    assert len(calendar_server.requests) == 1
    DBTaskResult.objects.filter(pk=queued.pk).update(run_after=timezone.now())
    BusySource.objects.filter(pk=source.pk).update(read_queued_at=timezone.now())
    run_worker()

    assert len(calendar_server.requests) == 2
    assert calendar_server.requests[-1][1]["If-None-Match"] == '"e1"'
    (following,) = DBTaskResult.objects.filter(status="READY")
    assert following.pk != queued.pk
    assert following.run_after > timezone.now() + READ_EVERY - timedelta(minutes=1)

    # "Refresh now" brings the waiting read forward; a duplicate of the task
    # finds nothing to claim and reads nothing.
    assert busy_read_request([source.pk], now_over_later=True) == [source.pk]
    assert busy_read_request([source.pk], now_over_later=True) == []
    run_worker()
    assert len(calendar_server.requests) == 3
    # The read replaced by the refresh, and the one the refresh queued: when
    # both come due, one reads.
    assert DBTaskResult.objects.filter(status="READY").count() == 2
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
    BusySource.objects.filter(pk=source.pk).update(read_queued_at=timezone.now())
    run_worker()
    assert len(calendar_server.requests) == 4
    assert DBTaskResult.objects.filter(status="READY").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_command_queues_every_due_source_once(
    calendar_server, clinician, other_clinician, settings
):
    settings.TASKS = DATABASE
    calendar_server.routes["/cal.ics"] = Answer(
        body=distinctive_calendar(clinician.practice)
    )
    first = busy_source_add_ics(user=clinician, url=calendar_server.url("/cal.ics"))
    second = busy_source_add_ics(
        user=other_clinician, url=calendar_server.url("/cal.ics")
    )
    # The queue was emptied (a lost task): both marks are old, both reads due.
    DBTaskResult.objects.all().delete()
    long_ago = timezone.now() - timedelta(minutes=30)
    BusySource.objects.update(attempted_at=long_ago, read_queued_at=long_ago)
    other_clinician.is_clinician = False
    other_clinician.save()

    call_command("busy_refresh_due", stdout=open("/dev/null", "w"))
    call_command("busy_refresh_due", stdout=open("/dev/null", "w"))

    (queued,) = DBTaskResult.objects.filter(status="READY")
    assert queued.args_kwargs["args"] == [first.pk]
    assert second.pk != first.pk
