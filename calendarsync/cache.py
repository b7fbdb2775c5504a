"""Rendered feeds in Django's cache (``CACHE_URL``: local memory by default, Redis
in production).

Why the keys can never serve stale or revoked content: a key is a hash of
everything a feed's bytes depend on — the practice, the calendar and its name, the
practice's time zone, the window's first day, the feed size limit, and the
*version* of the schedule read in the same query that loads the link (the count,
visible count and latest ``updated_at``/``deleted_at`` of the appointments in the
window, plus the clinicians' names for the practice-wide calendar). Any change to
any of those makes a new key, so nothing is ever invalidated or deleted: an entry
is either exactly right for its key or never looked up again, on every server and
in every worker, whatever cache backend each one has. Revocation (reset, disable,
role change, practice switch) is enforced before the cache is consulted, on every
request, by ``access_feed_link_by_token``.

Entries hold only the gzipped bytes (about a tenth of the size); the rare client
that does not accept gzip gets them decompressed. A cache that fails is treated as
empty: the feed is rebuilt, never refused.
"""

import functools
import hashlib
import importlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger("calendarsync.feed")

# Bump to drop every entry at once; the writer's own source is in every key too
# (``_writer_fingerprint``), so a deploy that changes the output never serves an
# entry written by the old code, even from a Redis that outlived it.
FORMAT_VERSION = "3"
# The code that decides a feed's bytes for given inputs.
WRITER_MODULES = ("calendarsync.ical", "calendarsync.selectors", "scheduling.names")
KEY_PREFIX = "calendarsync:feed:"
# Long enough to span a day of polling; the window's first day is in every key,
# so nothing older than a day can be looked up anyway.
TIMEOUT_SECONDS = 36 * 3600
# Entries are also kept in each process, up to this many gzipped bytes: a key names
# its bytes for good, so a copy in memory can never be stale, and a hot feed is
# then sent without fetching ~100 KB from Redis on every poll.
LOCAL_MAX_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CachedFeed:
    etag: str
    gzipped: bytes
    latest_change: datetime | None
    raw_length: int
    event_count: int
    truncated: bool


@functools.cache
def _writer_fingerprint() -> str:
    digest = hashlib.sha256()
    for name in WRITER_MODULES:
        digest.update(Path(importlib.import_module(name).__file__).read_bytes())
    return digest.hexdigest()[:16]


def feed_cache_key(*parts: object) -> str:
    """A fixed-length key naming ``parts`` (hex, 64 characters)."""
    material = "\x1f".join(
        [FORMAT_VERSION, _writer_fingerprint(), *(str(part) for part in parts)]
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


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


def local_clear() -> None:
    """Forget this process's copies (tests start each from nothing)."""
    _local.clear()


def feed_cache_get(key: str) -> CachedFeed | None:
    """The entry stored under ``key``, or None (also when the cache is down)."""
    entry = _local.get(key)
    if entry is not None:
        return entry
    try:
        value = cache.get(KEY_PREFIX + key)
    except Exception:  # noqa: BLE001 - any cache failure means "rebuild"
        logger.warning("Calendar feed cache unavailable", exc_info=True)
        return None
    if not isinstance(value, tuple) or len(value) != 6:
        return None
    entry = CachedFeed(*value)
    _local.put(key, entry)
    return entry


def feed_cache_set(key: str, entry: CachedFeed) -> None:
    """Remember ``entry`` under ``key``; a failing cache is only logged."""
    _local.put(key, entry)
    value = (
        entry.etag,
        entry.gzipped,
        entry.latest_change,
        entry.raw_length,
        entry.event_count,
        entry.truncated,
    )
    try:
        cache.set(KEY_PREFIX + key, value, timeout=TIMEOUT_SECONDS)
    except Exception:  # noqa: BLE001
        logger.warning("Calendar feed cache unavailable", exc_info=True)


def window_count(key: str, *, seconds: int) -> int:
    """Count one more under ``key`` and return the count, which starts again
    ``seconds`` after its first; for rate limits."""
    cache.add(key, 0, timeout=seconds)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=seconds)
        return 1


