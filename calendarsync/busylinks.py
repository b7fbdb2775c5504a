"""Writes for a clinician's busy-only link: turning it on, resetting it, turning it
off. Apart from the personal link's on purpose: the busy-only link is shared with
family or an assistant, so it is renewed or withdrawn without touching the links
the clinician's own devices use.

The link is a ``FeedLink`` of scope ``busy`` like any other (the same token, the
same feed path, the same checks), made by ``services.feed_links_issue`` while
``FeedAccess.busy_link_enabled`` is on. Resetting it deletes only its row: the
next one gets a new public id, which its HMAC covers, so the old address finds no
row and gets the feed's one 404, while the salt of every other link stays as it
was. Reset and Disable Access of the whole account cover it as every other link.
"""

from django.core.exceptions import ValidationError
from django.db import transaction

from calendarsync.models import FeedAccess, FeedLink, FeedScope
from calendarsync.services import feed_access_ensure
from practice.models import AuditEvent, User
from practice.services import audit_record

NOT_A_CLINICIAN = "Busy-only links show a clinician's own appointments."
SYNC_OFF = (
    "Calendar sync is off, so no calendar link works; a busy-only link can be made "
    "once it is on again."
)
NO_LINK = "There is no busy-only link to reset."


def _busy_access(user: User) -> FeedAccess:
    """The user's access, locked, when they may have a busy-only link now."""
    practice = user.practice
    if not user.is_active or not user.is_clinician or practice is None:
        raise ValidationError(NOT_A_CLINICIAN, code="not_clinician")
    feed_access_ensure(user=user)
    access = FeedAccess.objects.select_for_update().get(user=user)
    if not access.enabled or not practice.calendar_sync_enabled:
        raise ValidationError(SYNC_OFF, code="sync_off")
    return access


def _audit(kind: str, *, user: User, client_ip: str | None) -> None:
    audit_record(
        kind=kind,
        practice=user.practice,
        actor=user,
        target_user=user,
        client_ip=client_ip,
        details={"calendar": FeedScope.BUSY},
    )


def _delete_link(access: FeedAccess) -> None:
    FeedLink.objects.filter(access=access, scope=FeedScope.BUSY).delete()


@transaction.atomic
def busy_link_enable(*, user: User, client_ip: str | None) -> FeedAccess:
    """Give the clinician ``user`` a busy-only link (the sync page issues it);
    nothing changes when they have one."""
    access = _busy_access(user)
    if access.busy_link_enabled:
        return access
    access.busy_link_enabled = True
    access.full_clean()
    access.save(update_fields=["busy_link_enabled"])
    _audit(AuditEvent.Kind.BUSY_LINK_ON, user=user, client_ip=client_ip)
    return access


@transaction.atomic
def busy_link_reset(*, user: User, client_ip: str | None) -> FeedAccess:
    """Replace the clinician's busy-only link with a new one; the old address stops
    at once, and every other link of theirs keeps working unchanged."""
    access = _busy_access(user)
    if not access.busy_link_enabled:
        raise ValidationError(NO_LINK, code="no_link")
    _delete_link(access)
    _audit(AuditEvent.Kind.BUSY_LINK_RESET, user=user, client_ip=client_ip)
    return access


@transaction.atomic
def busy_link_disable(*, user: User, client_ip: str | None) -> FeedAccess:
    """Turn the clinician's busy-only link off: it stops at once, and only a new
    one (another address) can be made; every other link keeps working."""
    if user.practice_id is None:
        raise ValidationError(NOT_A_CLINICIAN, code="not_clinician")
    feed_access_ensure(user=user)
    access = FeedAccess.objects.select_for_update().get(user=user)
    if not access.busy_link_enabled:
        return access
    access.busy_link_enabled = False
    access.full_clean()
    access.save(update_fields=["busy_link_enabled"])
    _delete_link(access)
    _audit(AuditEvent.Kind.BUSY_LINK_OFF, user=user, client_ip=client_ip)
    return access
