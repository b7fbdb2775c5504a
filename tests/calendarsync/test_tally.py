"""The fetch counter: every poll counted once, handed over at most once a turn,
taken back when the poll is refused; on Redis (one round trip a poll) and on the
local-memory cache alike."""

import os
import secrets

import pytest
from django.core.cache import cache, caches

from calendarsync.cache import Tallied, read_and_tally, tally, tally_undo

BACKENDS = {
    "locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "redis": {
        "BACKEND": "config.cache.RedisCache",
        "LOCATION": os.environ.get("REDIS_URL", ""),
    },
}


@pytest.fixture(params=BACKENDS)
def backend(request, settings):
    if request.param == "redis" and not os.environ.get("REDIS_URL"):
        pytest.skip("REDIS_URL is not set")
    settings.CACHES = {"default": BACKENDS[request.param]}
    yield request.param
    cache.clear()


def test_every_poll_is_counted_and_handed_over_once(backend):
    key = "tend-test-tally-" + secrets.token_hex(6)
    assert [tally(key, seconds=60) for _ in range(4)] == [1, None, None, None]
    cache.delete(f"{key}:written")  # the turn's minute is over
    values, tallied = read_and_tally(["absent"], key, seconds=60)
    assert (values, tallied) == ({}, Tallied(key, 4))
    assert tally(key, seconds=60) is None


def test_a_refused_poll_is_taken_back(backend):
    key = "tend-test-tally-" + secrets.token_hex(6)
    assert tally(key, seconds=60) == 1
    assert tally(key, seconds=60) is None  # one counted in this turn
    _values, refused = read_and_tally([], key, seconds=60)
    tally_undo(refused)
    cache.delete(f"{key}:written")
    _values, refused_with_turn = read_and_tally([], key, seconds=60)
    assert refused_with_turn.count == 2
    tally_undo(refused_with_turn)  # gives the turn and the other poll back
    assert tally(key, seconds=60) == 2


def test_counters_expire_on_redis(backend):
    if backend != "redis":
        pytest.skip("expiry is Redis's")
    key = "tend-test-tally-" + secrets.token_hex(6)
    tally(key, seconds=60)
    tally(key, seconds=60)
    redis_cache = caches["default"]
    client = redis_cache._cache.get_client(None, write=True)
    assert 0 < client.ttl(redis_cache.make_and_validate_key(key)) <= 3600
    assert 0 < client.ttl(redis_cache.make_and_validate_key(f"{key}:written")) <= 60
