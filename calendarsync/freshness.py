"""When a calendar feed is fresh, and where rendered feeds are kept: the one module.

**Rendered bytes** are kept under a key that hashes everything they depend on
(``feed_cache_key``: the calendar, its name and zone, the window's first day, the
size limit, the version of its schedule and the writer's own source). A change to
any of those makes a new key, so nothing is ever invalidated: an entry is exactly
right for its key or never looked up again. Entries are also kept in each process
(``LOCAL_MAX_BYTES``), which can never be stale for the same reason.

**Snapshots** answer unchanged polls with no query. After the one query of a poll
(``selectors.feed_link_for_poll``) lets a link through, its verdict — the grant the
token's secret is checked against, the key of the feed's bytes now, what was last
served — is kept as the link's snapshot, tagged with

- the *stamps* (random tokens) of the installation and of the practice as they
  were read *before* that query. Every write that can change what a feed shows or
  who may read it replaces its practice's stamp, at once and again on commit (the
  model signals and ``practice.changes.rows_changed``, ``connect``); writes whose
  practice is unknown, and every migration, replace the installation's. A stamp
  that is missing invalidates its snapshots; stamps are random, never counters, so
  one can never come back to an earlier value;
- the *epoch* of the store: with Redis, the server's ``run_id``, which a restart
  changes. A Redis restored from an older dump holds older stamps *and* the
  snapshots tagged with them; the epoch is what refuses them, so a feed never
  goes backwards;
- an expiry: ``CALENDAR_FEED_SNAPSHOT_SECONDS`` at most, and never past midnight
  (the window moves).

**The store.** With ``CACHE_URL`` on Redis, this module talks to Redis itself
through redis-py's public client, with short timeouts (``CACHE_TIMEOUT_MS``,
tens of milliseconds) and no retries: a Redis that hangs costs one
timeout, after which this process leaves Redis alone for ``BREAK_SECONDS`` and
answers from the database. An outage is logged once when it starts, as a count
while it lasts, and once when it ends. A stamp this process could not replace
during an outage is made up for when Redis answers again, by replacing the
installation's stamp. Otherwise (local memory: one process, tests) it uses
Django's cache API.

With ``CALENDAR_FEED_SNAPSHOT_VERIFY`` (the test suite sets it) every answer from a
snapshot is checked against the database, so a write path that forgot to replace
a stamp fails a test instead of serving a stale calendar.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import logging
import math
import secrets
import threading
import time as clock
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import redis
from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.db import transaction
from django.db.models.signals import (
    m2m_changed,
    post_delete,
    post_init,
    post_migrate,
    post_save,
)
from redis.backoff import NoBackoff
from redis.retry import Retry

from calendarsync.permissions import FeedGrant
from practice.changes import quiet_fields, rows_changed

logger = logging.getLogger("calendarsync.freshness")

# Bump to drop every entry at once; the writer's own source is in every key too.
FORMAT_VERSION = "5"
# The code that decides a feed's bytes for given inputs.
WRITER_MODULES = (
    "calendarsync.ical",
    "calendarsync.feed",
    "scheduling.publication",
    "scheduling.names",
)
PREFIX = "calendarsync:"
FEED_PREFIX = PREFIX + "feed:"
STAMP_PREFIX = PREFIX + "stamp:"
INSTALLATION_STAMP = STAMP_PREFIX + "all"
SNAPSHOT_PREFIX = PREFIX + "snapshot:"
# Long enough to span a day of polling; the window's first day is in every key.
FEED_SECONDS = 36 * 3600
# Longer than any snapshot lives; an expired stamp only costs a query.
STAMP_SECONDS = 7 * 24 * 3600
# A tally's count outlives a quiet hour at most.
COUNTER_SECONDS = 3600
LOCAL_MAX_BYTES = 32 * 1024 * 1024
# After a Redis failure this process answers from the database this long before
# trying Redis again.
BREAK_SECONDS = 5.0
# While Redis is out, a line with the count of failed calls this often.
OUTAGE_REPORT_SECONDS = 60.0


# -- keys ----------------------------------------------------------------------------


@functools.cache
def _writer_fingerprint() -> str:
    digest = hashlib.sha256()
    for name in WRITER_MODULES:
        source = importlib.import_module(name).__file__
        if source is None:
            raise RuntimeError(f"{name} has no source file to fingerprint")
        digest.update(Path(source).read_bytes())
    return digest.hexdigest()[:16]


def feed_cache_key(*parts: object) -> str:
    """A fixed-length key naming ``parts`` (hex, 64 characters)."""
    material = "\x1f".join(
        [FORMAT_VERSION, _writer_fingerprint(), *(str(part) for part in parts)]
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def practice_stamp_key(practice_id: int) -> str:
    return f"{STAMP_PREFIX}p{practice_id}"


def _snapshot_key(public_id: str) -> str:
    # The writer's fingerprint and the size limit are in the name, as in the keys
    # of the bytes: a deploy that changes either never reads an older snapshot.
    generation = feed_cache_key("snapshot", settings.CALENDAR_FEED_MAX_BYTES)
    return f"{SNAPSHOT_PREFIX}{generation[:16]}:{public_id}"


# -- outages -------------------------------------------------------------------------


class _Outage:
    """One line when a store stops answering, a count while it is out, one line
    when it is back; and the circuit breaker that keeps a hung store from slowing
    every request."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.since: float | None = None
        self.retry_at = 0.0
        self.failures = 0
        self.reported_at = 0.0
        self.reported_failures = 0
        self.lost_stamp = False

    def closed(self) -> bool:
        """Whether to try the store now."""
        return self.since is None or clock.monotonic() >= self.retry_at

    def failed(self, error: Exception) -> None:
        now = clock.monotonic()
        with self.lock:
            self.failures += 1
            self.retry_at = now + BREAK_SECONDS
            if self.since is None:
                self.since = self.reported_at = now
                self.reported_failures = 0
                logger.warning(
                    "Calendar feed store unavailable (%s: %s); answering from the "
                    "database",
                    type(error).__name__,
                    error,
                )
            elif now - self.reported_at >= OUTAGE_REPORT_SECONDS:
                logger.warning(
                    "Calendar feed store still unavailable: %d calls failed in the "
                    "last %d s",
                    self.failures - self.reported_failures,
                    round(now - self.reported_at),
                )
                self.reported_at, self.reported_failures = now, self.failures

    def succeeded(self) -> bool:
        """Note a call that worked; True when it ended an outage in which a stamp
        could not be replaced."""
        if self.since is None:
            return False
        with self.lock:
            if self.since is None:
                return False
            logger.warning(
                "Calendar feed store available again after %d s (%d calls failed)",
                round(clock.monotonic() - self.since),
                self.failures,
            )
            lost = self.lost_stamp
            self.reset()
            return lost


