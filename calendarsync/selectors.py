"""Reads for calendar sync: which calendars a user may have, the one query a feed
poll makes, and every user's sync state for administrators. Nothing here writes."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Q, QuerySet
from django.utils.timesince import timesince

from calendarsync.models import (
    BusySource,
    CalendarAccount,
    FeedAccess,
    FeedLink,
    FeedScope,
)
from calendarsync.permissions import busy_source_authorised, calendar_account_sending
from calendarsync.pushstop import (
    calendar_account_resuming_state,
    calendar_account_stopped_state,
)
from practice.dates import format_datetime, format_moment
from practice.models import Practice, User
from practice.selectors import clinician_list, user_list
from scheduling import publication

PERSONAL_TITLE = "Your personal calendar"
BUSY_TITLE = "Your busy-only calendar"


@dataclass(frozen=True)
class SyncCalendar:
    """A calendar a user may subscribe to (before any link is issued for it)."""

    scope: str
    clinician: User | None
    title: str


def sync_calendar_list(*, user: User, busy: bool = False) -> list[SyncCalendar]:
    """The calendars ``user`` may sync now: their own (clinicians; with ``busy``,
    their busy-only one too), then every active clinician's and the practice-wide
    one (schedulers and administrators)."""
    calendars = []
    if user.is_clinician:
        calendars.append(SyncCalendar(FeedScope.PERSONAL, user, PERSONAL_TITLE))
        if busy:
            calendars.append(SyncCalendar(FeedScope.BUSY, user, BUSY_TITLE))
    if user.can_manage_all_schedules:
        clinicians = clinician_list(practice=user.practice)
        calendars.extend(
            SyncCalendar(FeedScope.CLINICIAN, clinician, clinician.label)
            for clinician in clinicians
            if clinician.pk != user.pk or not user.is_clinician
        )
        calendars.append(
            SyncCalendar(FeedScope.PRACTICE, None, FeedScope.PRACTICE.label)
        )
    return calendars


def feed_link_title(*, link: FeedLink) -> str:
    """How the Settings page and emails name the calendar of a link."""
    if link.scope == FeedScope.PERSONAL:
        return PERSONAL_TITLE
    if link.scope == FeedScope.BUSY:
        return BUSY_TITLE
    if link.scope == FeedScope.PRACTICE:
        return FeedScope.PRACTICE.label
    return link.clinician.label


def feed_calendar_name(*, link: FeedLink) -> str:
    """What a subscribed application calls the calendar."""
    return publication.calendar_name(
        scope=link.scope,
        practice_name=link.access.practice.name,
        clinician=None if link.clinician is None else link.clinician.label,
    )


def feed_link_for_poll(*, public_id: str, now: datetime) -> FeedLink | None:
    """The link with ``public_id`` (None if there is none) with what authorising a
    poll needs (its access, owner, practice and clinician), and the version of its
    calendar's schedule (``schedule_version``, ``version_changed``): the contract's
    ``calendar_version`` aggregates over its ``calendar_version_rows``. Two
    queries; not authorised yet (see ``permissions.access_feed_link``)."""
    link = (
        FeedLink.objects.select_related("access__user", "access__practice", "clinician")
        .filter(public_id=public_id)
        .first()
    )
    if link is None:
        return None
    version = publication.calendar_version_rows(
        scope=link.scope,
        practice_id=link.access.practice_id,
        clinician_id=link.clinician_id,
        now=now,
    ).aggregate(**publication.calendar_version(now=now))
    link.schedule_version = "/".join(
        "" if version[name] is None else str(version[name])
        for name in publication.VERSION_FIELDS
    )
    link.version_changed = version["changed"]
    link.version_count = version["count"]
    return link


def feed_access_overview(*, practice: Practice) -> QuerySet[User]:
    """Every user of the practice with their sync access, number of current links and
    latest fetch, for the administrators' page (a fixed number of queries)."""
    return (
        user_list(practice=practice)
        .select_related("feed_access")
        .annotate(
            sync_link_count=Count("feed_access__links", distinct=True),
            sync_last_fetched=Max("feed_access__links__fetches__last_fetched_at"),
        )
    )


# -- calendar accounts (direct push) ---------------------------------------------


