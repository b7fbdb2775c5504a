"""Direct push against two real CalDAV servers on loopback (Radicale and
Xandikos, started by the fixtures): connecting, the first full sync, each kind of
change, edits made outside Tend put back, a refused password, disconnecting.
What reached the server is read back with the ``caldav`` library."""

from datetime import timedelta

import caldav
import icalendar
import pytest
from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone

from calendarsync import crypto, ical, push
from calendarsync.accounts import (
    ALREADY_CONNECTED,
    NOT_EMPTY,
    calendar_account_calendars,
    calendar_account_connect,
    calendar_account_disconnect,
    calendar_account_use_calendar,
)
from calendarsync.caldav_client import AUTH_REFUSED, CalDAVClient, same_resource
from calendarsync.models import CalendarAccount, PushedEvent
from calendarsync.services import feed_access_disable, feed_access_enable
from practice.models import AuditEvent
from scheduling import publication
from scheduling.models import Appointment
from tests.conformance.harness import Subscriber
from tests.factories import (
    change_appointment,
    connect_calendar_account,
    connect_calendar_account_to,
    delete_appointment,
    local,
    make_appointment,
    make_patient,
    personal_feed_path,
)
from tests.servers import RadicaleServer


@pytest.fixture
def account(clinician, caldav_server):
    return connect_calendar_account_to(clinician, caldav_server)


def server_events(server, account) -> dict[str, icalendar.Event]:
    """{UID: VEVENT} of Tend's calendar, read with the caldav library."""
    dav = caldav.DAVClient(
        url=server.url, username=server.username, password=server.password
    )
    calendar = dav.calendar(url=account.calendar_url)
    found = {}
    for resource in calendar.events():
        parsed = icalendar.Calendar.from_ical(resource.data)
        (event,) = parsed.walk("VEVENT")
        found[str(event["UID"])] = event
    return found


def age() -> None:
    """A minute passes (straight to the table: the services never date back).
    Changes made within the last second are dated up to a second ahead, and a
    push holds such dates back to the clock as feeds do, so a test that compares
    two runs, or a run with a later poll, lets the clock pass them first."""
    Appointment.objects.update(
        created_at=F("created_at") - MINUTE,
        updated_at=F("updated_at") - MINUTE,
        deleted_at=F("deleted_at") - MINUTE,
    )


MINUTE = timedelta(minutes=1)


def listing(account) -> dict[str, str]:
    with push.client_for(account) as client:
        return client.resources(account.calendar_url)


def test_connecting_discovers_and_creates_tends_own_calendar(
    clinician, caldav_server, account
):
    assert account.calendar_created
    assert account.calendar_name == "Tend — Riverside Counseling"
    # The password is stored encrypted, and only the key opens it.
    assert caldav_server.password not in account.secret
    assert crypto.decrypt(account.secret) == caldav_server.password
    names = {c.name for c in calendar_account_calendars(account)}
    assert "Tend — Riverside Counseling" in names
    assert AuditEvent.objects.filter(
        kind=AuditEvent.Kind.CALENDAR_CONNECTED, target_user=clinician
    ).exists()
    with pytest.raises(ValidationError, match=ALREADY_CONNECTED):
        connect_calendar_account_to(clinician, caldav_server)


def test_first_sync_writes_the_personal_feeds_events_and_a_second_does_nothing(
    clinician, other_clinician, caldav_server, account, office
):
    practice = clinician.practice
    booked = make_appointment(
        clinician,
        start=local(practice, days=1, hour=9),
        patients=[make_patient(practice, first_name="Ada", last_name="Lovelace")],
        location=office,
    )
    event = make_appointment(
        clinician,
        start=local(practice, days=2, hour=13),
        kind=Appointment.Kind.EVENT,
        title="Supervision",
    )
    cancelled = change_appointment(
        make_appointment(clinician, start=local(practice, days=3, hour=10)),
        status=Appointment.Status.CANCELLED,
    )
    make_appointment(other_clinician, start=local(practice, days=1, hour=9))
    age()

    result = push.reconcile(account)

    assert result.error is None
    assert result.created == 3
    events = server_events(caldav_server, account)
    assert set(events) == {
        f"{booked.uid}@tend",
        f"{event.uid}@tend",
        f"{cancelled.uid}@tend",
    }
    first = events[f"{booked.uid}@tend"]
    assert str(first["SUMMARY"]) == "A.L."
    assert str(first["LOCATION"]) == "Main Street Office"
    assert first.decoded("DTSTART") == booked.start
    assert str(events[f"{event.uid}@tend"]["SUMMARY"]) == "Supervision"
    gone = events[f"{cancelled.uid}@tend"]
    assert str(gone["STATUS"]) == "CANCELLED"
    assert str(gone["SUMMARY"]) == "Cancelled: P.D."
    account.refresh_from_db()
    assert account.last_sent_at is not None
    assert account.failing_since is None

    again = push.reconcile(account)

    assert again.error is None
    assert again.writes == 0