# -- the stores ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tallied:
    """One event counted under ``key``; ``count`` is not None when it is this
    event's turn to hand over the count (see ``tally``)."""

    key: str
    count: int | None


class StoreUnavailable(Exception):
    """The store failed, or is left alone for a moment after failing."""


# The keys' values, then the tally (see ``tally``): the count is taken and
# started again when the ``:written`` marker is new, keeping whatever other
# workers add meanwhile; the counter's expiry is renewed only then, once per turn.
_READ_AND_TALLY = """
local n = tonumber(ARGV[1])
local result = {}
if n > 0 then result = redis.call('MGET', unpack(KEYS, 1, n)) end
local first = redis.call('SET', KEYS[n + 2], 1, 'NX', 'EX', ARGV[2])
local count = redis.call('INCR', KEYS[n + 1])
if first then
  redis.call('DECRBY', KEYS[n + 1], count)
  redis.call('EXPIRE', KEYS[n + 1], ARGV[3])
end
result[n + 1] = first and 1 or 0
result[n + 2] = count
return result
"""


def _found(keys: list[str], values: list) -> dict:
    return {key: value for key, value in zip(keys, values, strict=True) if value}


class _RedisStore:
    """Redis through redis-py's public client: short timeouts, no retries, and the
    server's run id (its epoch) read on every new connection."""

    def __init__(self, url: str, timeout: float):
        self.epoch = ""

        def on_connect(connection) -> None:
            connection.on_connect()
            connection.send_command("INFO", "server")
            info = connection.read_response()
            if isinstance(info, bytes):
                info = info.decode()
            for line in str(info).splitlines():
                if line.startswith("run_id:"):
                    self.epoch = line.split(":", 1)[1].strip()

        self.client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            redis_connect_func=on_connect,
            health_check_interval=0,
        )
        self._read_and_tally = self.client.register_script(_READ_AND_TALLY)

    def read(self, keys: list[str], tally_key: str | None, seconds: int):
        if tally_key is None:
            found = self.client.mget(keys) if keys else []
            return _found(keys, found), None
        # One command: a poll's whole round trip is a single EVALSHA.
        *found, first, count = self._read_and_tally(
            keys=[*keys, tally_key, f"{tally_key}:written"],
            args=[len(keys), seconds, COUNTER_SECONDS],
        )
        return _found(keys, found), Tallied(tally_key, count if first else None)

    def set_many(self, values: Mapping[str, str | bytes], seconds: int) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key, value in values.items():
            pipe.set(key, value, ex=seconds)
        pipe.execute()

    def add(self, key: str, value: str, seconds: int) -> bool:
        return bool(self.client.set(key, value, nx=True, ex=seconds))

    def get(self, key: str):
        return self.client.get(key)

    def window_count(self, key: str, seconds: int) -> int:
        pipe = self.client.pipeline(transaction=False)
        pipe.set(key, 0, nx=True, ex=seconds)
        pipe.incr(key)
        return pipe.execute()[1]

    def untally(self, tallied: Tallied) -> None:
        if tallied.count is None:
            self.client.decr(tallied.key)
        else:
            pipe = self.client.pipeline(transaction=False)
            pipe.incrby(tallied.key, tallied.count - 1)
            pipe.delete(f"{tallied.key}:written")
            pipe.execute()


