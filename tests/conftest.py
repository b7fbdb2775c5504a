"""Shared fixtures: two practices with named users, Chromium for browser tests, and
real servers on loopback (Redis, CalDAV). The data come from ``tests.factories``;
helpers that are not fixtures live in ``tests.support``."""

import os

import pytest

from practice.models import Role, User
from tests import factories
from tests.servers import (
    RadicaleServer,
    RedisServer,
    SilentServer,
    SmtpServer,
    XandikosServer,
)
from tests.support import clear_caches

# Playwright's sync API keeps an event loop on the main thread; Django's ORM refuses to
# run beside one unless told it is safe (it is: the loop only drives the browser).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(autouse=True)
def _fast_and_clean(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    clear_caches()
    yield


@pytest.fixture
def practice(db):
    return factories.make_practice(
        name="Riverside Counseling", time_zone="America/New_York"
    )


@pytest.fixture
def other_practice(db):
    return factories.make_practice(
        name="Harbor Family Therapy", time_zone="America/Los_Angeles"
    )


@pytest.fixture
def admin_user(practice) -> User:
    return factories.make_user(
        practice,
        roles=[Role.ADMINISTRATOR, Role.CLINICIAN],
        email="admin@riverside.test",
        name="Morgan Ellis",
        credentials="PsyD",
    )


@pytest.fixture
def scheduler(practice) -> User:
    return factories.make_user(
        practice,
        roles=[Role.SCHEDULER],
        email="scheduler@riverside.test",
        name="Sam Porter",
    )


@pytest.fixture
def clinician(practice) -> User:
    return factories.make_user(
        practice,
        roles=[Role.CLINICIAN],
        email="rivera@riverside.test",
        name="Dana Rivera",
        credentials="LCSW",
    )


@pytest.fixture
def other_clinician(practice) -> User:
    return factories.make_user(
        practice,
        roles=[Role.CLINICIAN],
        email="chen@riverside.test",
        name="Wei Chen",
        credentials="PhD",
    )


@pytest.fixture
def outsider_admin(other_practice) -> User:
    return factories.make_user(
        other_practice,
        roles=[Role.ADMINISTRATOR, Role.CLINICIAN],
        email="admin@harbor.test",
        name="Alex Stone",
        credentials="LPC",
    )


@pytest.fixture
def login(client):
    """Sign a user in on the Django test client and return the client."""

    def do_login(user):
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return client

    return do_login


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait as long as actions do (the pages' default timeout): a page
    # that draws itself again (the calendar at phone width) on a busy CI machine
    # can take longer than Playwright's default five seconds.
    expect.set_options(timeout=15_000)
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}; run scripts/test-deps")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _phone_context(browser, live_server, width: int, height: int):
    return browser.new_context(
        base_url=live_server.url,
        viewport={"width": width, "height": height},
        is_mobile=True,
        has_touch=True,
    )


@pytest.fixture
def phone_page(browser, live_server):
    """A small phone (360×740) that may use the clipboard."""
    context = _phone_context(browser, live_server, 360, 740)
    context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=live_server.url
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def phone(browser, live_server):
    """A phone of the size the SCHEDULING tab is designed for (390×844), in a
    browser context of its own (a second device beside ``page``)."""
    context = _phone_context(browser, live_server, 390, 844)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A Redis server of the test run's own (never the machine's shared one)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fresh_redis(redis_server):
    """``redis_server``, running and empty."""
    if redis_server.process is None:
        redis_server.start()
    redis_server.client().flushall()
    return redis_server


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on loopback that Tend's email goes to, with the messages
    it received."""
    server = SmtpServer()
    server.start()
    settings.MAILERS = {"default": server.mailer}
    yield server
    server.stop()


@pytest.fixture(scope="session")
def radicale(tmp_path_factory):
    server = RadicaleServer(tmp_path_factory.mktemp("radicale"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def xandikos(tmp_path_factory):
    server = XandikosServer(tmp_path_factory.mktemp("xandikos"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["radicale", "xandikos"])
def caldav_server(request):
    """Each real CalDAV server in turn."""
    return request.getfixturevalue(request.param)
