"""Answering one poll of a calendar feed, top to bottom.

``feed_answer`` is the whole path after the view has the token:

1. ``tokens.split_token``: the public id and the secret, or 404.
2. ``freshness.snapshot_read``: the link's snapshot, if still valid (no query).
   Its grant is checked with ``permissions.access_feed_grant``.
3. Otherwise ``selectors.feed_link_for_poll`` (one query: the link, its owner's
   authority and its calendar's version) and ``permissions.access_feed_link``.
4. ``feed_key`` names the bytes the calendar has now. The bytes last served on
   the link are still these: 304 if the client holds them, else the stored bytes
   (``freshness.feed_bytes_get``). Otherwise ``feed_render`` builds them (one
   query) and ``services.feed_link_mark_served`` remembers them on the link.
5. ``freshness.snapshot_store`` leaves the verdict for the next poll.

What a calendar shows is ``scheduling.publication``'s; this module only picks
which of its days fit and writes them with ``calendarsync.ical``.
"""

import functools
import hashlib
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import deflate
from django.conf import settings
from django.db.models import Case, F, Q, Value, When
from django.http import Http404

from calendarsync import freshness, ical, selectors, services, tokens
from calendarsync.models import FeedLink, FeedScope
from calendarsync.permissions import access_feed_grant, access_feed_link
from scheduling import publication
from scheduling.publication import PublishedAppointment

# Compressed once per version of a feed, then sent on every poll. libdeflate
# (the ``deflate`` package) writes standard gzip that every client reads; at level
# 9 it is ~6% smaller than zlib's best and faster.
GZIP_LEVEL = 9


@dataclass(frozen=True)
class FeedAnswer:
    """What to send for one poll: 304, or 200 with ``gzipped``."""

    status: int
    etag: str
    last_modified: datetime
    gzipped: bytes | None
    link_id: int
    public_id: str
    # The link, loaded, when the poll went to the database (else None).
    link: FeedLink | None
    # The fetch, already counted with the snapshot read (None: not yet).
    tallied: freshness.Tallied | None


def feed_answer(
    *,
    token: str,
    now: datetime,
    family: str,
    client_holds: Callable[[str, datetime], bool],
) -> FeedAnswer:
    """Answer a poll of ``token`` by a client of ``family`` (whose fetch is counted
    in the snapshot's round trip). ``client_holds(etag, last_modified)`` says
    whether the client's conditional headers name those bytes. Raises Http404 for
    every link that does not open a calendar and DatabaseError when the database
    fails (never a partial calendar)."""
    parts = tokens.split_token(token)
    if parts is None:
        raise Http404
    public_id, secret = parts
    known = freshness.snapshot_read(
        public_id,
        now=now,
        tally_key=services.fetch_tally_key(public_id, family),
        seconds=services.FETCH_RECORD_SECONDS,
    )
    poll = _Poll(public_id, secret, now, client_holds, known)
    return _from_snapshot(poll) or _from_database(poll)


@dataclass(frozen=True)
class _Poll:
    public_id: str
    secret: str
    now: datetime
    client_holds: Callable[[str, datetime], bool]
    known: freshness.SnapshotRead

    def holds(self, etag: str, stored: datetime) -> bool:
        """Whether the client holds the bytes of ``etag``, remembered as of
        ``stored``. A date not sent yet (ahead of the clock) cannot be echoed back:
        then only the ETag counts."""
        if last_modified_header(stored, now=self.now) != stored:
            return self.client_holds(etag, datetime.max.replace(tzinfo=UTC))
        return self.client_holds(etag, stored)

    def answer(self, status, etag, stored, gzipped, link_id, link=None) -> FeedAnswer:
        return FeedAnswer(
            status,
            etag,
            last_modified_header(stored, now=self.now),
            gzipped,
            link_id,
            self.public_id,
            link,
            self.known.tallied,
        )

    def served(self, *, etag, stored, key, link_id, link=None) -> FeedAnswer | None:
        """304 or the stored bytes last served on the link; None when they are
        gone."""
        if self.holds(etag, stored):
            return self.answer(304, etag, stored, None, link_id, link)
        entry = freshness.feed_bytes_get(key)
        if entry is None:
            return None
        return self.answer(200, etag, stored, entry.gzipped, link_id, link)


