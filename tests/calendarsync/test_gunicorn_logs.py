"""A real gunicorn, started with the flags ``make run`` uses and with an error log,
never writes a calendar secret: not for malformed request lines (no HTTP version,
a double space, a tab), which gunicorn reports in its error log before Django sees
them, and not for the well-formed requests Django logs."""

import base64
import secrets
import socket
import time
import urllib.request

import pytest

from calendarsync.logging import redact
from tests.servers import free_port, gunicorn_without_database

# The Makefile's access log format.
ACCESS_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss'


def _token() -> str:
    public_id = secrets.token_urlsafe(9)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return public_id + secret


@pytest.fixture
def gunicorn(tmp_path):
    """gunicorn on a free port, logging to files in ``tmp_path``; its database is
    unreachable, so no request can depend on data."""
    port = free_port()
    logs = {name: tmp_path / f"{name}.log" for name in ("access", "error", "stdio")}
    with logs["stdio"].open("wb") as stdio:
        server = gunicorn_without_database(
            port,
            logs["access"],
            ACCESS_FORMAT,
            "--error-logfile",
            str(logs["error"]),
            "--log-level",
            "debug",
            "--control-socket",
            str(tmp_path / "gunicorn.ctl"),
            env={"LOG_LEVEL": "DEBUG"},
            stdout=stdio,
            stderr=stdio,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(  # noqa: S310 - loopback
                    f"http://127.0.0.1:{port}/robots.txt", timeout=10
                )
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        yield port, logs
    finally:
        server.terminate()
        server.wait(timeout=20)


def _send(port: int, raw: bytes) -> bytes:
    """Send ``raw`` as it is and return the start of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(raw)
        answer = b""
        try:
            while len(answer) < 64:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            pass
    return answer


def test_no_log_line_of_a_real_gunicorn_shows_a_feed_secret(gunicorn):
    port, logs = gunicorn
    token = _token()
    path = f"/calendar/{token}.ics"
    malformed = [
        f"GET {path}\r\n\r\n",  # no HTTP version
        f"GET  {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # double space
        f"GET\t{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # tab before
        f"GET {path}\tHTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # tab after
    ]
    for line in malformed:
        assert _send(port, line.encode()).startswith(b"HTTP/1.1 400"), line
    well_formed = [
        (path, b"503"),  # the database is unreachable: Django logs a warning
        (path.replace("/calendar/", "/Calendar/"), b"404"),  # mistyped
    ]
    for target, status in well_formed:
        raw = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        assert _send(port, raw.encode()).startswith(b"HTTP/1.1 " + status)

    # Wait until the last request is in the access log before reading the files.
    deadline = time.monotonic() + 10
    while logs["access"].read_bytes().count(b"\n") < len(well_formed):
        assert time.monotonic() < deadline, logs["access"].read_text()
        time.sleep(0.1)

    written = {name: log.read_text() for name, log in logs.items()}
    for name, text in written.items():
        assert token not in text, name
        assert token[12:] not in text, name
    # The malformed lines were logged, redacted.
    assert written["error"].count("Invalid request from ip=127.0.0.1") == 4
    assert written["error"].count("/calendar/[redacted]") >= 4
    assert "Service Unavailable: /calendar/[redacted]" in written["stdio"]
    assert "Not Found: /Calendar/[redacted]" in written["stdio"]


def test_redact_also_covers_case_and_encoded_slashes():
    assert redact("GET /CALENDAR/abc.ics") == "GET /CALENDAR/[redacted]"
    assert redact("GET /calendar%2Fabc.ics") == "GET /calendar%2F[redacted]"
    assert redact("'GET\\t/calendar/abc.ics\\tHTTP/1.1'") == (
        "'GET\\t/calendar/[redacted]'"
    )
    assert redact("/calendar/[redacted].ics") == "/calendar/[redacted].ics"
