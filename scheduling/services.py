"""Every write of the scheduling app: patients, services, locations, appointments.

Calendar feeds publish appointments, so each change a calendar would show goes through
``appointment_touch`` with ``published=True``: ``sequence`` goes up by one and
``updated_at`` moves. Appointments are never deleted from the database; deletion sets
``deleted_at`` so the feeds can publish them as gone.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Value, prefetch_related_objects
from django.utils import timezone

from practice.dates import (
    format_datetime,
    format_time,
    format_weekday_date,
    format_weekday_datetime,
)
from practice.models import AuditEvent, Practice, User
from practice.services import audit_record
from practice.text import single_line
from scheduling.busy import BusyBlock, busy_stale_note, busy_times
from scheduling.models import (
    Appointment,
    AppointmentChange,
    Location,
    Patient,
    Series,
    Service,
    Team,
)
from scheduling.names import search_fold
from scheduling.permissions import visible_patients
from scheduling.publication import LONGEST_LOOKBACK, PUBLISHED_FIELDS
from scheduling.recurrence import (
    Recurrence,
    local_to_utc_or_later,
    occurrence_starts,
)

MAX_DURATION = timedelta(hours=24)
EDITABLE_FIELDS = (
    "start",
    "end",
    "clinician",
    "patients",
    "location",
    "service",
    "title",
    "notes",
)
# "this" changes one appointment; "following" also every later occurrence of its series.
SCOPE_THIS = "this"
SCOPE_FOLLOWING = "following"


class StaleAppointment(ValidationError):
    """The appointment changed since the form was loaded; nothing was saved."""

    def __init__(self):
        super().__init__(
            "This appointment was changed by someone else while you were editing it. "
            "Nothing was saved: reload it to see the current version, then make your "
            "change again.",
            code="stale",
        )


@dataclass(frozen=True)
class Conflict:
    """Another live appointment overlapping a proposed one, or (``appointment``
    None) the clinician's personal busy time."""

    appointment: Appointment | None
    message: str


class SchedulingConflict(Exception):
    """The proposed booking overlaps others; retry with ``allow_conflicts=True``."""

    def __init__(self, conflicts: list[Conflict]):
        super().__init__("; ".join(conflict.message for conflict in conflicts))
        self.conflicts = conflicts

    @property
    def heading(self) -> str:
        """What the overlap is with, in words for the warning's heading."""
        busy = [c for c in self.conflicts if c.appointment is None]
        if not busy:
            return "This overlaps other bookings"
        if len(busy) == len(self.conflicts):
            return "This overlaps personal busy time"
        return "This overlaps other bookings and personal busy time"


@dataclass(frozen=True)
class PossibleDuplicate:
    """An existing patient who may be the one being added or saved: why, and
    whether the acting user may open their record."""

    patient: Patient
    reason: str
    visible: bool


class DuplicatePatient(Exception):
    """Another patient of the practice has the same name and date of birth, email or
    phone; retry with ``allow_duplicate=True`` once the user confirms."""

    def __init__(self, duplicates: list[PossibleDuplicate]):
        super().__init__("; ".join(item.reason for item in duplicates))
        self.duplicates = duplicates


# -- patients -----------------------------------------------------------------------


def _phone_digits(phone: str) -> str:
    return "".join(char for char in phone if char.isdigit())


def _same_phone(one: str, other: str) -> bool:
    """The same number, with or without a country or trunk prefix."""
    shorter, longer = sorted((one, other), key=len)
    return len(shorter) >= 7 and longer.endswith(shorter)


def _possible_duplicates(
    patient: Patient, *, actor: User | None
) -> list[PossibleDuplicate]:
    """Other patients of the practice with the same name and date of birth, the same
    email, or the same phone number (compared by its digits). One query."""
    same_name = (
        Q(
            first_name__iexact=patient.first_name,
            last_name__iexact=patient.last_name,
            date_of_birth=patient.date_of_birth,
        )
        if patient.date_of_birth is not None
        else Q(pk__in=[])
    )
    same_email = Q(email__iexact=patient.email) if patient.email else Q(pk__in=[])
    digits = _phone_digits(patient.phone)
    # Narrowed by the last digits in SQL, compared on every digit below.
    same_phone = Q(phone__endswith=digits[-4:]) if len(digits) >= 4 else Q(pk__in=[])
    candidates = (
        Patient.objects.filter(practice_id=patient.practice_id)
        .filter(same_name | same_email | same_phone)
        .exclude(pk=patient.pk)
        .annotate(
            visible=Exists(visible_patients(actor).filter(pk=OuterRef("pk")))
            if actor is not None
            else Value(False)
        )
        .order_by("last_name", "first_name", "pk")
    )
    found = []
    for other in candidates:
        reasons = []
        if (
            patient.date_of_birth is not None
            and other.date_of_birth == patient.date_of_birth
            and other.first_name.casefold() == patient.first_name.casefold()
            and other.last_name.casefold() == patient.last_name.casefold()
        ):
            reasons.append("the same name and date of birth")
        if patient.email and other.email.casefold() == patient.email.casefold():
            reasons.append("the same email")
        if _same_phone(_phone_digits(other.phone), digits):
            reasons.append("the same phone number")
        if reasons:
            found.append(
                PossibleDuplicate(
                    patient=other,
                    reason=" and ".join(reasons),
                    visible=other.visible,
                )
            )
    return found


