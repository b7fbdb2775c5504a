"""Calendar feeds when Redis misbehaves, against real servers on loopback: one that
hangs, one that goes down and comes back, and one restored from an older dump.
Polls never wait on a hung Redis more than once in a while, never go backwards, and
an outage is three kinds of log line, not one traceback per poll."""

import logging
from datetime import timedelta

import icalendar
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calendarsync import freshness
from scheduling.models import Appointment
from tests.factories import local, make_appointment, make_patient, personal_feed_path

GOOGLE = {"User-Agent": "Google-Calendar-Importer"}


def use_redis(settings, url: str) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
        }
    }
    settings.CALENDAR_FEED_SNAPSHOT_SECONDS = 300
    settings.CALENDAR_FEED_SNAPSHOT_VERIFY = False
    freshness.forget_all()


def poll(client, path):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, headers=GOOGLE)
    return response, len(captured.captured_queries)


def status_of(response) -> str:
    (event,) = icalendar.Calendar.from_ical(response.content).walk("VEVENT")
    return str(event["STATUS"])


@pytest.fixture
def booked(practice, clinician):
    patient = make_patient(practice, first_name="Maria", last_name="Lopez")
    return make_appointment(
        clinician, start=local(practice, days=2, hour=10), patients=[patient]
    )


def test_a_hung_redis_is_waited_for_once_in_a_while_not_on_every_poll(
    client, settings, clinician, booked, silent_server
):
    path = personal_feed_path(clinician)
    expected = client.get(path).content
    use_redis(settings, silent_server.url)
    for _ in range(20):
        response, _queries = poll(client, path)
        assert response.status_code == 200
        assert response.content == expected
    # The first call timed out (CACHE_TIMEOUT_MS); the process then left Redis
    # alone and answered from the database.
    assert len(silent_server.held) == 1
    assert not freshness.store_available()


def test_an_outage_is_logged_when_it_starts_and_when_it_ends(
    client,
    settings,
    clinician,
    booked,
    redis_server,
    caplog,
    monkeypatch,
):
    path = personal_feed_path(clinician)
    use_redis(settings, redis_server.url)
    if redis_server.process is None:
        redis_server.start()
    assert poll(client, path)[0].status_code == 200
    # Try Redis on every call, to count every failure.
    monkeypatch.setattr(freshness, "BREAK_SECONDS", 0.0)
    redis_server.stop()
    try:
        with caplog.at_level(logging.INFO, logger="calendarsync.freshness"):
            for _ in range(10):
                assert poll(client, path)[0].status_code == 200
        started = [record.getMessage() for record in caplog.records]
        caplog.clear()
        # Then a line with the count, every OUTAGE_REPORT_SECONDS.
        monkeypatch.setattr(freshness, "OUTAGE_REPORT_SECONDS", 0.0)
        with caplog.at_level(logging.INFO, logger="calendarsync.freshness"):
            assert poll(client, path)[0].status_code == 200
        counted = [record.getMessage() for record in caplog.records]
        caplog.clear()
    finally:
        redis_server.start()
    with caplog.at_level(logging.INFO, logger="calendarsync.freshness"):
        assert poll(client, path)[0].status_code == 200
        assert poll(client, path)[0].status_code == 200
    ended = [record.getMessage() for record in caplog.records]
    assert len(started) == 1 and "store unavailable" in started[0]
    assert counted and all("still unavailable" in line for line in counted)
    assert "calls failed in the last" in counted[0]
    assert len(ended) == 1 and "available again" in ended[0]
    assert all(record.exc_info is None for record in caplog.records)


def test_a_redis_restored_from_an_older_dump_never_makes_a_feed_go_back(
    client, settings, clinician, admin_user, booked, fresh_redis
):
    from scheduling.services import appointment_set_status

    path = personal_feed_path(clinician)
    # Booked an hour ago (straight to the table: time passes), so the cancellation
    # is not dated ahead of the clock.
    Appointment.objects.filter(pk=booked.pk).update(
        updated_at=timezone.now() - timedelta(hours=1)
    )
    use_redis(settings, fresh_redis.url)
    for _ in range(3):
        response, queries = poll(client, path)
    assert (status_of(response), queries) == ("CONFIRMED", 0)
    old_dump = fresh_redis.save("before-the-cancellation.rdb")

    appointment_set_status(
        appointment=Appointment.objects.get(pk=booked.pk),
        actor=admin_user,
        status=Appointment.Status.CANCELLED,
        expected_revision=None,
    )
    for _ in range(3):
        response, queries = poll(client, path)
    assert (status_of(response), queries) == ("CANCELLED", 0)

    # The old stamps and the old snapshot come back with the old dump.
    fresh_redis.restart(from_dump=old_dump)
    for _ in range(3):
        response, _queries = poll(client, path)
        assert status_of(response) == "CANCELLED"
    # ...and once the new server's snapshot is made, polls are free again.
    assert poll(client, path)[1] == 0


def test_an_empty_redis_after_a_restart_only_costs_a_query(
    client, settings, clinician, booked, fresh_redis
):
    path = personal_feed_path(clinician)
    use_redis(settings, fresh_redis.url)
    for _ in range(3):
        first, _queries = poll(client, path)
    fresh_redis.restart()
    response, queries = poll(client, path)
    assert response.status_code == 200 and queries >= 1
    assert response.content == first.content
