"""Django's Redis cache, keeping one redis-py client per connection pool.

Django builds a new ``redis.Redis`` object on every cache call. That costs about
0.3 ms each time (it fills a table of some 170 response callbacks), which is more
than the round trip to Redis itself. A calendar poll makes two cache calls, so
this mattered more than anything else on that path. Clients are safe to share:
connections come from the pool. Caches are per thread in Django anyway.
"""

from django.core.cache.backends import redis


class RedisCacheClient(redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient


def with_reused_clients(config: dict) -> dict:
    """A cache setting from ``CACHE_URL``, with Redis served by ``RedisCache``."""
    if config["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
        return {**config, "BACKEND": "config.cache.RedisCache"}
    return config


def is_shared(config: dict) -> bool:
    """Whether every process using this cache setting sees the same entries
    (Redis), rather than each its own (local memory, dummy)."""
    return config["BACKEND"].endswith("RedisCache")
