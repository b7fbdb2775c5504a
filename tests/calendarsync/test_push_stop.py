"""Stopping the push (``calendarsync.pushstop``) against real CalDAV servers:
Reset Access pauses the account and removes Tend's events until the owner
resumes; Disable Access, deactivation and the practice-wide switch remove them
too; the sync page and the administrators' page say what became of them."""

import html
import re

import pytest
from django.utils import timezone

from calendarsync import push, pushstop
from calendarsync.models import CalendarAccount, FeedAccess
from calendarsync.selectors import calendar_account_state
from calendarsync.services import (
    feed_access_disable,
    feed_access_enable,
    feed_access_reset,
    practice_sync_set,
)
from practice.audit_sentences import audit_sentence
from practice.dates import format_time
from practice.models import AuditEvent
from practice.services import user_set_active
from tests.factories import (
    connect_calendar_account_to,
    local,
    make_appointment,
)
from tests.servers import RadicaleServer
from tests.support import caldav_uids

SYNC = "/settings/sync/"
ACCESS = "/settings/sync/access/"
RESUME = "/settings/sync/account/resume/"
ADMIN = "/settings/sync/admin/"


def text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.content.decode()))


def server_uids(server, account) -> set[str]:
    return caldav_uids(server, account.calendar_url)


def two_appointments(clinician, capture) -> set[str]:
    practice = clinician.practice
    with capture(execute=True):
        first = make_appointment(clinician, start=local(practice, days=1, hour=9))
        second = make_appointment(clinician, start=local(practice, days=2, hour=9))
    return {f"{first.uid}@tend", f"{second.uid}@tend"}


def at(account: CalendarAccount, moment) -> str:
    return format_time(moment, account.practice.zone)


def test_reset_access_removes_tends_events_until_the_owner_resumes(
    login, clinician, caldav_server, django_capture_on_commit_callbacks
):
    account = connect_calendar_account_to(clinician, caldav_server)
    uids = two_appointments(clinician, django_capture_on_commit_callbacks)
    assert server_uids(caldav_server, account) == uids
    client = login(clinician)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(ACCESS, {"action": "reset"})

    assert server_uids(caldav_server, account) == set()
    account.refresh_from_db()
    assert account.paused_at is not None
    page = text(client.get(SYNC))
    assert (
        f"Sending stopped when you reset access at {at(account, account.paused_at)}: "
        "Tend's 2 events were removed from your CalDAV calendar." in page
    )
    assert "Resume sending" in page

    # A change while paused sends nothing.
    with django_capture_on_commit_callbacks(execute=True):
        make_appointment(clinician, start=local(clinician.practice, days=3))
    assert server_uids(caldav_server, account) == set()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(RESUME)
    assert response.status_code == 302

    assert len(server_uids(caldav_server, account)) == 3
    assert uids < server_uids(caldav_server, account)
    account.refresh_from_db()
    assert account.paused_at is None and account.stopped_at is None
    assert account.stopped_removed == 0
    page = text(client.get(SYNC))
    assert "Up to date · last change sent" in page
    assert "Resume sending" not in page

    # Audited with who resumed; pressing it again (another tab) is no new event.
    (resumed,) = AuditEvent.objects.filter(kind=AuditEvent.Kind.CALENDAR_RESUMED)
    assert (resumed.actor, resumed.target_user) == (clinician, clinician)
    assert resumed.practice == clinician.practice
    assert audit_sentence(resumed) == (
        f"{clinician.label} resumed sending to their calendar account"
    )
    client.post(RESUME)
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.CALENDAR_RESUMED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_reset_while_the_server_is_down_says_so_and_removes_them_when_back(
    clinician, tmp_path
):
    server = RadicaleServer(tmp_path)
    server.start()
    try:
        account = connect_calendar_account_to(clinician, server)
        make_appointment(clinician)
        make_appointment(clinician, start=local(clinician.practice, days=2))
        assert len(server_uids(server, account)) == 2
        server.stop()

        feed_access_reset(user=clinician, actor=clinician, client_ip=None)

        account = CalendarAccount.objects.select_related(
            "user__feed_access", "practice"
        ).get(pk=account.pk)
        assert account.failing_since is not None
        state = calendar_account_state(account, now=timezone.now())
        assert state.startswith(
            f"Sending stopped when you reset access at "
            f"{at(account, account.paused_at)}: Tend's 2 events could not be "
            "removed from your CalDAV calendar yet ("
        )
        assert state.endswith("): Tend keeps trying.")

        server.start()
        push.push_account.call(account.pk)

        assert server_uids(server, account) == set()
        account.refresh_from_db()
        assert calendar_account_state(account, now=timezone.now()) == (
            f"Sending stopped when you reset access at "
            f"{at(account, account.paused_at)}: Tend's 2 events were removed from "
            "your CalDAV calendar."
        )
    finally:
        server.stop()


