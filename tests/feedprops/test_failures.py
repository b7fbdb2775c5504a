"""When the database fails at any point of a fetch, a client gets a 503 with
Retry-After or the complete calendar, never a 200 with fewer events; gzip bytes are
stable; only failures count towards an address's 429."""

import gzip
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from calendarsync.models import FeedLink
from calendarsync.views import MISSES_ALLOWED
from scheduling.models import Appointment
from tests.factories import feed_paths, local, make_appointment
from tests.support import clear_caches, rolled_back

FIXED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def week(practice, clinician):
    """Seven appointments, with fixed timestamps so every build is the same bytes."""
    week = [
        make_appointment(
            clinician,
            kind=Appointment.Kind.EVENT,
            title=f"Block {day}",
            start=local(practice, days=day, hour=9),
            end=local(practice, days=day, hour=10),
        )
        for day in range(1, 8)
    ]
    # Straight to the table: no page chooses when a change happened.
    Appointment.objects.filter(pk__in=[block.pk for block in week]).update(
        created_at=FIXED, updated_at=FIXED
    )
    for block in week:
        block.refresh_from_db()
    return week


def prepare(client, path, state: str, week) -> None:
    """cold: nothing cached or served yet; warm: an unchanged poll; changed: the
    schedule moved since the last fetch (its old bytes still in the cache)."""
    clear_caches()
    FeedLink.objects.update(served_etag="", served_last_modified=None)
    if state == "cold":
        return
    assert client.get(path).status_code == 200
    if state == "changed":
        # Straight to the table, to the same fixed moment on every call (each call
        # is rolled back): the bytes must come out identical every time.
        Appointment.objects.filter(pk=week[3].pk).update(
            start=week[3].start + timedelta(hours=1),
            end=week[3].end + timedelta(hours=1),
            sequence=1,
            updated_at=FIXED + timedelta(minutes=5),
        )


@pytest.mark.parametrize("state", ["cold", "warm", "changed"])
def test_a_database_failure_at_any_query_is_503_or_the_whole_calendar(
    client, clinician, week, state
):
    path = feed_paths(clinician)["personal"]
    with rolled_back():
        prepare(client, path, state, week)
        with CaptureQueriesContext(connection) as captured:
            complete = client.get(path)
        queries = len(captured.captured_queries)
    assert complete.status_code == 200
    assert complete.content.count(b"BEGIN:VEVENT") == 7
    assert queries >= 1

    outcomes = set()
    for failing in range(1, queries + 1):
        count = {"n": 0}

        def fail_nth(execute, sql, params, many, context, failing=failing, count=count):
            count["n"] += 1
            if count["n"] == failing:
                raise OperationalError("the database went away")
            return execute(sql, params, many, context)

        with rolled_back():
            prepare(client, path, state, week)
            with connection.execute_wrapper(fail_nth):
                response = client.get(path)
        assert count["n"] >= failing, "the failure was never reached"
        if response.status_code == 503:
            assert response["Retry-After"].isdigit()
            assert b"BEGIN:VCALENDAR" not in response.content
        else:
            # Only bookkeeping after the calendar was complete may fail quietly.
            assert response.status_code == 200, (failing, response.status_code)
            assert response.content == complete.content, failing
        outcomes.add(response.status_code)
    assert 503 in outcomes


def test_gzip_bytes_are_the_same_on_every_fetch_and_rebuild(client, clinician, week):
    path = feed_paths(clinician)["personal"]
    accept = {"Accept-Encoding": "gzip"}
    first = client.get(path, headers=accept)
    second = client.get(path, headers=accept)
    clear_caches()
    rebuilt = client.get(path, headers=accept)
    assert first["Content-Encoding"] == "gzip"
    assert first.content == second.content == rebuilt.content
    assert first["ETag"] == second["ETag"] == rebuilt["ETag"]
    assert first["Last-Modified"] == rebuilt["Last-Modified"]
    plain = client.get(path)
    assert gzip.decompress(first.content) == plain.content
    assert (
        client.get(
            path, headers={**accept, "If-None-Match": rebuilt["ETag"]}
        ).status_code
        == 304
    )


def test_valid_polls_from_a_shared_address_never_count_towards_429(
    client, clinician, admin_user, week
):
    """Google polls many feeds from few addresses: any number of valid fetches
    leaves the address its full allowance of unknown links."""
    shared = {"REMOTE_ADDR": "203.0.113.10"}
    paths = [*feed_paths(clinician).values(), *feed_paths(admin_user).values()]
    for _ in range(MISSES_ALLOWED):
        for path in paths:
            assert client.get(path, **shared).status_code == 200
    unknown = "/calendar/" + "Z" * 55 + ".ics"
    for _ in range(MISSES_ALLOWED):
        assert client.get(unknown, **shared).status_code == 404
    assert client.get(unknown, **shared).status_code == 429
    for path in paths:
        assert client.get(path, **shared).status_code == 200
