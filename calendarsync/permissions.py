"""Who may read which calendar. Checked when a link is shown and again on every
fetch, so a link dies the moment its owner loses the right to it."""

from collections.abc import Callable

from django.db.models import QuerySet
from django.http import Http404

from calendarsync import tokens
from calendarsync.models import FeedLink, FeedScope
from calendarsync.snapshot import PollSnapshot
from practice.models import User


def may_sync_calendar(*, user: User, scope: str, clinician: User | None) -> bool:
    """True when ``user`` may read the calendar ``scope`` (of ``clinician``) now."""
    if not user.is_active or user.practice_id is None:
        return False
    if scope == FeedScope.PERSONAL:
        return clinician is not None and clinician.pk == user.pk and user.is_clinician
    if scope == FeedScope.CLINICIAN:
        return (
            clinician is not None
            and user.can_manage_all_schedules
            and clinician.is_active
            and clinician.is_clinician
            and clinician.practice_id == user.practice_id
        )
    if scope == FeedScope.PRACTICE:
        return clinician is None and user.can_manage_all_schedules
    return False


def feed_link_authorised(link: FeedLink) -> bool:
    """Every rule a fetch must pass besides the secret itself: the owner's access is
    on, the owner still belongs to the practice it was issued in and still holds
    the role, the clinician is still an active clinician there, and the practice
    has not switched sync off."""
    access = link.access
    user = access.user
    practice = access.practice
    return (
        access.enabled
        and practice.calendar_sync_enabled
        and user.practice_id == access.practice_id
        and may_sync_calendar(user=user, scope=link.scope, clinician=link.clinician)
    )


def feed_link_queryset() -> QuerySet[FeedLink]:
    return FeedLink.objects.select_related(
        "access__user", "access__practice", "clinician"
    )


def access_feed_link_by_token(
    token: str, *, lookup: Callable[[str], FeedLink | None] | None = None
) -> FeedLink:
    """The link a token opens, with its owner, practice and clinician loaded; 404
    for a malformed, unknown, reset, disabled or no longer authorised token.
    ``lookup`` (public id -> link or None, loading what ``feed_link_queryset``
    loads) lets the feed read more in the same query."""
    parts = tokens.split_token(token)
    if parts is None:
        raise Http404
    public_id, secret = parts
    if lookup is None:
        link = feed_link_queryset().filter(public_id=public_id).first()
    else:
        link = lookup(public_id)
    if link is None:
        # Spend the same work as a real check, so timing says nothing about ids.
        tokens.check_secret(
            secret=secret,
            user_id=0,
            scope="",
            clinician_id=None,
            public_id="",
            salt=b"",
        )
        raise Http404
    valid = tokens.check_secret(
        secret=secret,
        user_id=link.access.user_id,
        scope=link.scope,
        clinician_id=link.clinician_id,
        public_id=link.public_id,
        salt=link.access.secret_salt,
    )
    if not valid or not feed_link_authorised(link):
        raise Http404
    return link


def access_feed_snapshot(secret: str, snapshot: PollSnapshot) -> bool:
    """Whether a token's ``secret`` opens the link ``snapshot`` was taken of: the
    HMAC check of ``access_feed_link_by_token``, against the salt the snapshot
    kept. The rest of the link's authority was checked when the snapshot was
    taken, and every change to it ends the snapshot (``calendarsync.snapshot``)."""
    return tokens.check_secret(
        secret=secret,
        user_id=snapshot.user_id,
        scope=snapshot.scope,
        clinician_id=snapshot.clinician_id,
        public_id=snapshot.public_id,
        salt=snapshot.salt,
    )


def access_own_feed_link(user: User, public_id: str) -> FeedLink:
    """One of the user's own current, authorised links, or 404."""
    link = feed_link_queryset().filter(public_id=public_id, access__user=user).first()
    if link is None or not feed_link_authorised(link):
        raise Http404
    return link
