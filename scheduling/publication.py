"""The publication contract: what a calendar outside Tend may show of the schedule.

This module is the only place that says

- which appointments a calendar shows, by scope (``Scope``: one clinician's own,
  one clinician's seen by a scheduler, the whole practice's, a clinician's
  busy-only calendar) and over which days (``WINDOWS``);
- how long a cancelled or deleted appointment stays, counted from the moment it
  was cancelled or deleted (``CANCELLED_RETENTION``; ``shown``);
- what each published field looks like (``PublishedAppointment``: initials, the
  summary, the cleaned location, and the characters removed or replaced in any
  published text, ``published_text``);
- which changes of an appointment must reach subscribers (``PUBLISHED_FIELDS``).

Calendar feeds, the version a poll compares, republishing after a rename and
pushing to calendar accounts all read it; nothing else restates any of it.
"""

import functools
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import models
from django.db.models import Count, Max, Q, QuerySet

from practice.models import User
from practice.text import single_line
from scheduling.models import Appointment
from scheduling.names import initials


class Scope(models.TextChoices):
    """Whose appointments a calendar shows."""

    PERSONAL = "personal", "Personal calendar"
    CLINICIAN = "clinician", "One clinician's calendar"
    PRACTICE = "practice", "Practice-wide calendar"
    # A clinician's own appointments as opaque "Busy" blocks, to share with family.
    BUSY = "busy", "Busy-only calendar"


@dataclass(frozen=True)
class Window:
    """Whole days shown before today and after today, in the practice's zone."""

    back_days: int
    ahead_days: int


WINDOWS = {
    Scope.PERSONAL: Window(back_days=60, ahead_days=365),
    Scope.CLINICIAN: Window(back_days=60, ahead_days=365),
    Scope.PRACTICE: Window(back_days=14, ahead_days=90),
    Scope.BUSY: Window(back_days=60, ahead_days=365),
}
# The farthest back any calendar shows: a rename republishes from here on.
LONGEST_LOOKBACK = timedelta(days=max(w.back_days for w in WINDOWS.values()))
# Cancelled and deleted appointments are shown, as cancelled, for this long after
# they were cancelled or deleted, so a phone that skipped polls still learns of it.
CANCELLED_RETENTION = timedelta(days=30)

# Appointment fields whose change a calendar shows: changing one of them raises
# SEQUENCE and LAST-MODIFIED (``scheduling.services.appointment_touch``). Notes and
# the service are never published, so changing them republishes nothing.
PUBLISHED_FIELDS = (
    "start",
    "end",
    "clinician",
    "patients",
    "location",
    "status",
    "title",
)

CANCELLED_PREFIX = "Cancelled: "
# All a busy-only calendar says of any appointment or event.
BUSY_SUMMARY = "Busy"
TELEHEALTH = "Telehealth"
UNTITLED_EVENT = "Event"
UNNAMED_APPOINTMENT = "Appointment"
# A location is published as named, except anything that looks like an address a
# meeting could be joined at.
URL_PATTERN = re.compile(r"\S*(?:://|www\.)\S*", re.IGNORECASE)
# Characters that some calendar parsers misread however they are escaped, and the
# look-alike published instead (a ``str.translate`` table). node-ical reads the
# escaped backslash before an "n" (``C:\\new``) as a line break: a backslash is
# published as U+29F5 REVERSE SOLIDUS OPERATOR, which every parser reads back
# unchanged and which (unlike U+FF3C FULLWIDTH REVERSE SOLIDUS) no Unicode
# normalisation turns back into a backslash.
REPLACED = str.maketrans({"\\": "\u29f5"})


# -- which appointments ------------------------------------------------------------


def calendar_days(*, scope: str, zone: ZoneInfo, now: datetime) -> tuple[date, date]:
    """The first day a calendar shows and the day after its last, in ``zone``."""
    window = WINDOWS[Scope(scope)]
    today = now.astimezone(zone).date()
    return (
        today - timedelta(days=window.back_days),
        today + timedelta(days=window.ahead_days + 1),
    )


def calendar_bounds(
    *, scope: str, zone: ZoneInfo, now: datetime
) -> tuple[datetime, datetime]:
    """The instants a calendar's days begin and end."""
    first_day, after_last_day = calendar_days(scope=scope, zone=zone, now=now)
    return (
        datetime.combine(first_day, time(0), tzinfo=zone),
        datetime.combine(after_last_day, time(0), tzinfo=zone),
    )


def version_bounds(*, scope: str, now: datetime) -> tuple[datetime, datetime]:
    """``calendar_bounds`` widened to whole UTC days, two more each side than any
    zone's, so it needs no practice zone. Wider only costs a needless rebuild."""
    window = WINDOWS[Scope(scope)]
    today = now.astimezone(UTC).date()
    return (
        datetime.combine(today - timedelta(days=window.back_days + 2), time(0), UTC),
        datetime.combine(today + timedelta(days=window.ahead_days + 3), time(0), UTC),
    )