def _identity(patient: Patient) -> tuple:
    """What duplicates are recognised by."""
    return (
        patient.first_name.casefold(),
        patient.last_name.casefold(),
        patient.date_of_birth,
        patient.email.casefold(),
        _phone_digits(patient.phone),
    )


def _check_duplicates(patient: Patient, *, actor: User | None, allow: bool) -> None:
    if allow:
        return
    duplicates = _possible_duplicates(patient, actor=actor)
    if duplicates:
        raise DuplicatePatient(duplicates)


def _patient_search_name(patient: Patient) -> str:
    return search_fold(
        " ".join((patient.first_name, patient.last_name, patient.preferred_name))
    )[:310]


def _check_primary_clinician(practice: Practice, clinician: User | None) -> None:
    if clinician is None:
        return
    if clinician.practice_id != practice.pk or not clinician.is_clinician:
        raise ValidationError(
            {"primary_clinician": "Choose a clinician of this practice."},
            code="foreign_clinician",
        )


PATIENT_FIELDS = (
    "first_name",
    "last_name",
    "preferred_name",
    "date_of_birth",
    "email",
    "phone",
    "primary_clinician",
)


def _clean_patient_value(name: str, value):
    return single_line(value) if isinstance(value, str) else value


@transaction.atomic
def patient_create(
    *,
    practice: Practice,
    actor: User,
    first_name: str,
    last_name: str = "",
    preferred_name: str = "",
    date_of_birth: date | None = None,
    email: str = "",
    phone: str = "",
    primary_clinician: User | None = None,
    client_ip: str | None = None,
    allow_duplicate: bool = False,
) -> Patient:
    """Add a patient to the practice, keeping the search name in step, and record
    it in the audit log. A possible duplicate of an existing patient raises
    DuplicatePatient unless ``allow_duplicate``."""
    _check_primary_clinician(practice, primary_clinician)
    values = {
        "first_name": first_name,
        "last_name": last_name,
        "preferred_name": preferred_name,
        "date_of_birth": date_of_birth,
        "email": email,
        "phone": phone,
        "primary_clinician": primary_clinician,
    }
    patient = Patient(
        practice=practice,
        **{name: _clean_patient_value(name, value) for name, value in values.items()},
    )
    patient.search_name = _patient_search_name(patient)
    patient.full_clean()
    _check_duplicates(patient, actor=actor, allow=allow_duplicate)
    patient.save()
    _patient_audit(
        kind=AuditEvent.Kind.PATIENT_CREATED,
        patient=patient,
        actor=actor,
        client_ip=client_ip,
        details={
            "details": [
                name.replace("_", " ")
                for name in PATIENT_FIELDS
                if getattr(patient, name) not in (None, "")
            ]
        },
    )
    return patient


@transaction.atomic
def patient_update(
    *,
    patient: Patient,
    actor: User,
    client_ip: str | None = None,
    allow_duplicate: bool = False,
    **fields,
) -> Patient:
    """Change a patient's details (any of PATIENT_FIELDS), recording old and new
    values in the audit log (sensitive ones only as changed). A change that makes
    the patient look like another one (same name and date of birth, email or phone)
    raises DuplicatePatient unless ``allow_duplicate``."""
    unknown = set(fields) - set(PATIENT_FIELDS)
    if unknown:
        raise TypeError(f"Unknown patient fields: {sorted(unknown)}")
    if "primary_clinician" in fields:
        _check_primary_clinician(patient.practice, fields["primary_clinician"])
    initials_before = patient.initials
    before = {name: getattr(patient, name) for name in PATIENT_FIELDS}
    identity_before = _identity(patient)
    for name, value in fields.items():
        setattr(patient, name, _clean_patient_value(name, value))
    patient.search_name = _patient_search_name(patient)
    patient.full_clean()
    if _identity(patient) != identity_before:
        _check_duplicates(patient, actor=actor, allow=allow_duplicate)
    patient.save()
    if patient.initials != initials_before:
        _republish_future(Appointment.objects.filter(patients=patient))
    changed = _patient_changes(before, patient)
    if changed:
        _patient_audit(
            kind=AuditEvent.Kind.PATIENT_CHANGED,
            patient=patient,
            actor=actor,
            client_ip=client_ip,
            details={"changed": changed},
        )
    return patient


@transaction.atomic
def patient_set_active(
    *, patient: Patient, actor: User, active: bool, client_ip: str | None = None
) -> Patient:
    """Deactivate or reactivate a patient. Patients are never deleted: their
    appointments keep pointing at them; a deactivated patient cannot be booked."""
    if patient.is_active != active:
        patient.is_active = active
        patient.save(update_fields=["is_active"])
        _patient_audit(
            kind=AuditEvent.Kind.PATIENT_REACTIVATED
            if active
            else AuditEvent.Kind.PATIENT_DEACTIVATED,
            patient=patient,
            actor=actor,
            client_ip=client_ip,
        )
    return patient


# -- the audit trail of patient data -----------------------------------------------
#
# practice/ owns the log and may not know patients: events name them by id (the
# log page asks ``selectors.audit_patients_described`` for names) and carry only
# initials. Each page view is one INSERT; a calendar page records the range it
# shows, not each patient on it.

