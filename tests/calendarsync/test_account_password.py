"""Settings → Sync: replacing the app password of a connected calendar account,
against a real Radicale whose password is changed as a user revoking an app
password does. The account, its calendar and Tend's record of what it sent stay;
only the owner may do it; the password is never shown or logged."""

import html
import logging
import re

import pytest
from cryptography.fernet import Fernet

from calendarsync import accounts, crypto, push, pushqueue
from calendarsync.caldav_client import AUTH_REFUSED
from calendarsync.models import CalendarAccount
from practice.audit_sentences import audit_sentence
from practice.models import AuditEvent
from tests.factories import (
    connect_calendar_account_to,
    local,
    make_appointment,
)
from tests.support import browser_login

SYNC = "/settings/sync/"
PASSWORD = "/settings/sync/account/password/"
ADMIN = "/settings/sync/admin/"
NEW_PASSWORD = "new-app-password-radicale-2"
WRONG_PASSWORD = "mistyped-app-password-9"


def text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.content.decode()))


@pytest.fixture
def server_password(radicale):
    """Set the account's password on the server (as revoking an app password and
    making a new one does); the original is put back afterwards."""
    users = radicale.folder / "users"

    def change(password: str) -> None:
        users.write_text(f"{radicale.username}:{password}\n")

    yield change
    change(radicale.password)


def server_names(account, password: str) -> set[str]:
    """The resource names in Tend's calendar, listed with ``password``."""
    with push.client_for(account, password=password) as client:
        return {
            href.rstrip("/").rsplit("/", 1)[-1]
            for href in client.resources(account.calendar_url)
        }


def replaced_events():
    return AuditEvent.objects.filter(kind=AuditEvent.Kind.CALENDAR_PASSWORD_REPLACED)


