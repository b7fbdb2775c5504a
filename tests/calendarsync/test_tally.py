"""The fetch counter: every poll counted once, handed over at most once a turn,
taken back when the poll is refused; on Redis and on the local-memory cache
alike."""

import secrets

import pytest
from django.core.cache import cache

from calendarsync import freshness
from calendarsync.freshness import tally, tally_undo


@pytest.fixture(params=["locmem", "redis"])
def store(request, settings, fresh_redis):
    if request.param == "redis":
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": fresh_redis.url,
            }
        }
        client = fresh_redis.client()
    else:
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        }
        client = None

    def forget_turn(key: str) -> None:
        # The turn's minute is over.
        full = f"{freshness.PREFIX}{key}:written"
        if client is not None:
            client.delete(full)
        else:
            cache.delete(full)

    yield forget_turn, client


def counts(key, times):
    return [tally(key, seconds=60).count for _ in range(times)]


def test_every_poll_is_counted_and_handed_over_once(store):
    forget_turn, _client = store
    key = "test-tally-" + secrets.token_hex(6)
    assert counts(key, 4) == [1, None, None, None]
    forget_turn(key)
    assert counts(key, 2) == [4, None]


def test_a_refused_poll_is_taken_back(store):
    forget_turn, _client = store
    key = "test-tally-" + secrets.token_hex(6)
    assert counts(key, 2) == [1, None]  # one counted in this turn
    tally_undo(tally(key, seconds=60))
    forget_turn(key)
    refused_with_turn = tally(key, seconds=60)
    assert refused_with_turn.count == 2
    tally_undo(refused_with_turn)  # gives the turn and the other poll back
    assert tally(key, seconds=60).count == 2


def test_counters_expire_on_redis(store):
    _forget_turn, client = store
    if client is None:
        pytest.skip("expiry is Redis's")
    key = "test-tally-" + secrets.token_hex(6)
    counts(key, 2)
    assert 0 < client.ttl(f"{freshness.PREFIX}{key}") <= 3600
    assert 0 < client.ttl(f"{freshness.PREFIX}{key}:written") <= 60
