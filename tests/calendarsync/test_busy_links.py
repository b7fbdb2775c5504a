"""A clinician's busy-only link: opaque "Busy" blocks, its own Reset and Disable,
and every rule of the other links (authority, size, conditional requests)."""

import re
from datetime import timedelta

import icalendar
import pytest
from django.core.exceptions import ValidationError
from django.db.models import F

from calendarsync import ical
from calendarsync.busylinks import (
    busy_link_disable,
    busy_link_enable,
    busy_link_reset,
)
from calendarsync.models import FeedAccess, FeedLink, FeedScope
from calendarsync.services import (
    feed_access_disable,
    feed_access_enable,
    feed_access_reset,
    practice_sync_set,
)
from calendarsync.tokens import busy_uid_stem
from practice.audit_sentences import audit_sentence
from practice.models import AuditEvent, Role
from practice.services import user_set_active, user_update
from scheduling.models import Appointment
from tests.factories import (
    busy_feed_path,
    change_appointment,
    delete_appointment,
    feed_links,
    local,
    make_appointment,
    make_location,
    make_patient,
    make_service,
    make_user,
    personal_feed_path,
)

MINUTE = timedelta(minutes=1)
# Distinctive enough that any trace of them in a body is a leak.
SECRETS = {
    "first": "Zebulonia",
    "last": "Quixwhistle",
    "preferred": "Zubzub",
    "email": "zebulonia.q@private-mail.test",
    "phone": "+1 555 0199 7777",
    "notes": "Discussed PTSD diagnosis F43.10 in depth",
    "service": "Trauma therapy EMDR protocol 9",
    "location": "Marigoldtower Suite 4417",
    "event": "Dentist appointment Fenwickshire",
    "practice": "Riverside Counseling",
}


def parse(body: bytes) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(body)


def text(value) -> str:
    """A TEXT value icalendar leaves escaped (the X-WR- properties)."""
    return re.sub(r"\\([\\;,])", r"\1", str(value))


def uids(body: bytes) -> list[str]:
    return sorted(str(event["UID"]) for event in parse(body).walk("VEVENT"))


@pytest.fixture
def schedule(practice, clinician):
    """Dana's week: a session with a distinctive patient and place, a group
    session, an out-of-office event, one attended, one no-show, one cancelled,
    one late-cancelled and one deleted session."""
    patient = make_patient(
        practice,
        first_name=SECRETS["first"],
        last_name=SECRETS["last"],
        preferred_name=SECRETS["preferred"],
        email=SECRETS["email"],
        phone=SECRETS["phone"],
    )
    second = make_patient(practice, first_name="Ottoline", last_name="Brackenbury")
    place = make_location(practice, name=SECRETS["location"])
    service = make_service(practice, name=SECRETS["service"])
    booked = {
        "session": make_appointment(
            clinician,
            patients=[patient],
            location=place,
            service=service,
            notes=SECRETS["notes"],
            start=local(practice, days=1, hour=9),
        ),
        "group": make_appointment(
            clinician,
            patients=[patient, second],
            location=place,
            start=local(practice, days=1, hour=11),
        ),
        "event": make_appointment(
            clinician,
            kind=Appointment.Kind.EVENT,
            title=SECRETS["event"],
            location=place,
            start=local(practice, days=2, hour=13),
            minutes=120,
        ),
        "attended": make_appointment(
            clinician, patients=[patient], start=local(practice, days=-3, hour=9)
        ),
        "no_show": make_appointment(
            clinician, patients=[second], start=local(practice, days=-2, hour=9)
        ),
        "cancelled": make_appointment(
            clinician, patients=[patient], start=local(practice, days=3, hour=9)
        ),
        "late_cancelled": make_appointment(
            clinician, patients=[second], start=local(practice, days=3, hour=11)
        ),
        "deleted": make_appointment(
            clinician, patients=[patient], start=local(practice, days=4, hour=9)
        ),
    }
    change_appointment(booked["attended"], status=Appointment.Status.ATTENDED)
    change_appointment(booked["no_show"], status=Appointment.Status.NO_SHOW)
    change_appointment(booked["cancelled"], status=Appointment.Status.CANCELLED)
    change_appointment(
        booked["late_cancelled"], status=Appointment.Status.LATE_CANCELLED
    )
    delete_appointment(booked["deleted"])
    # Booked a minute ago: straight to the table, since the services never date
    # back. Otherwise the changes above, several within a second, would be dated
    # ahead of the clock, and a test's own change in that second would share it.
    Appointment.objects.update(
        created_at=F("created_at") - MINUTE,
        updated_at=F("updated_at") - MINUTE,
        cancelled_at=F("cancelled_at") - MINUTE,
        deleted_at=F("deleted_at") - MINUTE,
    )
    for appointment in booked.values():
        appointment.refresh_from_db()
    return booked


