"""Stopping the push, and saying what became of Tend's events.

Reset Access means "my calendar may have leaked; cut everything off", so besides
issuing new links it pauses the owner's calendar account (``paused_at``). Disable
Access, deactivation and the practice-wide switch stop it too, through the right
to read the calendar (``permissions.calendar_account_authorised``). Either way
the next run removes Tend's events from the account instead of writing them
(``push.reconcile``), best effort: a server that cannot be reached is retried
with backoff like any other failure, and the page says which it is.

A reset stays paused until the owner presses "Resume sending" (audited as
``calendar_resumed``); the others end when their cause does (access enabled
again, the practice's switch on). Either way the next run puts the events back.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from django.db import transaction

from calendarsync.models import CalendarAccount, FeedAccess, PushedEvent
from calendarsync.pushqueue import push_request
from practice.dates import format_moment
from practice.models import AuditEvent, User
from practice.services import audit_record


def calendar_account_pause(*, user: User, now: datetime) -> int:
    """Pause sending to ``user``'s calendar account, if any (Reset Access, inside
    its transaction: the run that the reset starts on commit removes Tend's
    events). Returns how many accounts were paused (0 or 1)."""
    return CalendarAccount.objects.filter(user=user, paused_at__isnull=True).update(
        paused_at=now
    )


@transaction.atomic
def calendar_account_resume(
    *, account: CalendarAccount, actor: User, client_ip: str | None
) -> CalendarAccount:
    """Send to a paused account again, audited: a run on commit puts Tend's
    events back (when the owner may read their calendar)."""
    fresh = CalendarAccount.objects.select_for_update().get(pk=account.pk)
    if fresh.paused_at is not None:
        paused_at = fresh.paused_at
        fresh.paused_at = None
        fresh.save(update_fields=["paused_at"])
        audit_record(
            kind=AuditEvent.Kind.CALENDAR_RESUMED,
            practice=account.practice,
            actor=actor,
            target_user=account.user,
            client_ip=client_ip,
            details={"paused_at": paused_at.isoformat()},
        )
        transaction.on_commit(partial(push_request, [fresh.pk]))
    account.paused_at = None
    return account


def _count(count: int) -> str:
    return f"{count} event{'' if count == 1 else 's'}"


def stop_cause(account: CalendarAccount, *, now: datetime, own: bool) -> str:
    """Why sending stopped, in words ("Sending stopped when you reset access at
    10:42")."""
    zone = account.practice.zone
    access: FeedAccess | None = getattr(account.user, "feed_access", None)
    if account.paused_at is not None:
        who = "you" if own else "calendar access was"
        verb = "reset access" if own else "reset"
        return (
            f"Sending stopped when {who} {verb} at "
            f"{format_moment(account.paused_at, zone, now=now)}"
        )
    if access is not None and not access.enabled:
        return (
            "Sending stopped when calendar access was disabled at "
            f"{format_moment(access.changed_at, zone, now=now)}"
        )
    if not account.practice.calendar_sync_enabled:
        return "Sending stopped: calendar sync is off for the practice"
    if own:
        return "Sending stopped: your calendar cannot be synced now"
    return "Sending stopped: the user is no longer an active clinician here"


def _running(account: CalendarAccount, now: datetime) -> bool:
    """A run holds the account now (its counts are not written yet)."""
    return account.push_lease_until is not None and account.push_lease_until > now


def stop_outcome(account: CalendarAccount, *, now: datetime, own: bool) -> str:
    """What became of Tend's events in a stopped account, in words: removed,
    being removed, or not removable yet and why."""
    left = getattr(account, "pushed_count", None)
    if left is None:
        left = PushedEvent.objects.filter(account=account).count()
    provider = (
        "CalDAV"
        if account.provider == CalendarAccount.Provider.OTHER
        else account.get_provider_display()
    )
    place = f"{'your' if own else 'their'} {provider} calendar"
    if left and account.failing_since is not None:
        if account.password_refused:
            later = (
                "Tend tries again every night, or as soon as "
                f"{'you enter' if own else 'its owner enters'} a new app password"
            )
        elif account.needs_attention:
            later = "Tend tries again every night, or when the account is reconnected"
        else:
            later = "Tend keeps trying"
        return (
            f"Tend's {_count(left)} could not be removed from {place} yet "
            f"({account.failure_message.rstrip('.')}): {later}."
        )
    if left:
        return f"Tend is removing its {_count(left)} from {place}."
    if _running(account, now):
        return f"Tend is removing its events from {place}."
    removed = account.stopped_removed
    if removed:
        were = "was" if removed == 1 else "were"
        return f"Tend's {_count(removed)} {were} removed from {place}."
    return f"{place[0].upper()}{place[1:]} holds none of Tend's events."


def calendar_account_stopped_state(
    account: CalendarAccount, *, now: datetime, own: bool = True
) -> str:
    """A stopped account's state in words: the cause and the outcome ("Sending
    stopped when you reset access at 10:42: Tend's 14 events were removed from
    your iCloud calendar.")."""
    return (
        f"{stop_cause(account, now=now, own=own)}: "
        f"{stop_outcome(account, now=now, own=own)}"
    )


def calendar_account_resuming_state(account: CalendarAccount) -> str | None:
    """The state in words while sending resumes after a stop, until the first run
    that sends is done (None otherwise)."""
    if account.stopped_at is None:
        return None
    return "Sending again · putting your appointments back"