def _from_snapshot(poll: _Poll) -> FeedAnswer | None:
    """The answer from the link's snapshot, with no query; None without one."""
    snapshot = poll.known.snapshot
    if snapshot is None or not access_feed_grant(snapshot.grant, poll.secret):
        return None
    if settings.CALENDAR_FEED_SNAPSHOT_VERIFY:
        _verify(snapshot, public_id=poll.public_id, secret=poll.secret, now=poll.now)
    if snapshot.key != snapshot.served_key or snapshot.served_last_modified is None:
        return None
    return poll.served(
        etag=snapshot.served_etag,
        stored=snapshot.served_last_modified,
        key=snapshot.key,
        link_id=snapshot.link_id,
    )


def _from_database(poll: _Poll) -> FeedAnswer:
    """The answer after the link query: the bytes last served when they are still
    the feed's, else rebuilt; leaves a snapshot for the next poll."""
    now = poll.now
    try:
        link = _authorised_link(public_id=poll.public_id, secret=poll.secret, now=now)
    except Http404:
        if poll.known.tallied is not None:
            freshness.tally_undo(poll.known.tallied)
        raise
    key = feed_key(link=link, now=now)
    answer = None
    if key == link.served_key and link.served_last_modified is not None:
        answer = poll.served(
            etag=link.served_etag,
            stored=link.served_last_modified,
            key=key,
            link_id=link.pk,
            link=link,
        )
    if answer is None:
        rendered = feed_document(link=link, key=key, now=now)
        stored = services.feed_link_mark_served(
            link=link, etag=rendered.etag, changed_at=rendered.changed_at, key=key
        )
        status = 304 if poll.holds(rendered.etag, stored) else 200
        answer = poll.answer(
            status, rendered.etag, stored, rendered.gzipped, link.pk, link
        )
    if _ahead_until(link, now) is None:
        freshness.snapshot_store(link=link, key=key, tag=poll.known.tag, now=now)
    return answer


def _ahead_until(link: FeedLink, now: datetime) -> datetime | None:
    """When the clock reaches the latest change of the link's calendar, if that is
    still ahead of it (several changes within a second are each dated a second
    later). Until then the feed holds those dates back to the present, so its bytes
    depend on the second (``feed_key``) and no snapshot is left."""
    changed = link.version_changed
    return changed if changed is not None and changed > now else None


def last_modified_header(stored: datetime, *, now: datetime) -> datetime:
    """The Last-Modified to send for bytes whose remembered date is ``stored``:
    never later than now. (``stored`` may be ahead of the clock, when several
    changes came within a second; it only ever moves forward.)"""
    return min(stored, now.replace(microsecond=0))


def _authorised_link(*, public_id: str, secret: str, now: datetime) -> FeedLink:
    """The link from the poll's queries, when ``secret`` opens it (404 otherwise)."""
    return access_feed_link(
        selectors.feed_link_for_poll(public_id=public_id, now=now), secret
    )


def _verify(snapshot, *, public_id: str, secret: str, now: datetime) -> None:
    """Fail loudly when the database disagrees with a snapshot about to be used:
    some write did not end it."""
    try:
        link = _authorised_link(public_id=public_id, secret=secret, now=now)
    except Http404:
        raise AssertionError(
            f"Stale feed snapshot: link {public_id} is no longer authorised, but "
            "its snapshot still opens it"
        ) from None
    if feed_key(link=link, now=now) != snapshot.key:
        raise AssertionError(
            f"Stale feed snapshot: the calendar of link {public_id} changed, but "
            "its snapshot still names the old bytes"
        )