def test_each_change_reaches_the_server(clinician, caldav_server, account):
    practice = clinician.practice
    moved = make_appointment(clinician, start=local(practice, days=1, hour=9))
    to_cancel = make_appointment(clinician, start=local(practice, days=2, hour=9))
    to_delete = make_appointment(clinician, start=local(practice, days=3, hour=9))
    push.reconcile(account)
    before = server_events(caldav_server, account)

    change_appointment(
        moved,
        start=local(practice, days=1, hour=11),
        end=local(practice, days=1, hour=12),
    )
    change_appointment(to_cancel, status=Appointment.Status.CANCELLED)
    delete_appointment(to_delete)
    created = make_appointment(clinician, start=local(practice, days=4, hour=9))
    result = push.reconcile(account)

    assert (result.created, result.updated, result.restored) == (1, 3, 0)
    after = server_events(caldav_server, account)
    uid = f"{moved.uid}@tend"
    assert after[uid].decoded("DTSTART") == local(practice, days=1, hour=11)
    assert after[uid]["SEQUENCE"] > before[uid]["SEQUENCE"]
    assert str(after[f"{to_cancel.uid}@tend"]["STATUS"]) == "CANCELLED"
    # A deleted appointment is shown as cancelled for the retention, as in feeds.
    assert str(after[f"{to_delete.uid}@tend"]["STATUS"]) == "CANCELLED"
    assert f"{created.uid}@tend" in after

    # After the retention, both leave the server.
    later = timezone.now() + timedelta(days=31)
    result = push.reconcile(account, now=later)

    assert result.deleted == 2
    remaining = set(server_events(caldav_server, account))
    assert remaining == {f"{moved.uid}@tend", f"{created.uid}@tend"}
    assert PushedEvent.objects.filter(account=account).count() == 2


def test_the_server_shows_what_the_personal_feed_shows(
    client, clinician, caldav_server, account, telehealth
):
    practice = clinician.practice
    make_appointment(clinician, start=local(practice, days=1, hour=9))
    make_appointment(clinician, start=local(practice, days=2), location=telehealth)
    delete_appointment(make_appointment(clinician, start=local(practice, days=3)))
    change_appointment(
        make_appointment(clinician, start=local(practice, days=4)),
        status=Appointment.Status.LATE_CANCELLED,
    )
    age()
    push.reconcile(account)

    feed = icalendar.Calendar.from_ical(
        client.get(personal_feed_path(clinician)).content
    )
    in_feed = {str(e["UID"]): e for e in feed.walk("VEVENT")}
    pushed = server_events(caldav_server, account)
    assert set(pushed) == set(in_feed)
    for uid, event in in_feed.items():
        for name in FEED_PROPERTIES:
            assert pushed[uid].get(name) == event.get(name), (uid, name)


FEED_PROPERTIES = (
    "UID",
    "SEQUENCE",
    "SUMMARY",
    "LOCATION",
    "STATUS",
    "TRANSP",
    "DTSTART",
    "DTEND",
    "DTSTAMP",
    "LAST-MODIFIED",
    "CREATED",
)


def test_each_resource_is_one_event_in_a_calendar_without_method(
    clinician, caldav_server, account
):
    appointment = make_appointment(clinician)
    wanted = push.wanted_events(account, now=timezone.now())[str(appointment.uid)]
    parsed = icalendar.Calendar.from_ical(wanted.body)
    assert [c.name for c in parsed.subcomponents] == ["VTIMEZONE", "VEVENT"]
    assert "METHOD" not in parsed
    (published,) = publication.published_appointments(
        Appointment.objects.filter(pk=appointment.pk),
        with_clinician=False,
        now=timezone.now(),
    )
    assert ical.render_event(published, "America/New_York") in wanted.body


