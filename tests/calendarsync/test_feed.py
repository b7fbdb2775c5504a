import gzip
import re
import time
from datetime import timedelta

import icalendar
import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.http import http_date, parse_http_date

from calendarsync import feed as feeds
from calendarsync.ical import fold, render_calendar, render_event
from practice.models import AllowedNetwork
from scheduling.models import Appointment
from scheduling.publication import PublishedAppointment
from tests.factories import (
    change_appointment,
    delete_appointment,
    feed_links,
    local,
    make_appointment,
    make_location,
    make_patient,
    make_service,
    personal_feed_path,
    practice_feed_path,
)


def parse(body: bytes) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(body)


def text(value) -> str:
    """A TEXT value icalendar leaves escaped (NAME and the X-WR- properties)."""
    raw = value.to_ical().decode() if hasattr(value, "to_ical") else str(value)
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m[1] in "nN" else m[1], raw)


def events_by_summary(body: bytes) -> dict[str, icalendar.Event]:
    return {str(event["SUMMARY"]): event for event in parse(body).walk("VEVENT")}


def assert_wire_format(body: bytes) -> None:
    """CRLF only, every line at most 75 octets and valid UTF-8 on its own (so no fold
    splits a character), no control characters."""
    assert body.endswith(b"\r\n")
    assert b"\n" not in body.replace(b"\r\n", b"")
    assert b"\r" not in body.replace(b"\r\n", b"")
    for line in body.split(b"\r\n")[:-1]:
        assert len(line) <= 75, line
        text = line.decode("utf-8")
        assert not re.search(r"[\x00-\x08\x0a-\x1f\x7f]", text), line


@pytest.fixture
def session(clinician, practice, office):
    elodie = make_patient(practice, first_name="Élodie", last_name="O'Brien")
    mary = make_patient(practice, first_name="Mary-Kate", last_name="van der Berg")
    return make_appointment(
        clinician,
        patients=[elodie, mary],
        location=office,
        start=local(practice, days=2),
    )


def test_personal_feed_is_a_complete_calendar(client, clinician, session):
    response = client.get(personal_feed_path(clinician))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Cache-Control"] == "private, no-cache"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Robots-Tag"] == "noindex"
    assert re.fullmatch(r'"[0-9a-f]{64}"', response["ETag"])
    assert response["Last-Modified"]
    body = response.content
    assert_wire_format(body)
    calendar = parse(body)
    assert calendar["VERSION"] == "2.0"
    assert calendar["PRODID"]
    assert calendar["CALSCALE"] == "GREGORIAN"
    assert calendar["METHOD"] == "PUBLISH"
    assert text(calendar["NAME"]) == "Dana Rivera, LCSW — Tend"
    assert text(calendar["X-WR-CALNAME"]) == "Dana Rivera, LCSW — Tend"
    assert str(calendar["X-WR-TIMEZONE"]) == "America/New_York"
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n" in body
    assert b"X-PUBLISHED-TTL:PT1H\r\n" in body
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == [
        "America/New_York"
    ]

    (event,) = calendar.walk("VEVENT")
    assert str(event["UID"]) == f"{session.uid}@tend"
    assert str(event["SUMMARY"]) == "É.O. & M.V."
    assert str(event["LOCATION"]) == "Main Street Office"
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["TRANSP"]) == "OPAQUE"
    assert event["SEQUENCE"] == 0
    assert event.decoded("DTSTART") == session.start
    assert event.decoded("DTEND") == session.end
    assert event["DTSTART"].params["TZID"] == "America/New_York"
    assert event.decoded("DTSTAMP") == session.updated_at.replace(microsecond=0)
    assert event.decoded("LAST-MODIFIED") == session.updated_at.replace(microsecond=0)
    assert event.decoded("CREATED") == session.created_at.replace(microsecond=0)


