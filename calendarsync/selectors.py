"""Reads for calendar sync: which calendars a user may have, what a feed contains,
and every user's sync state for administrators."""

import functools
import gzip
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import deflate
from django.conf import settings
from django.db import connection, connections
from django.db.models import Count, Max, Q, QuerySet
from django.db.models.expressions import Col
from django.http import Http404

from calendarsync import ical, tokens
from calendarsync.cache import (
    CachedFeed,
    Tallied,
    feed_cache_get,
    feed_cache_key,
    feed_cache_set,
    tally_undo,
)
from calendarsync.models import FeedAccess, FeedLink, FeedScope
from calendarsync.permissions import access_feed_link_by_token, access_feed_snapshot
from calendarsync.snapshot import PollSnapshot, SnapshotTag, snapshot_read
from practice.models import ROLE_FIELDS, Practice, User
from practice.selectors import clinician_list, user_list
from scheduling.models import Appointment
from scheduling.names import initials

# How far a feed reaches, in days back and ahead of today in the practice's zone.
WINDOWS = {
    FeedScope.PERSONAL: (60, 365),
    FeedScope.CLINICIAN: (60, 365),
    FeedScope.PRACTICE: (14, 90),
}
# Cancelled and deleted appointments stay this long (as cancelled), then drop out.
CANCELLED_RETENTION = timedelta(days=30)
# Compressed once per version of a feed, then sent on every poll. libdeflate
# (the ``deflate`` package) writes standard gzip that every client reads; at level
# 9 it is ~6% smaller than zlib's best and faster. Levels 10-12 gain 3% more for
# five to fifteen times the time, which a rebuild on request cannot spend.
GZIP_LEVEL = 9


# Initials are derived in one place (scheduling.names); remembered here because a
# feed asks for the same few hundred names thousands of times.
_initials = functools.lru_cache(maxsize=100_000)(initials)


# Likewise the published text of a summary and a location: the same few thousand
# combinations recur in every rebuild, and cleaning text is per character.
@functools.lru_cache(maxsize=100_000)
def _summary(
    is_event: bool, title: str, initials: tuple[str, ...], clinician_label: str | None
) -> str:
    return ical.event_summary(
        is_event=is_event,
        title=title,
        initials=list(initials),
        clinician_label=clinician_label,
    )


@functools.lru_cache(maxsize=10_000)
def _location(name: str | None, is_telehealth: bool) -> str:
    return ical.event_location(name=name, is_telehealth=is_telehealth)


PERSONAL_TITLE = "Your personal calendar"


@dataclass(frozen=True)
class SyncCalendar:
    """A calendar a user may subscribe to (before any link is issued for it)."""

    scope: str
    clinician: User | None
    title: str


def sync_calendar_list(*, user: User) -> list[SyncCalendar]:
    """The calendars ``user`` may sync now: their own (clinicians), then every active
    clinician's and the practice-wide one (schedulers and administrators)."""
    calendars = []
    if user.is_clinician:
        calendars.append(SyncCalendar(FeedScope.PERSONAL, user, PERSONAL_TITLE))
    if user.can_manage_all_schedules:
        clinicians = clinician_list(practice=user.practice)
        calendars.extend(
            SyncCalendar(FeedScope.CLINICIAN, clinician, clinician.label)
            for clinician in clinicians
            if clinician.pk != user.pk or not user.is_clinician
        )
        calendars.append(
            SyncCalendar(FeedScope.PRACTICE, None, FeedScope.PRACTICE.label)
        )
    return calendars


def feed_link_title(*, link: FeedLink) -> str:
    """How the Settings page and emails name the calendar of a link."""
    if link.scope == FeedScope.PERSONAL:
        return PERSONAL_TITLE
    if link.scope == FeedScope.PRACTICE:
        return FeedScope.PRACTICE.label
    return link.clinician.label


def feed_calendar_name(*, link: FeedLink) -> str:
    """What a subscribed application calls the calendar."""
    if link.scope == FeedScope.PRACTICE:
        return f"{link.access.practice.name} — all clinicians"
    return f"{link.clinician.label} — Tend"