def shown(now: datetime) -> Q:
    """Appointments a calendar shows at ``now``: every current one, and a cancelled
    or deleted one for ``CANCELLED_RETENTION`` after it was cancelled or deleted
    (later edits or renames do not extend that)."""
    cutoff = now - CANCELLED_RETENTION
    return (
        Q(deleted_at__isnull=True, cancelled_at__isnull=True)
        | Q(deleted_at__isnull=True, cancelled_at__gte=cutoff)
        | Q(deleted_at__gte=cutoff)
    )


def busy_shown() -> Q:
    """Appointments a busy-only calendar shows: only current ones. A cancelled or
    deleted one leaves it at once rather than staying as cancelled: a block that
    says "Busy" is wrong in every client that ignores STATUS, and one that said
    "Cancelled" would tell whoever reads it about a patient. Subscribed clients
    replace their copy with each fetch, so a missing block disappears."""
    return Q(deleted_at__isnull=True, cancelled_at__isnull=True)


def _scoped(*, scope: str, practice_id, clinician_id) -> QuerySet[Appointment]:
    appointments = Appointment.objects.filter(practice_id=practice_id)
    if Scope(scope) != Scope.PRACTICE:
        appointments = appointments.filter(clinician_id=clinician_id)
    return appointments


def calendar_appointments(
    *,
    scope: str,
    practice_id: int,
    clinician_id: int | None,
    start: datetime,
    end: datetime,
    now: datetime,
) -> QuerySet[Appointment]:
    """The appointments a calendar of ``scope`` shows between ``start`` and ``end``."""
    which = busy_shown() if Scope(scope) == Scope.BUSY else shown(now)
    return _scoped(
        scope=scope, practice_id=practice_id, clinician_id=clinician_id
    ).filter(which, start__lt=end, end__gt=start)


VERSION_FIELDS = ("count", "shown", "changed", "deleted")


def calendar_version(*, now: datetime) -> dict:
    """Aggregates over ``calendar_version_rows`` that change whenever what the
    calendar shows may have changed: every publish moves the latest change
    forward, and an appointment leaving the retention changes the shown count
    without any write."""
    return {
        "count": Count("pk"),
        "shown": Count("pk", filter=shown(now)),
        "changed": Max("updated_at"),
        "deleted": Max("deleted_at"),
    }


def calendar_version_rows(
    *, scope: str, practice_id, clinician_id, now: datetime
) -> QuerySet[Appointment]:
    """The rows ``calendar_version`` aggregates: the calendar's appointments, shown
    or not, within ``version_bounds``."""
    start, end = version_bounds(scope=scope, now=now)
    return _scoped(
        scope=scope, practice_id=practice_id, clinician_id=clinician_id
    ).filter(start__lt=end, end__gt=start)


# -- what each field looks like ------------------------------------------------------


def published_text(value: str | None) -> str:
    """Text as any calendar may show it: on one line and without invisible
    controls (``practice.text.single_line``), with the ``REPLACED`` characters
    replaced, and a value wholly in double quotes given typographic ones (node-ical
    drops a pair of double quotes around a whole value)."""
    text = single_line(value).translate(REPLACED)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = f"\u201c{text[1:-1]}\u201d"
    return text


# Initials are derived in one place (scheduling.names); remembered here because a
# feed asks for the same few hundred names thousands of times.
patient_initials = functools.lru_cache(maxsize=100_000)(initials)


@functools.lru_cache(maxsize=100_000)
def event_summary(
    *,
    is_event: bool,
    title: str,
    initials: tuple[str, ...],
    clinician_label: str | None,
    cancelled: bool,
) -> str:
    """Initials of every patient (or an event's title), after the clinician's name
    in the practice-wide calendar; marked when cancelled."""
    if is_event:
        text = published_text(title) or UNTITLED_EVENT
    else:
        text = " & ".join(initials) if initials else UNNAMED_APPOINTMENT
    if clinician_label:
        text = f"{clinician_label}: {text}"
    if cancelled:
        text = CANCELLED_PREFIX + text
    return published_text(text)


@functools.lru_cache(maxsize=10_000)
def event_location(*, name: str | None, is_telehealth: bool) -> str:
    """A location's name, without anything a meeting could be joined at; telehealth
    locations only say so."""
    if is_telehealth:
        return TELEHEALTH
    return published_text(URL_PATTERN.sub(" ", published_text(name)))


# Remembered: a practice-wide feed names the same few clinicians thousands of times.
@functools.lru_cache(maxsize=10_000)
def clinician_label(*, display_name: str, credentials: str, email: str) -> str:
    """How calendars name a clinician: as Tend's own pages do."""
    return User(display_name=display_name, credentials=credentials, email=email).label


def calendar_name(*, scope: str, practice_name: str, clinician: str | None) -> str:
    """What a calendar application calls the calendar (``clinician``: the label)."""
    if Scope(scope) == Scope.PRACTICE:
        return published_text(f"{practice_name} — all clinicians")
    if Scope(scope) == Scope.BUSY:
        # Shared with family: the clinician's own name says whose time it is; the
        # practice's name is left out, as is Tend's.
        return published_text(f"{BUSY_SUMMARY} — {clinician}")
    return published_text(f"{clinician} — Tend")