def test_vtimezone_covers_the_dst_changes_of_the_window(client, clinician, session):
    calendar = parse(client.get(personal_feed_path(clinician)).content)
    (vtimezone,) = calendar.walk("VTIMEZONE")
    text = vtimezone.to_ical().decode()
    year = timezone.now().year
    # Both changes of every year the window touches.
    for covered in (year, year + 1):
        assert f"{covered}03" in text and f"{covered}11" in text


def test_telehealth_and_events_and_practice_wide_summaries(
    client,
    practice,
    admin_user,
    clinician,
    session,
    telehealth,
):
    meeting = make_appointment(
        clinician,
        kind=Appointment.Kind.EVENT,
        title="Staff meeting; room 2, upstairs",
        location=telehealth,
        start=local(practice, days=3),
    )

    mine = events_by_summary(client.get(personal_feed_path(clinician)).content)
    assert str(mine["Staff meeting; room 2, upstairs"]["LOCATION"]) == "Telehealth"

    body = client.get(practice_feed_path(admin_user)).content
    calendar = parse(body)
    assert text(calendar["X-WR-CALNAME"]) == "Riverside Counseling — all clinicians"
    summaries = events_by_summary(body)
    assert set(summaries) == {
        "Dana Rivera, LCSW: É.O. & M.V.",
        "Dana Rivera, LCSW: Staff meeting; room 2, upstairs",
    }
    assert b"Staff meeting\\; room 2\\, upstairs" in body
    assert (
        str(summaries["Dana Rivera, LCSW: É.O. & M.V."]["UID"]) == f"{session.uid}@tend"
    )
    assert meeting.uid


def test_no_patient_detail_ever_reaches_a_feed(
    client,
    practice,
    admin_user,
    clinician,
):
    secrets = {
        "first": "Zebulonia",
        "last": "Quixwhistle",
        "preferred": "Zubzub",
        "email": "zebulonia.q@private-mail.test",
        "phone": "+1 555 0199 7777",
        "dob": "1961-07-23",
        "notes": "Discussed PTSD diagnosis F43.10 in depth",
        "service": "Trauma therapy EMDR protocol 9",
        "meeting": "https://video.example.test/join/secret-room",
    }
    patient = make_patient(
        practice,
        first_name=secrets["first"],
        last_name=secrets["last"],
        preferred_name=secrets["preferred"],
        email=secrets["email"],
        phone=secrets["phone"],
        date_of_birth=secrets["dob"],
    )
    service = make_service(practice, name=secrets["service"])
    room = make_location(practice, name=f"Zoom {secrets['meeting']}")
    make_appointment(
        clinician,
        patients=[patient],
        notes=secrets["notes"],
        service=service,
        location=room,
    )
    bodies = [client.get(path).content for path in feed_links(admin_user).values()]
    bodies += [client.get(path).content for path in feed_links(clinician).values()]
    assert len(bodies) == 4  # admin: personal, Dana, practice; Dana: personal
    # Dana's appointment is in the three calendars that cover her (so the checks
    # below read a real event); the fourth is Morgan Ellis's own, empty one.
    counts = sorted(
        (len(parse(body).walk("VEVENT")), str(parse(body)["X-WR-CALNAME"]))
        for body in bodies
    )
    assert [count for count, _name in counts] == [0, 1, 1, 1]
    assert counts[0][1].startswith("Morgan Ellis")
    for body in bodies:
        for value in secrets.values():
            for variant in (value, value.replace(" ", ""), "19610723"):
                assert variant.encode() not in body
        assert b"video.example.test" not in body
    summaries = [str(e["SUMMARY"]) for b in bodies for e in parse(b).walk("VEVENT")]
    assert "Z.Q." in summaries


