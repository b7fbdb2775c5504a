"""Helpers for tests that are not test data: emptying caches, signing in a browser,
feed paths and one Hypothesis example's rollback. Test data comes from
``tests.factories``."""

import contextlib
from collections.abc import Iterator
from urllib.parse import urlsplit

from django.core.cache import caches
from django.db import transaction

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