def feed_window(*, scope: str, practice: Practice, now: datetime) -> tuple[date, date]:
    """First day and the day after the last day of a feed, in the practice's zone."""
    back, ahead = WINDOWS[scope]
    today = now.astimezone(practice.zone).date()
    return today - timedelta(days=back), today + timedelta(days=ahead + 1)


def _visible(now: datetime) -> Q:
    """Appointments a feed shows: current ones, and cancelled or deleted ones for
    ``CANCELLED_RETENTION`` after the change."""
    cutoff = now - CANCELLED_RETENTION
    return (
        Q(deleted_at__isnull=True) & ~Q(status__in=Appointment.CANCELLED_STATUSES)
        | Q(
            deleted_at__isnull=True,
            status__in=Appointment.CANCELLED_STATUSES,
            updated_at__gte=cutoff,
        )
        | Q(deleted_at__gte=cutoff)
    )


EVENT_COLUMNS = (
    "id",
    "uid",
    "sequence",
    "created_at",
    "updated_at",
    "deleted_at",
    "status",
    "kind",
    "title",
    "start",
    "end",
    "clinician_id",
    "clinician__display_name",
    "clinician__credentials",
    "clinician__email",
    "location__name",
    "location__is_telehealth",
    "patients__first_name",
    "patients__last_name",
)


@functools.cache
def _min_event_bytes() -> int:
    """Fewer bytes than any event of a feed can take: the shortest one the writer
    can produce, less a margin for the shorter UTC form of DTSTART and DTEND."""
    moment = datetime(2000, 1, 1, tzinfo=UTC)
    shortest = ical.FeedEvent(
        uid=str(uuid.UUID(int=0)),
        sequence=0,
        created_at=moment,
        updated_at=moment,
        start=moment,
        end=moment,
        cancelled=False,
        summary="",
        location="",
    )
    return len(ical.render_event(shortest, "UTC")) - 32


def _rows(queryset: QuerySet, chunk_size: int = 500):
    """The rows of a values_list query, converted, from an ordinary cursor a chunk
    at a time: unlike ``QuerySet.iterator()`` on PostgreSQL (a server-side cursor,
    one round trip per chunk), and unlike iterating the queryset or Django's
    non-chunked ``results_iter`` (every row turned into Python objects at once, the
    largest part of a rebuild's memory). Closing the generator early closes the
    cursor."""
    compiler = queryset.query.get_compiler(using=queryset.db)
    sql, params = compiler.as_sql()
    converters = compiler.get_converters(
        [column for column, *_rest in compiler.select[: compiler.col_count]]
    )
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(chunk_size):
            if converters:
                chunk = compiler.apply_converters(chunk, converters)
            yield from map(tuple, chunk)