def test_control_characters_are_stripped_and_text_escaped(client, practice, clinician):
    # PostgreSQL cannot store NUL at all; SQLite can, and then it must not leak.
    nul = "" if connection.vendor == "postgresql" else "\x00"
    event = make_appointment(clinician, kind=Appointment.Kind.EVENT, title="Later")
    # Straight to the table: the services clean titles on input, and the feed must
    # clean them even when that was bypassed.
    Appointment.objects.filter(pk=event.pk).update(
        title=f"Sup{nul}er\x07vision\r\nline two; a,b \\ end\x1b" + "é" * 60
    )
    body = client.get(personal_feed_path(clinician)).content
    assert_wire_format(body)
    (event,) = parse(body).walk("VEVENT")
    # Published text is one line: a line break in a title becomes a space; a
    # backslash is published as U+29F5 (node-ical misreads an escaped one).
    assert str(event["SUMMARY"]) == "Supervision line two; a,b \u29f5 end" + "é" * 60
    assert b"\\\\" not in body


@pytest.mark.parametrize(
    "scope,days,included",
    [
        ("personal", -61, False),
        ("personal", -59, True),
        ("personal", 364, True),
        ("personal", 367, False),
        ("practice", -15, False),
        ("practice", -13, True),
        ("practice", 89, True),
        ("practice", 92, False),
    ],
)
def test_windows(
    client,
    practice,
    admin_user,
    scope,
    days,
    included,
):
    make_appointment(
        admin_user,
        kind=Appointment.Kind.EVENT,
        title="Edge",
        start=local(practice, days=days),
    )
    path = (
        personal_feed_path(admin_user)
        if scope == "personal"
        else practice_feed_path(admin_user)
    )
    assert (b"Edge" in client.get(path).content) is included


@pytest.mark.parametrize("how", ["cancelled", "late_cancelled", "deleted"])
def test_cancelled_and_deleted_stay_30_days_as_cancelled(
    client, practice, clinician, session, how
):
    path = personal_feed_path(clinician)
    if how == "deleted":
        delete_appointment(session)
        # One for the deletion; a deleted event always shows as one newer still.
        expected_sequence = 2
    else:
        change_appointment(session, status=how)
        expected_sequence = 1
    (event,) = parse(client.get(path).content).walk("VEVENT")
    assert str(event["STATUS"]) == "CANCELLED"
    assert str(event["TRANSP"]) == "TRANSPARENT"
    assert str(event["SUMMARY"]) == "Cancelled: É.O. & M.V."
    assert event["SEQUENCE"] == expected_sequence
    assert str(event["UID"]) == f"{session.uid}@tend"

    # Retention counts from the cancellation or deletion, not from later changes.
    # Straight to the table: a month passes.
    long_ago = timezone.now() - timedelta(days=31)
    Appointment.objects.filter(pk=session.pk).update(
        updated_at=timezone.now(),
        deleted_at=long_ago if how == "deleted" else None,
        cancelled_at=None if how == "deleted" else long_ago,
    )
    assert parse(client.get(path).content).walk("VEVENT") == []


def test_unchanged_feed_is_byte_identical_and_a_change_bumps_it(
    client, practice, clinician, session
):
    path = personal_feed_path(clinician)
    first = client.get(path)
    second = client.get(path)
    assert first.content == second.content
    assert first["ETag"] == second["ETag"]
    assert first["Last-Modified"] == second["Last-Modified"]

    change_appointment(
        session,
        start=session.start + timedelta(hours=1),
        end=session.end + timedelta(hours=1),
    )
    before = timezone.now().replace(microsecond=0)
    third = client.get(path)
    after = timezone.now()
    assert third.content != first.content
    (event,) = parse(third.content).walk("VEVENT")
    assert event["SEQUENCE"] == 1
    # The change is stamped a second after the creation (a later second for every
    # visible change), but never later than the moment it is published.
    stamp = event.decoded("LAST-MODIFIED")
    assert before <= stamp <= min(session.updated_at, after)
    assert event.decoded("DTSTART") == session.start


def test_conditional_requests(client, practice, clinician, session):
    path = personal_feed_path(clinician)
    first = client.get(path)
    etag, last_modified = first["ETag"], first["Last-Modified"]

    by_etag = client.get(path, headers={"If-None-Match": etag})
    assert by_etag.status_code == 304
    assert by_etag.content == b""
    assert by_etag["ETag"] == etag
    by_date = client.get(path, headers={"If-Modified-Since": last_modified})
    assert by_date.status_code == 304
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200