def test_events_changed_or_deleted_on_the_server_are_put_back(
    clinician, caldav_server, account
):
    practice = clinician.practice
    edited = make_appointment(clinician, start=local(practice, days=1, hour=9))
    removed = make_appointment(clinician, start=local(practice, days=2, hour=9))
    age()
    push.reconcile(account)
    rows = {row.uid: row for row in PushedEvent.objects.filter(account=account)}
    tampered = push.wanted_events(account, now=timezone.now())[
        str(edited.uid)
    ].body.replace(b"SUMMARY:P.D.", b"SUMMARY:Lunch")
    with push.client_for(account) as client:
        client.put(
            rows[str(edited.uid)].href, tampered, etag=rows[str(edited.uid)].etag
        )
        client.delete(rows[str(removed.uid)].href, etag=None)

    result = push.reconcile(account)

    assert result.restored == 2
    events = server_events(caldav_server, account)
    assert str(events[f"{edited.uid}@tend"]["SUMMARY"]) == "P.D."
    assert f"{removed.uid}@tend" in events
    account.refresh_from_db()
    assert account.restored_count == 2
    assert push.reconcile(account).writes == 0


def test_tends_orphans_are_removed_and_anything_else_left_alone(
    clinician, caldav_server, account
):
    appointment = make_appointment(clinician)
    push.reconcile(account)
    body = push.wanted_events(account, now=timezone.now())[str(appointment.uid)].body
    orphan = push.resource_url(account, "0f0e0d0c-0b0a-4908-8706-050403020100")
    foreign = account.calendar_url + "notes-by-hand.ics"
    with push.client_for(account) as client:
        client.put(
            orphan, body.replace(str(appointment.uid).encode(), b"x1"), etag=None
        )
        client.put(
            foreign, body.replace(str(appointment.uid).encode(), b"x2"), etag=None
        )

    result = push.reconcile(account)

    assert result.orphans_removed == 1
    hrefs = set(listing(account))
    assert not any(same_resource(h, orphan) for h in hrefs)
    assert any(same_resource(h, foreign) for h in hrefs)


def test_a_non_empty_calendar_cannot_be_chosen_and_others_are_never_touched(
    clinician, caldav_server
):
    account = connect_calendar_account(
        clinician,
        url=caldav_server.url,
        username=caldav_server.username,
        password=caldav_server.password,
        create_calendar=False,
    )
    with CalDAVClient(
        url=caldav_server.url,
        username=caldav_server.username,
        password=caldav_server.password,
    ) as client:
        own = client.make_calendar(account.home_url, "Personal")
        client.put(own + "mine.ics", _foreign_event(), etag=None)
        before = client.resources(own)

    with pytest.raises(ValidationError, match=NOT_EMPTY):
        calendar_account_use_calendar(account=account, calendar_url=own)

    empty = CalDAVClient(
        url=caldav_server.url,
        username=caldav_server.username,
        password=caldav_server.password,
    ).make_calendar(account.home_url, "Work")
    account = calendar_account_use_calendar(account=account, calendar_url=empty)
    make_appointment(clinician)
    assert push.reconcile(account).created == 1
    assert not account.calendar_created
    with push.client_for(account) as client:
        assert client.resources(own) == before