# Recorded only as added, changed or removed, never with the value: contact details
# and the date of birth would otherwise sit in the log and in every CSV export.
SENSITIVE_PATIENT_FIELDS = frozenset({"date_of_birth", "email", "phone"})


def _patient_audit(
    *,
    kind: str,
    patient: Patient,
    actor: User | None,
    client_ip: str | None,
    details: dict | None = None,
) -> AuditEvent:
    return audit_record(
        kind=kind,
        practice=patient.practice,
        actor=actor,
        client_ip=client_ip,
        patient_ids=[patient.pk],
        details={"patient": patient.initials, **(details or {})},
    )


def _audit_text(value) -> str:
    if value in (None, ""):
        return "—"
    if isinstance(value, User):
        return value.label
    return str(value)


def _patient_changes(before: dict, patient: Patient) -> dict:
    """{field: [old, new]} for changed details; a sensitive field maps to "added",
    "changed" or "removed" instead."""
    changed: dict[str, object] = {}
    for name in PATIENT_FIELDS:
        old, new = before[name], getattr(patient, name)
        if old == new:
            continue
        if name in SENSITIVE_PATIENT_FIELDS:
            empty_before, empty_after = old in (None, ""), new in (None, "")
            changed[name] = (
                "added"
                if empty_before
                else "removed"
                if empty_after
                else "changed (value hidden)"
            )
        else:
            changed[name] = [_audit_text(old), _audit_text(new)]
    return changed


def patient_view_record(
    *, user: User, patient: Patient, client_ip: str | None, page: str = "details"
) -> AuditEvent:
    """Record that ``user`` was shown ``patient``'s details (one INSERT)."""
    return _patient_audit(
        kind=AuditEvent.Kind.PATIENT_VIEWED,
        patient=patient,
        actor=user,
        client_ip=client_ip,
        details={"page": page},
    )


def patient_list_view_record(
    *,
    user: User,
    patients: Sequence[Patient],
    searched: bool,
    page_number: int,
    client_ip: str | None,
) -> AuditEvent:
    """Record that ``user`` was shown a page of the patient list (names and dates
    of birth): the patients on it by id, and whether it answered a search, never
    the search text (one INSERT)."""
    return audit_record(
        kind=AuditEvent.Kind.PATIENT_LIST_VIEWED,
        practice=user.practice,
        actor=user,
        client_ip=client_ip,
        patient_ids=[patient.pk for patient in patients],
        details={
            "page": page_number,
            "patients shown": len(patients),
            "search": "yes" if searched else "no",
        },
    )


def appointment_view_record(
    *,
    user: User,
    appointment: Appointment,
    client_ip: str | None,
    page: str = "details",
) -> AuditEvent:
    """Record that ``user`` was shown an appointment and so its patients (one
    INSERT; the patients are expected prefetched, as ``access_appointment`` does)."""
    patients = list(appointment.patients.all())
    details: dict[str, object] = {
        "appointment": appointment.pk,
        "page": page,
        "when": _when(appointment.practice, appointment.start, appointment.end),
    }
    if patients:
        details["patients"] = [patient.initials for patient in patients]
    return audit_record(
        kind=AuditEvent.Kind.APPOINTMENT_VIEWED,
        practice=appointment.practice,
        actor=user,
        client_ip=client_ip,
        patient_ids=[patient.pk for patient in patients],
        details=details,
    )


def calendar_view_record(
    *,
    user: User,
    view: str,
    first_day: date,
    last_day: date,
    clinician: User | None,
    client_ip: str | None,
) -> AuditEvent:
    """Record that ``user`` was shown a calendar page: the days and whose calendar,
    not each patient on it (one INSERT, however full the page). Which patients that
    was follows from the appointments of those days."""
    return audit_record(
        kind=AuditEvent.Kind.CALENDAR_VIEWED,
        practice=user.practice,
        actor=user,
        client_ip=client_ip,
        details={
            "view": view,
            "days": f"{first_day.isoformat()} – {last_day.isoformat()}",
            "calendar": clinician.label if clinician else "all clinicians",
        },
    )


def _republish_future(appointments) -> int:
    """Touch (published) every appointment of ``appointments`` that a feed can still
    show (ending no earlier than the longest feed window back, deleted ones included
    for their tombstones): something a calendar shows about them changed elsewhere
    (a patient's initials, a location's, service's or clinician's name)."""
    oldest_shown = timezone.now() - LONGEST_LOOKBACK
    targets = list(
        appointments.select_for_update(of=("self",)).filter(end__gte=oldest_shown)
    )
    _publish(targets, fields=[])
    return len(targets)


@transaction.atomic
def appointments_republish_for_clinician(*, clinician) -> int:
    """Republish every appointment of ``clinician`` still shown in a feed: their name
    is part of the practice-wide calendar's summaries."""
    return _republish_future(Appointment.objects.filter(clinician=clinician))


# -- services and locations -------------------------------------------------------


def _check_unique_name(model, practice: Practice, name: str, exclude_pk=None) -> None:
    clash = model.objects.filter(practice=practice, name__iexact=name)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise ValidationError(
            {"name": f"“{name}” already exists in this practice."}, code="duplicate"
        )