def test_busy_feed_shows_opaque_blocks_and_nothing_else(
    client, practice, clinician, schedule
):
    response = client.get(busy_feed_path(clinician))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Cache-Control"] == "private, no-cache"
    assert response["Referrer-Policy"] == "no-referrer"
    body = response.content
    for value in SECRETS.values():
        for variant in (value, value.replace(" ", ""), value.upper()):
            assert variant.encode() not in body, variant
    # Nobody's initials, no status text, no clinician's credentials or email.
    for leak in (
        b"Z.Q.",
        b"O.B.",
        b"Attended",
        b"No-show",
        b"Cancelled",
        b"CANCELLED",
        b"LOCATION",
        b"DESCRIPTION:Read-only",
        b"CATEGORIES",
        b"rivera@",
        b"TRANSPARENT",
    ):
        assert leak not in body, leak

    calendar = parse(body)
    assert text(calendar["X-WR-CALNAME"]) == "Busy — Dana Rivera, LCSW"
    assert "Busy times only" in str(calendar["X-WR-CALDESC"])
    events = calendar.walk("VEVENT")
    # Cancelled, late-cancelled and deleted appointments are simply not there.
    expected = ("session", "group", "event", "attended", "no_show")
    assert len(events) == len(expected)
    starts = sorted(event.decoded("DTSTART") for event in events)
    assert starts == sorted(schedule[name].start for name in expected)
    for event in events:
        assert str(event["SUMMARY"]) == "Busy"
        assert str(event["CLASS"]) == "PRIVATE"
        assert str(event["TRANSP"]) == "OPAQUE"
        assert str(event["STATUS"]) == "CONFIRMED"
        assert set(event) == {
            "UID",
            "DTSTAMP",
            "DTSTART",
            "DTEND",
            "SEQUENCE",
            "CREATED",
            "LAST-MODIFIED",
            "STATUS",
            "SUMMARY",
            "CLASS",
            "TRANSP",
        }
    event_block = next(
        event for event in events if event.decoded("DTSTART") == schedule["event"].start
    )
    assert event_block.decoded("DTEND") - event_block.decoded("DTSTART") == timedelta(
        hours=2
    )


def test_busy_uids_differ_from_the_personal_feed_and_stay_put(
    client, practice, clinician, schedule
):
    busy_path = busy_feed_path(clinician)
    busy_uids = uids(client.get(busy_path).content)
    personal_uids = uids(client.get(personal_feed_path(clinician)).content)
    assert len(busy_uids) == 5
    assert not set(busy_uids) & set(personal_uids)
    for uid in busy_uids:
        assert re.fullmatch(r"[0-9a-f]{32}@busy\.tend", uid)
        assert ical.is_tend_uid(uid)
    appointment_uids = {str(a.uid) for a in schedule.values()}
    for uid in busy_uids:
        assert not any(stem in uid for stem in appointment_uids)
    assert f"{busy_uid_stem(str(schedule['session'].uid))}@busy.tend" in busy_uids

    # The same on every request, after a change, and after the link is reset.
    moved = local(practice, days=1, hour=10)
    change_appointment(
        schedule["session"], start=moved, end=moved + timedelta(minutes=50)
    )
    assert uids(client.get(busy_path).content) == busy_uids
    busy_link_reset(user=clinician, client_ip=None)
    assert uids(client.get(busy_feed_path(clinician)).content) == busy_uids


def test_busy_uids_follow_the_feed_key(client, settings, clinician, schedule):
    path = busy_feed_path(clinician)
    before = uids(client.get(path).content)
    settings.CALENDAR_FEED_KEY_FALLBACKS = [settings.CALENDAR_FEED_KEY]
    settings.CALENDAR_FEED_KEY = "another-feed-key-" + "x" * 40
    # The old link still opens (the old key is a fallback); the blocks are renamed.
    after = uids(client.get(path).content)
    assert len(after) == len(before)
    assert not set(after) & set(before)