# A tally's count outlives a quiet hour at most.
COUNTER_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Tallied:
    """One event counted under ``key``; ``count`` is not None when it is this
    event's turn to hand over the count (see ``tally``)."""

    key: str
    count: int | None


def _redis() -> RedisCache | None:
    backend = caches["default"]
    return backend if isinstance(backend, RedisCache) else None


def read_and_tally(
    keys: list[str], tally_key: str | None, *, seconds: int
) -> tuple[dict, Tallied | None]:
    """``cache.get_many(keys)`` and, with ``tally_key``, ``tally(tally_key)``: in one
    round trip on Redis."""
    backend = _redis()
    if backend is None:
        values = cache.get_many(keys) if keys else {}
        if tally_key is None:
            return values, None
        return values, Tallied(tally_key, _tally_elsewhere(tally_key, seconds))
    client = backend._cache.get_client(None, write=True)
    pipe = client.pipeline(transaction=False)
    if keys:
        pipe.mget([backend.make_and_validate_key(key) for key in keys])
    if tally_key is not None:
        marker, counter = _tally_keys(backend, tally_key)
        pipe.set(marker, 1, nx=True, ex=seconds)
        pipe.incr(counter)
    results = pipe.execute()
    values = {}
    if keys:
        loads = backend._cache._serializer.loads
        found = results.pop(0)
        values = {
            key: loads(value)
            for key, value in zip(keys, found, strict=True)
            if value is not None
        }
    if tally_key is None:
        return values, None
    first, count = results
    if first:
        # Take what was counted, keeping whatever other workers add meanwhile.
        # The counter's expiry is renewed only here, once per turn: a counter is
        # only ever incremented while the marker of a turn that renewed it still
        # lives, so it outlasts its link's polling by at most COUNTER_SECONDS.
        pipe = client.pipeline(transaction=False)
        pipe.decrby(counter, count)
        pipe.expire(counter, COUNTER_SECONDS)
        pipe.execute()
    return values, Tallied(tally_key, count if first else None)


def tally(key: str, *, seconds: int) -> int | None:
    """Count one event under ``key``. At most once every ``seconds``, return how
    many were counted since the last time (this one included) and start again;
    otherwise None. One round trip per event on Redis."""
    return read_and_tally([], key, seconds=seconds)[1].count


def _tally_keys(backend: RedisCache, key: str) -> tuple[str, str]:
    return (
        backend.make_and_validate_key(f"{key}:written"),
        backend.make_and_validate_key(key),
    )


def _tally_elsewhere(key: str, seconds: int) -> int | None:
    """``tally`` on a cache other than Redis, with Django's cache API."""
    marker, counter = f"{key}:written", key
    if not cache.add(marker, 1, timeout=seconds):
        try:
            cache.incr(counter)
        except ValueError:
            if not cache.add(counter, 1, timeout=COUNTER_SECONDS):
                cache.incr(counter)
        return None
    count = 1 + (cache.get(counter) or 0)
    cache.delete(counter)
    return count


def tally_undo(tallied: Tallied) -> None:
    """Take back an event counted by ``read_and_tally`` that did not happen after
    all (a refused poll): uncount it, and give the turn back if it had it."""
    backend = _redis()
    if backend is not None:
        marker, counter = _tally_keys(backend, tallied.key)
        client = backend._cache.get_client(None, write=True)
        if tallied.count is None:
            client.decr(counter)
        else:
            client.incrby(counter, tallied.count - 1)
            client.delete(marker)
        return
    marker, counter = f"{tallied.key}:written", tallied.key
    if tallied.count is None:
        try:
            cache.decr(counter)
        except ValueError:
            pass
    else:
        cache.delete(marker)
        if tallied.count > 1:
            cache.set(counter, tallied.count - 1, timeout=COUNTER_SECONDS)