@dataclass(frozen=True, slots=True)
class PublishedAppointment:
    """Everything a calendar may say about one appointment, and nothing more."""

    uid: str
    sequence: int
    created_at: datetime
    changed_at: datetime  # DTSTAMP and LAST-MODIFIED
    start: datetime
    end: datetime
    cancelled: bool
    summary: str
    location: str
    # A block of a busy-only calendar: ``uid`` is then the busy-only UID's stem
    # (made by calendarsync under its key, never the appointment's uid).
    busy: bool = False


PUBLISHED_COLUMNS = (
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
    "clinician__display_name",
    "clinician__credentials",
    "clinician__email",
    "location__name",
    "location__is_telehealth",
    "patients__first_name",
    "patients__last_name",
)
# Positions in a row of PUBLISHED_COLUMNS (plain tuples: a feed reads thousands).
(
    ID,
    UID,
    SEQUENCE,
    CREATED_AT,
    UPDATED_AT,
    DELETED_AT,
    STATUS,
    KIND,
    TITLE,
    START,
    END,
    CLINICIAN_NAME,
    CLINICIAN_CREDENTIALS,
    CLINICIAN_EMAIL,
    LOCATION_NAME,
    LOCATION_IS_TELEHEALTH,
    PATIENT_FIRST_NAME,
    PATIENT_LAST_NAME,
) = range(len(PUBLISHED_COLUMNS))


def _published(rows: list, *, with_clinician: bool, published_at: datetime):
    first = rows[0]
    deleted_at = first[DELETED_AT]
    cancelled = bool(deleted_at) or first[STATUS] in Appointment.CANCELLED_STATUSES
    changed = max(first[UPDATED_AT], deleted_at) if deleted_at else first[UPDATED_AT]
    # Never later than the moment of publication (several changes within one
    # second are each dated a second later, so the last can be ahead of the clock).
    changed = min(changed, published_at)
    label = None
    if with_clinician:
        label = clinician_label(
            display_name=first[CLINICIAN_NAME],
            credentials=first[CLINICIAN_CREDENTIALS],
            email=first[CLINICIAN_EMAIL],
        )
    names = tuple(
        patient_initials(row[PATIENT_FIRST_NAME] or "", row[PATIENT_LAST_NAME] or "")
        for row in rows
        if row[PATIENT_FIRST_NAME] is not None or row[PATIENT_LAST_NAME] is not None
    )
    return PublishedAppointment(
        uid=str(first[UID]),
        # A deletion is a change a calendar must notice even if nothing else about
        # the appointment moved.
        sequence=first[SEQUENCE] + (1 if deleted_at else 0),
        created_at=min(first[CREATED_AT], changed),
        changed_at=changed,
        start=first[START],
        end=first[END],
        cancelled=cancelled,
        summary=event_summary(
            is_event=first[KIND] == Appointment.Kind.EVENT,
            title=first[TITLE],
            initials=names,
            clinician_label=label,
            cancelled=cancelled,
        ),
        location=event_location(
            name=first[LOCATION_NAME],
            is_telehealth=bool(first[LOCATION_IS_TELEHEALTH]),
        ),
    )


def _busy(rows: list, *, busy_uid: Callable[[str], str], published_at: datetime):
    """One block of a busy-only calendar: when, and nothing else. No patient,
    title, location, status or clinician; an event (out of office, a staff
    meeting) is busy time like a session."""
    first = rows[0]
    changed = min(first[UPDATED_AT], published_at)
    return PublishedAppointment(
        uid=busy_uid(str(first[UID])),
        sequence=first[SEQUENCE],
        created_at=min(first[CREATED_AT], changed),
        changed_at=changed,
        start=first[START],
        end=first[END],
        cancelled=False,
        summary=BUSY_SUMMARY,
        location="",
        busy=True,
    )


def published_appointments(
    appointments: QuerySet[Appointment],
    *,
    order_by: tuple = ("start", "id"),
    with_clinician: bool,
    now: datetime,
    busy_uid: Callable[[str], str] | None = None,
) -> Generator[PublishedAppointment]:
    """``appointments`` as published, in the order of ``order_by`` (which must end
    with the id), in one query read a chunk at a time; closing the iterator early
    stops reading. ``with_clinician`` names each one's clinician first (the
    practice-wide calendar). With ``busy_uid`` (the appointment's uid to the stem of
    its busy-only UID) each is an opaque block of a busy-only calendar."""
    rows = appointments.order_by(*order_by, "patients__id").values_list(
        *PUBLISHED_COLUMNS
    )
    if busy_uid is not None:
        publish = functools.partial(_busy, busy_uid=busy_uid)
    else:
        publish = functools.partial(_published, with_clinician=with_clinician)
    # In whole seconds, as calendars date it.
    published_at = now.replace(microsecond=0)
    current: list = []
    for row in rows.iterator(chunk_size=1000):
        if current and row[ID] != current[0][ID]:
            yield publish(current, published_at=published_at)
            current = []
        current.append(row)
    if current:
        yield publish(current, published_at=published_at)
