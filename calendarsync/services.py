"""Writes for calendar sync: issuing, resetting, disabling and enabling links, the
practice-wide switch, emailing a link, and remembering what was served to whom."""

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from calendarsync import tasks, tokens
from calendarsync.freshness import Tallied, first_in, tally, window_count
from calendarsync.models import FeedAccess, FeedFetch, FeedLink, FeedScope, new_salt
from calendarsync.permissions import access_own_feed_link, may_sync_calendar
from calendarsync.pushstop import calendar_account_pause
from calendarsync.selectors import SyncCalendar, feed_link_title, sync_calendar_list
from practice.models import AuditEvent, Practice, User
from practice.services import audit_record

EMAILS_PER_HOUR = 5
FETCH_RECORD_SECONDS = 60
FETCH_AUDIT_SECONDS = 24 * 3600
MAX_NETWORKS = 50


@dataclass
class IssuedLink:
    """A calendar with its current link, as the Settings page shows it."""

    calendar: SyncCalendar
    link: FeedLink
    token: str
    fetches: list[FeedFetch] = field(default_factory=list)

    @property
    def https_url(self) -> str:
        return feed_url(self.token)

    @property
    def webcal_url(self) -> str:
        return webcal_url(self.https_url)

    @property
    def dom_id(self) -> str:
        return f"feed-{self.link.scope}-{self.link.clinician_id or 'all'}"


def feed_url(token: str) -> str:
    """The https address of a feed, built from SITE_URL (never the Host header)."""
    return settings.SITE_URL + reverse("calendarsync:feed", args=[token])


def webcal_url(https_url: str) -> str:
    """The same feed address with the webcal scheme calendar applications open."""
    return "webcal://" + https_url.split("://", 1)[1]


def link_token(link: FeedLink) -> str:
    return tokens.make_token(
        user_id=link.access.user_id,
        scope=link.scope,
        clinician_id=link.clinician_id,
        public_id=link.public_id,
        salt=link.access.secret_salt,
    )


@transaction.atomic
def feed_access_ensure(*, user: User) -> FeedAccess:
    """The user's sync access, created switched on the first time it is needed."""
    access, _ = FeedAccess.objects.get_or_create(
        user=user, defaults={"practice_id": user.practice_id}
    )
    return access


def _rotate(access: FeedAccess, *, enabled: bool, now: datetime) -> None:
    # New material and no link rows: no earlier token can match again.
    access.secret_salt = new_salt()
    access.enabled = enabled
    access.changed_at = now
    access.full_clean()
    access.save()
    FeedLink.objects.filter(access=access).delete()


def _feed_access_switch(
    *, user: User, actor: User, client_ip: str | None, enabled: bool | None, kind: str
) -> FeedAccess:
    # enabled=None is a reset: it always rotates and keeps the switch where it is;
    # disable and enable act only when they change something.
    access = _locked_access(user)
    reset = enabled is None
    if not reset and access.enabled == enabled:
        return access
    now = timezone.now()
    _rotate(access, enabled=access.enabled if reset else enabled, now=now)
    if reset:
        access.reset_at = now
        access.save(update_fields=["reset_at"])
        # A reset cuts everything off: the calendar account's push too.
        calendar_account_pause(user=user, now=now)
    audit_record(
        kind=kind,
        practice=user.practice,
        actor=actor,
        target_user=user,
        client_ip=client_ip,
    )
    return access


@transaction.atomic
def feed_access_reset(*, user: User, actor: User, client_ip: str | None) -> FeedAccess:
    """Issue new links for every calendar of ``user``; every old link stops at once."""
    return _feed_access_switch(
        user=user,
        actor=actor,
        client_ip=client_ip,
        enabled=None,
        kind=AuditEvent.Kind.SYNC_RESET,
    )


@transaction.atomic
def feed_access_disable(
    *, user: User, actor: User, client_ip: str | None
) -> FeedAccess:
    """Turn calendar sync off for ``user``: all their links stop working."""
    return _feed_access_switch(
        user=user,
        actor=actor,
        client_ip=client_ip,
        enabled=False,
        kind=AuditEvent.Kind.SYNC_DISABLED,
    )


@transaction.atomic
def feed_access_enable(*, user: User, actor: User, client_ip: str | None) -> FeedAccess:
    """Turn calendar sync back on for ``user`` with new links (never the old ones)."""
    return _feed_access_switch(
        user=user,
        actor=actor,
        client_ip=client_ip,
        enabled=True,
        kind=AuditEvent.Kind.SYNC_ENABLED,
    )


def _locked_access(user: User) -> FeedAccess:
    feed_access_ensure(user=user)
    return FeedAccess.objects.select_for_update().get(user=user)


