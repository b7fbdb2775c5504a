"""Answering unchanged polls without the database.

A poll normally costs one query: the link, its owner's authority and the version of
its schedule (``selectors.feed_link_by_token``). After such a query has let a link
through, what it found is kept in Django's cache as the link's *snapshot*: what the
token's secret is checked against, the cache key of the bytes the feed has now, and
what was last served. The next poll of that link is answered from the snapshot —
304, or the cached bytes — with no query at all, as long as the snapshot is still
valid:

- it carries the *stamps* (random tokens) of the installation and of its practice
  as they were read *before* that query, and they are still the same. Every write
  to a model that can change what a feed shows or who may read it replaces its
  practice's stamp (``ChangeNotifyingQuerySet`` and the model signals, below);
  writes whose practice is unknown, and every migration, replace the
  installation's. The stamp is replaced at once and again when the transaction
  commits, so a poll that read the old rows while the write was uncommitted
  cannot leave a snapshot behind that outlives it. A stamp that is missing
  (evicted, expired, Redis restarted) makes every snapshot tagged with it
  invalid; stamps are random, never counters, so one can never come back to an
  earlier value;
- it is younger than ``CALENDAR_FEED_SNAPSHOT_SECONDS`` and from the same day (the
  feed's window moves at midnight, and cancelled appointments drop out 30 days
  after the change — at most that many seconds late).

The secret is still checked on every poll, against the snapshot's salt under the
current keys, so rotating ``CALENDAR_FEED_KEY`` behaves as before.

Snapshots need one cache that every process serving feeds and every process
writing rows shares (Redis): ``CALENDAR_FEED_SNAPSHOT_SECONDS`` is 0 (off) unless
``CACHE_URL`` is Redis. With ``CALENDAR_FEED_SNAPSHOT_VERIFY`` (the test suite
sets it) every answer from a snapshot is checked against the database, so any
write path that forgot to replace a stamp fails a test instead of serving a
stale calendar.
"""

import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import (
    m2m_changed,
    post_delete,
    post_init,
    post_migrate,
    post_save,
)

from calendarsync.cache import Tallied, feed_cache_key, read_and_tally
from practice.changes import quiet_fields, rows_changed

logger = logging.getLogger("calendarsync.feed")

STAMP_PREFIX = "calendarsync:stamp:"
INSTALLATION_STAMP = STAMP_PREFIX + "all"
# Longer than any snapshot lives; an expired stamp only costs a query.
STAMP_SECONDS = 7 * 24 * 3600
SNAPSHOT_PREFIX = "calendarsync:snapshot:"
# Public id -> (practice id, link id), per process: a link row never moves to
# another practice. Lets one cache read fetch the snapshot, both its stamps and
# count the fetch at once.
_known: dict[str, tuple[int, int]] = {}
KNOWN_MAX = 200_000

# Rows no feed shows and no authority depends on: writing them ends no snapshot.
UNWATCHED = {
    "practice.AuditEvent",  # the audit log
    "practice.AllowedNetwork",  # feeds are outside network restrictions
    "scheduling.AppointmentChange",  # appointment history
    "calendarsync.FeedFetch",  # who polled
}
WATCHED_APPS = ("practice", "scheduling", "calendarsync")


def snapshots_enabled() -> bool:
    return settings.CALENDAR_FEED_SNAPSHOT_SECONDS > 0


def practice_stamp_key(practice_id: int) -> str:
    return f"{STAMP_PREFIX}p{practice_id}"


def _snapshot_key(public_id: str) -> str:
    # The writer's fingerprint and the size limit are in the name, as in the keys
    # of the bytes: a deploy that changes either never reads an older snapshot.
    generation = feed_cache_key("snapshot", settings.CALENDAR_FEED_MAX_BYTES)
    return f"{SNAPSHOT_PREFIX}{generation[:16]}:{public_id}"


@dataclass(frozen=True, slots=True)
class PollSnapshot:
    """What a poll of one link needs, as the database said when it let it through."""

    stamps: tuple[str, str]
    expires_at: float
    link_id: int
    practice_id: int
    user_id: int
    scope: str
    clinician_id: int | None
    public_id: str
    salt: bytes
    key: str
    served_key: str
    served_etag: str
    served_last_modified: datetime | None


@dataclass(frozen=True, slots=True)
class SnapshotTag:
    """The stamps read before a poll's query, for the snapshot it may leave."""

    practice_id: int
    stamps: tuple[str, str]


def _loaded(value) -> PollSnapshot | None:
    if not isinstance(value, tuple) or len(value) != len(PollSnapshot.__slots__):
        return None
    return PollSnapshot(*value)


def _stamps(values: dict, practice_id: int) -> tuple[str, str]:
    """The two stamps from a cache read, creating any that is missing."""
    keys = (INSTALLATION_STAMP, practice_stamp_key(practice_id))
    if all(values.get(key) for key in keys):
        return values[keys[0]], values[keys[1]]
    for key in keys:
        if not values.get(key):
            cache.add(key, secrets.token_hex(8), timeout=STAMP_SECONDS)
    found = cache.get_many(keys)
    return found.get(keys[0]) or "", found.get(keys[1]) or ""