def calendar_account_pending(account: CalendarAccount, *, now: datetime) -> int:
    """How many appointments of the account owner's calendar changed since the
    last complete run (what is still to be sent)."""
    since = account.last_reconciled_at
    rows = publication.calendar_version_rows(
        scope=publication.Scope.PERSONAL,
        practice_id=account.practice_id,
        clinician_id=account.user_id,
        now=now,
    )
    if since is None:
        return rows.count()
    return rows.filter(Q(updated_at__gt=since) | Q(deleted_at__gt=since)).count()


def calendar_account_state(
    account: CalendarAccount, *, now: datetime, own: bool = True
) -> str:
    """The connection's state in words, as the Settings page shows it (``own``
    False: as administrators see someone else's)."""
    if account.calendar_url and not calendar_account_sending(account):
        return calendar_account_stopped_state(account, now=now, own=own)
    resuming = calendar_account_resuming_state(account)
    if resuming is not None and account.failing_since is None:
        return resuming
    if account.failing_since is not None:
        when = format_moment(account.failing_since, account.practice.zone, now=now)
        message = account.failure_message
        if account.password_refused:
            if own:  # the owner's page has the form for it right below
                message += " below"
            else:  # only the owner can, never an administrator
                message = (
                    message.split(" — ")[0]
                    + " — only its owner can enter a new password"
                )
        return f"Failing since {when}: {message}"
    if not account.calendar_url:
        return "Connected · choose the calendar Tend writes into"
    pending = calendar_account_pending(account, now=now)
    if pending:
        return f"Sending {pending} change{'' if pending == 1 else 's'}"
    if account.last_sent_at is None:
        return "Up to date · nothing to send yet"
    return f"Up to date · last change sent {_elapsed(account.last_sent_at, now)}"


def _elapsed(moment: datetime, now: datetime) -> str:
    """ "12 seconds ago", "3 minutes ago", "2 days ago": the largest unit only."""
    seconds = int((now - moment).total_seconds())
    if seconds < 1:
        return "just now"
    if seconds < 60:
        return f"{seconds} second{'' if seconds == 1 else 's'} ago"
    return timesince(moment, now, depth=1).replace("\xa0", " ") + " ago"


def calendar_accounts_overview(*, practice: Practice) -> list[CalendarAccount]:
    """Every connected calendar account of the practice, for administrators
    (never a credential)."""
    return list(
        CalendarAccount.objects.filter(practice=practice)
        .select_related("user__feed_access", "practice")
        .annotate(pushed_count=Count("pushed_events"))
        .defer("secret")
        .order_by("user__display_name", "user__email")
    )


def feed_access_disabled_user_ids(*, practice: Practice) -> set[int]:
    """Ids of the practice's users whose calendar access is disabled."""
    return set(
        FeedAccess.objects.filter(user__practice=practice, enabled=False).values_list(
            "user_id", flat=True
        )
    )


def busy_sources_of(*, user: User) -> list[BusySource]:
    """The user's own personal calendars read as busy time, oldest first."""
    return list(
        BusySource.objects.filter(owner=user, practice=user.practice)
        .select_related("calendar", "practice", "owner")
        .order_by("created_at", "id")
    )


def busy_source_state(source: BusySource, *, now: datetime) -> str:
    """A personal calendar's state in words, as the sync page shows it: "Read 3
    minutes ago · 42 busy times", "Failing since 09:10: 404 — …", "Stale: …"."""
    if not busy_source_authorised(source):
        return "Stopped · Tend reads the personal calendars of clinicians only"
    zone = source.practice.zone
    calendar = source.calendar
    count = source.busy_count
    busy_times = f"{count} busy time{'' if count == 1 else 's'}"
    if calendar.read_at is None:
        kept = ""
    elif calendar.is_stale(now):
        kept = f"Stale: not read since {format_datetime(calendar.read_at, zone)}"
    else:
        kept = f"Read {_elapsed(calendar.read_at, now)} · {busy_times}"
    if source.failing_since is not None:
        when = format_moment(source.failing_since, zone, now=now)
        failing = f"Failing since {when}: {source.failure_message}"
        if calendar.read_at is not None and not calendar.is_stale(now):
            return f"{failing} · keeping the {busy_times} last read"
        return f"{failing} · {kept}" if kept else failing
    return kept or "Waiting for the first read"
