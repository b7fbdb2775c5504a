"""Helpers for tests that are not test data: emptying caches, signing in a browser,
feed paths, one Hypothesis example's rollback and running the background worker.
Test data comes from ``tests.factories``."""

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

from django.core.cache import caches
from django.core.management import call_command
from django.db import transaction
from django_otp.oath import totp

from calendarsync import freshness
from tests.factories import PASSWORD

# Client addresses and networks for the network-restriction tests.
OFFICE = "10.20.0.0/16"
OFFICE_IP = "10.20.0.7"
ELSEWHERE_IP = "203.0.113.50"


def clear_caches() -> None:
    """Empty every cache, and what this process keeps beside them (feed bytes and
    which practice each link belongs to)."""
    for cache in caches.all():
        cache.clear()
    freshness.forget_all()


@contextlib.contextmanager
def rolled_back() -> Iterator[None]:
    """One Hypothesis example's rows, gone afterwards whether it passed or not. The
    caches are emptied first, as between tests: SQLite hands out a rolled-back
    example's ids again, and nothing may be remembered under them."""
    clear_caches()
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def feed_path(url: str) -> str:
    """The path of a feed address (what the test client asks for)."""
    return urlsplit(url).path


def browser_login(page, email: str, password: str = PASSWORD) -> None:
    """Sign in through the login page of a Playwright ``page``."""
    page.goto("/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def run_worker() -> None:
    """Run the database queue's worker (``manage.py db_worker``) in this process
    until the queue is empty, as production's workers run every task. Use it with
    ``transactional_db``: the worker closes a connection left inside a transaction,
    as the test's own would be (PostgreSQL)."""
    stops = [signal.SIGINT, signal.SIGTERM, signal.SIGQUIT]
    handlers = {stop: signal.getsignal(stop) for stop in stops}
    try:
        call_command(
            "db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0
        )
    finally:
        # The worker takes over the stop signals to finish its task first.
        for stop, handler in handlers.items():
            signal.signal(stop, handler)


def totp_code(key: str, *, steps_ahead: int = 1) -> str:
    """The code an authenticator app with ``key`` (hex) shows, ``steps_ahead``
    30-second steps from now: one ahead by default, which the server still
    accepts and which is never the code already used to set the app up."""
    return f"{totp(bytes.fromhex(key), t0=-30 * steps_ahead):06d}"


def pass_second_step(client, key: str):
    """Pass the second sign-in step on a signed-in test client with the code of
    the authenticator app ``key``; returns the answer."""
    return client.post("/login/verify/", {"code": totp_code(key)})


def caldav_uids(server, calendar_url: str) -> set[str]:
    """The UIDs of the events in a calendar of a test CalDAV ``server``, read
    with the caldav library (a real client, not Tend's own)."""
    import caldav
    import icalendar

    dav = caldav.DAVClient(
        url=server.url, username=server.username, password=server.password
    )
    uids = set()
    for resource in dav.calendar(url=calendar_url).events():
        (event,) = icalendar.Calendar.from_ical(resource.data).walk("VEVENT")
        uids.add(str(event["UID"]))
    return uids


def db_worker_env(**extra: str) -> dict[str, str]:
    """The environment of a ``manage.py db_worker`` process on the test's own
    PostgreSQL database (and the database queue), plus ``extra``."""
    from django.db import connection

    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
        **extra,
    }


def db_worker_command(*, batch: bool) -> list[str]:
    """``manage.py db_worker`` looking at the queue every 50 ms (``batch``: until
    it is empty, then exit)."""
    return [
        sys.executable,
        "manage.py",
        "db_worker",
        *(["--batch"] if batch else []),
        "--no-startup-delay",
        "--no-reload",
        "--interval",
        "0.05",
    ]
