"""While the database cannot be reached, every page answers a 503 page with
Retry-After, never a 500, and pages work again as soon as it is back.

gunicorn serves a database of its own. On PostgreSQL it reaches the server through
a TCP proxy in this process that the test switches off (the shared server itself is
never stopped); on SQLite the database's directory is moved away."""

import http.cookiejar
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import OperationalError
from django.urls import path as route

from tests.scale.actions import EMAIL, PASSWORD
from tests.servers import free_port, manage

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Signed-in pages of each app, and the login page itself.
PAGES = ["/scheduling/", "/patients/", "/settings/", "/settings/sync/", "/login/"]


class Proxy:
    """Forwards 127.0.0.1:<port> to ``target`` while on. ``off()`` drops every
    forwarded connection and stops listening, so connecting is refused."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def on(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.1)
        threading.Thread(
            target=self._accept, args=(self._listener,), daemon=True
        ).start()

    def off(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), daemon=True
                ).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# An outage is a database of gunicorn's own (``url``) that ``down()`` makes
# unreachable and ``up()`` brings back.


class PostgresOutage:
    def __init__(self, server_url: str, name: str):
        parts = urlsplit(server_url)
        self.proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
        self.proxy.on()
        user = f"{parts.username or ''}{':' + parts.password if parts.password else ''}"
        self.url = f"postgres://{user}@127.0.0.1:{self.proxy.port}/{name}"

    def down(self) -> None:
        self.proxy.off()

    def up(self) -> None:
        self.proxy.on()


class SqliteOutage:
    def __init__(self, folder: Path):
        self.home = folder / "db"
        self.away = folder / "db-away"
        self.home.mkdir()
        self.url = f"sqlite:///{self.home / 'tend.sqlite3'}"

    def down(self) -> None:
        self.home.rename(self.away)

    def up(self) -> None:
        self.away.rename(self.home)


@pytest.fixture(params=["sqlite", "postgresql"])
def outage(request, tmp_path):
    if request.param == "sqlite":
        yield SqliteOutage(tmp_path)
        return
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip(
            "PostgreSQL outage: runs when DATABASE_URL is PostgreSQL (the SQLite "
            "case covers the same pages)"
        )
    psycopg = pytest.importorskip("psycopg")
    parts = urlsplit(url)
    server = f"{parts.scheme}://{parts.netloc}"
    admin = psycopg.connect(server + "/postgres", connect_timeout=3, autocommit=True)
    name = f"tend_db_down_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    chosen = PostgresOutage(server, name)
    try:
        yield chosen
    finally:
        chosen.proxy.off()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def server(outage, tmp_path):
    env = {
        **{key: value for key, value in os.environ.items() if key != "CACHE_URL"},
        "DATABASE_URL": outage.url,
        "SECRET_KEY": "database-down-secret-key-0123456789-0123456789",
        "CALENDAR_FEED_KEY": "database-down-feed-key-0123456789-0123456789",
        "DEBUG": "false",
        "STATIC_MANIFEST": "false",
        "CALENDAR_FEED_SNAPSHOT_SECONDS": "0",
        "CALENDAR_FEED_SNAPSHOT_VERIFY": "false",
    }

    manage(env, "migrate", "--noinput", "-v", "0")
    out = manage(env, "shell", "-c", "from tests.scale import actions; actions.seed()")
    feed = json.loads(out.strip().splitlines()[-1])["path"]
    port = free_port()
    log_path = tmp_path / "server.log"
    log = log_path.open("w")
    process = subprocess.Popen(  # noqa: S603 - our own gunicorn and arguments
        [
            str(BIN / "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "4",
            "--no-control-socket",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/robots.txt", timeout=5)  # noqa: S310
                break
            except OSError:
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        yield base, feed, log_path
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


class Browser:
    """Cookies kept between requests, like a signed-in browser's."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar)
        )

    def request(self, path: str, data: dict | None = None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            response = self.opener.open(self.base + path, data=body, timeout=30)
        except urllib.error.HTTPError as error:
            response = error
        with response:
            return response.status, response.headers, response.read().decode()

    def sign_in(self, email: str, password: str):
        """Post the login form, with the CSRF cookie of an earlier visit."""
        (token,) = [cookie.value for cookie in self.jar if cookie.name == "csrftoken"]
        return self.request(
            "/login/",
            {"csrfmiddlewaretoken": token, "username": email, "password": password},
        )


def assert_unavailable(answer, what: str, page: bool = True) -> None:
    status, headers, body = answer
    assert status == 503, f"{what}: {status}\n{body[:2000]}"
    assert int(headers["Retry-After"]) > 0, what
    if page:
        assert "Tend is temporarily unavailable" in body, what


def test_every_page_answers_503_while_the_database_is_down(outage, server):
    base, feed, log_path = server
    signed_in, anonymous = Browser(base), Browser(base)
    for browser in (signed_in, anonymous):
        assert browser.request("/login/")[0] == 200
    status, _headers, page = signed_in.sign_in(EMAIL, PASSWORD)
    assert status == 200 and "SCHEDULING" in page
    for path in PAGES:
        assert signed_in.request(path)[0] == 200, path
    assert anonymous.request(feed)[0] == 200

    outage.down()
    try:
        for path in PAGES:
            assert_unavailable(signed_in.request(path), path)
        assert_unavailable(anonymous.request("/login/"), "login page, signed out")
        assert_unavailable(anonymous.sign_in(EMAIL, PASSWORD), "signing in")
        # A calendar client (no cookie) and a browser that also holds a session.
        assert_unavailable(anonymous.request(feed), "feed", page=False)
        assert_unavailable(signed_in.request(feed), "feed, signed in")
        assert_unavailable(anonymous.request("/healthz"), "health", page=False)
    finally:
        outage.up()

    for path in PAGES:
        assert signed_in.request(path)[0] == 200, path
    assert anonymous.request(feed)[0] == 200
    status, _headers, page = anonymous.sign_in(EMAIL, PASSWORD)
    assert status == 200 and "SCHEDULING" in page
    log = log_path.read_text()
    assert "Internal Server Error" not in log
    # The outage is reported as what it is (practice.sessions).
    assert "AttributeError" not in log


# -- Which failures are an outage (handler500, in process) ----------------------------


def _database_fails(request):
    raise OperationalError("connection refused")


def _fails_while_handling_a_database_error(request):
    try:
        raise OperationalError("server closed the connection unexpectedly")
    except OperationalError:
        return {}["missing"]


def _bug(request):
    raise ValueError("not the database")


urlpatterns = [
    route("database/", _database_fails),
    route("after-database/", _fails_while_handling_a_database_error),
    route("bug/", _bug),
]
handler500 = "practice.views.server_error"


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("where", ["/database/", "/after-database/"])
def test_a_database_failure_is_a_503_page(client, where):
    client.raise_request_exception = False
    response = client.get(where)
    assert response.status_code == 503
    assert response["Retry-After"] == "120"
    assert "no-store" in response["Cache-Control"]
    assert "Tend is temporarily unavailable" in response.content.decode()


@pytest.mark.urls(__name__)
def test_any_other_failure_is_still_a_500(client):
    client.raise_request_exception = False
    response = client.get("/bug/")
    assert response.status_code == 500
    assert "Retry-After" not in response
