"""Writes for calendar accounts (direct push): connecting one, choosing the
calendar Tend writes into, replacing its app password, and disconnecting. The
push itself is ``calendarsync.push``.

Each step that talks to the server does so before the database is written, so a
refused password or an unreachable server saves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from calendarsync import crypto
from calendarsync.caldav_client import CalDAVClient, CalDAVError, Discovery
from calendarsync.models import PROVIDER_PRESETS, CalendarAccount, PushedEvent
from calendarsync.permissions import personal_calendar_open
from calendarsync.push import client_for
from calendarsync.pushqueue import push_request
from practice.models import AuditEvent, User
from practice.services import audit_record, rate_limit_take

CALENDAR_NAME = "Tend — {practice}"
ALREADY_CONNECTED = (
    "A calendar account is already connected. Disconnect it first to connect another."
)
NOT_ALLOWED = (
    "Only clinicians with calendar sync switched on can send their calendar to a "
    "calendar account."
)
NO_ADDRESS = "Enter the address of the CalDAV server."
NOT_EMPTY = (
    "That calendar is not empty. Tend writes only into a calendar of its own: "
    "create one, or pick an empty calendar."
)
NOT_A_CALENDAR = "That calendar is not in the account any more; reload the page."
PASSWORD_REFUSED = (
    "The server refused this password for {username}. Copy the whole app-specific "
    "password again, or make a new one."
)
PASSWORD_UNCHECKED = "Tend could not check the password, so it kept the old one: {why}"
PASSWORD_TOO_OFTEN = (
    "Too many passwords were tried for this account in the last hour. Try again "
    "later: servers lock accounts that see many wrong passwords."
)
NOT_CONNECTED = "The calendar account is no longer connected; reload the page."
# Tries of a new password per account and hour, refused ones included: each is a
# sign-in attempt on the user's own account, which iCloud and others lock after
# too many failures.
PASSWORD_TRIES_PER_HOUR = 10


def _sentence(message: str) -> str:
    text = message[0].upper() + message[1:]
    return text if text.endswith(".") else text + "."


def server_error(error: CalDAVError) -> ValidationError:
    return ValidationError(_sentence(error.message), code=error.kind)


@dataclass(frozen=True)
class Connected:
    account: CalendarAccount
    discovery: Discovery


def calendar_account_connect(
    *,
    user: User,
    provider: str,
    server_url: str,
    username: str,
    password: str,
    actor: User,
    client_ip: str | None,
    client: CalDAVClient | None = None,
) -> Connected:
    """Check the credentials by discovering the account's calendars (RFC 6764),
    then save the account with its password encrypted. Nothing is saved when
    the server refuses or cannot be reached."""
    if not crypto.configured():
        raise ValidationError(crypto.NO_KEY)
    if CalendarAccount.objects.filter(user=user).exists():
        raise ValidationError(ALREADY_CONNECTED)
    if not personal_calendar_open(user):
        raise ValidationError(NOT_ALLOWED)
    preset = PROVIDER_PRESETS[CalendarAccount.Provider(provider)]
    url = server_url.strip() or preset.url
    if not url:
        raise ValidationError(NO_ADDRESS)
    own_client = client is None
    client = client or CalDAVClient(url=url, username=username, password=password)
    try:
        discovery = client.discover()
    except CalDAVError as error:
        raise server_error(error) from None
    finally:
        if own_client:
            client.close()
    with transaction.atomic():
        account = CalendarAccount(
            practice=user.practice,
            user=user,
            provider=provider,
            server_url=url,
            username=username.strip(),
            secret=crypto.encrypt(password),
            home_url=discovery.home_url,
        )
        account.full_clean()
        account.save()
        audit_record(
            kind=AuditEvent.Kind.CALENDAR_CONNECTED,
            practice=user.practice,
            actor=actor,
            target_user=user,
            client_ip=client_ip,
            details={"provider": provider},
        )
    return Connected(account, discovery)


def calendar_account_calendars(account: CalendarAccount, *, client=None):
    """The calendars of the account that take events (for the choice)."""
    own_client = client is None
    client = client or client_for(account)
    try:
        return [c for c in client.calendars(account.home_url) if c.takes_events]
    except CalDAVError as error:
        raise server_error(error) from None
    finally:
        if own_client:
            client.close()


def calendar_account_use_calendar(
    *,
    account: CalendarAccount,
    calendar_url: str | None,
    client: CalDAVClient | None = None,
) -> CalendarAccount:
    """Create Tend's own calendar ("Tend — <practice>"; ``calendar_url`` None), or
    use an empty calendar of the account's. The first push follows."""
    own_client = client is None
    client = client or client_for(account)
    try:
        if calendar_url is None:
            name = CALENDAR_NAME.format(practice=account.practice.name)
            url = client.make_calendar(account.home_url, name)
            created = True
        else:
            calendars = {c.url: c for c in client.calendars(account.home_url)}
            chosen = calendars.get(calendar_url)
            if chosen is None or not chosen.takes_events:
                raise ValidationError(NOT_A_CALENDAR)
            if client.resources(calendar_url):
                raise ValidationError(NOT_EMPTY)
            url, name, created = calendar_url, chosen.name, False
    except CalDAVError as error:
        raise server_error(error) from None
    finally:
        if own_client:
            client.close()
    with transaction.atomic():
        fresh = CalendarAccount.objects.select_for_update().get(pk=account.pk)
        fresh.calendar_url = url
        fresh.calendar_name = name
        fresh.calendar_created = created
        fresh.full_clean()
        fresh.save()
        # The first full sync, once the choice is saved.
        transaction.on_commit(partial(push_request, [fresh.pk]))
    account.refresh_from_db()
    return account


