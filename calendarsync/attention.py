"""The one email that tells a user their calendar account needs them.

A push run that the server refuses for a reason only the user can fix (a refused
password, a full account, an address Tend may not reach) marks the account "needs
attention" (``push._record``) and, on commit, queues ``tasks.attention_email``.
The worker sends it once per failing episode: ``CalendarAccount.
attention_emailed_at`` is claimed with a conditional ``UPDATE`` before sending,
so of two workers only one sends, and retries and the nightly reconcile find it
set. The next successful run clears it, so a new failure after a recovery emails
again. The email names the account and what to do, never an appointment.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from calendarsync.caldav_client import AUTH_REFUSED
from calendarsync.models import PROVIDER_PRESETS, CalendarAccount

# What happened and what to do, by ``CalDAVError.kind``.
REASONS = {
    "auth": (
        "the server refused the password",
        "Make a new app-specific password for Tend ({help}), then open Settings → "
        "Sync Calendars with Other Applications in Tend and enter it under "
        "“Enter a new app password”. Tend keeps your calendar and its events, and "
        "sends what changed meanwhile.",
    ),
    # The stored password cannot be decrypted (``crypto.CredentialError``).
    "credential": (
        "Tend can no longer read the password it saved for the account",
        "Open Settings → Sync Calendars with Other Applications in Tend and enter "
        "the account's app-specific password under “Enter a new app password” "
        "(or a new one, if you no longer have it). Tend keeps your calendar and "
        "its events.",
    ),
    "full": (
        "the calendar account is full",
        "Make room in the account (delete old events or calendars there). Tend "
        "tries again with the next change and every night.",
    ),
    "refused": (
        "Tend may not connect to the server's address",
        "Ask your practice's administrator whether Tend may reach that server, or "
        "connect the account with its public https:// address on Settings → Sync "
        "Calendars with Other Applications.",
    ),
}
OTHER_REASON = (
    "the server keeps refusing Tend's changes",
    "Open Settings → Sync Calendars with Other Applications in Tend to see why.",
)


def attention_reason(account: CalendarAccount, kind: str) -> tuple[str, str]:
    """(what happened, what to do) in plain words for a failure of ``kind``."""
    happened, todo = REASONS.get(kind, OTHER_REASON)
    help_text = PROVIDER_PRESETS[CalendarAccount.Provider(account.provider)]
    return happened, todo.format(help=help_text.password_help.rstrip("."))


def attention_email_deliver(*, account_id: int, kind: str) -> bool:
    """Email the account's owner that it needs attention, unless this failing
    episode's email was already sent (or the account recovered meanwhile).
    Returns whether it was sent. Runs in the background worker."""
    now = timezone.now()
    # Only the account's own columns in the claim: PostgreSQL re-checks those
    # against a row another worker just updated, but not a join's (Django would
    # write a filter on the user as a subquery, evaluated before the wait).
    claimed = (
        CalendarAccount.objects.filter(
            pk=account_id, needs_attention=True, attention_emailed_at__isnull=True
        ).update(attention_emailed_at=now)
        == 1
    )
    if not claimed:
        return False
    account = CalendarAccount.objects.select_related("user", "practice").get(
        pk=account_id
    )
    if not account.user.is_active:
        return False  # claimed all the same: a deactivated user hears nothing
    if kind == "auth" and account.failure_message not in ("", AUTH_REFUSED):
        kind = "credential"
    happened, todo = attention_reason(account, kind)
    provider = account.get_provider_display()
    if account.provider == CalendarAccount.Provider.OTHER:
        provider = "CalDAV"
    context = {
        "user": account.user,
        "provider": provider,
        "calendar_name": account.calendar_name,
        "happened": happened,
        "todo": todo,
        "page_url": settings.SITE_URL + reverse("calendarsync:sync") + "#account",
    }
    try:
        EmailMessage(
            subject=f"Tend can no longer write to your {provider} calendar",
            body=render_to_string("calendarsync/attention_email.txt", context),
            to=[account.user.email],
        ).send()
    except BaseException:
        # Not sent: the next failing run may try again.
        CalendarAccount.objects.filter(pk=account_id, attention_emailed_at=now).update(
            attention_emailed_at=None
        )
        raise
    return True