def test_a_change_in_the_same_second_is_never_answered_304(
    client, practice, clinician, session
):
    path = personal_feed_path(clinician)
    # Pin the change to the very second the first response describes (straight to
    # the table: no page can choose when a change happens).
    second = timezone.now().replace(microsecond=0)
    Appointment.objects.filter(pk=session.pk).update(updated_at=second)
    first = client.get(path)
    assert first["Last-Modified"] == http_date(second.timestamp())

    Appointment.objects.filter(pk=session.pk).update(
        updated_at=second.replace(microsecond=900_000),
        sequence=1,
        start=session.start + timedelta(hours=2),
        end=session.end + timedelta(hours=2),
    )
    again = client.get(path, headers={"If-Modified-Since": first["Last-Modified"]})
    assert again.status_code == 200
    assert again.content != first.content
    (event,) = parse(again.content).walk("VEVENT")
    assert event["SEQUENCE"] == 1
    # The new bytes are dated a second later, which the clock may not have reached
    # yet: no date is ever sent ahead of the clock, and until then only the ETag
    # validates them, never the old date.
    assert parse_http_date(again["Last-Modified"]) <= time.time()
    ims = client.get(path, headers={"If-Modified-Since": again["Last-Modified"]})
    moved = again["Last-Modified"] != first["Last-Modified"]
    assert ims.status_code == (304 if moved else 200)
    assert client.get(path, headers={"If-None-Match": again["ETag"]}).status_code == 304
    assert client.get(path, headers={"If-None-Match": first["ETag"]}).status_code == 200

    # Once the clock has passed it, the new date is sent and validates the bytes.
    token = path.rsplit("/", 1)[1].removesuffix(".ics")
    later = timezone.now() + timedelta(seconds=2)
    seen = []

    def holds(etag, last_modified):
        seen.append(last_modified)
        return last_modified == second + timedelta(seconds=1)

    answer = feeds.feed_answer(
        token=token, now=later, family="other", client_holds=holds
    )
    assert answer.last_modified == second + timedelta(seconds=1)
    assert answer.status == 304


def test_a_date_from_a_fast_client_clock_is_never_answered_304(
    client, practice, clinician, session
):
    """A client that sends its own clock instead of our Last-Modified may be ahead
    of a change it never saw: only our exact date earns a 304."""
    path = personal_feed_path(clinician)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    # Straight to the table: the booking is an hour old, the move five seconds.
    Appointment.objects.filter(pk=session.pk).update(updated_at=an_hour_ago)
    first = client.get(path)
    served = parse_http_date(first["Last-Modified"])
    # The client's clock runs ten minutes fast; then the appointment moves.
    client_clock = http_date(served + 600)
    Appointment.objects.filter(pk=session.pk).update(
        updated_at=timezone.now() - timedelta(seconds=5),
        sequence=1,
        start=session.start + timedelta(hours=1),
        end=session.end + timedelta(hours=1),
    )
    again = client.get(path, headers={"If-Modified-Since": client_clock})
    assert again.status_code == 200
    assert again.content != first.content
    # Even with nothing changed, a date other than ours gets the full feed.
    assert (
        client.get(path, headers={"If-Modified-Since": client_clock}).status_code == 200
    )
    # Our own date validates the bytes once the clock has reached it.
    token = path.rsplit("/", 1)[1].removesuffix(".ics")
    answer_date = [None]
    answer = feeds.feed_answer(
        token=token,
        now=timezone.now() + timedelta(seconds=2),
        family="other",
        client_holds=lambda etag, date: date == answer_date[0],
    )
    assert answer.status == 200  # the first call learns the date
    answer_date[0] = answer.last_modified
    again = feeds.feed_answer(
        token=token,
        now=timezone.now() + timedelta(seconds=2),
        family="other",
        client_holds=lambda etag, date: date == answer_date[0],
    )
    assert again.status == 304