def _password_check(client: CalDAVClient, account: CalendarAccount) -> None:
    """An authenticated request on what Tend writes into (the calendar, else the
    calendar home): raises ``CalDAVError`` when the server does not accept it."""
    if account.calendar_url or account.home_url:
        client.collection_tag(account.calendar_url or account.home_url)
    else:
        client.principal()


def calendar_account_password_replace(
    *,
    account: CalendarAccount,
    password: str,
    actor: User,
    client_ip: str | None,
    client: CalDAVClient | None = None,
) -> CalendarAccount:
    """Check a new app password with the server, then save it encrypted in place
    of the old one; the account, its calendar and Tend's record of what it sent
    stay. A password failure ends there, and a run on commit sends what waited.
    Nothing is saved when the server refuses the password or cannot be asked."""
    if not crypto.configured():
        raise ValidationError(crypto.NO_KEY)
    if account.auth_kind != CalendarAccount.AuthKind.PASSWORD:
        raise ValidationError(NOT_CONNECTED)
    if not rate_limit_take(
        key=f"calendar-password:account:{account.pk}",
        limit=PASSWORD_TRIES_PER_HOUR,
        seconds=3600,
    ):
        raise ValidationError(PASSWORD_TOO_OFTEN, code="rate_limited")
    own_client = client is None
    client = client or client_for(account, password=password)
    try:
        _password_check(client, account)
    except CalDAVError as error:
        if error.kind == "auth":
            raise ValidationError(
                PASSWORD_REFUSED.format(username=account.username), code="auth"
            ) from None
        raise ValidationError(
            PASSWORD_UNCHECKED.format(why=_sentence(error.message)), code=error.kind
        ) from None
    finally:
        if own_client:
            client.close()
    with transaction.atomic():
        fresh = (
            CalendarAccount.objects.select_for_update()
            .filter(pk=account.pk, user_id=account.user_id)
            .first()
        )
        if fresh is None:
            raise ValidationError(NOT_CONNECTED)
        failure_cleared = fresh.password_refused
        fresh.secret = crypto.encrypt(password)
        if failure_cleared:
            # The server just accepted the password: the page says so at once,
            # and a later failure is a new episode, with its own email.
            fresh.failing_since = None
            fresh.failure_message = ""
            fresh.needs_attention = False
            fresh.attention_emailed_at = None
        fresh.save(
            update_fields=[
                "secret",
                "failing_since",
                "failure_message",
                "needs_attention",
                "attention_emailed_at",
            ]
        )
        audit_record(
            kind=AuditEvent.Kind.CALENDAR_PASSWORD_REPLACED,
            practice=account.practice,
            actor=actor,
            target_user=account.user,
            client_ip=client_ip,
            details={"failure_cleared": failure_cleared},
        )
        if fresh.calendar_url:
            # What changed while the password was refused, sent at once.
            transaction.on_commit(partial(push_request, [fresh.pk]))
    account.refresh_from_db()
    return account


def calendar_account_disconnect(
    *,
    account: CalendarAccount,
    actor: User,
    client_ip: str | None,
    delete_calendar: bool,
    client: CalDAVClient | None = None,
) -> str:
    """Forget the account. With ``delete_calendar``, first remove what Tend
    wrote (its own calendar, or its events in a calendar the user picked), as
    far as the server lets it: the account is forgotten either way. Returns the
    outcome in words."""
    outcome = "Tend's calendar was left in your account; it no longer changes."
    if delete_calendar and account.calendar_url:
        own_client = client is None
        try:
            client = client or client_for(account)
            if account.calendar_created:
                client.delete_calendar(account.calendar_url)
                outcome = "Tend's calendar was deleted from your account."
            else:
                for row in PushedEvent.objects.filter(account=account):
                    client.delete(row.href, etag=None)
                outcome = "Tend's events were deleted from your calendar."
        except (CalDAVError, crypto.CredentialError) as error:
            message = error.message if isinstance(error, CalDAVError) else str(error)
            outcome = (
                f"Tend could not delete its calendar ({message}); delete it in "
                "your calendar application."
            )
        finally:
            if own_client and client is not None:
                client.close()
    with transaction.atomic():
        user = account.user
        deleted, _ = CalendarAccount.objects.filter(pk=account.pk).delete()
        if deleted:
            audit_record(
                kind=AuditEvent.Kind.CALENDAR_DISCONNECTED,
                practice=user.practice,
                actor=actor,
                target_user=user,
                client_ip=client_ip,
                details={"outcome": outcome, "at": timezone.now().isoformat()},
            )
    return outcome