def _check_minutes(minutes: int) -> None:
    if not 5 <= minutes <= 720:
        raise ValidationError(
            {"default_minutes": "A default length is between 5 and 720 minutes."},
            code="minutes_range",
        )


@transaction.atomic
def service_create(*, practice: Practice, name: str, default_minutes: int) -> Service:
    """Add a service (a kind of session with its usual length) to the practice."""
    _check_minutes(default_minutes)
    return _named_item_create(
        Service, practice=practice, name=name, default_minutes=default_minutes
    )


@transaction.atomic
def service_update(
    *, service: Service, name: str, default_minutes: int, is_active: bool
) -> Service:
    """Rename, change the length of, or retire a service. Retired services stay on
    past appointments but cannot be chosen for new ones."""
    _check_minutes(default_minutes)
    return _named_item_update(
        service, name=name, default_minutes=default_minutes, is_active=is_active
    )


@transaction.atomic
def location_create(*, practice: Practice, name: str, is_telehealth: bool) -> Location:
    """Add an office (or a telehealth location) to the practice."""
    return _named_item_create(
        Location, practice=practice, name=name, is_telehealth=is_telehealth
    )


@transaction.atomic
def location_update(
    *, location: Location, name: str, is_telehealth: bool, is_active: bool
) -> Location:
    """Rename or retire a location. Its name is what synced calendars show, so
    renaming it republishes every future appointment there."""
    return _named_item_update(
        location, name=name, is_telehealth=is_telehealth, is_active=is_active
    )


@transaction.atomic
def team_create(*, practice: Practice, name: str, members: Iterable[User]) -> Team:
    """Add a team of the practice's clinicians."""
    team = _named_item_create(Team, practice=practice, name=name)
    team.members.set(_team_members(practice, members))
    return team


@transaction.atomic
def team_update(*, team: Team, name: str, members: Iterable[User]) -> Team:
    """Rename a team and set who is in it. Teams only narrow the calendar: no
    calendar outside Tend shows them."""
    _named_item_update(team, name=name)
    team.members.set(_team_members(team.practice, members))
    return team


@transaction.atomic
def team_delete(*, team: Team) -> None:
    """Remove a team; its clinicians and their appointments are untouched."""
    team.delete()


def _team_members(practice: Practice, members: Iterable[User]) -> list[User]:
    members = list(members)
    if any(
        member.practice_id != practice.pk or not member.is_clinician
        for member in members
    ):
        raise ValidationError(
            {"members": "Choose clinicians of this practice."}, code="team_member"
        )
    return members


def _named_item_create(model, *, practice: Practice, name: str, **fields):
    # Names are compared collapsed and case-blind, so "Office  A" clashes with
    # "office a".
    name = single_line(name)
    _check_unique_name(model, practice, name)
    item = model(practice=practice, name=name, **fields)
    item.full_clean(validate_constraints=False)
    item.save()
    return item


def _named_item_update(item: Service | Location | Team, *, name: str, **fields):
    # A location is published (its name, or "Telehealth"): a change to either
    # republishes the appointments there. No calendar shows a service.
    name = single_line(name)
    model = type(item)
    _check_unique_name(model, item.practice, name, exclude_pk=item.pk)
    before = (item.name, getattr(item, "is_telehealth", None))
    item.name = name
    for field, value in fields.items():
        setattr(item, field, value)
    item.full_clean(validate_constraints=False)
    item.save()
    if isinstance(item, Location) and before != (item.name, item.is_telehealth):
        _republish_future(Appointment.objects.filter(location=item))
    return item


# -- appointments: helpers ----------------------------------------------------------


def appointment_touch(appointment: Appointment, *, published: bool) -> Appointment:
    """Mark ``appointment`` as changed (the caller saves it): the lock ``revision``
    goes up; when a calendar would show the change (``published``), the feed
    ``sequence`` goes up by one and ``updated_at`` moves to a later whole second.

    ``updated_at`` is what feeds publish as LAST-MODIFIED and DTSTAMP, with
    one-second precision, and some clients (ICSx5) take an event only when it is
    newer: so two visible changes within one second still get different seconds,
    and a change nobody can see (notes) leaves the feed's bytes alone."""
    appointment.revision += 1
    if published:
        appointment.sequence += 1
        appointment.updated_at = _next_published_instant(appointment.updated_at)
    return appointment


def _publish(targets: list[Appointment], *, fields: list[str]) -> None:
    """Touch (published) every appointment of ``targets`` and write them, with the
    ``fields`` the caller changed, in one bulk UPDATE: one statement and one
    change notice however long the series."""
    for target in targets:
        appointment_touch(target, published=True)
    if targets:
        Appointment.objects.bulk_update(
            targets, [*fields, "sequence", "revision", "updated_at"]
        )


def _link_patients(appointments: list[Appointment], patients: list) -> None:
    """Make ``patients`` the patients of every appointment of ``appointments`` (whose
    other links go), in two statements however many there are."""
    through = Appointment.patients.through
    through.objects.filter(
        appointment_id__in=[appointment.pk for appointment in appointments]
    ).delete()
    through.objects.bulk_create(
        [
            through(appointment_id=appointment.pk, patient_id=patient.pk)
            for appointment in appointments
            for patient in patients
        ]
    )