def feed_event_list(
    *,
    link: FeedLink,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
    max_bytes: int | None = None,
    zone_key: str = "UTC",
) -> tuple[list[ical.FeedEvent], datetime | None]:
    """The events of a feed, ordered by start, and the latest change among them.

    One query (one row per appointment and patient), so the feed is read from a
    single snapshot: it can never mix two states of the schedule. With
    ``max_bytes``, reading stops at the first event whose rendering (in
    ``zone_key``) no longer fits: a feed cut to size never reads, keeps or renders
    the rest of a busy practice's window."""
    practice_id = link.access.practice_id
    appointments = Appointment.objects.filter(
        _visible(now),
        practice_id=practice_id,
        start__lt=window_end,
        end__gt=window_start,
    )
    if link.scope != FeedScope.PRACTICE:
        appointments = appointments.filter(clinician_id=link.clinician_id)
    if max_bytes is not None:
        # No more events than this can fit, so a busy practice's window is not
        # read (and sorted, and sent) beyond them; one more shows where to cut.
        most = max_bytes // _min_event_bytes() + 1
        appointments = Appointment.objects.filter(
            pk__in=appointments.order_by("start", "id").values("pk")[:most]
        )
    rows = _rows(
        appointments.order_by("start", "id", "patients__id").values_list(*EVENT_COLUMNS)
    )
    used = 0
    with_clinician = link.scope == FeedScope.PRACTICE
    labels: dict[int, str] = {}
    events: list[ical.FeedEvent] = []
    latest: datetime | None = None
    current_id = None
    current: tuple | None = None
    patient_initials: list[str] = []

    def finish():
        nonlocal latest
        if current is None:
            return
        (
            _id,
            uid,
            sequence,
            created_at,
            updated_at,
            deleted_at,
            status,
            kind,
            title,
            start,
            end,
            clinician_id,
            *_rest,
        ) = current
        location_name, is_telehealth = current[15], current[16]
        changed = max(updated_at, deleted_at) if deleted_at else updated_at
        latest = changed if latest is None else max(latest, changed)
        clinician_label = labels[clinician_id] if with_clinician else None
        events.append(
            ical.FeedEvent(
                uid=str(uid),
                # A deletion is a change a calendar must notice even if nothing
                # else about the appointment moved.
                sequence=sequence + (1 if deleted_at else 0),
                created_at=created_at,
                updated_at=changed,
                start=start,
                end=end,
                cancelled=bool(deleted_at) or status in Appointment.CANCELLED_STATUSES,
                summary=_summary(
                    kind == Appointment.Kind.EVENT,
                    title,
                    tuple(patient_initials),
                    clinician_label,
                ),
                location=_location(location_name, bool(is_telehealth)),
            )
        )

    for row in rows:
        if row[0] != current_id:
            finish()
            if max_bytes is not None and events:
                used += len(ical.render_event(events[-1], zone_key))
                if used > max_bytes:
                    current = None  # one event past the limit is enough
                    break
            current_id, current = row[0], row
            patient_initials = []
            if row[11] not in labels:
                labels[row[11]] = User(
                    display_name=row[12], credentials=row[13], email=row[14]
                ).label
        if row[17] is not None or row[18] is not None:
            patient_initials.append(_initials(row[17] or "", row[18] or ""))
    finish()
    return events, latest


@dataclass(frozen=True)
class FeedDocument:
    """A rendered feed and what conditional requests need to know about it."""

    gzipped: bytes
    etag: str  # quoted, strong, of the raw bytes
    changed_at: datetime  # latest change the feed reflects, for this link
    raw_length: int
    event_count: int
    truncated: bool
    key: str

    @property
    def body(self) -> bytes:
        """The feed as served to a client that does not accept gzip."""
        return gzip.decompress(self.gzipped)


def _version_window(scope: str, now: datetime) -> tuple[datetime, datetime]:
    # In UTC days, two days wider each side than any practice's local window, so
    # it can be computed before the practice (and its zone) is loaded. Wider only
    # costs an occasional needless rebuild, never a missed change.
    back, ahead = WINDOWS[scope]
    today = now.astimezone(UTC).date()
    return (
        datetime.combine(today - timedelta(days=back + 2), time(0), tzinfo=UTC),
        datetime.combine(today + timedelta(days=ahead + 3), time(0), tzinfo=UTC),
    )


@functools.cache
def _version_sql(vendor: str) -> str:
    """The schedule-version column of the link query, as SQL.

    Hand-written rather than built from ORM expressions because it runs on every
    poll, and compiling the equivalent Subquery/Case/Concat tree cost several
    milliseconds a request — ten times the query itself. It is plain SQL that
    PostgreSQL and SQLite both run, correlated with the link query's own tables
    (which select_related joins without aliases)."""
    appointment = Appointment._meta.db_table
    user = User._meta.db_table
    link = FeedLink._meta.db_table
    access = FeedAccess._meta.db_table
    aggregate = "string_agg" if vendor == "postgresql" else "group_concat"

    def schedule(match: str) -> str:
        # Count, visible count (a cancelled appointment drops out after
        # CANCELLED_RETENTION without any write), latest update and deletion.
        return f"""(SELECT CAST(COUNT(*) AS TEXT)
            || '/' || CAST(COALESCE(SUM(CASE WHEN
                (a.deleted_at IS NULL AND a.status NOT IN (%s, %s))
                OR (a.deleted_at IS NULL AND a.status IN (%s, %s)
                    AND a.updated_at >= %s)
                OR a.deleted_at >= %s
                THEN 1 ELSE 0 END), 0) AS TEXT)
            || '/' || COALESCE(CAST(MAX(a.updated_at) AS TEXT), '')
            || '/' || COALESCE(CAST(MAX(a.deleted_at) AS TEXT), '')
            FROM "{appointment}" a
            WHERE {match} AND a.start < %s AND a."end" > %s)"""  # noqa: S608

    # Everything the practice's users' labels are made of, for the practice-wide
    # calendar, whose events name their clinician. No ORDER BY (SQLite cannot):
    # another order only costs a needless rebuild; a rename always changes it.
    names = f"""(SELECT COALESCE({aggregate}(CAST(u.id AS TEXT) || %s
            || u.display_name || %s || u.credentials || %s || u.email, %s), '')
            FROM "{user}" u WHERE u.practice_id = "{access}"."practice_id")"""  # noqa: S608
    return f"""CASE WHEN "{link}"."scope" = %s
        THEN {schedule(f'a.practice_id = "{access}"."practice_id"')}
            || '#' || {names}
        ELSE {schedule(f'a.clinician_id = "{link}"."clinician_id"')} END"""


