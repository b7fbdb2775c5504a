"""Shared fixtures: two practices with named users, and Chromium for browser tests."""

import os

import pytest
from django.core.cache import caches

from calendarsync import freshness
from practice.models import Practice, Role, User
from practice.services import user_create
from tests.servers import RedisServer, SilentServer

# Playwright's sync API keeps an event loop on the main thread; Django's ORM refuses to
# run beside one unless told it is safe (it is: the loop only drives the browser).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

PASSWORD = "correct-horse-battery"
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


def clear_caches() -> None:
    """Empty every cache, and what this process keeps beside them (feed bytes and
    which practice each link belongs to)."""
    for cache in caches.all():
        cache.clear()
    freshness.forget_all()


@pytest.fixture(autouse=True)
def _fast_and_clean(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    clear_caches()
    yield


@pytest.fixture
def practice(db):
    return Practice.objects.create(
        name="Riverside Counseling", time_zone="America/New_York"
    )


@pytest.fixture
def other_practice(db):
    return Practice.objects.create(
        name="Harbor Family Therapy", time_zone="America/Los_Angeles"
    )


@pytest.fixture
def make_user(db):
    counter = {"n": 0}

    def make(
        practice, *roles, email=None, name=None, credentials="", password=PASSWORD
    ):
        counter["n"] += 1
        return user_create(
            practice=practice,
            email=email or f"user{counter['n']}@{practice.pk}.example.test",
            display_name=name or f"User {counter['n']}",
            credentials=credentials,
            roles=roles or [Role.CLINICIAN],
            password=password,
        )

    return make


@pytest.fixture
def admin_user(practice, make_user) -> User:
    return make_user(
        practice,
        Role.ADMINISTRATOR,
        Role.CLINICIAN,
        email="admin@riverside.test",
        name="Morgan Ellis",
        credentials="PsyD",
    )


@pytest.fixture
def scheduler(practice, make_user) -> User:
    return make_user(
        practice, Role.SCHEDULER, email="scheduler@riverside.test", name="Sam Porter"
    )


@pytest.fixture
def clinician(practice, make_user) -> User:
    return make_user(
        practice,
        Role.CLINICIAN,
        email="rivera@riverside.test",
        name="Dana Rivera",
        credentials="LCSW",
    )


@pytest.fixture
def other_clinician(practice, make_user) -> User:
    return make_user(
        practice,
        Role.CLINICIAN,
        email="chen@riverside.test",
        name="Wei Chen",
        credentials="PhD",
    )


@pytest.fixture
def outsider_admin(other_practice, make_user) -> User:
    return make_user(
        other_practice,
        Role.ADMINISTRATOR,
        Role.CLINICIAN,
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
    from playwright.sync_api import sync_playwright

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


@pytest.fixture
def phone_page(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 360, "height": 740},
        is_mobile=True,
        has_touch=True,
    )
    context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=live_server.url
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def browser_login(page, email, password=PASSWORD):
    page.goto("/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


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