@pytest.mark.parametrize(
    "uid, expected",
    [
        ("3f2b8c1e-9a4d-4e0b-8c3a-5d6e7f8a9b0c@tend", True),
        ("3F2B8C1E-9A4D-4E0B-8C3A-5D6E7F8A9B0C@TEND", True),
        (" 0123456789abcdef0123456789abcdef@busy.tend\r\n", True),
        ("0123456789abcdef0123456789abcdef@tend", False),
        ("3f2b8c1e-9a4d-4e0b-8c3a-5d6e7f8a9b0c@busy.tend", False),
        ("0123456789abcdef0123456789abcde@busy.tend", False),
        ("0123456789abcdef0123456789abcdefg@busy.tend", False),
        ("0123456789abcdef0123456789abcdef@busyXtend", False),
        ("abc123@google.com", False),
        ("3f2b8c1e-9a4d-4e0b-8c3a-5d6e7f8a9b0c@tend.example", False),
        ("", False),
    ],
)
def test_is_tend_uid(uid, expected):
    assert ical.is_tend_uid(uid) is expected


def test_is_tend_uid_knows_every_uid_a_feed_writes(
    client, admin_user, clinician, schedule
):
    bodies = [client.get(path).content for path in feed_links(admin_user).values()]
    bodies.append(client.get(busy_feed_path(clinician)).content)
    written = [uid for body in bodies for uid in uids(body)]
    assert len(written) > 10
    assert all(ical.is_tend_uid(uid) for uid in written)


def test_no_busy_link_until_asked_and_only_for_clinicians(
    practice, admin_user, scheduler, clinician
):
    assert (FeedScope.BUSY, clinician.pk) not in feed_links(clinician)
    busy_link_enable(user=clinician, client_ip=None)
    assert (FeedScope.BUSY, clinician.pk) in feed_links(clinician)
    # Administrators see their own, as clinicians; never anyone else's.
    assert (FeedScope.BUSY, clinician.pk) not in feed_links(admin_user)
    with pytest.raises(ValidationError, match="clinician's own"):
        busy_link_enable(user=scheduler, client_ip=None)
    assert not FeedLink.objects.filter(scope=FeedScope.BUSY).exclude(
        clinician=clinician
    )


def test_reset_of_the_busy_link_leaves_the_personal_link_alone(
    client, clinician, schedule
):
    personal = personal_feed_path(clinician)
    busy = busy_feed_path(clinician)
    personal_etag = client.get(personal)["ETag"]
    salt = bytes(FeedAccess.objects.get(user=clinician).secret_salt)

    busy_link_reset(user=clinician, client_ip=None)

    assert client.get(busy).status_code == 404
    renewed = busy_feed_path(clinician)
    assert renewed != busy
    assert client.get(renewed).status_code == 200
    assert personal_feed_path(clinician) == personal
    assert bytes(FeedAccess.objects.get(user=clinician).secret_salt) == salt
    again = client.get(personal, headers={"If-None-Match": personal_etag})
    assert again.status_code == 304


def test_disable_of_the_busy_link_leaves_the_personal_link_alone(
    client, clinician, schedule
):
    personal = personal_feed_path(clinician)
    busy = busy_feed_path(clinician)

    busy_link_disable(user=clinician, client_ip=None)

    assert client.get(busy).status_code == 404
    assert (FeedScope.BUSY, clinician.pk) not in feed_links(clinician)
    assert client.get(personal).status_code == 200
    assert personal_feed_path(clinician) == personal
    # Made again, it is a new address; the old one stays dead.
    renewed = busy_feed_path(clinician)
    assert renewed != busy
    assert client.get(busy).status_code == 404
    assert client.get(renewed).status_code == 200


def test_personal_reset_leaves_busy_on_with_a_new_address(client, clinician, schedule):
    busy = busy_feed_path(clinician)
    personal = personal_feed_path(clinician)
    feed_access_reset(user=clinician, actor=clinician, client_ip=None)
    assert client.get(busy).status_code == 404
    assert client.get(personal).status_code == 404
    renewed = feed_links(clinician)[(FeedScope.BUSY, clinician.pk)]
    assert renewed != busy
    assert client.get(renewed).status_code == 200


def test_disable_access_covers_the_busy_link(client, admin_user, clinician, schedule):
    busy = busy_feed_path(clinician)
    feed_access_disable(user=clinician, actor=admin_user, client_ip=None)
    assert client.get(busy).status_code == 404
    assert feed_links(clinician) == {}
    with pytest.raises(ValidationError, match="Calendar sync is off"):
        busy_link_reset(user=clinician, client_ip=None)
    # Enabled again: the busy link comes back, at a new address.
    feed_access_enable(user=clinician, actor=admin_user, client_ip=None)
    renewed = feed_links(clinician)[(FeedScope.BUSY, clinician.pk)]
    assert renewed != busy
    assert client.get(busy).status_code == 404
    assert client.get(renewed).status_code == 200