def _version_params(now: datetime) -> list:
    adapt = connection.ops.adapt_datetimefield_value
    cutoff = adapt(now - CANCELLED_RETENTION)
    statuses = [str(status) for status in Appointment.CANCELLED_STATUSES]

    def schedule(scope: str) -> list:
        start, end = _version_window(scope, now)
        return [*statuses, *statuses, cutoff, cutoff, adapt(end), adapt(start)]

    return [
        str(FeedScope.PRACTICE),
        *schedule(FeedScope.PRACTICE),
        "\x1e",
        "\x1e",
        "\x1e",
        "\x1f",
        *schedule(FeedScope.CLINICIAN),
    ]


# What a poll reads, table by table: exactly what the authority check, the cache
# key, Last-Modified and the fetch record need (anything else loads on access).
POLL_COLUMNS = (
    (
        FeedLink,
        None,
        (
            "id",
            "access_id",
            "scope",
            "clinician_id",
            "public_id",
            "created_at",
            "served_etag",
            "served_last_modified",
            "served_key",
        ),
    ),
    (
        FeedAccess,
        None,
        ("id", "practice_id", "user_id", "enabled", "secret_salt", "changed_at"),
    ),
    (User, "owner", ("id", "practice_id", "is_active", *ROLE_FIELDS.values())),
    (Practice, None, ("id", "name", "time_zone", "calendar_sync_enabled")),
    (
        User,
        "clinician",
        (
            "id",
            "practice_id",
            "is_active",
            *ROLE_FIELDS.values(),
            "display_name",
            "credentials",
            "email",
        ),
    ),
)


@functools.cache
def _poll_query(vendor: str) -> tuple[str, tuple]:
    """The SQL of a poll and, per table, (model, attnames, converters).

    What ``feed_link_queryset().filter(public_id=...)`` would send, written out
    once: compiling that select_related query took about as long as running it."""
    quote = connection.ops.quote_name
    columns, readers = [], []
    for model, alias, names in POLL_COLUMNS:
        table = quote(alias or model._meta.db_table)
        # In the model's own field order, as Model.from_db expects.
        fields = [
            field for field in model._meta.concrete_fields if field.attname in names
        ]
        converters = []
        for field in fields:
            column = Col(alias or model._meta.db_table, field)
            columns.append(f"{table}.{quote(field.column)}")
            converters.append(
                connection.ops.get_db_converters(column)
                + column.get_db_converters(connection)
            )
        assert len(fields) == len(names), (model, names)
        readers.append(
            (model, tuple(field.attname for field in fields), tuple(converters))
        )
    link, access = quote(FeedLink._meta.db_table), quote(FeedAccess._meta.db_table)
    user, practice = quote(User._meta.db_table), quote(Practice._meta.db_table)
    sql = (
        f"SELECT {', '.join(columns)}, {_version_sql(vendor)} "  # noqa: S608
        f"FROM {link} "
        f"INNER JOIN {access} ON {access}.id = {link}.access_id "
        f'INNER JOIN {user} "owner" ON "owner".id = {access}.user_id '
        f"INNER JOIN {practice} ON {practice}.id = {access}.practice_id "
        f'LEFT OUTER JOIN {user} "clinician" ON "clinician".id = {link}.clinician_id '
        f"WHERE {link}.public_id = %s"
    )
    return sql, tuple(readers)