class _DjangoStore:
    """Django's cache API, for a cache that is not Redis (local memory: one
    process; the test suite)."""

    epoch = "local"

    def read(self, keys: list[str], tally_key: str | None, seconds: int):
        values = cache.get_many(keys) if keys else {}
        if tally_key is None:
            return values, None
        marker = f"{tally_key}:written"
        if not cache.add(marker, 1, timeout=seconds):
            try:
                cache.incr(tally_key)
            except ValueError:
                if not cache.add(tally_key, 1, timeout=COUNTER_SECONDS):
                    cache.incr(tally_key)
            return values, Tallied(tally_key, None)
        count = 1 + (cache.get(tally_key) or 0)
        cache.delete(tally_key)
        return values, Tallied(tally_key, count)

    def set_many(self, values: Mapping[str, str | bytes], seconds: int) -> None:
        cache.set_many(dict(values), timeout=seconds)

    def add(self, key: str, value: str, seconds: int) -> bool:
        return cache.add(key, value, timeout=seconds)

    def get(self, key: str):
        return cache.get(key)

    def window_count(self, key: str, seconds: int) -> int:
        cache.add(key, 0, timeout=seconds)
        try:
            return cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=seconds)
            return 1

    def untally(self, tallied: Tallied) -> None:
        if tallied.count is None:
            try:
                cache.decr(tallied.key)
            except ValueError:
                pass
            return
        cache.delete(f"{tallied.key}:written")
        if tallied.count > 1:
            cache.set(tallied.key, tallied.count - 1, timeout=COUNTER_SECONDS)


_outage = _Outage()


