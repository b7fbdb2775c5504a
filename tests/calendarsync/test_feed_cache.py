"""Polling that costs almost nothing: two queries for an unchanged feed, four for a
rebuild, whatever the feed's size; and no reset, role change, rename or
appointment change is ever answered from an out-of-date cache entry."""

import gzip
from datetime import timedelta

import icalendar
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.http import parse_http_date

from calendarsync import freshness as feed_cache
from calendarsync.models import FeedLink, FeedScope
from calendarsync.services import feed_access_disable, feed_access_reset
from practice.models import Role
from practice.services import user_update
from scheduling.models import Appointment
from scheduling.services import patient_update
from tests.factories import (
    change_appointment,
    feed_links,
    local,
    make_appointment,
    make_patient,
    make_user,
    personal_feed_path,
)
from tests.support import clear_caches

GOOGLE = {"User-Agent": "Google-Calendar-Importer"}


def statements(captured) -> list[str]:
    # Savepoints only exist because each test runs inside a transaction.
    return [
        query["sql"]
        for query in captured.captured_queries
        if "SAVEPOINT" not in query["sql"]
    ]


def summaries(body: bytes) -> list[str]:
    calendar = icalendar.Calendar.from_ical(body)
    return sorted(str(event["SUMMARY"]) for event in calendar.walk("VEVENT"))


def calendar_name(body: bytes) -> str:
    return str(icalendar.Calendar.from_ical(body)["X-WR-CALNAME"])


def fill(practice, clinician, count):
    patients = [
        make_patient(practice, first_name=f"P{index}", last_name="Person")
        for index in range(2)
    ]
    return [
        make_appointment(
            clinician, patients=patients, start=local(practice, days=1 + day // 4)
        )
        for day in range(count)
    ]


@pytest.mark.parametrize("size", [5, 60])
def test_queries_per_poll_are_constant_in_feed_size(client, practice, clinician, size):
    appointments = fill(practice, clinician, size)
    path = personal_feed_path(clinician)
    first = client.get(path, headers=GOOGLE)  # records the client, this minute
    assert first.status_code == 200

    # Unchanged, conditional: the link and its calendar's version answer 304.
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, headers={**GOOGLE, "If-None-Match": first["ETag"]})
    assert response.status_code == 304
    assert len(statements(captured)) == 2

    # Unchanged, unconditional: the same queries, the bytes from the cache.
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, headers=GOOGLE)
    assert response.status_code == 200
    assert response.content == first.content
    assert len(statements(captured)) == 2

    # One appointment changed: link, version, events, and remembering what was
    # served.
    change_appointment(
        appointments[0], start=appointments[0].start + timedelta(minutes=15)
    )
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, headers={**GOOGLE, "If-None-Match": first["ETag"]})
    assert response.status_code == 200
    assert response.content != first.content
    assert len(statements(captured)) == 4
    assert len(summaries(response.content)) == size