def test_gzip_when_accepted(client, clinician, session):
    path = personal_feed_path(clinician)
    plain = client.get(path)
    zipped = client.get(path, headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped["Vary"]
    assert gzip.decompress(zipped.content) == plain.content
    assert zipped["ETag"] != plain["ETag"]
    assert (
        client.get(
            path, headers={"Accept-Encoding": "gzip", "If-None-Match": zipped["ETag"]}
        ).status_code
        == 304
    )
    refused = client.get(path, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused


def test_head_and_other_methods(client, clinician, session):
    path = personal_feed_path(clinician)
    get = client.get(path)
    head = client.head(path)
    assert head.status_code == 200
    assert head.content == b""
    assert head["ETag"] == get["ETag"]
    assert head["Content-Length"] == str(len(get.content))
    for method in ("post", "put", "patch", "delete", "options"):
        response = getattr(client, method)(path)
        assert response.status_code == 405, method
        assert response["Allow"] == "GET, HEAD"


def test_feed_bypasses_network_restrictions_and_only_the_feed(
    client, practice, clinician, session, login
):
    path = personal_feed_path(clinician)
    AllowedNetwork.objects.create(practice=practice, cidr="203.0.113.0/24")
    outside = {"REMOTE_ADDR": "198.51.100.9"}

    assert client.get(path, **outside).status_code == 200
    signed_in = login(clinician)
    assert signed_in.get("/settings/sync/", **outside).status_code == 403
    assert signed_in.get(path, **outside).status_code == 200
    assert (
        signed_in.get("/settings/sync/", REMOTE_ADDR="203.0.113.5").status_code == 200
    )


def test_too_large_feed_drops_the_farthest_days_and_says_so(
    client, settings, practice, clinician
):
    for days in range(1, 41):
        make_appointment(
            clinician,
            kind=Appointment.Kind.EVENT,
            title=f"Block {days:02d}",
            start=local(practice, days=days),
        )
    path = personal_feed_path(clinician)
    full = client.get(path).content
    settings.CALENDAR_FEED_MAX_BYTES = len(full) // 2
    half = client.get(path).content
    assert len(half) <= len(full) // 2
    calendar = parse(half)
    titles = sorted(str(e["SUMMARY"]) for e in calendar.walk("VEVENT"))
    kept = len(titles)
    assert 5 < kept < 40
    assert titles == [f"Block {days:02d}" for days in range(1, kept + 1)]
    last_day = local(practice, days=kept).date()
    assert f"to {last_day.isoformat()}" in text(calendar["X-WR-CALDESC"])
    assert text(calendar["DESCRIPTION"]) == text(calendar["X-WR-CALDESC"])
    assert "left out" in text(calendar["DESCRIPTION"])
    assert_wire_format(half)


def test_real_megabyte_limit(client, practice, clinician):
    """A clinician with years' worth of dense appointments still gets under 1 MB."""
    start = local(practice, days=-59, hour=0)
    # Straight to the table in one statement: booking 3,400 appointments one by one
    # would take minutes, and only the feed's size is under test.
    Appointment.objects.bulk_create(
        [
            Appointment(
                practice=practice,
                clinician=clinician,
                kind=Appointment.Kind.EVENT,
                title=f"Block number {index} with a long enough title to be realistic",
                start=start + timedelta(hours=3 * index),
                end=start + timedelta(hours=3 * index, minutes=50),
            )
            for index in range(3400)
        ]
    )
    response = client.get(personal_feed_path(clinician))
    assert response.status_code == 200
    assert 900_000 < len(response.content) <= 1_000_000
    calendar = parse(response.content)
    assert "left out" in text(calendar["DESCRIPTION"])
    assert len(calendar.walk("VEVENT")) > 2500


@pytest.mark.parametrize("failing_query", [1, 2])
def test_database_failure_is_503_never_a_partial_calendar(
    client, clinician, session, failing_query
):
    path = personal_feed_path(clinician)
    count = {"n": 0}

    def fail_nth(execute, sql, params, many, context):
        count["n"] += 1
        if count["n"] == failing_query:
            raise OperationalError("the database went away")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail_nth):
        response = client.get(path)
    assert response.status_code == 503
    assert response["Retry-After"]
    assert b"BEGIN:VCALENDAR" not in response.content
    assert client.get(path).status_code == 200


def test_feed_query_count_does_not_grow_with_events(
    client,
    practice,
    clinician,
):
    path = personal_feed_path(clinician)
    client.get(path)  # first fetch records the client and remembers the etag
    patients = [
        make_patient(practice, first_name=f"P{index}", last_name="Person")
        for index in range(3)
    ]
    for days in range(1, 30):
        make_appointment(clinician, patients=patients, start=local(practice, days=days))
    client.get(path)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    # The link with its owner, practice and clinician, then its schedule's
    # version: the bytes come from the cache. (The savepoints only exist because
    # the test runs inside a transaction.)
    statements = [
        query["sql"]
        for query in captured.captured_queries
        if "SAVEPOINT" not in query["sql"]
    ]
    assert len(statements) == 2


def test_render_event_strips_every_control_character():
    start = timezone.now().replace(microsecond=0)
    event = PublishedAppointment(
        uid="9f1c0d3e-0000-4000-8000-000000000001",
        sequence=2,
        created_at=start,
        changed_at=start,
        start=start,
        end=start + timedelta(hours=1),
        cancelled=False,
        summary="A\x00B\x01C\x7fD\x85E\u2028F\tG\rH",
        location="Room\x00 1;2",
    )
    fragment = render_event(event, "America/New_York")
    assert_wire_format(fragment)
    assert b"SUMMARY:ABCDE F G\\nH\r\n" in fragment
    assert b"LOCATION:Room 1\\;2\r\n" in fragment


def _feed_of(*spans, zone_key="America/New_York") -> bytes:
    """A feed of events (UTC start, end), rendered directly."""
    from datetime import date

    stamp = timezone.now().replace(microsecond=0)
    events = [
        PublishedAppointment(
            uid=f"9f1c0d3e-0000-4000-8000-00000000000{index}",
            sequence=0,
            created_at=stamp,
            changed_at=stamp,
            start=start,
            end=end,
            cancelled=False,
            summary=f"Session {index}",
            location="",
        )
        for index, (start, end) in enumerate(spans)
    ]
    return render_calendar(
        name="Feed",
        zone_key=zone_key,
        fragments=[render_event(event, zone_key) for event in events],
        years=(2026, 2026),
        complete=(date(2026, 1, 1), date(2026, 12, 31)),
        truncated=False,
    )


def test_an_event_touching_a_repeated_hour_is_written_in_etc_gmt():
    """01:00-01:59 happens twice in New York on 2026-11-01 (05:00Z-06:00Z, then
    06:00Z-07:00Z): such an event has both ends in Etc/GMT, with its VTIMEZONE."""
    from datetime import UTC, datetime

    def utc(*args):
        return datetime(*args, tzinfo=UTC)

    plain = _feed_of((utc(2026, 11, 1, 4), utc(2026, 11, 1, 4, 50)))
    assert b"DTSTART;TZID=America/New_York:20261101T000000\r\n" in plain
    assert b"DTEND;TZID=America/New_York:20261101T005000\r\n" in plain
    assert b"Etc/GMT" not in plain

    for start, end in [
        (utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 7, 20)),  # second 01:30
        (utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 5, 50)),  # first 01:30
        (utc(2026, 11, 1, 4), utc(2026, 11, 1, 6, 15)),  # ends in the second 01:15
    ]:
        body = _feed_of((start, end))
        assert f"DTSTART;TZID=Etc/GMT:{start:%Y%m%dT%H%M%S}\r\n".encode() in body
        assert f"DTEND;TZID=Etc/GMT:{end:%Y%m%dT%H%M%S}\r\n".encode() in body
        assert [str(tz["TZID"]) for tz in parse(body).walk("VTIMEZONE")] == [
            "America/New_York",
            "Etc/GMT",
        ]
        (event,) = parse(body).walk("VEVENT")
        assert (event.decoded("DTSTART"), event.decoded("DTEND")) == (start, end)