@functools.cache
def _store() -> _RedisStore | _DjangoStore:
    config = settings.CACHES["default"]
    if config["BACKEND"].endswith("RedisCache"):
        location = config["LOCATION"]
        url = location[0] if isinstance(location, list | tuple) else location
        return _RedisStore(url, settings.CACHE_TIMEOUT_MS / 1000)
    return _DjangoStore()


def _forget_store(*, setting, **kwargs) -> None:
    if setting in ("CACHES", "CACHE_TIMEOUT_MS"):
        _store.cache_clear()
        _outage.reset()


setting_changed.connect(_forget_store, dispatch_uid="calendarsync-freshness-store")


def _call[T](action: Callable[[_RedisStore | _DjangoStore], T]) -> T:
    """``action`` on the store; StoreUnavailable when it fails or is left alone."""
    if not _outage.closed():
        raise StoreUnavailable
    store = _store()
    try:
        result = action(store)
    except Exception as error:  # noqa: BLE001 - any store failure means "without it"
        _outage.failed(error)
        raise StoreUnavailable from error
    if _outage.succeeded():
        # A stamp this process could not replace during the outage: end every
        # snapshot now that the store answers again.
        _replace_stamps(None)
    return result


def store_available() -> bool:
    """Whether this process is using the store now (not between failures)."""
    return _outage.closed()


def forget_all() -> None:
    """Drop what this process remembers (tests start each from nothing)."""
    _known.clear()
    _local.clear()
    _outage.reset()


# -- rendered bytes ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CachedFeed:
    etag: str
    gzipped: bytes
    latest_change: datetime | None

    def dumps(self) -> bytes:
        latest = self.latest_change.timestamp() if self.latest_change else None
        header = {"etag": self.etag, "latest": latest}
        return json.dumps(header).encode() + b"\n" + self.gzipped

    @classmethod
    def loads(cls, value) -> CachedFeed | None:
        if not isinstance(value, bytes) or b"\n" not in value:
            return None
        header_bytes, gzipped = value.split(b"\n", 1)
        try:
            header = json.loads(header_bytes)
            latest = header["latest"]
            return cls(
                etag=header["etag"],
                gzipped=gzipped,
                latest_change=None
                if latest is None
                else datetime.fromtimestamp(latest, UTC),
            )
        except (ValueError, KeyError, TypeError):
            return None