# -- the bytes -----------------------------------------------------------------------


def feed_key(*, link: FeedLink, now: datetime) -> str:
    """The key of the bytes ``link`` (from ``selectors.feed_link_for_poll``) would
    be served now: a hash of everything they depend on."""
    practice = link.access.practice
    first_day, _after = publication.calendar_days(
        scope=link.scope, zone=practice.zone, now=now
    )
    # Dates ahead of the clock are published as the present second (see
    # ``publication``): then the bytes are those of this second only.
    ahead = _ahead_until(link, now)
    # A busy-only calendar's UIDs depend on the feed key (``tokens.busy_uid_stem``):
    # a new key means new bytes.
    busy_uids = tokens.busy_uid_stem("") if link.scope == FeedScope.BUSY else ""
    return freshness.feed_cache_key(
        practice.pk,
        link.scope,
        link.clinician_id,
        selectors.feed_calendar_name(link=link),
        practice.time_zone,
        first_day.isoformat(),
        settings.CALENDAR_FEED_MAX_BYTES,
        link.schedule_version,
        "" if ahead is None else now.replace(microsecond=0).isoformat(),
        busy_uids,
    )


@dataclass(frozen=True)
class FeedDocument:
    """A rendered feed and what conditional requests need to know about it."""

    gzipped: bytes
    etag: str  # quoted, strong, of the raw bytes
    changed_at: datetime  # latest change the feed reflects, for this link


def feed_document(*, link: FeedLink, key: str, now: datetime) -> FeedDocument:
    """The feed of ``link`` (from ``selectors.feed_link_for_poll``) whose bytes are
    named ``key``: stored, else rendered (one query) and stored."""
    entry = freshness.feed_bytes_get(key)
    if entry is None:
        entry = feed_render(link=link, now=now)
        freshness.feed_bytes_set(key, entry)
    changed = [link.access.changed_at, link.created_at]
    if entry.latest_change is not None:
        changed.append(entry.latest_change)
    return FeedDocument(gzipped=entry.gzipped, etag=entry.etag, changed_at=max(changed))


@functools.cache
def _min_event_bytes() -> int:
    """Fewer bytes than any event of a feed can take: the shortest one the writer
    can produce, less a margin for the shorter UTC form of DTSTART and DTEND."""
    moment = datetime(2000, 1, 1, tzinfo=UTC)
    shortest = PublishedAppointment(
        uid=str(uuid.UUID(int=0)),
        sequence=0,
        created_at=moment,
        changed_at=moment,
        start=moment,
        end=moment,
        cancelled=False,
        summary="",
        location="",
    )
    return len(ical.render_event(shortest, "UTC")) - 32


def _by_priority(
    link: FeedLink, *, start: datetime, end: datetime, today: datetime, now: datetime
) -> Generator[PublishedAppointment]:
    """The calendar's appointments from today on, by start, then the earlier ones
    from the latest back: the order in which they are kept when the feed must be
    cut to size. At most as many as could fit."""
    appointments = publication.calendar_appointments(
        scope=link.scope,
        practice_id=link.access.practice_id,
        clinician_id=link.clinician_id,
        start=start,
        end=end,
        now=now,
    )
    upcoming = Q(end__gt=today)
    order = (
        Case(When(upcoming, then=Value(0)), default=Value(1)).asc(),
        Case(When(upcoming, then=F("start"))).asc(nulls_last=True),
        F("start").desc(),
        F("id").asc(),
    )
    # No more appointments than could fit (every event takes at least
    # _min_event_bytes, so the size limit is always reached first): a busy
    # practice's window is not read, sorted and sent beyond them. Only worth its
    # subquery when the calendar's version counted more than that.
    most = settings.CALENDAR_FEED_MAX_BYTES // _min_event_bytes() + 1
    if link.version_count is None or link.version_count > most:
        appointments = appointments.model.objects.filter(
            pk__in=appointments.order_by(*order).values("pk")[:most]
        )
    return publication.published_appointments(
        appointments,
        order_by=order,
        with_clinician=link.scope == FeedScope.PRACTICE,
        now=now,
        busy_uid=tokens.busy_uid_stem if link.scope == FeedScope.BUSY else None,
    )


