from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import cast

from django.core.paginator import Page, Paginator
from django.db.models import Exists, OuterRef, Q, QuerySet
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from practice.audit_sentences import audit_sentence
from practice.hooks import (
    AuditPatient,
    audit_patients_described,
    audit_patients_matching,
    calendar_sync_disabled_users,
)
from practice.models import AllowedNetwork, AuditEvent, Practice, User


def practice_allowed_cidrs(*, practice_id: int) -> list[str]:
    """The practice's allowed networks as CIDR strings (empty: no restriction)."""
    return list(
        AllowedNetwork.objects.filter(practice_id=practice_id).values_list(
            "cidr", flat=True
        )
    )


def user_list(*, practice: Practice, with_two_factor: bool = False) -> QuerySet[User]:
    """Every user of the practice, active first; with ``with_two_factor``, each
    carries ``two_factor``: whether they have an authenticator app or a passkey."""
    users = User.objects.filter(practice=practice).order_by(
        "-is_active", "display_name", "email"
    )
    if with_two_factor:
        users = users.annotate(
            two_factor=Exists(
                TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
            )
            | Exists(
                WebAuthnCredential.objects.filter(user=OuterRef("pk"), confirmed=True)
            )
        )
    return users


SYNC_OFF_PRACTICE = "Off — practice-wide sync is off"


def user_list_with_calendar_state(*, practice: Practice) -> list[User]:
    """Every user of the practice as ``user_list`` (with ``two_factor``), each
    carrying ``calendar_state``: whether their calendar links can work, the practice
    switch first, then the account, then their own access."""
    disabled: set[int] = set()
    if practice.calendar_sync_enabled:
        for _receiver, answer in calendar_sync_disabled_users.send(
            sender=None, practice=practice
        ):
            disabled |= set(cast(set[int], answer or set()))
    users = list(user_list(practice=practice, with_two_factor=True))
    for member in users:
        if not practice.calendar_sync_enabled:
            member.calendar_state = SYNC_OFF_PRACTICE  # type: ignore[attr-defined]
        elif not member.is_active:
            member.calendar_state = "Off (deactivated)"  # type: ignore[attr-defined]
        elif member.pk in disabled:
            member.calendar_state = "Off for this user"  # type: ignore[attr-defined]
        else:
            member.calendar_state = "On"  # type: ignore[attr-defined]
    return users


def clinician_list(
    *, practice: Practice, include_inactive: bool = False
) -> QuerySet[User]:
    """The practice's clinicians, by name."""
    clinicians = User.objects.filter(practice=practice, is_clinician=True)
    if not include_inactive:
        clinicians = clinicians.filter(is_active=True)
    return clinicians.order_by("display_name", "email")


@dataclass(frozen=True)
class AuditFilter:
    """What the audit log page was asked to show; empty fields do not filter."""

    actor: User | None = None
    patient_ids: tuple[int, ...] = ()
    kind: str = ""
    first_day: date | None = None
    last_day: date | None = None


def audit_event_list(
    *, practice: Practice, audit_filter: AuditFilter | None = None
) -> QuerySet[AuditEvent]:
    """The practice's audit log, newest first, narrowed by ``audit_filter`` (days
    are whole days in the practice's time zone)."""
    events = AuditEvent.objects.filter(practice=practice).select_related(
        "actor", "target_user"
    )
    if audit_filter is None:
        return events
    if audit_filter.actor is not None:
        events = events.filter(actor=audit_filter.actor)
    if audit_filter.patient_ids:
        concerning = Q()
        for patient_id in audit_filter.patient_ids:
            concerning |= Q(patient_ids__contains=f",{int(patient_id)},")
        events = events.filter(concerning)
    if audit_filter.kind:
        events = events.filter(kind=audit_filter.kind)
    zone = practice.zone
    if audit_filter.first_day is not None:
        events = events.filter(
            created_at__gte=datetime.combine(audit_filter.first_day, time(), zone)
        )
    if audit_filter.last_day is not None:
        after = audit_filter.last_day + timedelta(days=1)
        events = events.filter(created_at__lt=datetime.combine(after, time(), zone))
    return events


def audit_user_choices(*, practice: Practice) -> QuerySet[User]:
    """Everyone of the practice who may appear in its log, deactivated users too."""
    return User.objects.filter(practice=practice).order_by("display_name", "email")


def audit_patients(
    *, practice: Practice, patient_ids: Iterable[int]
) -> dict[int, AuditPatient]:
    """The names and pages of these patients of the practice, as the app that owns
    patients describes them (practice/ cannot read them itself)."""
    ids = sorted(set(patient_ids))
    described: dict[int, AuditPatient] = {}
    if not ids:
        return described
    for _receiver, answer in audit_patients_described.send(
        sender=None, practice=practice, patient_ids=ids
    ):
        described.update(cast(dict[int, AuditPatient], answer or {}))
    return described


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit log page: the event and its patients, each with how
    the app that owns patients describes them (None: not a patient it knows)."""

    event: AuditEvent
    patients: list[tuple[int, AuditPatient | None]]
    sentence: str


def audit_log_page(
    *,
    practice: Practice,
    audit_filter: AuditFilter | None,
    page_number: str | int | None,
    per_page: int,
) -> tuple[Page, list[AuditEntry]]:
    """One page of the practice's filtered log, with its patients described in one
    query for the whole page."""
    page = Paginator(
        audit_event_list(practice=practice, audit_filter=audit_filter), per_page
    ).get_page(page_number)
    events = list(page)
    described = audit_patients(
        practice=practice,
        patient_ids=(pid for event in events for pid in event.patient_id_list),
    )
    return page, [
        AuditEntry(
            event=event,
            patients=[(pid, described.get(pid)) for pid in event.patient_id_list],
            sentence=audit_sentence(event),
        )
        for event in events
    ]


def audit_patient_ids_matching(
    *, practice: Practice, text: str, limit: int
) -> list[int]:
    """Ids of the practice's patients whose name matches ``text``: at most
    ``limit`` + 1, so that the caller can tell "too many"."""
    found: list[int] = []
    for _receiver, answer in audit_patients_matching.send(
        sender=None, practice=practice, text=text, limit=limit
    ):
        found.extend(cast(list[int], answer or []))
    return found[: limit + 1]