class _LocalEntries:
    """The most recently used entries of this process, least recent dropped first."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.entries: OrderedDict[str, CachedFeed] = OrderedDict()
        self.size = 0
        self.lock = threading.Lock()

    def get(self, key: str) -> CachedFeed | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.entries.move_to_end(key)
            return entry

    def put(self, key: str, entry: CachedFeed) -> None:
        if len(entry.gzipped) > self.max_bytes:
            return
        with self.lock:
            previous = self.entries.pop(key, None)
            if previous is not None:
                self.size -= len(previous.gzipped)
            self.entries[key] = entry
            self.size += len(entry.gzipped)
            while self.size > self.max_bytes:
                _key, dropped = self.entries.popitem(last=False)
                self.size -= len(dropped.gzipped)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.size = 0


_local = _LocalEntries(LOCAL_MAX_BYTES)


def feed_bytes_get(key: str) -> CachedFeed | None:
    """The feed stored under ``key``, or None (also when the store is out)."""
    entry = _local.get(key)
    if entry is not None:
        return entry
    try:
        entry = CachedFeed.loads(_call(lambda store: store.get(FEED_PREFIX + key)))
    except StoreUnavailable:
        return None
    if entry is not None:
        _local.put(key, entry)
    return entry


def feed_bytes_set(key: str, entry: CachedFeed) -> None:
    """Keep ``entry`` under ``key``; a store that is out only costs a rebuild."""
    _local.put(key, entry)
    value = entry.dumps()
    try:
        _call(lambda store: store.set_many({FEED_PREFIX + key: value}, FEED_SECONDS))
    except StoreUnavailable:
        pass


# -- counters ------------------------------------------------------------------------


def window_count(key: str, *, seconds: int) -> int:
    """Count one more under ``key`` and return the count, which starts again
    ``seconds`` after its first (rate limits). 0 while the store is out."""
    try:
        return _call(lambda store: store.window_count(PREFIX + key, seconds))
    except StoreUnavailable:
        return 0


def first_in(key: str, *, seconds: int) -> bool:
    """True for the first call under ``key`` in ``seconds`` (False while the store
    is out)."""
    try:
        return _call(lambda store: store.add(PREFIX + key, "1", seconds))
    except StoreUnavailable:
        return False


def tally(key: str, *, seconds: int) -> Tallied | None:
    """Count one event under ``key``. At most once every ``seconds`` its ``count``
    is how many were counted since the last time (this one included), and counting
    starts again; otherwise the count is None. None while the store is out. One
    round trip."""
    try:
        _values, tallied = _call(lambda store: store.read([], PREFIX + key, seconds))
    except StoreUnavailable:
        return None
    return tallied


def tally_undo(tallied: Tallied) -> None:
    """Take back an event counted that did not happen after all (a refused poll)."""
    try:
        _call(lambda store: store.untally(tallied))
    except StoreUnavailable:
        pass


# -- snapshots -----------------------------------------------------------------------


def snapshots_enabled() -> bool:
    return settings.CALENDAR_FEED_SNAPSHOT_SECONDS > 0


@dataclass(frozen=True, slots=True)
class PollSnapshot:
    """What a poll of one link needs, as the database said when it let it through."""

    epoch: str
    stamps: tuple[str, str]
    expires_at: float
    link_id: int
    practice_id: int
    grant: FeedGrant
    key: str
    served_key: str
    served_etag: str
    served_last_modified: datetime | None

    def dumps(self) -> str:
        return json.dumps(
            [
                self.epoch,
                list(self.stamps),
                self.expires_at,
                self.link_id,
                self.practice_id,
                self.grant.dumps(),
                self.key,
                self.served_key,
                self.served_etag,
                self.served_last_modified.timestamp()
                if self.served_last_modified
                else None,
            ]
        )

    @classmethod
    def loads(cls, value) -> PollSnapshot | None:
        if value is None:
            return None
        try:
            (epoch, stamps, expires, link_id, practice_id, grant, *served) = json.loads(
                value
            )
            key, served_key, served_etag, served_at = served
            return cls(
                epoch=epoch,
                stamps=(stamps[0], stamps[1]),
                expires_at=expires,
                link_id=link_id,
                practice_id=practice_id,
                grant=FeedGrant.loads(grant),
                key=key,
                served_key=served_key,
                served_etag=served_etag,
                served_last_modified=None
                if served_at is None
                else datetime.fromtimestamp(served_at, UTC),
            )
        except (ValueError, TypeError, KeyError, IndexError):
            return None


@dataclass(frozen=True, slots=True)
class SnapshotTag:
    """The epoch and stamps read before a poll's query, for the snapshot it may
    leave."""

    practice_id: int
    epoch: str
    stamps: tuple[str, str]


@dataclass(frozen=True, slots=True)
class SnapshotRead:
    snapshot: PollSnapshot | None = None
    tag: SnapshotTag | None = None
    tallied: Tallied | None = None


# Public id -> (practice id, link id), per process: a link row never moves to
# another practice. Lets one round trip fetch the snapshot and both its stamps.
_known: dict[str, tuple[int, int]] = {}
KNOWN_MAX = 200_000


def _remember(public_id: str, practice_id: int, link_id: int) -> None:
    if len(_known) >= KNOWN_MAX:
        _known.clear()
    _known[public_id] = (practice_id, link_id)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def snapshot_read(
    public_id: str, *, now: datetime, tally_key: str | None = None, seconds: int = 0
) -> SnapshotRead:
    """The valid snapshot of a link (or none), the tag a new one would carry, and
    with ``tally_key`` the poll counted in the same round trip (see ``tally``).
    One round trip once this process has seen the link; nothing while the store
    is out."""
    if not snapshots_enabled():
        return SnapshotRead()
    key = _snapshot_key(public_id)
    known = _known.get(public_id)
    try:
        if known is None:
            found = PollSnapshot.loads(_call(lambda store: store.get(key)))
            if found is None:
                return SnapshotRead()
            known = (found.practice_id, found.link_id)
        practice_id, link_id = known
        stamp_keys = [INSTALLATION_STAMP, practice_stamp_key(practice_id)]
        values, tallied = _call(
            lambda store: store.read(
                [*stamp_keys, key],
                None if tally_key is None else PREFIX + tally_key,
                seconds,
            )
        )
        stamps = (_text(values.get(stamp_keys[0])), _text(values.get(stamp_keys[1])))
        if not all(stamps):
            stamps = _stamps_created(stamp_keys)
        epoch = _store().epoch
    except StoreUnavailable:
        return SnapshotRead()
    _remember(public_id, practice_id, link_id)
    tag = SnapshotTag(practice_id, epoch, stamps) if all(stamps) else None
    snapshot = PollSnapshot.loads(values.get(key))
    if (
        snapshot is None
        or tag is None
        or snapshot.epoch != epoch
        or snapshot.stamps != stamps
        or (snapshot.practice_id, snapshot.link_id) != known
        or snapshot.expires_at <= now.timestamp()
    ):
        return SnapshotRead(None, tag, tallied)
    return SnapshotRead(snapshot, tag, tallied)


def _stamps_created(keys: list[str]) -> tuple[str, str]:
    def create(store) -> dict:
        for stamp in keys:
            store.add(stamp, secrets.token_hex(8), STAMP_SECONDS)
        return store.read(keys, None, 0)[0]

    found = _call(create)
    return _text(found.get(keys[0])), _text(found.get(keys[1]))


def _expiry(*, now: datetime, zone) -> datetime:
    """When a snapshot taken ``now`` stops being trusted: after the configured
    seconds, and at the next midnight in UTC and in the practice's zone."""
    candidates = [now + timedelta(seconds=settings.CALENDAR_FEED_SNAPSHOT_SECONDS)]
    for tz in (UTC, zone):
        local = now.astimezone(tz)
        candidates.append(
            datetime.combine(local.date() + timedelta(days=1), time(0), tz)
        )
    return min(candidates)