def _foreign_event() -> bytes:
    return (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Someone//EN\r\n"
        b"BEGIN:VEVENT\r\nUID:dentist-1\r\nDTSTAMP:20260101T000000Z\r\n"
        b"DTSTART:20260105T100000Z\r\nDTEND:20260105T110000Z\r\n"
        b"SUMMARY:Dentist\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def test_a_wrong_password_saves_nothing(clinician, radicale):
    with pytest.raises(ValidationError) as raised:
        calendar_account_connect(
            user=clinician,
            provider=CalendarAccount.Provider.OTHER,
            server_url=radicale.url,
            username=radicale.username,
            password="not-the-app-password",
            actor=clinician,
            client_ip=None,
        )
    assert raised.value.messages == [
        "The server refused the password — enter a new app password."
    ]
    assert not CalendarAccount.objects.filter(user=clinician).exists()


def test_a_revoked_password_marks_the_account_as_needing_attention(clinician, radicale):
    account = connect_calendar_account_to(clinician, radicale)
    make_appointment(clinician)
    users = radicale.folder / "users"
    users.write_text(f"{radicale.username}:a-new-app-password\n")
    try:
        result = push.reconcile(account)
    finally:
        users.write_text(f"{radicale.username}:{radicale.password}\n")

    assert result.error is not None and result.error.kind == "auth"
    account.refresh_from_db()
    assert account.failing_since is not None
    assert account.failure_message == AUTH_REFUSED
    assert account.needs_attention

    recovered = push.reconcile(account)

    assert recovered.error is None and recovered.created == 1
    account.refresh_from_db()
    assert account.failing_since is None and not account.needs_attention


@pytest.mark.parametrize("delete", [True, False])
def test_disconnecting(clinician, caldav_server, account, delete):
    make_appointment(clinician)
    push.reconcile(account)
    url = account.calendar_url

    outcome = calendar_account_disconnect(
        account=account, actor=clinician, client_ip=None, delete_calendar=delete
    )

    assert not CalendarAccount.objects.filter(user=clinician).exists()
    assert not PushedEvent.objects.exists()
    with CalDAVClient(
        url=caldav_server.url,
        username=caldav_server.username,
        password=caldav_server.password,
    ) as client:
        urls = [c.url for c in client.calendars(account.home_url)]
    assert any(same_resource(u, url) for u in urls) is not delete
    assert ("deleted" in outcome) is delete
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.CALENDAR_DISCONNECTED)
    assert event.target_user == clinician


def test_dates_held_back_to_the_clock_are_written_by_a_later_run(
    clinician, caldav_server, account
):
    appointment = make_appointment(clinician)
    ahead = appointment.updated_at
    # A run in the second before the change's date (as when several changes
    # came within one second): its dates are held back to that moment.
    early = push.reconcile(account, now=ahead - timedelta(seconds=1))

    assert early.created == 1
    assert early.rerun_after == ahead

    later = push.reconcile(account, now=ahead + MINUTE)

    assert later.updated == 1 and later.rerun_after is None
    event = server_events(caldav_server, account)[f"{appointment.uid}@tend"]
    assert event.decoded("LAST-MODIFIED") == ahead.replace(microsecond=0)
    assert push.reconcile(account, now=ahead + 2 * MINUTE).writes == 0


def test_the_task_reconciles_the_account(clinician, caldav_server, account):
    appointment = make_appointment(clinician)

    outcome = push.push_account.call(account.pk)

    assert outcome["error"] is None and outcome["writes"] == 1
    assert f"{appointment.uid}@tend" in server_events(caldav_server, account)
    assert push.push_account.call(0) == {"skipped": "disconnected"}


def test_tends_events_leave_when_the_owner_may_no_longer_read_their_calendar(
    clinician, admin_user, caldav_server, account
):
    make_appointment(clinician)
    make_appointment(clinician, start=local(clinician.practice, days=2))
    push.reconcile(account)
    assert len(listing(account)) == 2
    feed_access_disable(user=clinician, actor=admin_user, client_ip=None)

    stopped = push.reconcile(account)

    assert stopped.error is None and stopped.deleted == 2
    assert listing(account) == {}
    assert push.reconcile(account).writes == 0

    feed_access_enable(user=clinician, actor=admin_user, client_ip=None)
    assert push.reconcile(account).created == 2


def test_one_run_at_a_time_per_account(clinician, caldav_server, account):
    make_appointment(clinician)
    assert push.lease_claim(account)

    busy = push.reconcile(account)

    assert busy.busy and busy.writes == 0
    assert listing(account) == {}
    # The run holding it gives it back when it ends; a later run goes ahead.
    account.refresh_from_db()
    account.push_lease_until = None
    account.save(update_fields=["push_lease_until"])
    assert push.reconcile(account).created == 1
    account.refresh_from_db()
    assert account.push_lease_until is None