def _poll_lookup(now: datetime) -> Callable[[str], FeedLink | None]:
    def lookup(public_id: str) -> FeedLink | None:
        sql, readers = _poll_query(connection.vendor)
        with connection.cursor() as cursor:
            cursor.execute(sql, [*_version_params(now), public_id])
            row = cursor.fetchone()
        if row is None:
            return None
        instances, position = [], 0
        for model, attnames, converters in readers:
            values = []
            for value, field_converters in zip(
                row[position:], converters, strict=False
            ):
                for convert in field_converters:
                    value = convert(value, None, connection)
                values.append(value)
            position += len(attnames)
            instances.append(
                None
                if values[0] is None
                else model.from_db(connection.alias, attnames, values)
            )
        link, access, owner, practice, clinician = instances
        access.user, access.practice = owner, practice
        link.access, link.clinician = access, clinician
        link.schedule_version = row[position]
        return link

    return lookup


def feed_link_by_token(*, token: str, now: datetime) -> FeedLink:
    """The link ``token`` opens, authorised as on every fetch (404 otherwise), with
    the version of its calendar's schedule read in the same single query."""
    return access_feed_link_by_token(token, lookup=_poll_lookup(now))


@dataclass(frozen=True, slots=True)
class FeedPoll:
    """What answering one poll needs, from the link's snapshot or from the database
    (then with ``link``, authorised, for a rebuild and for the next snapshot)."""

    link_id: int
    key: str  # of the bytes the feed has now
    served_key: str
    served_etag: str
    served_last_modified: datetime | None
    tag: SnapshotTag | None
    link: FeedLink | None = None
    # The fetch, already counted with the snapshot read (None: not yet).
    tallied: Tallied | None = None

    @property
    def served(self) -> bool:
        """Whether the bytes last served on this link are the feed's bytes now."""
        return self.key == self.served_key and self.served_last_modified is not None


def feed_poll_from_database(
    *,
    token: str,
    now: datetime,
    tag: SnapshotTag | None = None,
    tallied: Tallied | None = None,
) -> FeedPoll:
    """A poll answered by the link query (one query); 404 unless authorised, and
    then a fetch already counted (``tallied``) is uncounted."""
    try:
        link = feed_link_by_token(token=token, now=now)
    except Http404:
        if tallied is not None:
            tally_undo(tallied)
        raise
    return FeedPoll(
        link_id=link.pk,
        key=feed_key(link=link, now=now),
        served_key=link.served_key,
        served_etag=link.served_etag,
        served_last_modified=link.served_last_modified,
        tag=tag,
        link=link,
        tallied=tallied,
    )


def feed_poll(
    *,
    token: str,
    now: datetime,
    tally_key_for: Callable[[int], str] | None = None,
    tally_seconds: int = 0,
) -> FeedPoll:
    """Everything a poll of ``token`` needs: from the link's snapshot when it is
    still valid (no query; see ``calendarsync.snapshot``), else from the database.
    404 for every link that does not open a calendar. With ``tally_key_for`` (link
    id -> key) the fetch is counted in the snapshot's cache round trip, as
    ``cache.tally`` with ``tally_seconds`` would (``FeedPoll.tallied``), and
    uncounted again if the link is refused."""
    parts = tokens.split_token(token)
    tag = tallied = None
    if parts is not None:
        public_id, secret = parts
        snapshot, tag, tallied = snapshot_read(
            public_id,
            now=now,
            tally_key_for=tally_key_for,
            tally_seconds=tally_seconds,
        )
        if snapshot is not None and access_feed_snapshot(secret, snapshot):
            if settings.CALENDAR_FEED_SNAPSHOT_VERIFY:
                _snapshot_verify(snapshot, token=token, now=now)
            return FeedPoll(
                link_id=snapshot.link_id,
                key=snapshot.key,
                served_key=snapshot.served_key,
                served_etag=snapshot.served_etag,
                served_last_modified=snapshot.served_last_modified,
                tag=tag,
                tallied=tallied,
            )
    return feed_poll_from_database(token=token, now=now, tag=tag, tallied=tallied)