@transaction.atomic
def feed_links_prune(*, user: User) -> int:
    """Delete every link that ``user`` (just deactivated, or with other roles) may
    no longer read, and every colleague's link to ``user``'s calendar that no
    longer shows: the fetch refused them already, and deleting them means that
    reactivating the user or giving a role back issues new links instead of
    reviving the old ones. Returns how many were deleted."""
    links = FeedLink.objects.filter(
        Q(access__user=user) | Q(clinician=user)
    ).select_related("access__user", "clinician")
    dead = [
        link.pk
        for link in links
        if not may_sync_calendar(
            user=link.access.user, scope=link.scope, clinician=link.clinician
        )
    ]
    if dead:
        FeedLink.objects.filter(pk__in=dead).delete()
    return len(dead)


@transaction.atomic
def practice_sync_set(
    *, practice: Practice, enabled: bool, actor: User, client_ip: str | None
) -> Practice:
    """Switch calendar sync on or off for the whole practice (every link at once)."""
    practice = Practice.objects.select_for_update().get(pk=practice.pk)
    if practice.calendar_sync_enabled == enabled:
        return practice
    practice.calendar_sync_enabled = enabled
    practice.full_clean()
    practice.save(update_fields=["calendar_sync_enabled"])
    audit_record(
        kind=(
            AuditEvent.Kind.SYNC_PRACTICE_ON
            if enabled
            else AuditEvent.Kind.SYNC_PRACTICE_OFF
        ),
        practice=practice,
        actor=actor,
        client_ip=client_ip,
    )
    return practice


@transaction.atomic
def feed_links_issue(*, user: User) -> tuple[FeedAccess, list[IssuedLink]]:
    """The user's access and current link for every calendar they may sync, creating
    the link rows that do not exist yet. No links when their access or the
    practice's sync is off."""
    access = feed_access_ensure(user=user)
    if not access.enabled or not user.practice.calendar_sync_enabled:
        return access, []
    calendars = sync_calendar_list(user=user, busy=access.busy_link_enabled)
    wanted = {
        (
            calendar.scope,
            calendar.clinician.pk if calendar.clinician else None,
        ): calendar
        for calendar in calendars
    }
    existing = _links_by_calendar(access)
    missing = [
        FeedLink(access=access, scope=calendar.scope, clinician=calendar.clinician)
        for key, calendar in wanted.items()
        if key not in existing
    ]
    if missing:
        for link in missing:
            link.full_clean(exclude=["access", "clinician"], validate_constraints=False)
        # Two first visits at once may both try: keep whichever row won.
        FeedLink.objects.bulk_create(missing, ignore_conflicts=True)
        existing = _links_by_calendar(access)
    issued = []
    for key, calendar in wanted.items():
        link = existing[key]
        link.access = access
        # Newest first, by FeedFetch's default ordering.
        fetches = list(link.fetches.all())
        issued.append(IssuedLink(calendar, link, link_token(link), fetches))
    return access, issued


def _links_by_calendar(access: FeedAccess) -> dict[tuple, FeedLink]:
    links = FeedLink.objects.filter(access=access).prefetch_related("fetches")
    return {(link.scope, link.clinician_id): link for link in links}


def feed_link_email(*, user: User, link: FeedLink, client_ip: str | None) -> None:
    """Queue an email of one of the user's links to the user's own address (at most
    ``EMAILS_PER_HOUR`` an hour); the worker sends it (``feed_link_email_deliver``)."""
    key = f"calendarsync:email:{user.pk}"
    if window_count(key, seconds=3600) > EMAILS_PER_HOUR:
        raise ValidationError(
            "You have asked for several emails in the last hour. Please wait an hour, "
            "or copy the link from this page instead.",
            code="rate_limited",
        )
    # Only the link's public id goes in the queue (a table in the database): the
    # secret link is made when the email is written.
    transaction.on_commit(
        partial(
            tasks.feed_link_email.enqueue,
            user_id=user.pk,
            public_id=link.public_id,
            client_ip=client_ip,
        )
    )


def feed_link_email_deliver(
    *, user_id: int, public_id: str, client_ip: str | None
) -> None:
    """Email the user's link with this public id to the user's own address, if the
    user may still read it. Runs in the background worker."""
    user = (
        User.objects.filter(pk=user_id, is_active=True)
        .select_related("practice")
        .first()
    )
    if user is None:
        return
    try:
        link = access_own_feed_link(user, public_id)
    except Http404:
        return  # reset, disabled or no longer theirs since it was asked for
    title = feed_link_title(link=link)
    https = feed_url(link_token(link))
    context = {
        "user": user,
        "title": title,
        "https_url": https,
        "webcal_url": webcal_url(https),
        "site_url": settings.SITE_URL,
        "busy": link.scope == FeedScope.BUSY,
    }
    EmailMessage(
        subject=f"Your Tend calendar link: {title}",
        body=render_to_string("calendarsync/link_email.txt", context),
        to=[user.email],
    ).send()
    audit_record(
        kind=AuditEvent.Kind.SYNC_LINK_EMAILED,
        practice=user.practice,
        actor=user,
        target_user=user,
        client_ip=client_ip,
        details={"calendar": link.scope, "clinician_id": link.clinician_id},
    )


