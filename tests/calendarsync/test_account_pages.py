"""Settings → Sync: "Send to your calendar account", against a real Radicale."""

import re
from datetime import timedelta

from django.utils import timezone

from calendarsync import push
from calendarsync.caldav_client import AUTH_REFUSED
from calendarsync.models import CalendarAccount
from calendarsync.selectors import calendar_account_state
from practice.models import AuditEvent, Role
from tests.factories import (
    connect_calendar_account_to,
    make_appointment,
    make_user,
)

SYNC = "/settings/sync/"
CONNECT = "/settings/sync/account/"
CALENDAR = "/settings/sync/account/calendar/"
ADMIN = "/settings/sync/admin/"


def disconnect_url(user) -> str:
    return f"/settings/sync/account/{user.pk}/disconnect/"


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_the_section_names_what_works_and_where_to_make_a_password(login, clinician):
    html = text(login(clinician).get(SYNC))
    assert "Send to your calendar account" in html
    assert "App-Specific Passwords" in html  # iCloud
    assert "Manage app passwords" in html  # Fastmail
    assert "Create new app password" in html  # Nextcloud
    assert "Google Calendar and Outlook.com cannot be connected yet" in html


def test_connecting_choosing_a_calendar_and_the_first_sync_from_the_page(
    login, clinician, radicale, django_capture_on_commit_callbacks
):
    make_appointment(clinician)
    client = login(clinician)
    response = client.post(
        CONNECT,
        {
            "provider": "other",
            "server_url": radicale.url,
            "username": radicale.username,
            "password": radicale.password,
        },
    )
    assert response.status_code == 302
    account = CalendarAccount.objects.get(user=clinician)
    page = text(client.get(SYNC))
    assert "Choose the calendar Tend writes into" in page
    assert radicale.password not in page
    assert account.secret not in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(CALENDAR, {"calendar": "new"})

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.calendar_name == "Tend — Riverside Counseling"
    assert account.pushed_events.count() == 1  # the first sync ran
    page = text(client.get(SYNC))
    assert "Up to date · last change sent" in page


def test_a_refused_password_is_said_plainly_and_nothing_is_saved(
    login, clinician, radicale
):
    response = login(clinician).post(
        CONNECT,
        {
            "provider": "other",
            "server_url": radicale.url,
            "username": radicale.username,
            "password": "an-old-app-password",
        },
    )
    html = text(response)
    assert response.status_code == 400
    assert "The server refused the password — enter a new app password." in html
    assert "an-old-app-password" not in html
    assert not CalendarAccount.objects.exists()


def test_a_private_address_is_refused_with_a_clear_message(login, clinician, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    response = login(clinician).post(
        CONNECT,
        {
            "provider": "other",
            "server_url": "http://127.0.0.1:5232/",
            "username": "someone",
            "password": "secret-secret",
        },
    )
    assert response.status_code == 400
    assert "which Tend does not connect to" in text(response)
    assert not CalendarAccount.objects.exists()


def test_a_failing_account_says_since_when_and_why(login, clinician, radicale):
    account = connect_calendar_account_to(clinician, radicale)
    users = radicale.folder / "users"
    users.write_text(f"{radicale.username}:changed-elsewhere\n")
    try:
        push.reconcile(account)
    finally:
        users.write_text(f"{radicale.username}:{radicale.password}\n")

    html = text(login(clinician).get(SYNC))
    assert re.search(r"Failing since \d\d:\d\d: " + AUTH_REFUSED, html)


def test_administrators_see_and_disconnect_accounts_but_never_a_password(
    login, admin_user, clinician, radicale
):
    account = connect_calendar_account_to(clinician, radicale)
    client = login(admin_user)
    html = text(client.get(ADMIN))
    assert "Connected calendar accounts" in html
    assert clinician.label in html
    assert radicale.password not in html and account.secret not in html

    response = client.post(disconnect_url(clinician), {"delete_calendar": "on"})

    assert response.status_code == 302
    assert not CalendarAccount.objects.exists()
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.CALENDAR_DISCONNECTED)
    assert (event.actor, event.target_user) == (admin_user, clinician)
    assert "deleted" in event.details["outcome"]


def test_others_cannot_disconnect_an_account(
    login, practice, clinician, other_clinician, outsider_admin, radicale
):
    connect_calendar_account_to(clinician, radicale)
    scheduler = make_user(practice, roles=[Role.SCHEDULER])
    for someone in (other_clinician, scheduler, outsider_admin):
        response = login(someone).post(disconnect_url(clinician))
        assert response.status_code in (403, 404)
    assert CalendarAccount.objects.filter(user=clinician).exists()


def test_only_clinicians_may_connect(login, practice, radicale):
    scheduler = make_user(practice, roles=[Role.SCHEDULER])
    response = login(scheduler).post(
        CONNECT,
        {
            "provider": "other",
            "server_url": radicale.url,
            "username": radicale.username,
            "password": radicale.password,
        },
    )
    assert response.status_code == 400
    assert not CalendarAccount.objects.exists()


def test_the_state_in_words(clinician, radicale):
    account = connect_calendar_account_to(clinician, radicale)
    make_appointment(clinician)
    assert calendar_account_state(account, now=timezone.now()) == "Sending 1 change"
    sent = push.reconcile(account)
    assert sent.created == 1
    account.refresh_from_db()
    later = account.last_sent_at + timedelta(seconds=12)
    assert (
        calendar_account_state(account, now=later)
        == "Up to date · last change sent 12 seconds ago"
    )
    later = account.last_sent_at + timedelta(minutes=3, seconds=5)
    assert (
        calendar_account_state(account, now=later)
        == "Up to date · last change sent 3 minutes ago"
    )