def test_fold_never_splits_a_character():
    for text in ("é" * 100, "🙂" * 50, "a" + "王" * 80, "x" * 74 + "é"):
        folded = fold(f"SUMMARY:{text}")
        for line in folded.split(b"\r\n")[:-1]:
            assert len(line) <= 75
            line.decode("utf-8")
        unfolded = folded.replace(b"\r\n ", b"")
        assert unfolded == f"SUMMARY:{text}\r\n".encode()


@pytest.mark.parametrize(
    "zone_key",
    [
        "America/New_York",
        "America/St_Johns",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "Europe/Dublin",
        "UTC",
    ],
)
def test_vtimezone_gives_the_right_offset_at_every_moment(zone_key):
    """Read our VTIMEZONE back the way a client applies it (latest observance whose
    start has passed) and compare with the tz database every half hour."""
    import zoneinfo
    from datetime import UTC, datetime

    from calendarsync.ical import render_timezone

    def seconds(value) -> int:
        text = value.to_ical()
        text = text.decode() if isinstance(text, bytes) else text
        sign = -1 if text[0] == "-" else 1
        hours, minutes = int(text[1:3]), int(text[3:5])
        extra = int(text[5:7]) if len(text) > 5 else 0
        return sign * (hours * 3600 + minutes * 60 + extra)

    component = icalendar.Timezone.from_ical(render_timezone(zone_key, 2026, 2027))
    starts = []
    for observance in component.subcomponents:
        wall = datetime.strptime(
            observance["DTSTART"].to_ical().decode(), "%Y%m%dT%H%M%S"
        )
        before = seconds(observance["TZOFFSETFROM"])
        after = seconds(observance["TZOFFSETTO"])
        starts.append((wall.replace(tzinfo=UTC) - timedelta(seconds=before), after))
    starts.sort()
    zone = zoneinfo.ZoneInfo(zone_key)
    moment = starts[0][0] + timedelta(minutes=15)
    while moment < datetime(2027, 12, 31, tzinfo=UTC):
        applied = [after for start, after in starts if start <= moment][-1]
        expected = moment.astimezone(zone).utcoffset().total_seconds()
        assert applied == expected, (zone_key, moment)
        moment += timedelta(minutes=30)


