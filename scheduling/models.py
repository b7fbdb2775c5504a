import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from practice.changes import ChangeNotifyingManager
from practice.dates import format_weekday_datetime
from practice.models import Practice
from scheduling.names import initials


class Service(models.Model):
    """A kind of session the practice offers, e.g. "Psychotherapy, 53 min"."""

    practice = models.ForeignKey(
        Practice, on_delete=models.CASCADE, related_name="services"
    )
    name = models.CharField(max_length=120)
    default_minutes = models.PositiveSmallIntegerField(default=53)
    is_active = models.BooleanField(default=True)

    objects = ChangeNotifyingManager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "name"], name="service_unique_name"
            ),
            models.CheckConstraint(
                condition=Q(default_minutes__gte=5) & Q(default_minutes__lte=720),
                name="service_duration_range",
            ),
        ]

    def __str__(self):
        return f"{self.name}, {self.default_minutes} min"


class Location(models.Model):
    """An office of the practice, or Telehealth. Only the name is ever published."""

    practice = models.ForeignKey(
        Practice, on_delete=models.CASCADE, related_name="locations"
    )
    name = models.CharField(max_length=120)
    is_telehealth = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    objects = ChangeNotifyingManager()

    class Meta:
        ordering = ["is_telehealth", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "name"], name="location_unique_name"
            ),
        ]

    def __str__(self):
        return self.name


class Team(models.Model):
    """A group of clinicians (a team, a site's staff) that the all-clinicians
    calendar can be narrowed to. A clinician may belong to several teams."""

    practice = models.ForeignKey(
        Practice, on_delete=models.CASCADE, related_name="teams"
    )
    name = models.CharField(max_length=120)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="teams", blank=True
    )

    objects = ChangeNotifyingManager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "name"], name="team_unique_name"
            ),
        ]

    def __str__(self):
        return self.name