def disable(clinician, admin_user):
    feed_access_disable(user=clinician, actor=admin_user, client_ip=None)
    return f"Sending stopped when calendar access was disabled at {at_now(clinician)}"


def deactivate(clinician, admin_user):
    user_set_active(user=clinician, active=False, actor=admin_user, client_ip=None)
    return "Sending stopped: the user is no longer an active clinician here"


def switch_off_practice(clinician, admin_user):
    practice_sync_set(
        practice=clinician.practice, enabled=False, actor=admin_user, client_ip=None
    )
    return "Sending stopped: calendar sync is off for the practice"


def at_now(clinician) -> str:
    access = FeedAccess.objects.get(user=clinician)
    return format_time(access.changed_at, clinician.practice.zone)


@pytest.mark.parametrize("revoke", [disable, deactivate, switch_off_practice])
def test_administrators_see_what_became_of_the_events_when_sending_stopped(
    login, clinician, admin_user, radicale, revoke, django_capture_on_commit_callbacks
):
    account = connect_calendar_account_to(clinician, radicale)
    two_appointments(clinician, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        cause = revoke(clinician, admin_user)

    assert server_uids(radicale, account) == set()
    page = text(login(admin_user).get(ADMIN))
    assert f"{cause}: Tend's 2 events were removed from their CalDAV calendar." in page
    assert "Resume sending" not in page


def test_disabled_access_shows_on_the_owners_page_and_enabling_sends_again(
    login, clinician, radicale, django_capture_on_commit_callbacks
):
    account = connect_calendar_account_to(clinician, radicale)
    uids = two_appointments(clinician, django_capture_on_commit_callbacks)
    client = login(clinician)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(ACCESS, {"action": "disable"})

    page = text(client.get(SYNC))
    assert (
        f"Sending stopped when calendar access was disabled at {at_now(clinician)}: "
        "Tend's 2 events were removed from your CalDAV calendar." in page
    )
    # Not paused: turning access back on is what sends again.
    assert "Resume sending" not in page

    with django_capture_on_commit_callbacks(execute=True):
        feed_access_enable(user=clinician, actor=clinician, client_ip=None)
    assert server_uids(radicale, account) == uids


def test_resume_is_the_owners_own_and_needs_an_account(
    login, clinician, other_clinician, radicale, django_capture_on_commit_callbacks
):
    assert login(clinician).post(RESUME).status_code == 404
    account = connect_calendar_account_to(other_clinician, radicale)
    feed_access_reset(user=other_clinician, actor=other_clinician, client_ip=None)

    # Another clinician's resume touches only their own (absent) account.
    assert login(clinician).post(RESUME).status_code == 404
    account.refresh_from_db()
    assert account.paused_at is not None
    assert login(clinician).get(RESUME).status_code == 405


def test_the_words_while_a_run_removes_or_puts_back(
    clinician, radicale, settings, django_capture_on_commit_callbacks
):
    """Between a stop and the end of the run that removes the events, and
    between Resume and the end of the run that puts them back, the page says
    what is going on rather than "none" or "up to date"."""
    account = connect_calendar_account_to(clinician, radicale)
    two_appointments(clinician, django_capture_on_commit_callbacks)
    settings.TASKS = {
        "default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}
    }
    feed_access_reset(user=clinician, actor=clinician, client_ip=None)
    account = CalendarAccount.objects.select_related("user", "practice").get(
        pk=account.pk
    )
    state = calendar_account_state(account, now=timezone.now())
    assert state.endswith(": Tend is removing its 2 events from your CalDAV calendar.")

    # The run has deleted every row but not written its counts yet.
    assert push.lease_claim(account)
    account.pushed_events.all().delete()
    account.refresh_from_db()
    state = calendar_account_state(account, now=timezone.now())
    assert state.endswith(": Tend is removing its events from your CalDAV calendar.")

    CalendarAccount.objects.filter(pk=account.pk).update(
        push_lease_until=None, stopped_at=timezone.now(), stopped_removed=2
    )
    with django_capture_on_commit_callbacks(execute=True):
        pushstop.calendar_account_resume(
            account=account, actor=clinician, client_ip=None
        )
    account.refresh_from_db()
    assert calendar_account_state(account, now=timezone.now()) == (
        "Sending again · putting your appointments back"
    )