def _next_published_instant(previous: datetime | None) -> datetime:
    now = timezone.now()
    if previous is None:
        return now
    floor = previous.replace(microsecond=0) + timedelta(seconds=1)
    return max(now, floor)


def _local(practice: Practice, instant: datetime) -> datetime:
    return timezone.localtime(instant, practice.zone)


def _when(practice: Practice, start: datetime, end: datetime) -> str:
    start, end = _local(practice, start), _local(practice, end)
    if end.date() != start.date():
        return (
            f"{format_weekday_datetime(start, start.tzinfo)} – "
            f"{format_weekday_datetime(end, end.tzinfo)}"
        )
    return (
        f"{format_weekday_datetime(start, start.tzinfo)}–{format_time(end, end.tzinfo)}"
    )


def _conflict_message(
    practice: Practice, *, other: Appointment, clinician: User, shared: list[Patient]
) -> str:
    """What a booking overlapping ``other`` is told: whose time it is and when. A
    clinician's own event (out of office, a meeting) blocks their time like a
    session; a shared patient's other booking names its clinician."""
    when = _when(practice, other.start, other.end)
    if other.clinician_id == clinician.pk:
        if other.kind == Appointment.Kind.EVENT:
            return (
                f"{clinician.label} is not available {when}: “{other.title}” "
                "is in their calendar."
            )
        what = other.summary_text or "an appointment"
        return f"{clinician.label} is already booked {when} ({what})."
    start, end = _local(practice, other.start), _local(practice, other.end)
    names = ", ".join(patient.initials for patient in shared)
    day = format_weekday_date(start, start.tzinfo)
    if end.date() != start.date():
        return (
            f"{names} already has an appointment with {other.clinician.label} "
            f"from {when}."
        )
    return (
        f"{names} already has an appointment with {other.clinician.label} at "
        f"{format_time(start, start.tzinfo)}–{format_time(end, end.tzinfo)} "
        f"on {day}."
    )


def _busy_conflict_message(
    practice: Practice, *, block: BusyBlock, clinician: User
) -> str:
    """What a booking over personal busy time is told: whose and when, naming only
    "personal calendar" (Tend knows nothing more of it)."""
    busy = "tentatively busy" if block.tentative else "busy"
    when = _when(practice, block.start, block.end)
    stale = busy_stale_note(block, practice.zone)
    note = f"; {stale}" if stale else ""
    return f"{clinician.label} is {busy} (personal calendar{note}) {when}."


def _busy_conflicts(
    *,
    practice: Practice,
    proposals: Sequence[tuple[User, Sequence[Patient], datetime, datetime]],
) -> list[Conflict]:
    """The personal busy time of each proposal's clinician that it overlaps, one
    conflict per stretch of busy time. One query whatever the number of
    proposals."""
    blocks = busy_times(
        practice=practice,
        clinician_ids={clinician.pk for clinician, _, _, _ in proposals},
        start=min(start for _, _, start, _ in proposals),
        end=max(end for _, _, _, end in proposals),
    )
    found: list[Conflict] = []
    for block in sorted(blocks, key=lambda block: (block.start, block.clinician_id)):
        for clinician, _patients, start, end in proposals:
            if block.clinician_id == clinician.pk and block.overlaps(start, end):
                message = _busy_conflict_message(
                    practice, block=block, clinician=clinician
                )
                found.append(Conflict(appointment=None, message=message))
                break
    return found


def _describe(practice: Practice, name: str, value) -> object:
    """A history-friendly (JSON) rendering of one field value."""
    if value is None:
        return ""
    if name in ("start", "end"):
        return format_datetime(value, practice.zone)
    if name == "clinician":
        return value.label
    if name == "patients":
        return sorted(patient.full_name for patient in value)
    if name == "status":
        return Appointment.Status(value).label
    if name in ("service", "location"):
        return str(value)
    return value


