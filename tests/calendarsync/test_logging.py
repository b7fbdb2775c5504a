"""The feed token never reaches a log: Django's request and server loggers (through
the filter wired in settings) and gunicorn's access log (RedactingLogger)."""

import io
import logging
import socket
import subprocess
import time
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from django.core.servers.basehttp import WSGIRequestHandler
from django.db import OperationalError, connection
from gunicorn.config import Config

from calendarsync.gunicorn import RedactingLogger
from calendarsync.logging import RedactFeedTokens, redact
from practice.services import user_set_active
from tests.factories import make_appointment, personal_feed_path
from tests.servers import free_port, gunicorn_without_database

ACCESS_FORMAT = '%(h)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(U)s %({raw_uri}e)s'


@pytest.fixture
def django_log():
    """Everything the configured console handler of django.request and
    django.server writes."""
    stream = io.StringIO()
    handlers = {
        handler
        for name in ("django.request", "django.server")
        for handler in logging.getLogger(name).handlers
        if isinstance(handler, logging.StreamHandler)
        and any(isinstance(f, RedactFeedTokens) for f in handler.filters)
    }
    assert handlers, "settings.LOGGING must give these loggers a handler"
    old = {handler: handler.setStream(stream) for handler in handlers}
    yield stream
    for handler, previous in old.items():
        handler.setStream(previous)


def _status_paths(client, clinician):
    make_appointment(clinician)
    path = personal_feed_path(clinician)
    token = path.removeprefix("/calendar/").removesuffix(".ics")
    assert client.get(path).status_code == 200
    return path, token


def test_django_request_log_never_shows_the_token(
    client, clinician, admin_user, django_log
):
    path, token = _status_paths(client, clinician)
    statuses = {"200": client.get(path).status_code}

    calls = {"n": 0}

    def fail(execute, sql, params, many, context):
        calls["n"] += 1
        raise OperationalError("down")

    with connection.execute_wrapper(fail):
        statuses["503"] = client.get(path).status_code
    user_set_active(user=clinician, active=False, actor=admin_user, client_ip=None)
    statuses["404"] = client.get(path).status_code
    statuses["404-malformed"] = client.get(f"/calendar/{token}").status_code
    assert statuses == {"200": 200, "503": 503, "404": 404, "404-malformed": 404}

    output = django_log.getvalue()
    assert "Not Found: /calendar/[redacted]" in output
    assert "Service Unavailable: /calendar/[redacted]" in output
    assert token not in output
    assert token[:12] not in output and token[12:] not in output


def test_django_server_log_never_shows_the_token(
    client, clinician, admin_user, django_log
):
    path, token = _status_paths(client, clinician)
    handler = WSGIRequestHandler.__new__(WSGIRequestHandler)
    handler.request = socket.socket()
    try:
        for status in ("200", "404", "503"):
            handler.log_message('"%s" %s %s', f"GET {path} HTTP/1.1", status, "1234")
    finally:
        handler.request.close()
    output = django_log.getvalue()
    assert output.count("/calendar/[redacted]") == 3
    assert token not in output


class _Response:
    def __init__(self, status, sent):
        self.status = status
        self.sent = sent
        self.headers = [("Content-Type", "text/calendar")]


def test_gunicorn_access_log_never_shows_the_token(client, clinician, admin_user):
    path, token = _status_paths(client, clinician)
    config = Config()
    config.set("accesslog", "-")
    config.set("access_log_format", ACCESS_FORMAT)
    logger = RedactingLogger(config)
    stream = io.StringIO()
    for handler in logger.access_log.handlers:
        handler.setStream(stream)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": path,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "198.51.100.7",
        "HTTP_REFERER": f"https://tend.example{path}",
        "HTTP_USER_AGENT": "Google-Calendar-Importer",
    }
    for status in ("200 OK", "404 Not Found", "503 Service Unavailable"):
        logger.access(
            _Response(status, 10),
            [("Referer", environ["HTTP_REFERER"])],
            environ,
            timedelta(milliseconds=5),
        )
    output = stream.getvalue()
    assert output.count("\n") == 3
    assert token not in output
    assert "/calendar/[redacted]" in output
    for status in ("200", "404", "503"):
        assert f" {status} " in output


def test_real_gunicorn_answers_503_and_logs_no_token(tmp_path):
    """A running gunicorn whose database is unreachable: 503 with Retry-After, and
    the access log shows no token."""
    port = free_port()
    token = "abcdefghijkl" + "S" * 43
    log_file = tmp_path / "access.log"
    server = gunicorn_without_database(
        port,
        log_file,
        '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(r)s"',
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/calendar/{token}.ics"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url, timeout=10)  # noqa: S310 - loopback
            except urllib.error.HTTPError as error:
                status, retry_after = error.code, error.headers.get("Retry-After")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert status == 503
        assert retry_after
    finally:
        server.terminate()
        _out, errors = server.communicate(timeout=20)
    log = log_file.read_text()
    assert "/calendar/[redacted]" in log
    assert token not in log
    assert token not in errors.decode()


def test_redact_handles_odd_paths():
    assert (
        redact("GET /calendar/abc.ics HTTP/1.1") == "GET /calendar/[redacted] HTTP/1.1"
    )
    assert redact('"/calendar/abc" 404') == '"/calendar/[redacted]" 404'
    assert redact("/calendar/abc.ics?x=1") == "/calendar/[redacted]?x=1"
    assert redact("nothing here") == "nothing here"