def snapshot_read(
    public_id: str,
    *,
    now: datetime,
    tally_key_for: Callable[[int], str] | None = None,
    tally_seconds: int = 0,
) -> tuple[PollSnapshot | None, SnapshotTag | None, Tallied | None]:
    """The valid snapshot of a link (or None), the tag for a new one (None when
    none can be left yet), and, with ``tally_key_for`` (link id -> key), the poll
    counted under that key in the same round trip (None when not counted). One
    cache round trip once this process has seen the link; a cache that fails
    means "no snapshot"."""
    if not snapshots_enabled():
        return None, None, None
    key = _snapshot_key(public_id)
    tallied = None
    try:
        known = _known.get(public_id)
        if known is None:
            snapshot = _loaded(cache.get(key))
            if snapshot is None:
                return None, None, None
            known = (snapshot.practice_id, snapshot.link_id)
        practice_id, link_id = known
        values, tallied = read_and_tally(
            [INSTALLATION_STAMP, practice_stamp_key(practice_id), key],
            tally_key_for(link_id) if tally_key_for else None,
            seconds=tally_seconds,
        )
        stamps = _stamps(values, practice_id)
    except Exception:  # noqa: BLE001 - any cache failure means "ask the database"
        logger.warning("Calendar feed cache unavailable", exc_info=True)
        return None, None, tallied
    _remember(public_id, practice_id, link_id)
    tag = SnapshotTag(practice_id, stamps) if all(stamps) else None
    snapshot = _loaded(values.get(key))
    if (
        snapshot is None
        or tag is None
        or snapshot.stamps != stamps
        or (snapshot.practice_id, snapshot.link_id) != known
        or snapshot.expires_at <= now.timestamp()
    ):
        return None, tag, tallied
    return snapshot, tag, tallied


def _remember(public_id: str, practice_id: int, link_id: int) -> None:
    if len(_known) >= KNOWN_MAX:
        _known.clear()
    _known[public_id] = (practice_id, link_id)


def forget_all() -> None:
    """Drop what this process remembers (tests start each from nothing)."""
    _known.clear()


def _expiry(*, now: datetime, zone) -> datetime:
    """When a snapshot taken ``now`` stops being trusted: after the configured
    seconds, and at the next midnight in UTC and in the practice's zone."""
    candidates = [now + timedelta(seconds=settings.CALENDAR_FEED_SNAPSHOT_SECONDS)]
    for tz in (UTC, zone):
        local = now.astimezone(tz)
        midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tz)
        candidates.append(midnight)
    return min(candidates)


def snapshot_store(*, link, key: str, tag: SnapshotTag | None, now: datetime) -> None:
    """Leave a snapshot of ``link`` (from ``feed_link_by_token``, authorised and
    marked served) tagged with the stamps read before its query."""
    access = link.access
    if not snapshots_enabled():
        return
    _remember(link.public_id, access.practice_id, link.pk)
    if tag is None or tag.practice_id != access.practice_id:
        return
    expires = _expiry(now=now, zone=access.practice.zone)
    value = (
        tag.stamps,
        expires.timestamp(),
        link.pk,
        access.practice_id,
        access.user_id,
        link.scope,
        link.clinician_id,
        link.public_id,
        bytes(access.secret_salt),
        key,
        link.served_key,
        link.served_etag,
        link.served_last_modified,
    )
    timeout = max(1, math.ceil((expires - now).total_seconds()))
    try:
        cache.set(_snapshot_key(link.public_id), value, timeout=timeout)
    except Exception:  # noqa: BLE001
        logger.warning("Calendar feed cache unavailable", exc_info=True)


# Ending snapshots ----------------------------------------------------------------


def _replace_stamps(practice_ids: frozenset[int] | None) -> None:
    keys = (
        [INSTALLATION_STAMP]
        if practice_ids is None
        else [practice_stamp_key(pk) for pk in practice_ids]
    )
    try:
        cache.set_many(
            {key: secrets.token_hex(8) for key in keys}, timeout=STAMP_SECONDS
        )
    except Exception:  # noqa: BLE001 - snapshots then live out their seconds
        logger.error("Could not end calendar feed snapshots", exc_info=True)


def rows_written(practice_ids: set[int] | None) -> None:
    """End every snapshot of these practices (None: of every practice), now and
    again when the current transaction commits."""
    if not snapshots_enabled():
        return
    frozen = None if practice_ids is None else frozenset(practice_ids)
    _replace_stamps(frozen)
    transaction.on_commit(lambda: _replace_stamps(frozen), robust=True)


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
        post_save.connect(_on_save, sender=model, dispatch_uid=f"snapshot-{model}")
        post_delete.connect(_on_delete, sender=model, dispatch_uid=f"snapshot-{model}")
    m2m_changed.connect(_on_m2m, dispatch_uid="snapshot-m2m")
    rows_changed.connect(_on_rows, dispatch_uid="snapshot-rows")
    post_init.connect(_on_user_init, sender=user_model, dispatch_uid="snapshot-user")
    post_migrate.connect(_on_migrate, dispatch_uid="snapshot-migrate")