def feed_link_mark_served(
    *, link: FeedLink, etag: str, changed_at: datetime, key: str = ""
) -> datetime:
    """The Last-Modified to send with ``etag``, remembered on the link with the
    cache ``key`` of those bytes (one write, only when either changed).

    It only moves forward, and it moves whenever the bytes change, even when the
    change happened in the same second as the last one served: so a client's
    If-Modified-Since can never earn a 304 for bytes it does not have."""
    changed_at = changed_at.replace(microsecond=0)
    previous = link.served_last_modified
    if link.served_etag == etag and previous is not None:
        if link.served_key != key:
            FeedLink.objects.filter(pk=link.pk).update(served_key=key)
            link.served_key = key
        return previous
    last_modified = changed_at
    if previous is not None and last_modified <= previous:
        last_modified = previous + timedelta(seconds=1)
    FeedLink.objects.filter(pk=link.pk).update(
        served_etag=etag, served_last_modified=last_modified, served_key=key
    )
    link.served_etag, link.served_last_modified = etag, last_modified
    link.served_key = key
    return last_modified


def address_network(address: str | None) -> str | None:
    """The network an address belongs to, as wide as one provider's customers
    usually are: IPv4 /16, IPv6 /32."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    prefix = 16 if ip.version == 4 else 32
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def fetch_tally_key(public_id: str, family: str) -> str:
    """Where polls of a link by one client family are counted between writes."""
    return f"fetches:{public_id}:{family}"


def feed_fetch_record(
    *,
    link_id: int,
    public_id: str,
    family: str,
    address: str | None,
    status: int,
    link: FeedLink | None = None,
    tallied: Tallied | None = None,
) -> None:
    """Remember that a client (of ``family``, ``clients.client_family``) read a
    link: at most one write per link and client family a minute, with the polls
    in between counted (one cache round trip per poll, or none when ``tallied``
    says the poll was already counted). ``link`` (with its access, practice, owner
    and clinician) is loaded only when a write is due, unless the caller has it."""
    pending_key = fetch_tally_key(public_id, family)
    if tallied is None:
        tallied = tally(pending_key, seconds=FETCH_RECORD_SECONDS)
    count = None if tallied is None else tallied.count
    if count is None:
        return
    if link is None:
        link = (
            FeedLink.objects.select_related(
                "access__user", "access__practice", "clinician"
            )
            .filter(pk=link_id)
            .first()
        )
        if link is None:  # reset since
            return
    now = timezone.now()
    network = address_network(address)
    new_network = False
    with transaction.atomic():
        fetch = FeedFetch.objects.filter(link=link, client=family).first()
        if fetch is not None:
            new_client = False
            changes = {}
            if network and network not in fetch.networks:
                new_network = bool(fetch.networks)
                changes["networks"] = [*fetch.networks, network][-MAX_NETWORKS:]
                if new_network:
                    changes["new_network_at"] = now
            FeedFetch.objects.filter(pk=fetch.pk).update(
                last_fetched_at=now,
                fetch_count=F("fetch_count") + count,
                last_address=address,
                last_status=status,
                **changes,
            )
        else:
            FeedFetch.objects.create(
                link=link,
                client=family,
                first_fetched_at=now,
                last_fetched_at=now,
                fetch_count=count,
                last_address=address,
                last_status=status,
                networks=[network] if network else [],
            )
            new_client = True
        if (
            new_client
            or new_network
            or first_in(f"{pending_key}:audited", seconds=FETCH_AUDIT_SECONDS)
        ):
            audit_record(
                kind=AuditEvent.Kind.FEED_FETCHED,
                practice=link.access.practice,
                target_user=link.access.user,
                client_ip=address,
                details={
                    "calendar": link.scope,
                    "calendar_name": (
                        link.clinician.label
                        if link.clinician is not None
                        else FeedScope.PRACTICE.label
                    ),
                    "clinician_id": link.clinician_id,
                    "client": family,
                    "client_name": FeedFetch.Client(family).label,
                    "status": status,
                    "new_client": new_client,
                    "new_network": new_network,
                    "fetches": count,
                },
            )