def test_a_refused_password_is_replaced_from_the_page_and_the_backlog_sent(
    login,
    clinician,
    radicale,
    server_password,
    smtp_server,
    caplog,
    django_capture_on_commit_callbacks,
):
    caplog.set_level(logging.DEBUG)
    account = connect_calendar_account_to(clinician, radicale)
    practice = clinician.practice
    client = login(clinician)

    # The app password is revoked and a new one made; Tend still has the old one.
    server_password(NEW_PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        waiting = make_appointment(clinician, start=local(practice, days=1, hour=9))
    account.refresh_from_db()
    assert account.needs_attention and account.failure_message == AUTH_REFUSED
    assert len(smtp_server.messages) == 1
    old_secret = account.secret
    page = text(client.get(SYNC))
    assert re.search(r"Failing since \d\d:\d\d: " + AUTH_REFUSED + " below", page), page
    assert "Enter a new app password" in page
    assert f'value="{radicale.username}" readonly' in page

    # A mistyped one: refused on the form, nothing saved.
    response = client.post(PASSWORD, {"password": WRONG_PASSWORD})
    page = text(response)
    assert response.status_code == 400
    assert (
        f"The server refused this password for {radicale.username}. Copy the whole "
        "app-specific password again, or make a new one." in page
    )
    assert WRONG_PASSWORD not in page
    account.refresh_from_db()
    assert account.secret == old_secret
    assert account.needs_attention and account.failure_message == AUTH_REFUSED
    assert not replaced_events().exists()

    # The new one: checked, saved encrypted, and what waited is sent at once.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(PASSWORD, {"password": NEW_PASSWORD})
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.secret != old_secret and NEW_PASSWORD not in account.secret
    assert crypto.decrypt(account.secret) == NEW_PASSWORD
    assert account.username == radicale.username
    assert account.failing_since is None and account.failure_message == ""
    assert not account.needs_attention and account.attention_emailed_at is None
    assert f"{waiting.uid}.ics" in server_names(account, NEW_PASSWORD)
    assert account.pushed_events.filter(uid=str(waiting.uid)).exists()

    (event,) = replaced_events()
    assert (event.actor, event.target_user) == (clinician, clinician)
    assert event.practice == practice and event.details == {"failure_cleared": True}
    assert audit_sentence(event) == (
        f"{clinician.label} replaced the app password of their calendar account"
    )
    assert NEW_PASSWORD not in str(event.details)

    page = text(client.get(SYNC))
    assert "The server accepted the new app password" in page
    assert "Up to date · last change sent" in page
    assert "Enter a new app password" not in page
    assert "Replace the app password" in page
    for password in (NEW_PASSWORD, WRONG_PASSWORD, radicale.password):
        assert password not in page
        assert password not in caplog.text

    # A later failure is a new episode: its owner hears of it again.
    server_password("revoked-once-more")
    with django_capture_on_commit_callbacks(execute=True):
        make_appointment(clinician, start=local(practice, days=2, hour=9))
    assert len(smtp_server.messages) == 2


def test_only_the_owner_may_replace_the_password(
    login, clinician, other_clinician, admin_user, outsider_admin, radicale
):
    account = connect_calendar_account_to(clinician, radicale)
    for someone in (other_clinician, admin_user, outsider_admin):
        response = login(someone).post(PASSWORD, {"password": NEW_PASSWORD})
        assert response.status_code == 404
    assert login(clinician).get(PASSWORD).status_code == 405

    saved = CalendarAccount.objects.get(pk=account.pk)
    assert saved.secret == account.secret
    assert crypto.decrypt(saved.secret) == radicale.password
    assert not replaced_events().exists()

    # Administrators see the account and may disconnect it, never set a password.
    page = text(login(admin_user).get(ADMIN))
    assert clinician.label in page
    assert "app password" not in page.lower()
    assert 'type="password"' not in page


def test_offered_quietly_while_all_is_well_and_empty_input_is_refused(
    login, clinician, radicale, django_capture_on_commit_callbacks
):
    connect_calendar_account_to(clinician, radicale)
    client = login(clinician)
    page = text(client.get(SYNC))
    assert "<summary>Replace the app password</summary>" in page
    assert "Enter a new app password" not in page

    response = client.post(PASSWORD, {"password": ""})
    assert response.status_code == 400
    assert "Enter the new app-specific password." in text(response)
    assert "<details" in text(response) and " open>" in text(response)

    # The same password again (nothing failed): saved, audited, no failure touched.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(PASSWORD, {"password": radicale.password})
    assert response.status_code == 302
    (event,) = replaced_events()
    assert event.details == {"failure_cleared": False}


def test_an_account_full_stays_failing_after_a_new_password(
    clinician, radicale, django_capture_on_commit_callbacks
):
    """Only a password failure ends with a new password: a full account still
    needs room, and its owner is not emailed a second time for it."""
    account = connect_calendar_account_to(clinician, radicale)
    CalendarAccount.objects.filter(pk=account.pk).update(
        needs_attention=True,
        failing_since=account.connected_at,
        failure_message="the calendar account is full",
        attention_emailed_at=account.connected_at,
    )
    account.refresh_from_db()
    accounts.calendar_account_password_replace(
        account=account, password=radicale.password, actor=clinician, client_ip=None
    )
    account.refresh_from_db()
    assert account.needs_attention
    assert account.attention_emailed_at == account.connected_at


def test_an_unreadable_saved_password_is_entered_again(
    login, clinician, radicale, settings, django_capture_on_commit_callbacks
):
    account = connect_calendar_account_to(clinician, radicale)
    # The key the password was saved under is gone.
    settings.CALENDAR_ACCOUNT_KEY = Fernet.generate_key().decode()
    settings.CALENDAR_ACCOUNT_KEY_FALLBACKS = []
    push.reconcile(account)
    client = login(clinician)
    page = text(client.get(SYNC))
    assert "the saved password can no longer be read — enter it again below" in page
    assert "Enter a new app password" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(PASSWORD, {"password": radicale.password})
    assert response.status_code == 302
    account.refresh_from_db()
    assert crypto.decrypt(account.secret) == radicale.password
    assert not account.needs_attention and account.failing_since is None


def test_tries_are_limited_per_account(login, clinician, radicale, server_password):
    connect_calendar_account_to(clinician, radicale)
    server_password(NEW_PASSWORD)
    client = login(clinician)
    for _ in range(accounts.PASSWORD_TRIES_PER_HOUR):
        response = client.post(PASSWORD, {"password": WRONG_PASSWORD})
        assert "The server refused this password" in text(response)

    # Even the right password waits now: the server is not asked again.
    response = client.post(PASSWORD, {"password": NEW_PASSWORD})
    assert response.status_code == 400
    assert "Too many passwords were tried for this account" in text(response)
    assert not replaced_events().exists()


def test_a_server_that_cannot_be_asked_keeps_the_old_password(
    login, clinician, radicale, settings
):
    account = connect_calendar_account_to(clinician, radicale)
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    response = login(clinician).post(PASSWORD, {"password": NEW_PASSWORD})
    assert response.status_code == 400
    assert "Tend could not check the password, so it kept the old one" in text(response)
    assert CalendarAccount.objects.get(pk=account.pk).secret == account.secret


@pytest.mark.browser
def test_a_new_password_from_a_phone(
    phone_page, live_server, settings, clinician, radicale, server_password
):
    settings.SITE_URL = live_server.url
    account = connect_calendar_account_to(clinician, radicale)
    server_password(NEW_PASSWORD)
    push.reconcile(account)
    page = phone_page
    browser_login(page, clinician.email)
    page.wait_for_url("**/scheduling/**")
    page.goto("/settings/sync/")
    page.get_by_role("heading", name="Enter a new app password").wait_for()
    assert page.get_by_label("Username").input_value() == radicale.username
    assert not page.get_by_label("Username").is_editable()
    # Nothing sticks out sideways on a 360 px screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    field = page.get_by_label("New app-specific password")
    field.fill(WRONG_PASSWORD)
    page.get_by_role("button", name="Save the new password").click()
    page.get_by_text("The server refused this password").wait_for()
    assert page.get_by_label("New app-specific password").input_value() == ""
    assert WRONG_PASSWORD not in page.content()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    page.get_by_label("New app-specific password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save the new password").click()
    page.get_by_text("The server accepted the new app password").wait_for()
    page.get_by_text("Up to date").wait_for()
    assert NEW_PASSWORD not in page.content()
    assert page.get_by_text("Replace the app password").is_visible()


def test_a_run_that_used_the_old_password_leaves_the_new_one_alone(
    clinician, radicale, server_password, django_capture_on_commit_callbacks
):
    """A run that read the account before the password was replaced, and was
    refused with the old one, says nothing of the new one: no failure, no
    email, and another run is asked for."""
    account = connect_calendar_account_to(clinician, radicale)
    started = CalendarAccount.objects.select_related("practice", "user").get(
        pk=account.pk
    )
    server_password(NEW_PASSWORD)
    accounts.calendar_account_password_replace(
        account=account, password=NEW_PASSWORD, actor=clinician, client_ip=None
    )
    waiting = make_appointment(clinician, start=local(clinician.practice, days=1))

    with django_capture_on_commit_callbacks() as callbacks:
        refused = push.reconcile(started)

    assert refused.error is not None and refused.error.kind == "auth"
    fresh = CalendarAccount.objects.get(pk=account.pk)
    assert fresh.failing_since is None and not fresh.needs_attention
    assert fresh.failure_message == "" and fresh.push_lease_until is None
    assert [c.func for c in callbacks] == [pushqueue.push_request]
    # The next run, with the new password, sends what waited.
    assert push.reconcile(fresh).error is None
    assert f"{waiting.uid}.ics" in server_names(account, NEW_PASSWORD)