def _check_appointment(
    *,
    practice: Practice,
    clinician: User,
    kind: str,
    patients: Sequence[Patient],
    title: str,
    service: Service | None,
    location: Location | None,
    start: datetime,
    end: datetime,
    clinician_changed: bool = True,
    new_patients: Iterable[Patient] = (),
    new_service: bool = True,
    new_location: bool = True,
) -> None:
    """Raise one ValidationError listing, per field, what is wrong with a proposed
    appointment. Objects must belong to ``practice``; newly chosen ones must be
    active."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if clinician.practice_id != practice.pk or not clinician.is_clinician:
        add("clinician", "Choose a clinician of this practice.")
    elif clinician_changed and not clinician.is_active:
        add(
            "clinician",
            f"{clinician.label} is deactivated and cannot be given appointments.",
        )
    if kind == Appointment.Kind.SESSION:
        if not patients:
            add("patients", "Choose at least one patient.")
        for patient in patients:
            if patient.practice_id != practice.pk:
                add("patients", "Choose patients from this practice's patient list.")
                break
        for patient in new_patients:
            if patient.practice_id == practice.pk and not patient.is_active:
                add("patients", f"{patient.full_name} is deactivated.")
    elif kind == Appointment.Kind.EVENT:
        if patients:
            add("patients", "An event has a title instead of patients.")
        if not title.strip():
            add("title", "Give the event a title, e.g. Staff meeting.")
    else:
        add("kind", "Unknown appointment kind.")
    for field, chosen, is_new in (
        ("service", service, new_service),
        ("location", location, new_location),
    ):
        if chosen is None:
            continue
        if chosen.practice_id != practice.pk:
            add(field, f"Choose a {field} of this practice.")
        elif is_new and not chosen.is_active:
            add(field, f"“{chosen.name}” is no longer offered.")
    if end <= start:
        if end == start:
            add("end", "The end must be after the start (this would last no time).")
        else:
            add("end", "The end is before the start.")
    elif end - start > MAX_DURATION:
        add("end", "An appointment cannot last more than 24 hours.")
    if errors:
        raise ValidationError(errors)


def _conflicts(
    *,
    practice: Practice,
    proposals: Sequence[tuple[User, Sequence[Patient], datetime, datetime]],
    exclude_ids: Iterable[int] = (),
    busy: bool = True,
) -> list[Conflict]:
    """Live, not cancelled appointments that overlap any proposal for the same
    clinician or a shared patient, then (with ``busy``) the clinicians' personal
    busy time it overlaps. Two queries whatever the number of proposals."""
    if not proposals:
        return []
    window_start = min(start for _, _, start, _ in proposals)
    window_end = max(end for _, _, _, end in proposals)
    clinician_ids = {clinician.pk for clinician, _, _, _ in proposals}
    patient_ids = {
        patient.pk for _, patients, _, _ in proposals for patient in patients
    }
    candidates = (
        Appointment.objects.filter(
            practice=practice,
            deleted_at__isnull=True,
            start__lt=window_end,
            end__gt=window_start,
        )
        .filter(Q(clinician_id__in=clinician_ids) | Q(patients__in=patient_ids))
        .exclude(status__in=Appointment.CANCELLED_STATUSES)
        .exclude(pk__in=list(exclude_ids))
        .select_related("clinician")
        .prefetch_related("patients")
        .distinct()
        .order_by("start", "id")
    )
    found: list[Conflict] = []
    seen: set[int] = set()
    for other in candidates:
        other_patient_ids = {patient.pk for patient in other.patients.all()}
        for clinician, patients, start, end in proposals:
            if not (other.start < end and other.end > start) or other.pk in seen:
                continue
            shared = [p for p in patients if p.pk in other_patient_ids]
            if other.clinician_id != clinician.pk and not shared:
                continue
            message = _conflict_message(
                practice, other=other, clinician=clinician, shared=shared
            )
            seen.add(other.pk)
            found.append(Conflict(appointment=other, message=message))
    if busy:
        found.extend(_busy_conflicts(practice=practice, proposals=proposals))
    return found


def _record(
    appointment: Appointment, *, actor: User | None, action: str, changes: dict
) -> AppointmentChange:
    return AppointmentChange(
        appointment=appointment,
        actor=actor if actor is not None and actor.pk else None,
        action=action,
        changes=changes,
    )


def _lock(appointment: Appointment, expected_revision: int | None) -> Appointment:
    """The current row, locked; StaleAppointment if it moved on since the form."""
    current = (
        Appointment.objects.select_for_update(of=("self",))
        .select_related("practice", "clinician", "service", "location")
        .get(pk=appointment.pk)
    )
    stale = current.deleted_at is not None or (
        expected_revision is not None and current.revision != expected_revision
    )
    if stale:
        raise StaleAppointment()
    return current


# Editable fields that are other rows.
RELATED_FIELDS = ("clinician", "patients", "service", "location")


def _following(appointment: Appointment, *, scope: str) -> list[Appointment]:
    """The appointments a change applies to: this one, plus (scope "following")
    every later live occurrence of its series, locked, in order."""
    if scope not in (SCOPE_THIS, SCOPE_FOLLOWING):
        raise ValidationError("Choose this appointment or this and following.")
    if scope == SCOPE_THIS or appointment.series_id is None:
        return [appointment]
    later = list(
        Appointment.objects.select_for_update()
        .filter(
            series_id=appointment.series_id,
            deleted_at__isnull=True,
            series_index__gt=appointment.series_index or 0,
        )
        .exclude(pk=appointment.pk)
        .order_by("series_index", "start")
    )
    return [appointment, *later]


# -- appointments: writes -----------------------------------------------------------


@transaction.atomic
def appointment_create(
    *,
    practice: Practice,
    actor: User | None,
    clinician: User,
    start: datetime,
    end: datetime,
    kind: str = Appointment.Kind.SESSION,
    patients: Sequence[Patient] = (),
    title: str = "",
    service: Service | None = None,
    location: Location | None = None,
    notes: str = "",
    recurrence: Recurrence | None = None,
    allow_conflicts: bool = False,
) -> Appointment:
    """Book an appointment, or a recurring series of them (stored one row per
    occurrence), and record it in the history. Overlaps raise SchedulingConflict
    unless ``allow_conflicts``. Returns the first appointment."""
    patients = list(patients)
    title = single_line(title)
    _check_appointment(
        practice=practice,
        clinician=clinician,
        kind=kind,
        patients=patients,
        title=title,
        service=service,
        location=location,
        start=start,
        end=end,
        new_patients=patients,
    )
    duration = end - start
    series = None
    if recurrence is None:
        starts = [start]
    else:
        starts = _series_starts(practice=practice, start=start, recurrence=recurrence)
    proposals = [(clinician, patients, begin, begin + duration) for begin in starts]
    if not allow_conflicts:
        conflicts = _conflicts(practice=practice, proposals=proposals)
        if conflicts:
            raise SchedulingConflict(conflicts)
    if recurrence is not None:
        series = Series(
            practice=practice,
            frequency=recurrence.frequency,
            interval=recurrence.interval,
            count=recurrence.count,
            until=recurrence.until,
        )
        series.full_clean()
        series.save()
    now = timezone.now()
    appointments = [
        Appointment(
            practice=practice,
            clinician=clinician,
            kind=kind,
            title=title if kind == Appointment.Kind.EVENT else "",
            service=service,
            location=location,
            start=begin,
            end=begin + duration,
            notes=notes,
            series=series,
            series_index=index if series else None,
            created_at=now,
            updated_at=now,
        )
        for index, begin in enumerate(starts)
    ]
    appointments[0].full_clean(exclude=["patients"], validate_unique=False)
    appointments = Appointment.objects.bulk_create(appointments)
    _link_patients(appointments, patients)
    summary = {
        name: _describe(practice, name, value)
        for name, value in (
            ("clinician", clinician),
            ("patients", patients),
            ("title", title),
            ("service", service),
            ("location", location),
        )
        if value
    }
    changes = []
    for appointment in appointments:
        details = {
            **summary,
            "start": _describe(practice, "start", appointment.start),
            "end": _describe(practice, "end", appointment.end),
        }
        if series is not None:
            details["series"] = (
                f"occurrence {appointment.series_index + 1} of {len(appointments)}"
            )
        changes.append(
            _record(
                appointment,
                actor=actor,
                action=AppointmentChange.Action.CREATED,
                changes=details,
            )
        )
    AppointmentChange.objects.bulk_create(changes)
    return appointments[0]


def _series_starts(
    *, practice: Practice, start: datetime, recurrence: Recurrence
) -> list[datetime]:
    limit = settings.SERIES_MAX_OCCURRENCES
    errors = {}
    if recurrence.count is None and recurrence.until is None:
        errors["count"] = "Say how many times it repeats, or until when."
    if recurrence.count is not None and recurrence.count < 2:
        errors["count"] = "A series repeats at least twice."
    if recurrence.interval < 1 or recurrence.interval > 52:
        errors["interval"] = "Repeat every 1 to 52 weeks or months."
    local_start = _local(practice, start)
    if recurrence.until is not None and recurrence.until < local_start.date():
        errors["until"] = "The series cannot end before its first appointment."
    if recurrence.count is not None and recurrence.count > limit:
        errors["count"] = (
            f"A series can have at most {limit} occurrences in this practice; "
            f"{recurrence.count} were asked for."
        )
    if errors:
        raise ValidationError(errors)
    starts = occurrence_starts(
        local_start.replace(tzinfo=None), recurrence, zone=practice.zone, limit=limit
    )
    if len(starts) > limit:
        raise ValidationError(
            {
                "until": f"That end date gives more than {limit} occurrences, the "
                "practice's limit for one series. Choose an earlier end date."
            }
        )
    return starts


@transaction.atomic
def appointment_update(
    *,
    appointment: Appointment,
    actor: User,
    expected_revision: int | None,
    scope: str = SCOPE_THIS,
    allow_conflicts: bool = False,
    **fields,
) -> Appointment:
    """Change an appointment (and, with scope "following", the same change in every
    later occurrence of its series; a move shifts each by the same number of days to
    the same new local time). Refuses a stale form (StaleAppointment) and overlaps
    (SchedulingConflict) unless ``allow_conflicts``. Nothing changes if nothing
    differs."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"Unknown appointment fields: {sorted(unknown)}")
    current = _lock(appointment, expected_revision)
    practice = current.practice
    old_patients = list(current.patients.all())
    old = {
        name: getattr(current, name) for name in EDITABLE_FIELDS if name != "patients"
    }
    old["patients"] = old_patients
    new = {**old, **fields}
    new["patients"] = list(new["patients"])
    if "title" in fields:
        new["title"] = single_line(new["title"])
    if current.kind == Appointment.Kind.SESSION:
        new["title"] = ""
    old_patient_ids = {patient.pk for patient in old_patients}
    _check_appointment(
        practice=practice,
        clinician=new["clinician"],
        kind=current.kind,
        patients=new["patients"],
        title=new["title"],
        service=new["service"],
        location=new["location"],
        start=new["start"],
        end=new["end"],
        clinician_changed=new["clinician"].pk != current.clinician_id,
        new_patients=[p for p in new["patients"] if p.pk not in old_patient_ids],
        new_service=new["service"] is not None
        and new["service"].pk != current.service_id,
        new_location=new["location"] is not None
        and new["location"].pk != current.location_id,
    )

    def differs(name):
        if name == "patients":
            return {p.pk for p in new["patients"]} != old_patient_ids
        return new[name] != old[name]

    changed = [name for name in EDITABLE_FIELDS if differs(name)]
    if not changed:
        return current
    targets = _following(current, scope=scope)
    zone = practice.zone
    old_local = _local(practice, old["start"])
    new_local = _local(practice, new["start"])
    day_shift = new_local.date() - old_local.date()
    duration = new["end"] - new["start"]
    moves = "start" in changed or "end" in changed
    plans = []
    for target in targets:
        values = {name: new[name] for name in changed}
        if target.pk != current.pk and moves:
            target_day = _local(practice, target.start).date() + day_shift
            begin = local_to_utc_or_later(
                datetime.combine(target_day, new_local.time()), zone
            )
            values["start"], values["end"] = begin, begin + duration
        plans.append((target, values))
    if not allow_conflicts and {"start", "end", "clinician", "patients"} & set(changed):
        proposals = []
        for target, values in plans:
            if target.is_cancelled:
                continue
            proposals.append(
                (
                    values.get("clinician", new["clinician"]),
                    new["patients"],
                    values.get("start", target.start),
                    values.get("end", target.end),
                )
            )
        conflicts = _conflicts(
            practice=practice,
            proposals=proposals,
            exclude_ids=[target.pk for target, _ in plans],
            # A change of patients alone leaves the clinician's time as it was.
            busy=bool({"start", "end", "clinician"} & set(changed)),
        )
        if conflicts:
            raise SchedulingConflict(conflicts)
    # What the history needs of each later occurrence's old values, in one query
    # per relation rather than one per occurrence.
    relations = [name for name in changed if name in RELATED_FIELDS]
    if relations:
        prefetch_related_objects(
            [target for target, _values in plans if target.pk != current.pk],
            *relations,
        )
    history = []
    written = []
    for target, values in plans:
        before_patients = (
            (old_patients if target.pk == current.pk else list(target.patients.all()))
            if "patients" in values
            else None
        )
        record = {}
        for name, value in values.items():
            if name == "patients":
                before = before_patients
            else:
                before = getattr(target, name)
                setattr(target, name, value)
            described = (
                _describe(practice, name, before),
                _describe(practice, name, value),
            )
            if described[0] != described[1]:
                record[name] = list(described)
        if not record:
            continue
        appointment_touch(target, published=bool(set(record) & set(PUBLISHED_FIELDS)))
        written.append(target)
        if target.pk != current.pk:
            record["scope"] = "this and following"
        history.append(
            _record(
                target,
                actor=actor,
                action=AppointmentChange.Action.CHANGED,
                changes=record,
            )
        )
    if written:
        # _check_appointment has checked the new values; occurrences differ from
        # the first only by the day, so one full_clean covers them all (and the
        # database's constraints still guard every row).
        written[0].full_clean(exclude=["patients"], validate_unique=False)
        Appointment.objects.bulk_update(
            written,
            [
                *(name for name in changed if name != "patients"),
                "sequence",
                "revision",
                "updated_at",
            ],
        )
        if "patients" in changed:
            _link_patients(written, new["patients"])
    AppointmentChange.objects.bulk_create(history)
    return current