def test_failing_and_recovering_are_audited_once(clinician, radicale):
    account = connect_calendar_account_to(clinician, radicale)
    users = radicale.folder / "users"
    users.write_text(f"{radicale.username}:changed-elsewhere\n")
    try:
        push.reconcile(account)
        push.reconcile(account)
    finally:
        users.write_text(f"{radicale.username}:{radicale.password}\n")
    push.reconcile(account)
    push.reconcile(account)

    kinds = list(
        AuditEvent.objects.filter(target_user=clinician, kind__startswith="calendar_")
        .order_by("created_at", "id")
        .values_list("kind", flat=True)
    )
    assert kinds == [
        AuditEvent.Kind.CALENDAR_CONNECTED,
        AuditEvent.Kind.CALENDAR_FAILING,
        AuditEvent.Kind.CALENDAR_RECOVERED,
    ]


def test_a_caldav_client_syncs_the_pushed_calendar(clinician, radicale, tmp_path):
    """vdirsyncer syncs Tend's calendar from the server into a folder, as a
    desktop client would, and khal lists it."""
    practice = clinician.practice
    account = connect_calendar_account_to(clinician, radicale)
    kept = make_appointment(clinician, start=local(practice, days=1, hour=9))
    cancelled = change_appointment(
        make_appointment(clinician, start=local(practice, days=2, hour=14)),
        status=Appointment.Status.CANCELLED,
    )
    push.reconcile(account)
    subscriber = Subscriber(account.calendar_url, tmp_path)
    subscriber.vdirsyncer_config.write_text(
        "[general]\n"
        f'status_path = "{tmp_path / "status"}/"\n\n'
        "[pair subscription]\n"
        'a = "account"\nb = "folder"\ncollections = null\n'
        'conflict_resolution = "a wins"\n\n'
        "[storage account]\n"
        f'type = "caldav"\nurl = "{account.calendar_url}"\n'
        f'username = "{radicale.username}"\npassword = "{radicale.password}"\n\n'
        "[storage folder]\n"
        f'type = "filesystem"\npath = "{subscriber.calendar_dir}/"\n'
        'fileext = ".ics"\n'
    )
    today = timezone.now().date()

    listed = subscriber.sync_and_list(today, today + timedelta(days=5))

    assert listed.errors == []
    events = {event.uid: event for event in listed.events}
    assert set(events) == {f"{kept.uid}@tend", f"{cancelled.uid}@tend"}
    assert events[f"{kept.uid}@tend"].summary == "P.D."
    assert events[f"{kept.uid}@tend"].start_utc == kept.start
    assert events[f"{cancelled.uid}@tend"].summary == "Cancelled: P.D."
    assert events[f"{cancelled.uid}@tend"].status == "CANCELLED"


def test_a_server_that_was_down_catches_up_with_nothing_lost(clinician, tmp_path):
    server = RadicaleServer(tmp_path)
    server.start()
    try:
        account = connect_calendar_account_to(clinician, server)
        practice = clinician.practice
        moved = make_appointment(clinician, start=local(practice, days=1, hour=9))
        removed = make_appointment(clinician, start=local(practice, days=2, hour=9))
        age()
        push.reconcile(account)

        server.stop()
        change_appointment(
            moved,
            start=local(practice, days=1, hour=15),
            end=local(practice, days=1, hour=16),
        )
        delete_appointment(removed)
        added = make_appointment(clinician, start=local(practice, days=3, hour=9))
        age()
        down = push.reconcile(account)

        assert down.error is not None and down.error.kind == "network"
        account.refresh_from_db()
        assert account.failing_since is not None and not account.needs_attention

        server.start()
        back = push.reconcile(account)

        assert back.error is None
        assert (back.created, back.updated) == (1, 2)
        events = server_events(server, account)
        assert set(events) == {
            f"{moved.uid}@tend",
            f"{removed.uid}@tend",
            f"{added.uid}@tend",
        }
        assert str(events[f"{removed.uid}@tend"]["STATUS"]) == "CANCELLED"
        assert events[f"{moved.uid}@tend"].decoded("DTSTART") == local(
            practice, days=1, hour=15
        )
        account.refresh_from_db()
        assert account.failing_since is None
    finally:
        server.stop()
