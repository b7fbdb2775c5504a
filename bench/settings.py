"""Settings for ``make bench``: the application's own settings, with the bench's
database (never the development one), the bench URLs (B0 and N baselines beside the
real feed), fast password hashing and quiet logs."""

import os

import environ

os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-0123456789")
os.environ.setdefault("CALENDAR_FEED_KEY", "bench-only-feed-key-0123456789-0123456789")
os.environ.setdefault("STATIC_MANIFEST", "false")
# S6 connects calendar accounts to a Radicale on loopback; S7 keeps a personal
# calendar's address encrypted, as production does.
os.environ.setdefault("CALENDAR_ACCOUNT_KEY", "bench-only-account-key-0123456789-0123")
os.environ.setdefault("OUTBOUND_ALLOWED_NETWORKS", "127.0.0.0/8")
# The application's settings read the bench's database (never the development
# one), so what they derive from it (PUSH_CONCURRENCY) is the bench's.
os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]

from config.settings import *  # noqa: E402,F403

_env = environ.Env()
DATABASES = {"default": _env.db_url("BENCH_DATABASE_URL")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["CONN_MAX_AGE"] = 600
CACHES = {"default": _env.cache("BENCH_CACHE_URL", default="locmemcache://bench")}
CACHE_SHARED = CACHES["default"]["BACKEND"].endswith("RedisCache")
ROOT_URLCONF = "bench.urls"
# S6 measures the real queue: the database backend and its worker.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEBUG = False
LOGGING = {
    "version": 1,
    "disable_existing_loggers": True,
    "root": {"handlers": [], "level": "CRITICAL"},
}
# Unchanged polls from snapshots, as in production with Redis. In-process runs
# (S1–S4) are one process, whose local memory cache every reader and writer
# shares, so they use them too; gunicorn workers only with Redis.
CALENDAR_FEED_SNAPSHOT_SECONDS = (
    300 if CACHE_SHARED or "BENCH_CACHE_URL" not in os.environ else 0
)
CALENDAR_FEED_SNAPSHOT_VERIFY = False
