"""Reads for calendar sync: which calendars a user may have, what a feed contains,
and every user's sync state for administrators."""

import functools
import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Count, Max, Prefetch, Q, QuerySet

from calendarsync import ical
from calendarsync.models import FeedAccess, FeedFetch, FeedLink, FeedScope
from practice.models import Practice, User
from scheduling.models import Appointment
from scheduling.names import initials

# How far a feed reaches, in days back and ahead of today in the practice's zone.
WINDOWS = {
    FeedScope.PERSONAL: (60, 365),
    FeedScope.CLINICIAN: (60, 365),
    FeedScope.PRACTICE: (14, 90),
}
# Cancelled and deleted appointments stay this long (as cancelled), then drop out.
CANCELLED_RETENTION = timedelta(days=30)
DEFAULT_MAX_BYTES = 1_000_000
CANCELLED_STATUSES = [Appointment.Status.CANCELLED, Appointment.Status.LATE_CANCELLED]


# Initials are derived in one place (scheduling.names); remembered here because a
# feed asks for the same few hundred names thousands of times.
_initials = functools.lru_cache(maxsize=100_000)(initials)


@dataclass(frozen=True)
class SyncCalendar:
    """A calendar a user may subscribe to (before any link is issued for it)."""

    scope: str
    clinician: User | None
    title: str


def sync_calendar_list(*, user: User) -> list[SyncCalendar]:
    """The calendars ``user`` may sync now: their own (clinicians), then every active
    clinician's and the practice-wide one (schedulers and administrators)."""
    calendars = []
    if user.is_clinician:
        calendars.append(
            SyncCalendar(FeedScope.PERSONAL, user, "Your personal calendar")
        )
    if user.can_manage_all_schedules:
        clinicians = User.objects.filter(
            practice_id=user.practice_id, is_clinician=True, is_active=True
        ).order_by("display_name", "email")
        calendars.extend(
            SyncCalendar(FeedScope.CLINICIAN, clinician, clinician.label)
            for clinician in clinicians
            if clinician.pk != user.pk or not user.is_clinician
        )
        calendars.append(
            SyncCalendar(FeedScope.PRACTICE, None, "Practice-wide calendar")
        )
    return calendars


def feed_link_title(*, link: FeedLink, user: User) -> str:
    """How the Settings page and emails name the calendar of a link."""
    if link.scope == FeedScope.PERSONAL:
        return "Your personal calendar"
    if link.scope == FeedScope.PRACTICE:
        return "Practice-wide calendar"
    return link.clinician.label


def feed_calendar_name(*, link: FeedLink) -> str:
    """What a subscribed application calls the calendar."""
    if link.scope == FeedScope.PRACTICE:
        return f"{link.access.practice.name} — all clinicians"
    return f"{link.clinician.label} — Tend"


def feed_window(*, scope: str, practice: Practice, now: datetime) -> tuple[date, date]:
    """First day and the day after the last day of a feed, in the practice's zone."""
    back, ahead = WINDOWS[scope]
    today = now.astimezone(practice.zone).date()
    return today - timedelta(days=back), today + timedelta(days=ahead + 1)


EVENT_COLUMNS = (
    "id",
    "uid",
    "sequence",
    "created_at",
    "updated_at",
    "deleted_at",
    "status",
    "kind",
    "title",
    "start",
    "end",
    "clinician_id",
    "clinician__display_name",
    "clinician__credentials",
    "clinician__email",
    "location__name",
    "location__is_telehealth",
    "patients__first_name",
    "patients__last_name",
)