def snapshot_store(
    *,
    link,
    key: str,
    tag: SnapshotTag | None,
    now: datetime,
) -> None:
    """Leave a snapshot of ``link`` (authorised, marked served) tagged with what
    was read before its query; nothing when no tag could be read."""
    if not snapshots_enabled():
        return
    access = link.access
    _remember(link.public_id, access.practice_id, link.pk)
    if tag is None or tag.practice_id != access.practice_id:
        return
    expires = _expiry(now=now, zone=access.practice.zone)
    snapshot = PollSnapshot(
        epoch=tag.epoch,
        stamps=tag.stamps,
        expires_at=expires.timestamp(),
        link_id=link.pk,
        practice_id=access.practice_id,
        grant=FeedGrant.of(link),
        key=key,
        served_key=link.served_key,
        served_etag=link.served_etag,
        served_last_modified=link.served_last_modified,
    )
    seconds = max(1, math.ceil((expires - now).total_seconds()))
    value = snapshot.dumps()
    try:
        _call(
            lambda store: store.set_many(
                {_snapshot_key(link.public_id): value}, seconds
            )
        )
    except StoreUnavailable:
        pass


# -- ending snapshots ----------------------------------------------------------------


def _replace_stamps(practice_ids: frozenset[int] | None) -> None:
    keys = (
        [INSTALLATION_STAMP]
        if practice_ids is None
        else [practice_stamp_key(pk) for pk in practice_ids]
    )
    values = {key: secrets.token_hex(8) for key in keys}
    try:
        _call(lambda store: store.set_many(values, STAMP_SECONDS))
    except StoreUnavailable:
        # Made up for when the store answers again (``_call``); until then no
        # snapshot is read here, and others' last at most their seconds.
        _outage.lost_stamp = True
        logger.debug("Could not end calendar feed snapshots now")