def _snapshot_verify(snapshot: PollSnapshot, *, token: str, now: datetime) -> None:
    """Fail loudly when the database disagrees with a snapshot about to be used:
    some write did not end it."""
    try:
        link = feed_link_by_token(token=token, now=now)
    except Http404:
        raise AssertionError(
            f"Stale feed snapshot: link {snapshot.public_id} is no longer "
            "authorised, but its snapshot still opens it"
        ) from None
    if feed_key(link=link, now=now) != snapshot.key:
        raise AssertionError(
            f"Stale feed snapshot: the calendar of link {snapshot.public_id} "
            "changed, but its snapshot still names the old bytes"
        )


def feed_key(*, link: FeedLink, now: datetime) -> str:
    """The cache key of the bytes ``link`` would be served now (see
    ``calendarsync.cache``). Needs ``link`` from ``feed_link_by_token``."""
    practice = link.access.practice
    first_day, _after = feed_window(scope=link.scope, practice=practice, now=now)
    return feed_cache_key(
        practice.pk,
        link.scope,
        link.clinician_id,
        feed_calendar_name(link=link),
        practice.time_zone,
        first_day.isoformat(),
        settings.CALENDAR_FEED_MAX_BYTES,
        link.schedule_version,
    )


def _document(link: FeedLink, key: str, entry: CachedFeed) -> FeedDocument:
    changed = [link.access.changed_at, link.created_at]
    if entry.latest_change is not None:
        changed.append(entry.latest_change)
    return FeedDocument(
        gzipped=entry.gzipped,
        etag=entry.etag,
        changed_at=max(changed),
        raw_length=entry.raw_length,
        event_count=entry.event_count,
        truncated=entry.truncated,
        key=key,
    )


def feed_render(*, link: FeedLink, now: datetime) -> CachedFeed:
    """Build the feed of ``link`` in memory, completely, or raise (one query)."""
    practice = link.access.practice
    first_day, after_last_day = feed_window(
        scope=link.scope, practice=practice, now=now
    )
    zone = practice.zone
    max_bytes = settings.CALENDAR_FEED_MAX_BYTES
    events, latest = feed_event_list(
        link=link,
        window_start=datetime.combine(first_day, time(0), tzinfo=zone),
        window_end=datetime.combine(after_last_day, time(0), tzinfo=zone),
        now=now,
        max_bytes=max_bytes,
        zone_key=practice.time_zone,
    )
    rendered = ical.render_calendar(
        name=feed_calendar_name(link=link),
        zone_key=practice.time_zone,
        events=events,
        window_start=first_day,
        window_end=after_last_day,
        max_bytes=max_bytes,
    )
    del events
    body = rendered.body
    return CachedFeed(
        etag=f'"{hashlib.sha256(body).hexdigest()}"',
        gzipped=bytes(deflate.gzip_compress(body, GZIP_LEVEL)),
        latest_change=latest,
        raw_length=len(body),
        event_count=rendered.event_count,
        truncated=rendered.truncated,
    )


def feed_document(
    *, link: FeedLink, now: datetime, key: str | None = None
) -> FeedDocument:
    """The feed of ``link``: from the cache when its key is there, else rendered
    (one query) and remembered. ``link`` comes from ``feed_link_by_token``."""
    key = key or feed_key(link=link, now=now)
    entry = feed_cache_get(key)
    if entry is None:
        entry = feed_render(link=link, now=now)
        feed_cache_set(key, entry)
    return _document(link, key, entry)


def feed_access_overview(*, practice: Practice) -> QuerySet[User]:
    """Every user of the practice with their sync access, number of current links and
    latest fetch, for the administrators' page (a fixed number of queries)."""
    return (
        user_list(practice=practice)
        .select_related("feed_access")
        .annotate(
            sync_link_count=Count("feed_access__links", distinct=True),
            sync_last_fetched=Max("feed_access__links__fetches__last_fetched_at"),
        )
    )