def _day(event: PublishedAppointment, zone, today: datetime) -> date:
    # An appointment still going on at the start of today counts as today's.
    day = event.start.astimezone(zone).date()
    return max(day, today.date()) if event.end > today else day


Rendered = list[tuple[PublishedAppointment, bytes]]


def _fit(
    events: Generator[PublishedAppointment], *, budget: int, zone, today: datetime
) -> tuple[Rendered, date | None]:
    """The events (in priority order) rendered, whole days at a time while they fit
    in ``budget`` bytes, and the first day left out (None: all fit). Reading stops
    at the first event that does not fit."""
    kept: Rendered = []
    day_events: Rendered = []
    current_day = None
    used = day_used = 0
    try:
        for event in events:
            day = _day(event, zone, today)
            if day != current_day:
                kept.extend(day_events)
                used += day_used
                day_events, day_used, current_day = [], 0, day
            fragment = ical.render_event(event, zone.key)
            if used + day_used + len(fragment) > budget:
                return kept, day
            day_events.append((event, fragment))
            day_used += len(fragment)
    finally:
        events.close()
    return kept + day_events, None


def feed_render(*, link: FeedLink, now: datetime) -> freshness.CachedFeed:
    """Build the feed of ``link`` in memory, completely, or raise (one query). When
    it would exceed the
    size limit, whole days are left out, the farthest from today first: today and
    the coming days are kept before the past."""
    practice = link.access.practice
    zone = practice.zone
    zone_key = practice.time_zone
    first_day, after_last_day = publication.calendar_days(
        scope=link.scope, zone=zone, now=now
    )
    last_day = after_last_day - timedelta(days=1)
    today = now.astimezone(zone).date()
    today_start = datetime.combine(today, time(0), tzinfo=zone)
    name = selectors.feed_calendar_name(link=link)
    busy = link.scope == FeedScope.BUSY
    years = ((first_day - timedelta(days=1)).year, after_last_day.year)
    overhead = (
        len(
            ical.calendar_header(name, zone_key, (first_day, last_day), True, busy=busy)
        )
        + len(ical.render_timezone(zone_key, *years))
        # Only when an event needs it (``ical.event_zone``); a few hundred bytes.
        + len(ical.render_timezone(ical.REPEATED_HOUR_ZONE, *years))
        + len(ical.FOOTER)
    )
    budget = settings.CALENDAR_FEED_MAX_BYTES - overhead
    start, end = publication.calendar_bounds(scope=link.scope, zone=zone, now=now)
    events = _by_priority(link, start=start, end=end, today=today_start, now=now)
    kept, dropped_day = _fit(events, budget=budget, zone=zone, today=today_start)
    complete = (first_day, last_day)
    if dropped_day is not None:
        if dropped_day >= today:
            complete = (today, dropped_day - timedelta(days=1))
        else:
            complete = (dropped_day + timedelta(days=1), last_day)
    kept.sort(key=lambda pair: (pair[0].start, pair[0].uid))
    body = ical.render_calendar(
        name=name,
        zone_key=zone_key,
        fragments=[fragment for _event, fragment in kept],
        years=years,
        complete=complete,
        truncated=dropped_day is not None,
        busy=busy,
    )
    latest = max((event.changed_at for event, _ in kept), default=None)
    return freshness.CachedFeed(
        etag=f'"{hashlib.sha256(body).hexdigest()}"',
        gzipped=bytes(deflate.gzip_compress(body, GZIP_LEVEL)),
        latest_change=latest,
    )