@transaction.atomic
def appointment_set_status(
    *,
    appointment: Appointment,
    actor: User,
    status: str,
    expected_revision: int | None,
    scope: str = SCOPE_THIS,
) -> Appointment:
    """Move an appointment to ``status`` as the transitions table allows, outcomes
    (attended, no-show) only once it has started (StatusTransitionError otherwise).
    With scope "following", later occurrences of the series follow where that allows
    it and are left alone where not."""
    current = _lock(appointment, expected_revision)
    now = timezone.now()
    current.check_transition(status, now=now)
    action = (
        AppointmentChange.Action.CANCELLED
        if status in Appointment.CANCELLED_STATUSES
        else AppointmentChange.Action.STATUS
    )
    history = []
    changed = []
    for target in _following(current, scope=scope):
        if status not in target.allowed_statuses(now=now):
            continue
        record = {
            "status": [
                _describe(current.practice, "status", target.status),
                _describe(current.practice, "status", status),
            ]
        }
        if target.pk != current.pk:
            record["scope"] = "this and following"
        target.set_status(status, now=now)
        changed.append(target)
        history.append((target, record))
    _publish(changed, fields=["status", "cancelled_at"])
    AppointmentChange.objects.bulk_create(
        [
            _record(target, actor=actor, action=action, changes=record)
            for target, record in history
        ]
    )
    return current


@transaction.atomic
def appointment_delete(
    *,
    appointment: Appointment,
    actor: User,
    expected_revision: int | None,
    scope: str = SCOPE_THIS,
) -> list[Appointment]:
    """Delete an appointment (with scope "following", also the later occurrences of
    its series). Deletion is soft: the row stays, marked ``deleted_at``, so synced
    calendars learn it is gone. Returns what was deleted."""
    current = _lock(appointment, expected_revision)
    targets = _following(current, scope=scope)
    now = timezone.now()
    for target in targets:
        target.deleted_at = now
    _publish(targets, fields=["deleted_at"])
    history = []
    for target in targets:
        record = {"scope": "this and following"} if target.pk != current.pk else {}
        history.append(
            _record(
                target,
                actor=actor,
                action=AppointmentChange.Action.DELETED,
                changes=record,
            )
        )
    AppointmentChange.objects.bulk_create(history)
    return targets
