"""Who may see and change which patients and appointments.

Administrators and schedulers see and manage everything in their practice. A clinician
sees their own appointments and the patients who are theirs (primary clinician, or
booked with them), and manages their own appointments only while the practice lets
clinicians schedule themselves. Every ``access_*`` function answers the same 404 for
"missing" and "not yours" (and 403 where the user's role lacks the right at all).
"""

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from practice.models import User
from scheduling.models import Appointment, Location, Patient, Service, Team


def can_schedule_for(user: User, clinician: User) -> bool:
    """Whether ``user`` may create or change appointments of ``clinician``."""
    if user.practice_id is None or user.practice_id != clinician.practice_id:
        return False
    if user.can_manage_all_schedules:
        return True
    return (
        user.is_clinician
        and user.pk == clinician.pk
        and user.practice.clinicians_may_schedule_themselves
    )


def can_schedule_anyone(user: User) -> bool:
    """Whether ``user`` may book at all (for anyone, or for themselves)."""
    if user.can_manage_all_schedules:
        return True
    return user.is_clinician and user.practice.clinicians_may_schedule_themselves


def can_manage_patients(user: User) -> bool:
    """Whether ``user`` may add patients and edit the ones they can see."""
    return can_schedule_anyone(user)


def can_deactivate_patients(user: User) -> bool:
    return user.can_manage_all_schedules


def can_manage_practice_lists(user: User) -> bool:
    """Services and locations are practice settings: administrators only."""
    from practice.models import Role

    return user.has_role(Role.ADMINISTRATOR)


def visible_patients(user: User) -> QuerySet[Patient]:
    """The patients of ``user``'s practice that ``user`` may see."""
    patients = Patient.objects.filter(practice_id=user.practice_id)
    if user.can_manage_all_schedules:
        return patients
    if not user.is_clinician:
        return patients.none()
    booked = Appointment.objects.filter(
        patients=OuterRef("pk"), clinician=user, deleted_at__isnull=True
    )
    return patients.filter(Q(primary_clinician=user) | Exists(booked))


def visible_appointments(user: User) -> QuerySet[Appointment]:
    """The live (not deleted) appointments of ``user``'s practice that ``user`` may
    see."""
    appointments = Appointment.objects.filter(
        practice_id=user.practice_id, deleted_at__isnull=True
    )
    if user.can_manage_all_schedules:
        return appointments
    return appointments.filter(clinician=user)


def access_patient(user: User, patient_id: int, *, for_change: bool = False) -> Patient:
    """A patient ``user`` may see (and, with ``for_change``, edit), or 404."""
    if for_change and not can_manage_patients(user):
        raise Http404
    try:
        return (
            visible_patients(user)
            .select_related("primary_clinician", "practice")
            .get(pk=patient_id)
        )
    except Patient.DoesNotExist:
        raise Http404 from None


def access_patient_for_deactivation(user: User, patient_id: int) -> Patient:
    """A patient ``user`` may deactivate or reactivate: 403 for a user whose role
    does not allow it, 404 for a patient they cannot see."""
    if not can_deactivate_patients(user):
        raise PermissionDenied
    return access_patient(user, patient_id)


def access_appointment(
    user: User, appointment_id: int, *, for_change: bool = False
) -> Appointment:
    """A live appointment ``user`` may see (and, with ``for_change``, change), or
    404."""
    try:
        appointment = (
            visible_appointments(user)
            .select_related("clinician", "service", "location", "series", "practice")
            .prefetch_related("patients")
            .get(pk=appointment_id)
        )
    except Appointment.DoesNotExist:
        raise Http404 from None
    if for_change and not can_schedule_for(user, appointment.clinician):
        raise Http404
    return appointment


def access_service(user: User, service_id: int) -> Service:
    """One of the practice's services, for an administrator, or 404."""
    if not can_manage_practice_lists(user):
        raise Http404
    try:
        return Service.objects.get(pk=service_id, practice_id=user.practice_id)
    except Service.DoesNotExist:
        raise Http404 from None


def access_location(user: User, location_id: int) -> Location:
    """One of the practice's locations, for an administrator, or 404."""
    if not can_manage_practice_lists(user):
        raise Http404
    try:
        return Location.objects.get(pk=location_id, practice_id=user.practice_id)
    except Location.DoesNotExist:
        raise Http404 from None


def access_team(user: User, team_id: int) -> Team:
    """One of the practice's teams, for an administrator, or 404."""
    if not can_manage_practice_lists(user):
        raise Http404
    try:
        return Team.objects.get(pk=team_id, practice=user.practice)
    except Team.DoesNotExist:
        raise Http404 from None


def can_see_busy_time(user: User, clinician: User) -> bool:
    """Whether ``user`` may see ``clinician``'s personal busy time in SCHEDULING:
    wherever they may see the clinician's appointments (the clinician themself,
    schedulers and administrators of the practice). A busy block says no more than
    an appointment's own time does."""
    if user.practice_id is None or user.practice_id != clinician.practice_id:
        return False
    return user.can_manage_all_schedules or user.pk == clinician.pk