def test_a_weak_if_none_match_is_compared_weakly(client, clinician, session):
    """RFC 9110 13.1.2: If-None-Match uses the weak comparison, so W/"x" is "x"."""
    path = personal_feed_path(clinician)
    etag = client.get(path)["ETag"]
    for header in (f"W/{etag}", f'"other", W/{etag}', f" w/{etag} "):
        response = client.get(path, headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert not response.has_header("Content-Length")
        assert response.content == b""
    assert client.get(path, headers={"If-None-Match": 'W/"other"'}).status_code == 200


def test_no_date_in_a_feed_is_later_than_the_response(live_server, clinician, session):
    """Ten visible changes within a second are each dated a second later than the
    one before, yet neither Last-Modified nor any DTSTAMP or LAST-MODIFIED is ever
    sent ahead of the response's own Date."""
    import urllib.request

    path = personal_feed_path(clinician)
    for minutes in range(10):
        change_appointment(
            session, start=session.start + timedelta(minutes=minutes + 1)
        )
        change_appointment(session, end=session.start + timedelta(hours=1))
    with urllib.request.urlopen(live_server.url + path) as response:  # noqa: S310
        body = response.read()
        date = parse_http_date(response.headers["Date"])
        last_modified = parse_http_date(response.headers["Last-Modified"])
    assert last_modified <= date
    (event,) = parse(body).walk("VEVENT")
    for name in ("DTSTAMP", "LAST-MODIFIED", "CREATED"):
        assert event.decoded(name).timestamp() <= date, name
    assert event["SEQUENCE"] == 20