@pytest.mark.parametrize(
    "revoke", ["practice_sync_off", "user_deactivated", "user_lost_clinician_role"]
)
def test_busy_link_refused_like_every_other_link(
    client, practice, admin_user, clinician, schedule, revoke
):
    busy = busy_feed_path(clinician)
    assert client.get(busy).status_code == 200
    reference = client.get("/calendar/" + "A" * 55 + ".ics")
    if revoke == "practice_sync_off":
        practice_sync_set(
            practice=practice, enabled=False, actor=admin_user, client_ip=None
        )
    elif revoke == "user_deactivated":
        user_set_active(user=clinician, active=False, actor=admin_user, client_ip=None)
    else:
        user_update(
            user=clinician,
            display_name=clinician.display_name,
            credentials="",
            roles=[Role.SCHEDULER],
            actor=admin_user,
            client_ip=None,
        )
    refused = client.get(busy)
    assert refused.status_code == 404
    assert refused.content == reference.content
    assert sorted(refused.headers.items()) == sorted(reference.headers.items())
    if revoke != "practice_sync_off":
        # Pruned: undoing the change issues a new busy link, never the old one.
        assert not FeedLink.objects.filter(scope=FeedScope.BUSY).exists()


def test_conditional_requests_and_gzip(client, practice, clinician, schedule):
    path = busy_feed_path(clinician)
    first = client.get(path)
    etag, last_modified = first["ETag"], first["Last-Modified"]
    assert re.fullmatch(r'"[0-9a-f]{64}"', etag)
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
    by_date = client.get(path, headers={"If-Modified-Since": last_modified})
    assert by_date.status_code == 304
    assert by_date.content == b""
    gzipped = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert gzipped["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in gzipped["Vary"]
    # A change the busy calendar shows is a new representation.
    moved = local(practice, days=1, hour=15)
    change_appointment(
        schedule["session"], start=moved, end=moved + timedelta(minutes=50)
    )
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 200


def test_cancelling_removes_the_block(client, practice, clinician, schedule):
    path = busy_feed_path(clinician)
    before = uids(client.get(path).content)
    change_appointment(schedule["session"], status=Appointment.Status.CANCELLED)
    after = uids(client.get(path).content)
    assert len(after) == len(before) - 1
    gone = f"{busy_uid_stem(str(schedule['session'].uid))}@busy.tend"
    assert gone in before and gone not in after


def test_too_large_busy_feed_drops_the_farthest_days(
    client, settings, practice, clinician
):
    for days in range(1, 41):
        make_appointment(
            clinician,
            kind=Appointment.Kind.EVENT,
            title=f"Block {days:02d}",
            start=local(practice, days=days),
        )
    path = busy_feed_path(clinician)
    full = client.get(path).content
    settings.CALENDAR_FEED_MAX_BYTES = len(full) // 2
    half = client.get(path).content
    assert len(half) <= len(full) // 2
    calendar = parse(half)
    starts = sorted(event.decoded("DTSTART") for event in calendar.walk("VEVENT"))
    assert 5 < len(starts) < 40
    assert starts == [local(practice, days=day) for day in range(1, len(starts) + 1)]
    assert "left out" in str(calendar["X-WR-CALDESC"])
    assert b"Block" not in half


def test_busy_actions_are_audited(practice, clinician):
    busy_link_enable(user=clinician, client_ip="203.0.113.9")
    busy_link_enable(user=clinician, client_ip="203.0.113.9")  # no change
    busy_link_reset(user=clinician, client_ip="203.0.113.9")
    busy_link_disable(user=clinician, client_ip="203.0.113.9")
    busy_link_disable(user=clinician, client_ip="203.0.113.9")  # no change
    events = list(
        AuditEvent.objects.filter(practice=practice, kind__startswith="busy_link")
        .order_by("pk")
        .select_related("actor", "target_user")
    )
    assert [event.kind for event in events] == [
        AuditEvent.Kind.BUSY_LINK_ON,
        AuditEvent.Kind.BUSY_LINK_RESET,
        AuditEvent.Kind.BUSY_LINK_OFF,
    ]
    assert {event.actor for event in events} == {clinician}
    assert {event.target_user for event in events} == {clinician}
    assert {event.client_ip for event in events} == {"203.0.113.9"}
    assert [audit_sentence(event) for event in events] == [
        "Dana Rivera, LCSW made a busy-only calendar link",
        "Dana Rivera, LCSW reset their busy-only calendar link",
        "Dana Rivera, LCSW turned their busy-only calendar link off",
    ]


def test_another_clinicians_busy_link_shows_only_their_blocks(
    client, practice, clinician, other_clinician, schedule
):
    make_appointment(other_clinician, start=local(practice, days=1, hour=9))
    mine = parse(client.get(busy_feed_path(clinician)).content)
    theirs = parse(client.get(busy_feed_path(other_clinician)).content)
    assert len(mine.walk("VEVENT")) == 5
    assert len(theirs.walk("VEVENT")) == 1
    assert text(theirs["X-WR-CALNAME"]) == "Busy — Wei Chen, PhD"


# -- the sync page -------------------------------------------------------------------


def test_sync_page_offers_then_shows_the_busy_link(client, login, clinician):
    login(clinician)
    page = client.get("/settings/sync/").content.decode()
    assert 'id="busy"' in page
    assert "Make a busy-only link" in page
    assert "feed-busy-" not in page

    response = client.post("/settings/sync/busy/", {"action": "enable"})
    assert response.status_code == 302
    assert response["Location"].endswith("/settings/sync/#busy")
    page = client.get("/settings/sync/").content.decode()
    busy_path = feed_links(clinician)[(FeedScope.BUSY, clinician.pk)]
    assert busy_path in page
    assert "webcal://" + busy_path.split("/", 1)[0] in page or "webcal://" in page
    assert "Reset busy-only link" in page
    assert "Disable busy-only link" in page
    assert "Busy — Dana Rivera, LCSW" in page
    # The busy card comes after the personal one.
    assert page.index(personal_feed_path(clinician)) < page.index(busy_path)

    client.post("/settings/sync/busy/", {"action": "reset"})
    assert busy_path not in client.get("/settings/sync/").content.decode()
    client.post("/settings/sync/busy/", {"action": "disable"})
    page = client.get("/settings/sync/").content.decode()
    assert "Make a busy-only link" in page
    assert "feed-busy-" not in page


def test_sync_page_has_no_busy_section_for_non_clinicians(client, login, scheduler):
    login(scheduler)
    page = client.get("/settings/sync/").content.decode()
    assert 'id="busy"' not in page
    response = client.post("/settings/sync/busy/", {"action": "enable"}, follow=True)
    assert "clinician&#x27;s own appointments" in response.content.decode()
    assert not FeedLink.objects.filter(scope=FeedScope.BUSY).exists()


def test_busy_action_rejects_bad_input(client, login, clinician):
    login(clinician)
    response = client.post("/settings/sync/busy/", {"action": "explode"}, follow=True)
    assert "Choose Make, Reset or Disable." in response.content.decode()
    assert client.get("/settings/sync/busy/").status_code == 405
    response = client.post("/settings/sync/busy/", {"action": "reset"}, follow=True)
    assert "There is no busy-only link to reset." in response.content.decode()
    assert not AuditEvent.objects.filter(kind__startswith="busy_link").exists()


def test_busy_link_is_the_users_own(client, login, practice, clinician):
    """Another clinician of the practice cannot act on Dana's busy link: the view
    only ever acts on the signed-in user."""
    colleague = make_user(practice, name="Kim Park")
    path = busy_feed_path(clinician)
    login(colleague)
    client.post("/settings/sync/busy/", {"action": "disable"})
    client.logout()
    assert client.get(path).status_code == 200


def test_busy_link_emailed_says_what_it_shows(
    client, login, clinician, mailoutbox, django_capture_on_commit_callbacks
):
    busy_path = busy_feed_path(clinician)
    link = FeedLink.objects.get(scope=FeedScope.BUSY, access__user=clinician)
    login(clinician)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/settings/sync/email/", {"link": link.public_id})
    (message,) = mailoutbox
    assert message.to == [clinician.email]
    assert message.subject == "Your Tend calendar link: Your busy-only calendar"
    assert busy_path in message.body
    assert "Reset busy-only link" in message.body
    assert "patient initials" not in message.body
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.SYNC_LINK_EMAILED)
    assert event.details["calendar"] == FeedScope.BUSY