def test_gzip_from_the_cache_matches_the_plain_feed(client, practice, clinician):
    fill(practice, clinician, 40)
    path = personal_feed_path(clinician)
    zipped = client.get(path, headers={"Accept-Encoding": "gzip"})
    plain = client.get(path)
    assert zipped["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.content) == plain.content
    assert len(plain.content) >= 4 * len(zipped.content)
    assert int(plain["Content-Length"]) == len(plain.content)


def test_links_to_the_same_calendar_share_one_rendering(
    client, practice, clinician, scheduler, admin_user, session_for
):
    session_for(clinician)
    theirs = feed_links(scheduler)[(FeedScope.CLINICIAN, clinician.pk)]
    mine = feed_links(admin_user)[(FeedScope.CLINICIAN, clinician.pk)]
    first = client.get(theirs)
    with CaptureQueriesContext(connection) as captured:
        second = client.get(mine)
    assert second.content == first.content
    # No events query: only the link and its calendar's version, remembering what
    # it was served, and the first-fetch record of this link's client (a look, an
    # insert, the audit row).
    sql = statements(captured)
    assert "COUNT(" in sql[1]
    assert not any("scheduling_appointment" in query for query in sql[2:])
    assert len(sql) == 6


@pytest.fixture
def session_for(practice, office):
    def make(clinician, days=2):
        patient = make_patient(practice, first_name="Élodie", last_name="O'Brien")
        return make_appointment(
            clinician,
            patients=[patient],
            location=office,
            start=local(practice, days=days),
        )

    return make


def test_renamed_clinician_shows_on_the_next_fetch(
    client, practice, clinician, scheduler, admin_user, session_for
):
    session_for(clinician)
    links = feed_links(scheduler)
    everyone = links[(FeedScope.PRACTICE, None)]
    theirs = links[(FeedScope.CLINICIAN, clinician.pk)]
    before_all = client.get(everyone).content
    before_theirs = client.get(theirs).content
    assert summaries(before_all) == [f"{clinician.label}: É.O."]

    user_update(
        user=clinician,
        display_name="Dana Rivera-Stone",
        credentials="PhD",
        roles=clinician.roles,
        actor=admin_user,
        client_ip=None,
    )
    after_all = client.get(everyone).content
    assert summaries(after_all) == ["Dana Rivera-Stone, PhD: É.O."]
    after_theirs = client.get(theirs).content
    assert calendar_name(before_theirs) != calendar_name(after_theirs)
    assert "Dana Rivera-Stone" in calendar_name(after_theirs)


def test_renamed_patient_shows_on_the_next_fetch(
    client, practice, clinician, admin_user, session_for
):
    appointment = session_for(clinician)
    path = personal_feed_path(clinician)
    assert summaries(client.get(path).content) == ["É.O."]
    patient_update(
        patient=appointment.patients.get(), actor=admin_user, first_name="Zoë"
    )
    assert summaries(client.get(path).content) == ["Z.O."]


def test_reset_disable_and_role_change_end_cached_links_at_once(
    client, practice, clinician, scheduler, admin_user, session_for
):
    session_for(clinician)
    personal = feed_links(clinician)[(FeedScope.PERSONAL, clinician.pk)]
    everyone = feed_links(scheduler)[(FeedScope.PRACTICE, None)]
    for path in (personal, everyone):
        assert client.get(path).status_code == 200
        assert client.get(path).status_code == 200  # now answered from the cache

    feed_access_reset(user=clinician, actor=clinician, client_ip=None)
    assert client.get(personal).status_code == 404
    fresh = feed_links(clinician)[(FeedScope.PERSONAL, clinician.pk)]
    assert client.get(fresh).status_code == 200

    feed_access_disable(user=clinician, actor=admin_user, client_ip=None)
    assert client.get(fresh).status_code == 404

    user_update(
        user=scheduler,
        display_name=scheduler.display_name,
        credentials="",
        roles=[Role.CLINICIAN],
        actor=admin_user,
        client_ip=None,
    )
    assert client.get(everyone).status_code == 404


def test_appointment_changes_are_never_answered_from_the_cache(
    client, practice, clinician, session_for
):
    appointment = session_for(clinician)
    path = personal_feed_path(clinician)
    first = client.get(path)
    etag = first["ETag"]

    change_appointment(appointment, status=Appointment.Status.CANCELLED)
    cancelled = client.get(path, headers={"If-None-Match": etag})
    assert cancelled.status_code == 200
    assert summaries(cancelled.content) == ["Cancelled: É.O."]

    added = session_for(clinician, days=3)
    assert len(summaries(client.get(path).content)) == 2

    # Even a hard delete, which no page makes: straight to the table.
    Appointment.objects.filter(pk=added.pk).delete()
    assert summaries(client.get(path).content) == ["Cancelled: É.O."]


def test_served_state_follows_the_cache_key(client, practice, clinician, session_for):
    appointment = session_for(clinician)
    path = personal_feed_path(clinician)
    first = client.get(path)
    link = FeedLink.objects.get(scope=FeedScope.PERSONAL, clinician=clinician)
    assert link.served_key and link.served_etag == first["ETag"]

    change_appointment(
        appointment,
        start=appointment.start + timedelta(hours=1),
        end=appointment.end + timedelta(hours=1),
    )
    second = client.get(path)
    link.refresh_from_db()
    assert link.served_etag == second["ETag"] != first["ETag"]
    # A visible change gets a later whole second, so the remembered date always
    # grows (it is sent once the clock has reached it).
    assert link.served_last_modified.timestamp() > parse_http_date(
        first["Last-Modified"]
    )


def test_a_cache_that_forgets_is_only_a_rebuild(
    client, practice, clinician, session_for
):
    session_for(clinician)
    path = personal_feed_path(clinician)
    first = client.get(path)
    clear_caches()
    again = client.get(path)
    assert again.content == first.content
    assert again["ETag"] == first["ETag"]
    assert again["Last-Modified"] == first["Last-Modified"]
    assert client.get(path, headers={"If-None-Match": first["ETag"]}).status_code == 304


def test_other_practices_feed_stays_its_own(
    client,
    practice,
    other_practice,
    clinician,
    session_for,
):
    session_for(clinician)
    other = make_user(
        other_practice, roles=[Role.CLINICIAN], name=clinician.display_name
    )
    make_appointment(other, kind=Appointment.Kind.EVENT, title="Harbor block")
    ours = client.get(personal_feed_path(clinician)).content
    theirs = client.get(personal_feed_path(other)).content
    assert summaries(ours) == ["É.O."]
    assert summaries(theirs) == ["Harbor block"]


def _days(body: bytes, zone) -> list:
    calendar = icalendar.Calendar.from_ical(body)
    starts = {event.decoded("DTSTART") for event in calendar.walk("VEVENT")}
    return sorted({start.astimezone(zone).date() for start in starts})


@pytest.mark.parametrize("share", [0.3, 0.6, 0.8])
def test_a_cut_feed_keeps_today_and_the_coming_days_first(
    client, settings, practice, clinician, share
):
    # Twenty days back and twenty ahead, two blocks a day.
    for day in range(-20, 20):
        for hour in (9, 14):
            make_appointment(
                clinician,
                kind=Appointment.Kind.EVENT,
                title=f"Block {day} {hour}",
                start=local(practice, days=day, hour=hour),
            )
    path = personal_feed_path(clinician)
    whole = client.get(path).content
    today = timezone.localdate(timezone.now(), practice.zone)
    assert len(_days(whole, practice.zone)) == 40

    settings.CALENDAR_FEED_MAX_BYTES = int(len(whole) * share)
    clear_caches()
    cut = client.get(path).content
    assert len(cut) <= settings.CALENDAR_FEED_MAX_BYTES
    days = _days(cut, practice.zone)
    # Whole days, one unbroken stretch that starts with today when the future does
    # not all fit, and otherwise holds all of it and the most recent past.
    assert days == [days[0] + timedelta(days=n) for n in range(len(days))]
    if days[-1] < today + timedelta(days=19):
        assert days[0] == today
        # Every day has blocks, so the last day kept is the last complete one.
        complete = (today, days[-1])
    else:
        assert days[0] < today
        # The future is whole: complete to the window's end (a year ahead).
        complete = (days[0], today + timedelta(days=365))
    description = str(icalendar.Calendar.from_ical(cut)["X-WR-CALDESC"])
    first, last = (day.isoformat() for day in complete)
    assert f"Complete from {first} to {last}." in description
    assert "further from today are left out" in description
    assert len(days) < 40


def test_a_cache_that_is_down_still_serves_every_feed(
    client, settings, practice, clinician, session_for
):
    session_for(clinician)
    path = personal_feed_path(clinician)
    expected = client.get(path).content
    # Nothing listens on port 1: every cache call fails as when Redis is down.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    answer = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200
    assert gzip.decompress(answer.content) == expected
    assert client.get(path.replace(path[-10:-4], "AAAAAA")).status_code == 404


def test_keys_change_with_the_code_that_writes_feeds(monkeypatch):
    # A deploy is simulated by naming other source as the writer's.
    before = feed_cache.feed_cache_key("same", "inputs")
    monkeypatch.setattr(feed_cache, "WRITER_MODULES", ("calendarsync.tokens",))
    feed_cache._writer_fingerprint.cache_clear()
    try:
        assert feed_cache.feed_cache_key("same", "inputs") != before
    finally:
        monkeypatch.undo()
        feed_cache._writer_fingerprint.cache_clear()
    assert feed_cache.feed_cache_key("same", "inputs") == before