def feed_event_list(
    *, link: FeedLink, window_start: datetime, window_end: datetime, now: datetime
) -> tuple[list[ical.FeedEvent], datetime | None]:
    """The events of a feed, ordered by start, and the latest change among them.

    One query (one row per appointment and patient), so the feed is read from a
    single snapshot: it can never mix two states of the schedule."""
    practice_id = link.access.practice_id
    cutoff = now - CANCELLED_RETENTION
    visible = (
        Q(deleted_at__isnull=True) & ~Q(status__in=CANCELLED_STATUSES)
        | Q(
            deleted_at__isnull=True,
            status__in=CANCELLED_STATUSES,
            updated_at__gte=cutoff,
        )
        | Q(deleted_at__gte=cutoff)
    )
    appointments = Appointment.objects.filter(
        visible, practice_id=practice_id, start__lt=window_end, end__gt=window_start
    )
    if link.scope != FeedScope.PRACTICE:
        appointments = appointments.filter(clinician_id=link.clinician_id)
    rows = appointments.order_by("start", "id", "patients__id").values_list(
        *EVENT_COLUMNS
    )
    with_clinician = link.scope == FeedScope.PRACTICE
    labels: dict[int, str] = {}
    events: list[ical.FeedEvent] = []
    latest: datetime | None = None
    current_id = None
    current: tuple | None = None
    patient_initials: list[str] = []

    def finish():
        nonlocal latest
        if current is None:
            return
        (
            _id,
            uid,
            sequence,
            created_at,
            updated_at,
            deleted_at,
            status,
            kind,
            title,
            start,
            end,
            clinician_id,
            *_rest,
        ) = current
        location_name, is_telehealth = current[15], current[16]
        changed = max(updated_at, deleted_at) if deleted_at else updated_at
        latest = changed if latest is None else max(latest, changed)
        clinician_label = labels[clinician_id] if with_clinician else None
        events.append(
            ical.FeedEvent(
                uid=str(uid),
                # A deletion is a change a calendar must notice even if nothing
                # else about the appointment moved.
                sequence=sequence + (1 if deleted_at else 0),
                created_at=created_at,
                updated_at=changed,
                start=start,
                end=end,
                cancelled=bool(deleted_at) or status in CANCELLED_STATUSES,
                summary=ical.event_summary(
                    is_event=kind == Appointment.Kind.EVENT,
                    title=title,
                    initials=list(patient_initials),
                    clinician_label=clinician_label,
                ),
                location=ical.event_location(
                    name=location_name, is_telehealth=bool(is_telehealth)
                ),
            )
        )

    for row in rows:
        if row[0] != current_id:
            finish()
            current_id, current = row[0], row
            patient_initials = []
            if row[11] not in labels:
                labels[row[11]] = User(
                    display_name=row[12], credentials=row[13], email=row[14]
                ).label
        if row[17] is not None or row[18] is not None:
            patient_initials.append(_initials(row[17] or "", row[18] or ""))
    finish()
    return events, latest


@dataclass(frozen=True)
class FeedDocument:
    """A rendered feed and what conditional requests need to know about it."""

    body: bytes
    etag: str  # quoted, strong
    changed_at: datetime  # latest change the feed reflects
    event_count: int
    truncated: bool


def feed_document(*, link: FeedLink, now: datetime) -> FeedDocument:
    """Build the feed of ``link`` in memory, completely, or raise."""
    practice = link.access.practice
    first_day, after_last_day = feed_window(
        scope=link.scope, practice=practice, now=now
    )
    zone = practice.zone
    events, latest = feed_event_list(
        link=link,
        window_start=datetime.combine(first_day, time(0), tzinfo=zone),
        window_end=datetime.combine(after_last_day, time(0), tzinfo=zone),
        now=now,
    )
    rendered = ical.render_calendar(
        name=feed_calendar_name(link=link),
        zone_key=practice.time_zone,
        events=events,
        window_start=first_day,
        window_end=after_last_day,
        max_bytes=getattr(settings, "CALENDAR_FEED_MAX_BYTES", DEFAULT_MAX_BYTES),
    )
    changed = [link.access.changed_at, link.created_at]
    if latest is not None:
        changed.append(latest)
    return FeedDocument(
        body=rendered.body,
        etag=f'"{hashlib.sha256(rendered.body).hexdigest()}"',
        changed_at=max(changed),
        event_count=rendered.event_count,
        truncated=rendered.truncated,
    )


def feed_access_overview(*, practice: Practice) -> QuerySet[User]:
    """Every user of the practice with their sync access, number of current links and
    latest fetch, for the administrators' page (a fixed number of queries)."""
    return (
        User.objects.filter(practice=practice)
        .select_related("feed_access")
        .annotate(
            sync_link_count=Count("feed_access__links", distinct=True),
            sync_last_fetched=Max("feed_access__links__fetches__last_fetched_at"),
        )
        .order_by("-is_active", "display_name", "email")
    )


def feed_fetch_prefetch() -> Prefetch:
    return Prefetch("fetches", queryset=FeedFetch.objects.order_by("-last_fetched_at"))


def feed_access_for_user(*, user: User) -> FeedAccess | None:
    """The user's sync access row, if they ever had one."""
    return FeedAccess.objects.filter(user=user).first()
