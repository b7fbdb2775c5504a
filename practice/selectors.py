from django.db.models import QuerySet

from practice.models import AllowedNetwork, AuditEvent, Practice, User


def practice_allowed_cidrs(*, practice_id: int) -> list[str]:
    """The practice's allowed networks as CIDR strings (empty: no restriction)."""
    return list(
        AllowedNetwork.objects.filter(practice_id=practice_id).values_list(
            "cidr", flat=True
        )
    )


def user_list(*, practice: Practice) -> QuerySet[User]:
    """Every user of the practice, active first."""
    return User.objects.filter(practice=practice).order_by(
        "-is_active", "display_name", "email"
    )


def clinician_list(
    *, practice: Practice, include_inactive: bool = False
) -> QuerySet[User]:
    """The practice's clinicians, by name."""
    clinicians = User.objects.filter(practice=practice, is_clinician=True)
    if not include_inactive:
        clinicians = clinicians.filter(is_active=True)
    return clinicians.order_by("display_name", "email")


def audit_event_list(*, practice: Practice) -> QuerySet[AuditEvent]:
    """The practice's audit log, newest first."""
    return AuditEvent.objects.filter(practice=practice).select_related(
        "actor", "target_user"
    )