def rows_written(practice_ids: Iterable[int] | None) -> None:
    """End every snapshot of these practices (None: of every practice), now and
    again when the current transaction commits."""
    if not snapshots_enabled():
        return
    frozen = None if practice_ids is None else frozenset(practice_ids)
    _replace_stamps(frozen)
    transaction.on_commit(lambda: _replace_stamps(frozen), robust=True)


# Rows no feed shows and no authority depends on: writing them ends no snapshot.
UNWATCHED = {
    "practice.AuditEvent",  # the audit log
    "practice.AllowedNetwork",  # feeds are outside network restrictions
    "practice.RateLimitHit",  # rate limits of emails
    "scheduling.AppointmentChange",  # appointment history
    "calendarsync.FeedFetch",  # who polled
    "calendarsync.CalendarAccount",  # pushes what feeds show, changes none
    "calendarsync.PushedEvent",
    "calendarsync.ChangeNoticeSubscription",  # emails about changes, shows none
    "calendarsync.PendingChangeNotice",
    # Personal calendars read in as busy time: no feed shows them.
    "scheduling.BusyCalendar",
    "scheduling.BusyTime",
    "calendarsync.BusySource",
}
WATCHED_APPS = ("practice", "scheduling", "calendarsync")


def watched_models() -> list:
    return [
        model
        for label in WATCHED_APPS
        for model in apps.get_app_config(label).get_models()
        if model._meta.label not in UNWATCHED
    ]


def _practice_ids(instance) -> set[int] | None:
    """The practices whose feeds a row can change; None when not known."""
    if instance._meta.label == "practice.Practice":
        return {instance.pk}
    practice_id = getattr(instance, "practice_id", None)
    if practice_id is None:
        return None
    ids = {practice_id}
    # A user moved to another practice changes the one they left too.
    loaded = getattr(instance, "_loaded_practice_id", None)
    if loaded is not None:
        ids.add(loaded)
    return ids


def _on_save(sender, instance, update_fields=None, raw=False, **kwargs):
    if update_fields is not None and set(update_fields) <= quiet_fields(sender):
        return
    rows_written(_practice_ids(instance))


def _on_delete(sender, instance, **kwargs):
    rows_written(_practice_ids(instance))


def _on_m2m(sender, instance, action, **kwargs):
    if action.startswith("post_") and type(instance) in _watched:
        rows_written(_practice_ids(instance))


def _on_rows(sender, practice_ids, **kwargs):
    if sender in _watched:
        rows_written(practice_ids)


def _on_migrate(sender, **kwargs):
    # Data migrations write through historical models, which none of the
    # receivers above hear: end every snapshot after any migration.
    rows_written(None)


def _on_user_init(sender, instance, **kwargs):
    instance._loaded_practice_id = instance.__dict__.get("practice_id")


_watched: set = set()


def connect() -> None:
    """Listen to every write of every watched model (``CalendarsyncConfig.ready``)."""
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    for model in watched_models():
        _watched.add(model)
        post_save.connect(_on_save, sender=model, dispatch_uid=f"fresh-{model}")
        post_delete.connect(_on_delete, sender=model, dispatch_uid=f"fresh-{model}")
    m2m_changed.connect(_on_m2m, dispatch_uid="fresh-m2m")
    rows_changed.connect(_on_rows, dispatch_uid="fresh-rows")
    post_init.connect(_on_user_init, sender=user_model, dispatch_uid="fresh-user")
    post_migrate.connect(_on_migrate, dispatch_uid="fresh-migrate")