class Patient(models.Model):
    practice = models.ForeignKey(
        Practice, on_delete=models.CASCADE, related_name="patients"
    )
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100, blank=True)
    preferred_name = models.CharField(max_length=100, blank=True)
    date_of_birth = models.DateField(null=True, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    primary_clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="primary_patients",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Lower-cased, accent-folded "first last preferred" for fast search.
    search_name = models.CharField(
        max_length=310, blank=True, editable=False, db_index=True
    )

    objects = ChangeNotifyingManager()

    class Meta:
        ordering = ["last_name", "first_name"]
        indexes = [models.Index(fields=["practice", "last_name", "first_name"])]

    def __str__(self):
        return self.full_name

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    @property
    def initials(self) -> str:
        return initials(self.first_name, self.last_name)


class Series(models.Model):
    """A recurring appointment; its occurrences are stored as Appointments."""

    class Frequency(models.TextChoices):
        WEEKLY = "weekly", "Weekly"
        MONTHLY = "monthly", "Monthly (same weekday of the month)"

    practice = models.ForeignKey(
        Practice, on_delete=models.CASCADE, related_name="series"
    )
    frequency = models.CharField(max_length=10, choices=Frequency.choices)
    interval = models.PositiveSmallIntegerField(default=1)
    count = models.PositiveSmallIntegerField(null=True, blank=True)
    until = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = ChangeNotifyingManager()

    class Meta:
        verbose_name_plural = "series"

    def __str__(self):
        return f"{self.get_frequency_display()} every {self.interval}"


class StatusTransitionError(ValidationError):
    """An appointment status change that the transitions table does not allow."""


class Appointment(models.Model):
    """A session with patients, or a non-patient event (title instead of patients).

    Feed-ready: ``uid`` never changes, ``sequence`` goes up on every change a calendar
    would show, and deletion is soft (``deleted_at``) so feeds can publish it as gone.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        ATTENDED = "attended", "Attended"
        NO_SHOW = "no_show", "No-show"
        CANCELLED = "cancelled", "Cancelled"
        LATE_CANCELLED = "late_cancelled", "Late-cancelled"

    class Kind(models.TextChoices):
        SESSION = "session", "Patient session"
        EVENT = "event", "Other event"

    practice = models.ForeignKey(
        Practice, on_delete=models.CASCADE, related_name="appointments"
    )
    clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="appointments"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SESSION)
    patients = models.ManyToManyField(Patient, related_name="appointments", blank=True)
    title = models.CharField(max_length=200, blank=True)
    service = models.ForeignKey(
        Service, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    location = models.ForeignKey(
        Location, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.SCHEDULED
    )
    notes = models.TextField(blank=True)
    series = models.ForeignKey(
        Series,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="occurrences",
    )
    series_index = models.PositiveSmallIntegerField(null=True, blank=True)

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    sequence = models.PositiveIntegerField(default=0)
    # Goes up on every write, published or not; edit forms carry it so that a save
    # based on an outdated copy is refused (optimistic locking).
    revision = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    # When the appointment became cancelled (cleared when it is scheduled again):
    # calendars keep showing it, as cancelled, for a while counted from here.
    cancelled_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = ChangeNotifyingManager()

    class Meta:
        ordering = ["start", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gt=F("start")), name="appointment_end_after_start"
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=["cancelled", "late_cancelled"],
                    cancelled_at__isnull=False,
                )
                | (
                    ~Q(status__in=["cancelled", "late_cancelled"])
                    & Q(cancelled_at__isnull=True)
                ),
                name="appointment_cancelled_at_with_status",
            ),
        ]
        indexes = [
            models.Index(
                fields=["clinician", "start", "end"], name="appt_clinician_time"
            ),
            models.Index(
                fields=["practice", "start", "end"], name="appt_practice_time"
            ),
            models.Index(
                fields=["practice", "updated_at"], name="appt_practice_updated"
            ),
        ]

    # Which status may follow which. Patient-free events are only ever scheduled or
    # cancelled. Reverting a recorded outcome to "scheduled" corrects a mistake.
    TRANSITIONS: dict[str, set[str]] = {
        Status.SCHEDULED: {
            Status.ATTENDED,
            Status.NO_SHOW,
            Status.CANCELLED,
            Status.LATE_CANCELLED,
        },
        Status.ATTENDED: {Status.SCHEDULED, Status.NO_SHOW},
        Status.NO_SHOW: {Status.SCHEDULED, Status.ATTENDED},
        Status.CANCELLED: {Status.SCHEDULED},
        Status.LATE_CANCELLED: {Status.SCHEDULED, Status.CANCELLED},
    }
    EVENT_STATUSES = {Status.SCHEDULED, Status.CANCELLED}
    # The statuses that mean the appointment is not happening.
    CANCELLED_STATUSES = (Status.CANCELLED, Status.LATE_CANCELLED)
    # Outcomes: what happened, so only known once the appointment has started.
    OUTCOME_STATUSES = (Status.ATTENDED, Status.NO_SHOW)

    def __str__(self):
        return f"{self.summary_text} {self.start:%Y-%m-%d %H:%M}"

    def allowed_statuses(self, *, now: datetime | None = None) -> list[str]:
        """The statuses this appointment may move to from its current one; given
        ``now``, outcomes (attended, no-show) only once it has started."""
        allowed = self.TRANSITIONS.get(self.status, set())
        if self.kind == self.Kind.EVENT:
            allowed = allowed & self.EVENT_STATUSES
        if now is not None and not self.has_started(now=now):
            allowed = allowed - set(self.OUTCOME_STATUSES)
        return [status for status in self.Status if status in allowed]

    def has_started(self, *, now: datetime) -> bool:
        return self.start <= now

    def set_status(self, status: str, *, now: datetime) -> None:
        """Move to ``status`` (the caller checks the transition and saves), noting
        when the appointment became cancelled: calendars keep a cancellation for a
        while counted from then. A late cancellation made plain keeps its moment."""
        if status not in self.CANCELLED_STATUSES:
            self.cancelled_at = None
        elif self.cancelled_at is None or self.status not in self.CANCELLED_STATUSES:
            self.cancelled_at = now
        self.status = status

    def check_transition(self, status: str, *, now: datetime | None = None) -> None:
        """Raise StatusTransitionError unless the table allows moving to ``status``
        (and, given ``now``, unless an outcome is recorded before the start)."""
        if (
            now is not None
            and status in self.OUTCOME_STATUSES
            and status in self.allowed_statuses()
            and not self.has_started(now=now)
        ):
            raise StatusTransitionError(
                "An appointment can only be marked %(wanted)s once it has started "
                "(%(start)s).",
                code="not_started",
                params={
                    "wanted": self.Status(status).label.lower(),
                    "start": format_weekday_datetime(self.start, self.practice.zone),
                },
            )
        if status not in self.allowed_statuses():
            raise StatusTransitionError(
                "An appointment that is %(current)s cannot become %(wanted)s.",
                code="status_transition",
                params={
                    "current": self.get_status_display().lower(),
                    "wanted": self.Status(status).label.lower()
                    if status in self.Status.values
                    else status,
                },
            )

    @property
    def display_title(self) -> str:
        """What Tend's own pages show: patient names, or the event title. Never used
        in feeds (see ``summary_text``)."""
        return self.display_title_with(list(self.patients.all()))

    def display_title_with(self, patients: list["Patient"]) -> str:
        """``display_title`` with the patients already at hand (a calendar page
        reads them once for hundreds of appointments)."""
        if self.kind == self.Kind.EVENT:
            return self.title
        if len(patients) <= 2:
            return " & ".join(patient.full_name for patient in patients)
        group = self.service.name if self.service_id else "Group"
        return f"{group} ({len(patients)} patients)"

    @property
    def duration_minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)

    @property
    def is_cancelled(self) -> bool:
        return self.status in self.CANCELLED_STATUSES

    @property
    def summary_text(self) -> str:
        """Initials, or an event's title: how Tend's own messages name an appointment
        without full names. Calendars are written by ``scheduling.publication``."""
        return self.summary_text_with(list(self.patients.all()))

    def summary_text_with(self, patients: list["Patient"]) -> str:
        """``summary_text`` with the patients already at hand."""
        if self.kind == self.Kind.EVENT:
            return self.title
        return " & ".join(patient.initials for patient in patients)


class AppointmentChange(models.Model):
    """One entry of an appointment's history: who did what, when."""

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        CHANGED = "changed", "Changed"
        STATUS = "status", "Status changed"
        CANCELLED = "cancelled", "Cancelled"
        DELETED = "deleted", "Deleted"

    appointment = models.ForeignKey(
        Appointment, on_delete=models.CASCADE, related_name="changes"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    action = models.CharField(max_length=12, choices=Action.choices)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    # Others hear of each change as it is recorded (``rows_changed``): calendar
    # sync's change notices need who did it and what it was before.
    objects = ChangeNotifyingManager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_action_display()} {self.created_at:%Y-%m-%d %H:%M}"

    def lines(self) -> list[tuple[str, str]]:
        """The recorded changes as (field, text) pairs for display."""

        def text(value) -> str:
            if isinstance(value, list):
                return ", ".join(str(item) for item in value) or "—"
            return str(value) if value not in (None, "") else "—"

        shown = []
        for name, value in self.changes.items():
            label = name.replace("_", " ").capitalize()
            is_pair = isinstance(value, list) and len(value) == 2
            if self.action == self.Action.CREATED or name in ("scope", "series"):
                shown.append((label, text(value)))
            elif is_pair:
                shown.append((label, f"{text(value[0])} → {text(value[1])}"))
            else:
                shown.append((label, text(value)))
        return shown


class BusyCalendar(models.Model):
    """One of a clinician's personal calendars, kept as busy time only.

    Tend keeps the calendar's name and, in ``BusyTime``, the start and end of each
    busy interval: never a title, place, attendee or description. Where it is read
    from, and how, is ``calendarsync``'s business (its ``BusySource`` points here);
    SCHEDULING only shows and checks the intervals."""

    practice = models.ForeignKey(
        Practice, on_delete=models.CASCADE, related_name="busy_calendars"
    )
    clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="busy_calendars",
    )
    name = models.CharField(max_length=120)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # The last read that gave a valid calendar; its intervals are the ones kept.
    read_at = models.DateTimeField(null=True, blank=True)

    # Intervals not confirmed by a read for this long are shown as stale.
    STALE_AFTER = timedelta(days=1)

    def __str__(self):
        return f"Personal calendar {self.name!r} of user {self.clinician_id}"

    def is_stale(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.read_at is None or self.read_at < now - self.STALE_AFTER


class BusyTime(models.Model):
    """One busy interval of a personal calendar (overlapping ones merged), from
    today to 90 days ahead. ``practice`` and ``clinician`` repeat the calendar's, so
    the SCHEDULING views and the booking check read it with one indexed query."""

    calendar = models.ForeignKey(
        BusyCalendar, on_delete=models.CASCADE, related_name="times"
    )
    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    # Every event behind the interval was tentative.
    tentative = models.BooleanField(default=False)

    class Meta:
        ordering = ["start"]
        indexes = [
            models.Index(
                fields=["practice", "clinician", "start"], name="busytime_lookup"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gt=F("start")), name="busytime_end_after_start"
            ),
        ]

    def __str__(self):
        return f"Busy {self.start:%Y-%m-%d %H:%M}–{self.end:%H:%M}"
