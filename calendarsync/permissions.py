"""Who may read which calendar. Checked when a link is shown and again on every
fetch, so a link dies the moment its owner loses the right to it."""

from dataclasses import dataclass

from django.http import Http404

from calendarsync import tokens
from calendarsync.models import BusySource, CalendarAccount, FeedLink, FeedScope
from practice.models import Practice, Role, User


def may_sync_calendar(*, user: User, scope: str, clinician: User | None) -> bool:
    """True when ``user`` may read the calendar ``scope`` (of ``clinician``) now."""
    if not user.is_active or user.practice_id is None:
        return False
    if scope in (FeedScope.PERSONAL, FeedScope.BUSY):
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


def feed_link_authorised(link: FeedLink | None) -> bool:
    """Every rule a fetch must pass besides the secret itself: the owner's access is
    on, the owner still belongs to the practice it was issued in and still holds
    the role, the clinician is still an active clinician there, and the practice
    has not switched sync off; a busy-only link, only while its owner keeps it on."""
    if link is None:
        return False
    access = link.access
    if link.scope == FeedScope.BUSY and not access.busy_link_enabled:
        return False
    return _sync_open(
        user=access.user,
        practice=access.practice,
        access_enabled=access.enabled,
        scope=link.scope,
        clinician=link.clinician,
    )


def _sync_open(
    *,
    user: User,
    practice: Practice,
    access_enabled: bool,
    scope: str,
    clinician: User | None,
) -> bool:
    """The one rule for reading a calendar out of Tend, by a feed or by a push:
    the user's sync access is on, the practice's switch is on, the user still
    belongs to that practice and may read ``scope`` now."""
    return (
        access_enabled
        and practice.calendar_sync_enabled
        and user.practice_id == practice.pk
        and may_sync_calendar(user=user, scope=scope, clinician=clinician)
    )


@dataclass(frozen=True, slots=True)
class FeedGrant:
    """What a token's secret is checked against: the link's identity and its
    owner's salt. Kept in a snapshot so an unchanged poll is checked without a
    query (``calendarsync.freshness``)."""

    user_id: int
    scope: str
    clinician_id: int | None
    public_id: str
    salt: bytes

    @classmethod
    def of(cls, link: FeedLink) -> "FeedGrant":
        return cls(
            user_id=link.access.user_id,
            scope=link.scope,
            clinician_id=link.clinician_id,
            public_id=link.public_id,
            salt=bytes(link.access.secret_salt),
        )

    def dumps(self) -> list:
        return [
            self.user_id,
            self.scope,
            self.clinician_id,
            self.public_id,
            self.salt.hex(),
        ]

    @classmethod
    def loads(cls, value: list) -> "FeedGrant":
        user_id, scope, clinician_id, public_id, salt = value
        return cls(user_id, scope, clinician_id, public_id, bytes.fromhex(salt))


# Spent on a link that does not exist, so timing says nothing about ids.
_NO_GRANT = FeedGrant(user_id=0, scope="", clinician_id=None, public_id="", salt=b"")


def access_feed_grant(grant: FeedGrant | None, secret: str) -> bool:
    """Whether ``secret`` (the private part of a token) opens ``grant``'s link,
    compared in constant time under every current feed key."""
    valid = tokens.check_secret(
        secret=secret,
        user_id=(grant or _NO_GRANT).user_id,
        scope=(grant or _NO_GRANT).scope,
        clinician_id=(grant or _NO_GRANT).clinician_id,
        public_id=(grant or _NO_GRANT).public_id,
        salt=(grant or _NO_GRANT).salt,
    )
    return valid and grant is not None


def access_feed_link(link: FeedLink | None, secret: str) -> FeedLink:
    """``link`` (loaded with its access, owner, practice and clinician) when
    ``secret`` opens it and its owner may read it now; 404 for a missing, reset,
    disabled or no longer authorised link, all alike."""
    grant = None if link is None else FeedGrant.of(link)
    if not access_feed_grant(grant, secret) or link is None:
        raise Http404
    if not feed_link_authorised(link):
        raise Http404
    return link


def access_own_feed_link(user: User, public_id: str) -> FeedLink:
    """One of the user's own current, authorised links, or 404."""
    link = (
        FeedLink.objects.select_related("access__user", "access__practice", "clinician")
        .filter(public_id=public_id, access__user=user)
        .first()
    )
    if link is None or not feed_link_authorised(link):
        raise Http404
    return link


def access_own_calendar_account(user: User) -> CalendarAccount | None:
    """The user's own connected calendar account, if any."""
    if user.practice_id is None:
        return None
    return (
        CalendarAccount.objects.select_related("practice", "user__feed_access")
        .filter(user=user, practice_id=user.practice_id)
        .first()
    )


def access_calendar_account_to_disconnect(
    acting_user: User, user_id: int
) -> CalendarAccount:
    """A calendar account the acting user may disconnect: their own, or, for an
    administrator, anyone's in the practice. 404 otherwise (also when none)."""
    if acting_user.practice_id is None:
        raise Http404
    if acting_user.pk != user_id and not acting_user.has_role(Role.ADMINISTRATOR):
        raise Http404
    account = (
        CalendarAccount.objects.select_related("practice", "user")
        .filter(user_id=user_id, practice_id=acting_user.practice_id)
        .first()
    )
    if account is None:
        raise Http404
    return account


def calendar_account_authorised(account: CalendarAccount) -> bool:
    """Whether Tend may push to ``account`` now: its owner may read their personal
    calendar in the practice the account was connected in."""
    return personal_calendar_open(account.user, practice=account.practice)


def personal_calendar_open(user: User, *, practice: Practice | None = None) -> bool:
    """Whether ``user`` may read their own personal calendar out of Tend now, in
    ``practice`` (their own unless told: a pushed account or a change-notice
    subscription names the practice it was made in): active, still in that
    practice, a clinician, their calendar sync on and the practice's too. The rule
    pushes, change notices and connecting an account follow."""
    practice = practice or user.practice
    if practice is None:
        return False
    access = getattr(user, "feed_access", None)
    return _sync_open(
        user=user,
        practice=practice,
        access_enabled=access is None or access.enabled,
        scope=FeedScope.PERSONAL,
        clinician=user,
    )


def busy_source_authorised(source: BusySource) -> bool:
    """Whether a personal calendar may be read as busy time now: its owner is
    active, still in the practice and a clinician. (Calendar sync's switches are
    about calendars going out of Tend, not coming in.)"""
    owner = source.owner
    return (
        owner.is_active
        and owner.is_clinician
        and owner.practice_id == source.practice_id
    )


def access_own_busy_source(user: User, source_id: int) -> BusySource:
    """One of the user's own busy-time sources, or 404 (the same for another
    user's and for a missing one)."""
    source = (
        BusySource.objects.select_related("calendar", "practice", "owner", "account")
        .filter(pk=source_id, owner=user, practice=user.practice)
        .first()
    )
    if source is None:
        raise Http404
    return source


def calendar_account_sending(account: CalendarAccount) -> bool:
    """Whether a push run writes the schedule into ``account`` (True) or removes
    Tend's events from it (False): Tend may push to it and Reset Access has not
    paused it."""
    return account.paused_at is None and calendar_account_authorised(account)
